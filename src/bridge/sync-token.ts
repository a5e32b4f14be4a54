/** The header Upstash uses for read-your-writes, on requests and responses alike. */
export const SYNC_TOKEN_HEADER = "upstash-sync-token";

/**
 * How long a request whose token is ahead of the bridge waits for the bridge to catch up before it is
 * answered anyway. Such a token cannot come from this bridge (see {@link SyncTokenClock}), so waiting longer
 * would only slow the client down; its next response carries the bridge's token and the client adopts it.
 */
export const SYNC_TOKEN_WAIT_MS = 100;

/**
 * The bridge's read-your-writes token, sent as the `upstash-sync-token` header of every response.
 *
 * Upstash uses the token to route a client's reads to a replica that has seen the client's last write.
 * Behind the bridge there is one redis-server, so a write is visible to every later command the moment its
 * reply arrives. Each response gets a token of its own, larger than every token issued before it, also when
 * one client's requests run at once (`@upstash/redis` keeps the token of whichever response came last, so
 * equal tokens on concurrent responses would hide which one that was). The token is a decimal integer
 * issued after the request's commands ran, so it covers every write whose reply has arrived. It starts from
 * the clock in microseconds, so a restarted bridge continues above the tokens its predecessor handed out and
 * clients holding one are not delayed. `@upstash/redis` treats the value as opaque and sends back the last
 * one it received.
 */
export class SyncTokenClock {
  private value: number;
  private readonly waiters = new Set<{ target: number; resolve: () => void }>();

  constructor(private readonly now: () => number = Date.now) {
    this.value = now() * 1000;
  }

  /** The last token issued (the starting value before the first one). */
  get current(): string {
    return String(this.value);
  }

  /** A new token for a response, above every earlier one (call it once the request's commands ran). */
  issue(): string {
    this.value = Math.max(this.value + 1, this.now() * 1000);
    for (const waiter of this.waiters) {
      if (waiter.target <= this.value) waiter.resolve();
    }
    return String(this.value);
  }

  /**
   * Resolves once the write a request's token stands for is visible: at once for a missing, empty,
   * non-numeric (e.g. production's) or already reached token, else when the clock catches up or after
   * {@link SYNC_TOKEN_WAIT_MS}, whichever comes first. It never rejects: a stale token is not an error.
   */
  async waitFor(token: string | undefined, maxWaitMs = SYNC_TOKEN_WAIT_MS): Promise<void> {
    if (!token || !/^\d{1,16}$/.test(token)) return;
    const target = Number(token);
    if (target <= this.value) return;
    await new Promise<void>((resolve) => {
      const waiter = {
        target,
        resolve: () => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve();
        },
      };
      const timer = setTimeout(waiter.resolve, maxWaitMs);
      this.waiters.add(waiter);
    });
  }
}
