/**
 * A timer that is cheap to cancel and set again, for schedules that a lone client moves with every request
 * (set when a request is acknowledged, cancelled when its reply comes, set again a millisecond later):
 *
 * - `cancel()` leaves an armed runtime timer due within `keepMs` to run out (when it fires it finds nothing
 *   wanted and does nothing) instead of clearing it; one due later is cleared;
 * - `set(at)` reuses an armed timer that fires no later than `at`; when that timer fires before the time
 *   now wanted, it is armed again for that time.
 *
 * So a closed-loop client costs about one runtime timer per `keepMs` instead of a `setTimeout` and a
 * `clearTimeout` per request (each is a call into the runtime, among the costliest steps of a request in a
 * CPU profile of the object), and nothing stays armed longer than `keepMs` after the last `cancel()`: an
 * idle Durable Object is not kept from hibernating by a pending timer for longer than that (Cloudflare,
 * "Lifecycle of a Durable Object": an object with pending timers is not hibernated).
 */
import type { Clock, TimerHandle } from "./pending-requests.js";

/** One wanted time, at most one runtime timer; see the file comment. */
export class LazyTimer {
  private wantAt: number | undefined;
  private armed: { handle: TimerHandle; at: number } | undefined;

  /**
   * @param onFire called once per wanted time, when the clock reaches it
   * @param keepMs a cancelled timer due within this long is left to run out rather than cleared
   */
  constructor(
    private readonly clock: Clock,
    private readonly onFire: () => void,
    private readonly keepMs: number,
  ) {}

  /** When `onFire` will run, or undefined when nothing is wanted. */
  get at(): number | undefined {
    return this.wantAt;
  }

  /** `onFire` runs at `at` (a time on the clock), instead of any time set before. */
  set(at: number): void {
    this.wantAt = at;
    if (this.armed !== undefined) {
      if (this.armed.at <= at) return;
      this.disarm();
    }
    this.arm(at);
  }

  /** `onFire` will not run (until the next `set`). */
  cancel(): void {
    this.wantAt = undefined;
    if (this.armed !== undefined && this.armed.at - this.clock.now() > this.keepMs) this.disarm();
  }

  /** Cancels and clears any armed runtime timer at once. */
  stop(): void {
    this.wantAt = undefined;
    this.disarm();
  }

  private arm(at: number): void {
    const handle = this.clock.setTimeout(() => this.fired(), Math.max(0, at - this.clock.now()));
    this.armed = { handle, at };
  }

  private disarm(): void {
    if (this.armed === undefined) return;
    this.clock.clearTimeout(this.armed.handle);
    this.armed = undefined;
  }

  private fired(): void {
    this.armed = undefined;
    const at = this.wantAt;
    if (at === undefined) return;
    if (at > this.clock.now()) {
      this.arm(at);
      return;
    }
    this.wantAt = undefined;
    this.onFire();
  }
}
