/**
 * Waiting and retrying: jittered exponential back-off, a sleep that close() can cut short, and the outage
 * tracker that logs a Redis outage once rather than once per retry.
 */
import type { ServiceLogger } from "./types.js";

/** Delay before retry number `attempt` (0-based): `min * 2^attempt`, capped at `max`, times 0.5-1 jitter. */
export function backoffDelayMs(attempt: number, minMs: number, maxMs: number): number {
  return Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30)) * (0.5 + Math.random() / 2);
}

/** Resolves after `ms`, or at once when `signal` fires. Never rejects. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}

/**
 * Shared by every loop of one service: the first failure of an outage logs a warning, the first success
 * after it logs the recovery with the outage's length; failures in between are silent.
 */
export class OutageTracker {
  private downSince: number | undefined;
  private failures = 0;

  constructor(
    private readonly logger: ServiceLogger,
    private readonly target: string,
  ) {}

  /** True while the last Redis call failed. */
  get isDown(): boolean {
    return this.downSince !== undefined;
  }

  /** Records a failed Redis call; returns how many failed in a row (for back-off). */
  failed(error: unknown, operation: string): number {
    if (this.downSince === undefined) {
      this.downSince = Date.now();
      const reason = error instanceof Error ? error.message : String(error);
      this.logger({
        level: "warn",
        msg: "redis unavailable, retrying",
        operation,
        error: reason,
        target: this.target,
      });
    }
    return this.failures++;
  }

  /** Records a successful Redis call. */
  succeeded(): void {
    if (this.downSince === undefined) return;
    const downMs = Date.now() - this.downSince;
    this.downSince = undefined;
    this.failures = 0;
    this.logger({ level: "info", msg: "redis reachable again", down_ms: downMs, target: this.target });
  }
}
