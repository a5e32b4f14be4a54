/**
 * The push benchmark's service (`--module bench/push-service.ts`, behind the example deployment's `ticks`
 * action): `{"ticks": <label>, "subscribe": 1, "push": "single" | "batch"}` opens a subscription, and one
 * clock pushes every live subscription a frame every `PUSH_INTERVAL_MS` (100 ms by default) with
 * `{sub, seq, t}`: the subscription id, a sequence number from 1 and the time of the push call
 * (`performance.timeOrigin + performance.now()`, the machine clock the client reads too). `single` pushes
 * each with its own `POST <connection>/messages`; `batch` sends a round in `pushBatch` requests of 500
 * messages, concurrently. A 410 ends a subscription (once it is past the SDK's registration grace).
 *
 * Stats go to stderr as `push-stats {json}` lines every second, and `push-gone {json}` when a subscription
 * ends, with the number of frames the gateway accepted (202) for it: the benchmark checks each against what
 * its client received.
 */
import {
  createPusher,
  MAX_PUSH_BATCH,
  PushGoneError,
  SUBSCRIPTION_REGISTRATION_GRACE_MS,
  type BatchPushMessage,
  type RpcHandlers,
} from "../src/consumer/index.js";

const INTERVAL_MS = Number(process.env.PUSH_INTERVAL_MS) || 100;

interface Live {
  id: string;
  connection: string;
  mode: "single" | "batch";
  openedAt: number;
  /** Frames the gateway accepted (202); the next frame's seq is `accepted + 1`. */
  accepted: number;
  busy: boolean;
}

const live = new Map<string, Live>();
const pusher = createPusher({ retries: 2 });
const stats = {
  accepted: 0,
  gone: 0,
  goneEarly: 0,
  otherStatus: 0,
  failed: 0,
  skippedRounds: 0,
  batchRequests: 0,
};

const now = (): number => performance.timeOrigin + performance.now();

function end(sub: Live): void {
  if (!live.delete(sub.id)) return;
  stats.gone += 1;
  console.error(`push-gone ${JSON.stringify({ id: sub.id, accepted: sub.accepted })}`);
}

/** A 410 right after the reply may mean "not registered yet" (docs/service.md), past the grace it is final. */
function gone(sub: Live): void {
  if (Date.now() - sub.openedAt <= SUBSCRIPTION_REGISTRATION_GRACE_MS) stats.goneEarly += 1;
  else end(sub);
}

function record(sub: Live, status: number): void {
  if (status === 202) {
    sub.accepted += 1;
    stats.accepted += 1;
  } else if (status === 410) gone(sub);
  else stats.otherStatus += 1;
}

/** Rounds in flight, by chunk: a chunk whose previous round has not settled skips this one. */
const chunkBusy = new Set<number>();

/** One round of batch pushes: chunks of {@link MAX_PUSH_BATCH} subscriptions, sent concurrently. */
function pushBatchRound(subs: Live[]): void {
  for (let chunk = 0; chunk * MAX_PUSH_BATCH < subs.length; chunk++) {
    void pushChunk(chunk, subs.slice(chunk * MAX_PUSH_BATCH, (chunk + 1) * MAX_PUSH_BATCH));
  }
}

async function pushChunk(chunk: number, subs: Live[]): Promise<void> {
  if (chunkBusy.has(chunk)) {
    stats.skippedRounds += 1;
    return;
  }
  chunkBusy.add(chunk);
  try {
    const t = now();
    const messages: BatchPushMessage[] = subs.map((sub) => ({
      connection: sub.connection,
      subscription: sub.id,
      data: { sub: sub.id, seq: sub.accepted + 1, t },
    }));
    stats.batchRequests += 1;
    const results = await pusher.pushBatch(messages);
    results.forEach((result, i) => record(subs[i]!, result.status));
  } catch {
    stats.failed += subs.length;
  } finally {
    chunkBusy.delete(chunk);
  }
}

async function pushSingle(sub: Live): Promise<void> {
  if (sub.busy) {
    stats.skippedRounds += 1;
    return;
  }
  sub.busy = true;
  try {
    await pusher.push(sub.connection, {
      subscription: sub.id,
      data: { sub: sub.id, seq: sub.accepted + 1, t: now() },
    });
    record(sub, 202);
  } catch (error) {
    if (error instanceof PushGoneError) gone(sub);
    else stats.failed += 1;
  } finally {
    sub.busy = false;
  }
}

const clock = setInterval(() => {
  const batch: Live[] = [];
  for (const sub of live.values()) {
    if (sub.mode === "batch") batch.push(sub);
    else void pushSingle(sub);
  }
  pushBatchRound(batch);
}, INTERVAL_MS);
const reporter = setInterval(
  () => console.error(`push-stats ${JSON.stringify({ ...stats, live: live.size })}`),
  1000,
);
for (const timer of [clock, reporter]) timer.unref();

export const handlers: RpcHandlers = {
  ticks: (params, ctx) => {
    const args = (params.args ?? {}) as Record<string, unknown>;
    const subscription = ctx.subscribe();
    live.set(subscription.id, {
      id: subscription.id,
      connection: subscription.connection,
      mode: args.push === "single" ? "single" : "batch",
      openedAt: Date.now(),
      accepted: 0,
      busy: false,
    });
    return { sub: subscription.id, seq: 0, t: now() };
  },
  ping: () => "pong",
};
