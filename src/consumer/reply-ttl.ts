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
 * - A key a push re-created without an `EXPIRE` (the gateway pops it empty between replies, as with one
 *   client) gets its `EXPIRE` with every push until a push finds it holding replies, so a light load
 *   costs no extra round trip; under load the list rarely runs empty and the `EXPIRE` is rarely sent.
 */

/** Remembers when this service last sent `EXPIRE` for each reply key, and which keys its pushes keep re-creating. */
export class ReplyKeyTtl {
  private readonly expireSentAtMs = new Map<string, number>();
  /**
   * Keys a push re-created without an `EXPIRE` (the gateway pops them empty between replies, as with one
   * client): until a push finds one holding replies, its pushes carry the `EXPIRE` in the same round trip
   * rather than one round trip later.
   */
  private readonly recreated = new Set<string>();
  private readonly refreshAfterMs: number;
  private lastPruneMs = 0;

  constructor(ttlSeconds: number) {
    this.refreshAfterMs = (ttlSeconds * 1000) / 3;
  }

  /** True when a push to `key` at `nowMs` must carry an `EXPIRE`. */
  isDue(key: string, nowMs: number): boolean {
    const sentAtMs = this.expireSentAtMs.get(key);
    return sentAtMs === undefined || this.recreated.has(key) || nowMs - sentAtMs >= this.refreshAfterMs;
  }

  /** Records an `EXPIRE` for `key` put in a batch at `nowMs`; drops entries too old to matter now and then. */
  sent(key: string, nowMs: number): void {
    this.expireSentAtMs.set(key, nowMs);
    if (nowMs - this.lastPruneMs < this.refreshAfterMs) return;
    this.lastPruneMs = nowMs;
    // An entry older than the refresh interval answers the same as no entry: keys of objects gone away
    // leave the map after at most two intervals.
    for (const [other, sentAtMs] of this.expireSentAtMs) {
      if (nowMs - sentAtMs < this.refreshAfterMs) continue;
      this.expireSentAtMs.delete(other);
      this.recreated.delete(other);
    }
  }

  /** Forgets `key`, so the next push to it carries an `EXPIRE`. */
  forget(key: string): void {
    this.expireSentAtMs.delete(key);
  }

  /**
   * Takes an `RPUSH` of `pushed` values to `key` that answered `length`, the list's new length. Returns true
   * when the push created the key (so it has no TTL) and its round trip carried no `EXPIRE` for it: one is
   * owed now.
   */
  pushed(key: string, length: unknown, pushed: number, expireSent: boolean): boolean {
    if (length !== pushed) {
      this.recreated.delete(key);
      return false;
    }
    if (expireSent) return false;
    this.recreated.add(key);
    this.forget(key);
    return true;
  }
}
