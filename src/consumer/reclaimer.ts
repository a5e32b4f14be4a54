/**
 * The reclaim loop: takes over entries left pending longer than `claimIdleMs` by any consumer of the group
 * (a crashed or stuck process) and serves them again (at-least-once). An entry handed out more than
 * `maxDeliveries` times is a poison entry: it goes to `<stream>:dead` and is acked.
 *
 * `XPENDING ... IDLE` then `XCLAIM` rather than `XAUTOCLAIM`: XAUTOCLAIM cannot skip the entries this very
 * process is still serving, so a live service would keep claiming its own slow entries, bumping their
 * delivery counts towards the dead-letter stream and resetting the idle time other consumers wait for.
 * XPENDING also gives the delivery counts, which XAUTOCLAIM does not. Cost: one XPENDING per stream per
 * round while nothing is stalled, plus one XCLAIM when something is.
 */
import { parseClaimReply, parsePendingRows, type RawEntry } from "./stream-replies.js";
import type { ServiceTransport } from "./transport.js";

/** What the reclaimer needs from its service. */
export interface ReclaimerContext {
  transport: ServiceTransport;
  streams: string[];
  group: string;
  consumerName: string;
  claimIdleMs: number;
  maxDeliveries: number;
  /** Pending entries examined per XPENDING page. */
  claimCount: number;
  /** True while this process is still serving the entry (it must not run twice here). */
  isHeld(stream: string, entryId: string): boolean;
  /** Serves a claimed entry (waits for a handler slot). */
  dispatch(stream: string, entry: RawEntry, deliveryCount: number): Promise<void>;
  /** Dead-letters a poison entry and acks it. */
  deadLetter(stream: string, entry: RawEntry, deliveryCount: number, reason: string): void;
}

/** Runs one reclaim round over every stream; returns how many entries were taken over. */
export async function reclaimRound(ctx: ReclaimerContext): Promise<number> {
  let claimed = 0;
  for (const stream of ctx.streams) claimed += await reclaimStream(ctx, stream);
  return claimed;
}

async function reclaimStream(ctx: ReclaimerContext, stream: string): Promise<number> {
  const { group, consumerName, claimIdleMs, claimCount } = ctx;
  let start = "-";
  let claimed = 0;
  // A bounded number of pages per round keeps a round short; the rest is picked up next round.
  for (let page = 0; page < 10; page++) {
    const reply = await ctx.transport.call([
      "XPENDING",
      stream,
      group,
      "IDLE",
      String(claimIdleMs),
      start,
      "+",
      String(claimCount),
    ]);
    const rows = parsePendingRows(reply);
    const stalled = rows.filter((row) => !(row.consumer === consumerName && ctx.isHeld(stream, row.id)));
    if (stalled.length > 0) {
      const ids = stalled.map((row) => row.id);
      const entries = parseClaimReply(
        await ctx.transport.call(["XCLAIM", stream, group, consumerName, String(claimIdleMs), ...ids]),
      );
      const counts = new Map(stalled.map((row) => [row.id, row.deliveryCount + 1]));
      claimed += entries.length;
      for (const entry of entries) await serveClaimed(ctx, stream, entry, counts.get(entry.id) ?? 1);
    }
    const last = rows[rows.length - 1];
    if (rows.length < claimCount || !last) break;
    start = `(${last.id}`;
  }
  return claimed;
}

async function serveClaimed(
  ctx: ReclaimerContext,
  stream: string,
  entry: RawEntry,
  count: number,
): Promise<void> {
  // `count` includes this claim, so the handler has already had the entry count - 1 times.
  if (count > ctx.maxDeliveries) {
    ctx.deadLetter(stream, entry, count - 1, `exceeded maxDeliveries (${ctx.maxDeliveries})`);
    return;
  }
  await ctx.dispatch(stream, entry, count);
}
