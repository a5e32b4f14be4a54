/**
 * The push benchmark's phases over a running stack (the example deployment, `bench/push-service.ts` as the
 * service): many `ws` clients each open one subscription (`ticks`, `"subscribe": 1`), the service pushes
 * each a frame `{sub, seq, t}` every 100 ms, and every frame is checked on arrival:
 *
 * - crossed: a frame whose `subscription.id`, `req_id` or `tick.sub` is not its connection's own;
 * - lost: per subscription, frames the gateway accepted (202, counted by the service) that the client did
 *   not receive before its socket closed, and gaps in `seq`;
 * - latency: receipt time minus `t` (the service's push call; one machine, one clock);
 * - after the clients close, every subscription's next push must be answered 410 (the service logs each);
 * - gateway-side Redis commands (`INFO commandstats`, the service's own left out) over the window while
 *   only pushes flow.
 */
import WebSocket from "ws";
import { CommandStats, splitDelta, type CommandCounts } from "./command-stats.js";

/** One phase's settings. */
export interface PushPhaseSettings {
  name: string;
  connections: number;
  /** `single`: one `POST <connection>/messages` per frame; `batch`: `pushBatch` of a whole round. */
  mode: "single" | "batch";
  /** How long frames are measured once every subscription is open. */
  windowMs: number;
  /** Frames per second per subscription the service is set to (for the expected count). */
  rate: number;
}

/** What the service reported (its `push-gone` and `push-stats` lines). */
export interface ServiceReports {
  /** Accepted (202) frames per subscription id, once the subscription ended with a 410. */
  gone: Map<string, { accepted: number; at: number }>;
  /** The last `push-stats` line. */
  stats: Record<string, number>;
}

/** Collects the service's report lines from the stack's log sink. */
export function serviceReports(): { reports: ServiceReports; onLine: (line: string) => void } {
  const reports: ServiceReports = { gone: new Map(), stats: {} };
  const onLine = (line: string): void => {
    const gone = /push-gone (\{.*\})/.exec(line);
    if (gone) {
      const { id, accepted } = JSON.parse(gone[1]!) as { id: string; accepted: number };
      reports.gone.set(id, { accepted, at: Date.now() });
    }
    const stats = /push-stats (\{.*\})/.exec(line);
    if (stats) reports.stats = JSON.parse(stats[1]!) as Record<string, number>;
  };
  return { reports, onLine };
}

/** One phase's figures. */
export interface PushPhaseResult {
  name: string;
  mode: "single" | "batch";
  connections: number;
  subscribed: number;
  windowMs: number;
  /** Frames received in the window / (subscriptions x rate x window). */
  deliveredShare: number;
  framesInWindow: number;
  framesTotal: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  latencyMaxMs: number;
  lost: number;
  gaps: number;
  duplicates: number;
  crossed: number;
  /** Subscriptions whose next push after the close was answered 410 (of `subscribed`). */
  goneAfterClose: number;
  /** Subscriptions that got a 410 while their client was still open. */
  goneBeforeClose: number;
  gatewayRedisCommands: number;
  gatewayRedisByCommand: CommandCounts;
  serviceStats: Record<string, number>;
}

interface Sub {
  index: number;
  ws: WebSocket;
  id: string;
  lastSeq: number;
  received: number;
  closed: Promise<void>;
}

/** Runs one phase: open, subscribe, measure the window, close, reconcile with the service. */
export async function runPushPhase(
  wsUrl: string,
  redisUrl: string,
  reports: ServiceReports,
  settings: PushPhaseSettings,
  log: (line: string) => void = () => {},
): Promise<PushPhaseResult> {
  const subs: Sub[] = [];
  const latencies: number[] = [];
  let measuring = false;
  let framesInWindow = 0;
  let framesTotal = 0;
  let gaps = 0;
  let duplicates = 0;
  let crossed = 0;
  const reqIdBase = Math.floor(Math.random() * 1e6) * 10_000;

  const open = async (index: number): Promise<Sub> => {
    const ws = new WebSocket(wsUrl);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    const reqId = reqIdBase + index;
    const sub: Sub = {
      index,
      ws,
      id: "",
      lastSeq: 0,
      received: 0,
      closed: new Promise((resolve) => ws.once("close", () => resolve())),
    };
    const replied = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no subscribe reply on connection ${index}`)), 60_000);
      ws.on("message", (data) => {
        const at = performance.timeOrigin + performance.now();
        const frame = JSON.parse(String(data)) as {
          msg_type?: string;
          req_id?: number;
          subscription?: { id?: string };
          tick?: { sub?: string; seq?: number; t?: number };
        };
        const tick = frame.tick;
        if (!sub.id) {
          // The reply to the subscribe request.
          clearTimeout(timer);
          if (frame.msg_type !== "tick" || !frame.subscription?.id || frame.req_id !== reqId) {
            reject(new Error(`connection ${index}: unexpected reply ${String(data).slice(0, 300)}`));
            return;
          }
          sub.id = frame.subscription.id;
          resolve();
          return;
        }
        if (
          frame.msg_type !== "tick" ||
          frame.req_id !== reqId ||
          frame.subscription?.id !== sub.id ||
          tick?.sub !== sub.id ||
          typeof tick.seq !== "number"
        ) {
          crossed += 1;
          return;
        }
        framesTotal += 1;
        sub.received += 1;
        if (tick.seq <= sub.lastSeq) duplicates += 1;
        else gaps += tick.seq - sub.lastSeq - 1;
        sub.lastSeq = Math.max(sub.lastSeq, tick.seq);
        if (measuring) {
          framesInWindow += 1;
          if (typeof tick.t === "number") latencies.push(at - tick.t);
        }
      });
    });
    ws.send(JSON.stringify({ ticks: settings.name, subscribe: 1, push: settings.mode, req_id: reqId }));
    await replied;
    return sub;
  };

  // Open in waves of 50, so the opening burst does not itself time out on a small machine.
  for (let start = 0; start < settings.connections; start += 50) {
    const wave = Array.from({ length: Math.min(50, settings.connections - start) }, (_, i) =>
      open(start + i),
    );
    subs.push(...(await Promise.all(wave)));
  }
  log(`${settings.name}: ${subs.length} subscriptions open`);
  // Let the subscribe requests' reply polls finish: from here only pushes flow.
  await new Promise((resolve) => setTimeout(resolve, 2000));

  const stats = new CommandStats(redisUrl);
  let before: CommandCounts;
  let after: CommandCounts;
  try {
    before = await stats.snapshot();
    measuring = true;
    await new Promise((resolve) => setTimeout(resolve, settings.windowMs));
    measuring = false;
    after = await stats.snapshot();
  } finally {
    stats.close();
  }
  const goneBeforeClose = subs.filter((sub) => reports.gone.has(sub.id)).length;
  log(`${settings.name}: window over, closing`);

  // Receiving stops when each socket has closed; what the gateway accepted by then was delivered or lost.
  for (const sub of subs) sub.ws.close(1000, "bench done");
  await Promise.all(subs.map((sub) => sub.closed));
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && subs.some((sub) => !reports.gone.has(sub.id))) {
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  let lost = 0;
  for (const sub of subs) {
    const accepted = reports.gone.get(sub.id)?.accepted;
    if (accepted !== undefined) lost += Math.max(0, accepted - sub.received);
  }
  const split = splitDelta(before, after);
  latencies.sort((a, b) => a - b);
  const quantile = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return {
    name: settings.name,
    mode: settings.mode,
    connections: settings.connections,
    subscribed: subs.length,
    windowMs: settings.windowMs,
    deliveredShare: framesInWindow / (subs.length * settings.rate * (settings.windowMs / 1000)),
    framesInWindow,
    framesTotal,
    latencyP50Ms: quantile(0.5),
    latencyP99Ms: quantile(0.99),
    latencyMaxMs: latencies.at(-1) ?? NaN,
    lost,
    gaps,
    duplicates,
    crossed,
    goneAfterClose: subs.filter((sub) => reports.gone.has(sub.id)).length - goneBeforeClose,
    goneBeforeClose,
    gatewayRedisCommands: split.caller.total,
    gatewayRedisByCommand: split.caller.byCommand,
    serviceStats: { ...reports.stats },
  };
}
