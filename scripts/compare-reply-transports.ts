/**
 * Side-by-side figures of the two reply transports (README "Reply transports") on the local stack:
 * redis-server, bridge, one native service (`--reply-mode list` for poll, `publish` for subscribe) and
 * the e2e Worker under `wrangler dev` (one object) per transport. Prints p50/p95 latency and Redis
 * commands per request at 1 and 64 closed-loop clients (phases alternate between the transports so both
 * see the same machine), and the first request after the stream closed vs. the one after it.
 * Until `npm run bench` reports both transports, this is how the README's table was made.
 *
 * Usage: node --import tsx scripts/compare-reply-transports.ts [seconds per phase = 5] [rounds = 3]
 * Do not edit sources while it runs: `wrangler dev` reloads the Worker and drops the clients.
 */
import { performance } from "node:perf_hooks";
import { Redis } from "ioredis";
import WebSocket from "ws";
import { startStack } from "../src/devstack/stack.js";
import { E2E_SERVICE_MODULE, startE2eWorker } from "../test/e2e/helpers.js";

const PHASE_MS = Number(process.argv[2] ?? 5) * 1000;

/** Calls per command name so far (`INFO commandstats`). */
async function commandStats(redis: Redis): Promise<Record<string, number>> {
  const info = await redis.info("commandstats");
  const counts: Record<string, number> = {};
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) counts[m[1] ?? ""] = Number(m[2]);
  return counts;
}

/** Commands run between two {@link commandStats} readings, the INFO calls left out. */
function diff(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after))
    if (k !== "info" && v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0);
  return out;
}

/** A connected client. */
async function open(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  return ws;
}

/** One `ping`; resolves with its round trip in ms, rejects on an error reply or after 40 s. */
function call(ws: WebSocket, reqId: number): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no reply to req_id ${reqId} within 40 s`)), 40_000);
    const onMessage = (data: WebSocket.RawData): void => {
      const frame = JSON.parse(String(data)) as { req_id?: number; error?: unknown };
      if (frame.req_id !== reqId) return;
      ws.off("message", onMessage);
      clearTimeout(timer);
      if (frame.error) reject(new Error(JSON.stringify(frame.error)));
      else resolve(performance.now() - started);
    };
    ws.on("message", onMessage);
    ws.send(JSON.stringify({ ping: 1, req_id: reqId }));
  });
}

let nextReqId = 1;

/** Every socket keeps one request in flight until `durationMs` is over; returns the latencies. */
async function closedLoop(sockets: WebSocket[], durationMs: number): Promise<number[]> {
  const until = performance.now() + durationMs;
  const latencies: number[] = [];
  await Promise.all(
    sockets.map(async (ws) => {
      while (performance.now() < until) latencies.push(await call(ws, nextReqId++));
    }),
  );
  return latencies;
}

/** The `p`th percentile of `values`. */
function pct(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/**
 * The gateway's commands: `SUBSCRIBE`/`UNSUBSCRIBE` are sent by the bridge's subscriber connection on the
 * object's behalf (once per burst); the rest (XREADGROUP, XACK, RPUSH, EXPIRE, PUBLISH) are the service's.
 */
const GATEWAY = new Set(["xadd", "lpop", "subscribe", "unsubscribe"]);

interface Running {
  transport: "poll" | "subscribe";
  stop(): Promise<void>;
  wsUrl: string;
  redis: Redis;
}

/** A stack whose service replies as `transport` expects, and the e2e Worker on that transport. */
async function start(transport: "poll" | "subscribe"): Promise<Running> {
  const mode = transport === "poll" ? "list" : "publish";
  const stack = await startStack({
    service: { args: ["--module", E2E_SERVICE_MODULE, "--reply-mode", mode] },
  });
  const worker = await startE2eWorker(stack.bridge, { REPLY_TRANSPORT: transport, LOG_LEVEL: "error" });
  const redis = new Redis(stack.redis.url);
  return {
    transport,
    wsUrl: worker.wsUrl,
    redis,
    async stop() {
      redis.disconnect();
      await worker.stop();
      await stack.stop();
    },
  };
}

interface Phase {
  latencies: number[];
  gateway: number;
  all: number;
  byCommand: Record<string, number>;
}
const results = new Map<string, Phase>();

/** One measured closed loop of `clients` clients, after a 0.5 s warm-up; adds to {@link results}. */
async function phase(run: Running, clients: number): Promise<void> {
  console.error(`${new Date().toISOString()} phase ${run.transport}/${clients}`);
  const sockets = await Promise.all(Array.from({ length: clients }, () => open(run.wsUrl)));
  await closedLoop(sockets, 500);
  const before = await commandStats(run.redis);
  const latencies = await closedLoop(sockets, PHASE_MS);
  const used = diff(await commandStats(run.redis), before);
  for (const ws of sockets) ws.close();
  const key = `${run.transport}/${clients}`;
  const acc = results.get(key) ?? { latencies: [], gateway: 0, all: 0, byCommand: {} };
  acc.latencies.push(...latencies);
  for (const [k, v] of Object.entries(used)) {
    acc.byCommand[k] = (acc.byCommand[k] ?? 0) + v;
    acc.all += v;
    if (GATEWAY.has(k)) acc.gateway += v;
  }
  results.set(key, acc);
}

/** The first request after the stream closed (grace 2 s) and the one right after it. */
async function coldWarm(run: Running): Promise<void> {
  const ws = await open(run.wsUrl);
  const cold: number[] = [];
  const warm: number[] = [];
  for (let i = 0; i < 6; i++) {
    await new Promise((r) => setTimeout(r, 2_400));
    cold.push(await call(ws, nextReqId++));
    warm.push(await call(ws, nextReqId++));
  }
  ws.close();
  console.log(
    JSON.stringify({
      transport: run.transport,
      coldP50: +pct(cold, 50).toFixed(2),
      warmP50: +pct(warm, 50).toFixed(2),
    }),
  );
}

const ROUNDS = Number(process.argv[3] ?? 3);
const runs: Running[] = [];
try {
  for (const transport of ["poll", "subscribe"] as const) runs.push(await start(transport));
  // Alternating short phases, so both transports see the same (shared, noisy) machine.
  for (let round = 0; round < ROUNDS; round++) {
    for (const clients of [1, 64]) for (const run of runs) await phase(run, clients);
  }
  for (const [key, r] of results) {
    const n = r.latencies.length;
    const perReq = Object.fromEntries(Object.entries(r.byCommand).map(([k, v]) => [k, +(v / n).toFixed(3)]));
    console.log(
      JSON.stringify({
        key,
        requests: n,
        rps: Math.round(n / ((ROUNDS * PHASE_MS) / 1000)),
        p50: +pct(r.latencies, 50).toFixed(2),
        p95: +pct(r.latencies, 95).toFixed(2),
        gatewayCmdsPerReq: +(r.gateway / n).toFixed(3),
        allCmdsPerReq: +(r.all / n).toFixed(3),
        perReq,
      }),
    );
  }
  for (const run of runs) await coldWarm(run);
} finally {
  for (const run of runs) await run.stop();
}
