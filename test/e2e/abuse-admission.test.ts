/**
 * The abuse suite, on the real stack (redis-server, bridge, example service, `wrangler dev` of the e2e
 * Worker): attacks one hostile source can make against the edge, each with the limit that stops it and
 * what a bystander on the same object sees. The gateway is `/abuse/websockets/v3` of e2e-worker.ts
 * (40 connections per object, 10 per address, 100 frames/s per address). The source is told apart by
 * `cf-connecting-ip`, which Cloudflare sets in production; under `wrangler dev` the e2e Worker sets it
 * from the test's `x-test-client-ip` header.
 *
 * `npm test` runs it at scale 1; `npm run test:abuse` at ABUSE_SCALE=10 (more sockets and frames) and
 * prints the figures. The attacks of one connection on the default gateway (memory, malformed frames,
 * reflected stash, `__proto__`) are in abuse.test.ts.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../support/wait.js";
import WebSocket from "ws";
import { frameSocket } from "../support/socket.js";
import { useE2eStack, type Client, type Frame } from "./helpers.js";

const SCALE = Math.max(1, Number(process.env.ABUSE_SCALE ?? 1));
const e2e = useE2eStack();
let abuseUrl: string;

beforeAll(() => {
  abuseUrl = e2e.worker.wsUrl.replace("/websockets/v3", "/abuse/websockets/v3");
});

/** A client of the abuse gateway, with its close seen from the start (an admission close follows the open at once). */
interface AbuseClient extends Client {
  closedAtOnce: Promise<{ code: number; reason: string }>;
}

/** Opens a socket to `object` as a client at `address`. */
async function openFrom(object: string, address: string): Promise<AbuseClient> {
  const ws = new WebSocket(`${abuseUrl}?object=${object}`, { headers: { "x-test-client-ip": address } });
  const closedAtOnce = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once("close", (code, reason) => resolve({ code, reason: String(reason) })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  return Object.assign(frameSocket(ws), { closedAtOnce });
}

/** The value of one `/metrics` series (0 when absent). */
async function metric(series: string): Promise<number> {
  const text = await (await fetch(`${e2e.worker.httpUrl}/abuse/metrics`)).text();
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${series} `));
  return line ? Number(line.split(" ")[1]) : 0;
}

/** Each bystander's round trip for `{ping}` through the service, in ms (sequential calls). */
async function bystanderRoundTrips(clients: Client[], rounds: number): Promise<number[]> {
  const times: number[] = [];
  for (let round = 0; round < rounds; round += 1) {
    for (const client of clients) {
      const started = performance.now();
      expect(await client.call({ ping: 1 }, 5_000)).toMatchObject({ ping: "pong" });
      times.push(performance.now() - started);
    }
  }
  return times;
}

function p99(times: number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? 0);
}

describe("one source against one object", () => {
  it("cannot fill maxConnectionsPerObject: over 10 sockets from one address close with 1008, bystanders connect", async () => {
    const attackSockets = 40 * SCALE;
    const attempts = await Promise.allSettled(
      Array.from({ length: attackSockets }, () => openFrom("abuse-connections", "203.0.113.66")),
    );
    const opened = attempts.flatMap((attempt) => (attempt.status === "fulfilled" ? [attempt.value] : []));
    const closes = await Promise.all(
      opened.map((client) =>
        Promise.race([client.closedAtOnce, new Promise<undefined>((resolve) => setTimeout(resolve, 3_000))]),
      ),
    );
    const refused = closes.filter((close) => close?.code === 1008);
    expect(refused.length).toBe(opened.length - 10);
    expect(refused[0]?.reason).toBe("Too many connections from this address");
    // Ten other addresses (a NAT, a household, an office) are all served on the same object.
    const bystanders = await Promise.all(
      Array.from({ length: 10 }, (_, index) => openFrom("abuse-connections", `198.51.100.${index + 1}`)),
    );
    const times = await bystanderRoundTrips(bystanders, 2);
    expect(await metric('wsproxy_admission_refused_total{reason="address_connections"}')).toBe(
      refused.length,
    );
    console.log(
      `[abuse] connection flood: ${attackSockets} sockets from one address, ${refused.length} closed 1008; ` +
        `${bystanders.length} bystanders served, p99 ${p99(times)} ms`,
    );
    await Promise.all([...opened, ...bystanders].map((client) => client.close()));
  });

  it("cannot use up an object with frames: over 100 frames/s per address get RateLimit, then 1008; a bystander is served", async () => {
    const flooders = await Promise.all([
      openFrom("abuse-frames", "203.0.113.77"),
      openFrom("abuse-frames", "203.0.113.77"),
    ]);
    const bystander = await openFrom("abuse-frames", "198.51.100.200");
    const frames = 1_000 * SCALE;
    const replies: Frame[] = [];
    for (let i = 0; i < frames; i += 1) flooders[i % 2]?.sendRaw(JSON.stringify({ local: 1, req_id: i }));
    const times = await bystanderRoundTrips([bystander], 10);
    await waitFor(() => {
      for (const flooder of flooders) replies.push(...flooder.queued.splice(0));
      return (
        replies.length >= Math.min(frames, 500) || flooders.every((flooder) => flooder.ws.readyState !== 1)
      );
    }, 30_000);
    const limited = replies.filter(
      (reply) => (reply.error as { code?: string } | undefined)?.code === "RateLimit",
    );
    expect(limited.length).toBeGreaterThan(0);
    expect(await metric('wsproxy_admission_refused_total{reason="address_frames"}')).toBeGreaterThan(0);
    const closes = await Promise.all(
      flooders.map((flooder) =>
        Promise.race([flooder.closedAtOnce, new Promise<undefined>((resolve) => setTimeout(resolve, 5_000))]),
      ),
    );
    if (SCALE > 1) expect(closes.some((close) => close?.code === 1008)).toBe(true);
    console.log(
      `[abuse] frame flood: ${frames} frames from one address on 2 sockets, ${limited.length} RateLimit, ` +
        `closes ${closes.map((close) => close?.code ?? "open").join("/")}; bystander p99 ${p99(times)} ms`,
    );
    await Promise.all([...flooders, bystander].map((client) => client.close()));
  });
});

describe("the operator's endpoints", () => {
  it("/health answers from its cache: a loop of 50 calls sends at most a PING or two", async () => {
    const { redis } = e2e;
    await fetch(`${e2e.worker.httpUrl}/health`);
    const before = Number((await redis.info("commandstats")).match(/cmdstat_ping:calls=(\d+)/)?.[1] ?? 0);
    for (let i = 0; i < 50; i += 1) expect((await fetch(`${e2e.worker.httpUrl}/health`)).status).toBe(200);
    const after = Number((await redis.info("commandstats")).match(/cmdstat_ping:calls=(\d+)/)?.[1] ?? 0);
    // The default healthCacheMs is 5 s: a slow machine may cross one interval.
    expect(after - before).toBeLessThanOrEqual(2);
  });
});
