/**
 * When a reply key needs an `EXPIRE`: not with every reply, only when this service has not set the TTL in
 * the last third of `replyTtlSeconds`, or when the push just (re)created the key.
 *
 * Why that is safe (the key must never expire while replies are being pushed to it, and must never be left
 * without a TTL, or an abandoned key would stay forever):
 * - A key only loses its TTL by being deleted: the gateway's `LPOP` took its last reply, or the TTL ran out.
 *   The next `RPUSH` creates it again without a TTL. `RPUSH` answers the list's new length, and that length
 *   equals the number of values pushed exactly when this push created the key (Redis deletes an empty list,
 *   and `RPUSH` is atomic), so whoever re-creates a key sees it and sends the `EXPIRE` at once.
 * - Otherwise the TTL is refreshed before a third of it has passed since this service last sent it, so a
 *   key written to keeps at least two thirds of its TTL. The time is taken when the batch is built, before
 *   Redis runs the command, so the real TTL ends later than this side assumes.
 * - A round trip that failed may have created the key without this side seeing the length: its keys are
 *   forgotten, so the retry carries their `EXPIRE`.
 */

/** Remembers when this service last sent `EXPIRE` for each reply key. */
export class ReplyKeyTtl {
  private readonly expireSentAtMs = new Map<string, number>();
  private readonly refreshAfterMs: number;
  private lastPruneMs = 0;

  constructor(ttlSeconds: number) {
    this.refreshAfterMs = (ttlSeconds * 1000) / 3;
  }

  /** True when a push to `key` at `nowMs` must carry an `EXPIRE` (never sent here, or sent too long ago). */
  isDue(key: string, nowMs: number): boolean {
    const sentAtMs = this.expireSentAtMs.get(key);
    return sentAtMs === undefined || nowMs - sentAtMs >= this.refreshAfterMs;
  }

  /** Records an `EXPIRE` for `key` put in a batch at `nowMs`; drops entries too old to matter now and then. */
  sent(key: string, nowMs: number): void {
    this.expireSentAtMs.set(key, nowMs);
    if (nowMs - this.lastPruneMs < this.refreshAfterMs) return;
    this.lastPruneMs = nowMs;
    // An entry older than the refresh interval answers the same as no entry: keys of objects gone away
    // leave the map after at most two intervals.
    for (const [other, sentAtMs] of this.expireSentAtMs) {
      if (nowMs - sentAtMs >= this.refreshAfterMs) this.expireSentAtMs.delete(other);
    }
  }

  /** Forgets `key`, so the next push to it carries an `EXPIRE`. */
  forget(key: string): void {
    this.expireSentAtMs.delete(key);
  }

  /**
   * True when an `RPUSH` of `pushed` values answered `length`, the list's new length, and so created the key
   * without a TTL.
   */
  static created(length: unknown, pushed: number): boolean {
    return length === pushed;
  }
}
