/**
 * Both reply transports over the real stack: the e2e Worker (one object, `backend_stats`) with
 * `REPLY_TRANSPORT=poll` against a service in list mode, and `REPLY_TRANSPORT=subscribe` against one that
 * only publishes (`--reply-mode publish`, as the Perl workers did), through the same cases. Then the
 * subscribe-only faults: a dropped stream mid-traffic (`CLIENT KILL TYPE pubsub` on the private redis
 * makes the bridge end its streams) and a service in list mode behind a subscribing gateway. The subscribe
 * cases run twice: with the bridge framing its event streams as Upstash does (one `data:` line per event,
 * no blank line) and with the standard blank-line framing, so the object's reader is held to both.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, type RunningWorker, type Stack } from "../../src/devstack/stack.js";
import { connect, E2E_SERVICE_MODULE, stackLog, startE2eWorker, type Client } from "./helpers.js";
import { sleep } from "../support/wait.js";

type Transport = "poll" | "subscribe";
const SERVICE_MODE: Record<Transport, string> = { poll: "list", subscribe: "publish" };
const WRONG_RESPONSE = { code: "WrongResponse" };

interface Running {
  stack: Stack;
  worker: RunningWorker;
  redis: Redis;
}

/** How the bridge frames its event streams: Upstash's (its default) or the standard blank-line one. */
type SseFraming = "upstash" | "blank-line";

/**
 * A stack whose service replies as `transport` expects, and the e2e Worker on that transport, with the
 * bridge framing its subscribe streams as `framing`.
 */
async function startFor(
  transport: Transport,
  framing: SseFraming,
  serviceMode = SERVICE_MODE[transport],
): Promise<Running> {
  const service = { args: ["--module", E2E_SERVICE_MODULE, "--reply-mode", serviceMode] };
  const stack = await startStack({ service, log: stackLog, bridgeSseFraming: framing });
  try {
    const worker = await startE2eWorker(stack.bridge, {
      RPC_QUEUE_RESPONSE_TIMEOUT: "2",
      REPLY_TRANSPORT: transport,
    });
    return { stack, worker, redis: new Redis(stack.redis.url) };
  } catch (error) {
    await stack.stop();
    throw error;
  }
}

async function stopAll(running: Running | undefined): Promise<void> {
  running?.redis.disconnect();
  await running?.worker.stop();
  await running?.stack.stop();
}

/** The default backend's counters of the Worker's one object. */
async function backendStats(client: Client): Promise<Record<string, number | string>> {
  const frame = await client.call({ backend_stats: 1 });
  return (frame.backend_stats as { default: Record<string, number | string> }).default;
}

/** Channels with a subscriber, as Redis sees them (the bridge holds one subscription per channel). */
async function subscribedReplyKeys(redis: Redis): Promise<string[]> {
  return (await redis.pubsub("CHANNELS", "*wsp:reply:*")) as string[];
}

describe.each([
  ["poll", "upstash", "list"],
  ["subscribe", "upstash", "publish"],
  ["subscribe", "blank-line", "publish"],
  ["subscribe", "upstash", "publish-batch"],
] as const)(
  "replyTransport %s, SSE framing %s, service --reply-mode %s",
  (transport, framing, serviceMode) => {
    let running: Running;
    let wsUrl: string;

    beforeAll(async () => {
      running = await startFor(transport, framing, serviceMode);
      wsUrl = running.worker.wsUrl;
    }, 120_000);
    afterAll(() => stopAll(running));

    it("answers ping and echo with their req_id and echo_req", async () => {
      const client = await connect(wsUrl);
      expect(await client.call({ ping: 1, req_id: 1 })).toEqual({
        msg_type: "ping",
        ping: "pong",
        req_id: 1,
        echo_req: { ping: 1, req_id: 1 },
      });
      expect(await client.call({ echo: 1, text: "hi", req_id: 2 })).toMatchObject({
        msg_type: "echo",
        echo: { echo: 1, text: "hi" },
        req_id: 2,
      });
      const stats = await backendStats(client);
      if (transport === "subscribe") {
        expect(stats.pushedReplies).toBeGreaterThanOrEqual(2);
        expect(stats.subscribeFailures).toBe(0);
      } else {
        expect(stats.pushedReplies).toBeUndefined();
      }
      await client.close();
    });

    it("keeps the stash from login and sends it with stashParams", async () => {
      const client = await connect(wsUrl);
      expect(await client.call({ login: "a-token" })).toMatchObject({ login: { loginid: "CR90000" } });
      expect(await client.call({ whoami: 1 })).toMatchObject({ whoami: { loginid: "CR90000" } });
      await client.close();
    });

    it("gives each of 200 concurrent requests over 20 connections its own reply", async () => {
      const clients = await Promise.all(Array.from({ length: 20 }, () => connect(wsUrl)));
      const answers = await Promise.all(
        clients.map(async (client, c) => {
          for (let i = 0; i < 10; i++)
            client.ws.send(JSON.stringify({ echo: { c, i }, req_id: c * 100 + i }));
          const frames = await Promise.all(Array.from({ length: 10 }, () => client.next(15_000)));
          return frames.map((frame) => {
            const { c: echoedC, i } = (frame.echo as { echo: { c: number; i: number } }).echo;
            return echoedC === c && frame.req_id === c * 100 + i ? frame.req_id : -1;
          });
        }),
      );
      const reqIds = answers.flat();
      expect(reqIds.filter((id) => id === -1)).toEqual([]);
      expect(new Set(reqIds).size).toBe(200);
      if (serviceMode === "publish-batch") {
        // Replies finished together went out as one published message each round trip: fewer than 200.
        const stats = await backendStats(clients[0] as Client);
        expect(Number(stats.pushedReplies)).toBeLessThan(200);
      }
      await Promise.all(clients.map((client) => client.close()));
    }, 30_000);

    it("goes quiet once idle: no stream left open, no Redis command, and the object hibernates", async () => {
      const client = await connect(wsUrl);
      expect(await client.call({ ping: 1 })).toMatchObject({ ping: "pong" });
      const { whoami } = await backendStats(client);
      const idleSince = Date.now();
      // The subscription's grace period (2 s by default), then a window with the service stopped.
      await sleep(2_500);
      expect(await subscribedReplyKeys(running.redis)).toEqual([]);
      await running.stack.services.at(-1)?.stop();
      try {
        await sleep(300);
        const start = await running.stack.commandCount();
        await sleep(3_000);
        expect((await running.stack.commandCount()) - start).toBe(0);
      } finally {
        await running.stack.startService({
          args: ["--module", E2E_SERVICE_MODULE, "--reply-mode", serviceMode],
        });
      }
      // workerd evicts an object idle for ~10 s; an open stream would have kept this one (and its key).
      // Idle for 16 s in all, a generous margin over those 10 s.
      await sleep(Math.max(0, idleSince + 16_000 - Date.now()));
      // The first request wakes the object and the service restarted just now: on a loaded 2-core machine
      // (the whole suite at once) it once took more than 8 s.
      expect(await client.call({ ping: 1 }, 15_000)).toMatchObject({ ping: "pong" });
      expect((await backendStats(client)).whoami).not.toBe(whoami);
      await client.close();
    }, 55_000);
  },
);

describe.each(["upstash", "blank-line"] as const)(
  "replyTransport subscribe, SSE framing %s: faults and pairings",
  (framing) => {
    let running: Running | undefined;
    afterAll(() => stopAll(running));

    it("answers every request exactly once when the stream drops mid-traffic, and subscribes again", async () => {
      running = await startFor("subscribe", framing);
      const { redis, worker } = running;
      const clients = await Promise.all(Array.from({ length: 10 }, () => connect(worker.wsUrl)));
      const stopAt = Date.now() + 3_000;
      const killed = (async () => {
        await sleep(1_500);
        // Drops the bridge's one subscriber connection: it ends every SSE stream it serves.
        await redis.client("KILL", "TYPE", "pubsub");
      })();
      const outcomes = await Promise.all(
        clients.map(async (client, c) => {
          const seen: string[] = [];
          for (let i = 0; Date.now() < stopAt; i++) {
            const reqId = c * 10_000 + i;
            const frame = await client.call({ echo: { c, i }, req_id: reqId }, 5_000);
            expect(frame.req_id).toBe(reqId);
            if (frame.error) expect(frame.error).toMatchObject(WRONG_RESPONSE);
            else expect((frame.echo as { echo: unknown }).echo).toEqual({ c, i });
            seen.push(frame.error ? "lost" : "ok");
          }
          return seen;
        }),
      );
      await killed;
      // Nothing more arrives: no request was answered twice.
      await sleep(2_500);
      expect(clients.flatMap((client) => client.queued)).toEqual([]);
      const all = outcomes.flat();
      if (process.env.E2E_LOG)
        console.log(`drop test: ${all.length} requests, ${all.filter((o) => o === "lost").length} lost`);
      // Replies published in the gap are gone (pub/sub keeps nothing), at most those in flight then.
      expect(all.filter((o) => o === "ok").length).toBeGreaterThan(all.length - 15);
      const stats = await backendStats(clients[0] as Client);
      expect(stats.streamBreaks).toBeGreaterThanOrEqual(1);
      expect(stats.subscriptions).toBeGreaterThanOrEqual(2);
      expect(await clients[0]?.call({ ping: 1 })).toMatchObject({ ping: "pong" });
      await Promise.all(clients.map((client) => client.close()));
      await stopAll(running);
      running = undefined;
    }, 60_000);

    it("still serves a service in list mode, by the slower list check", async () => {
      running = await startFor("subscribe", framing, "list");
      const client = await connect(running.worker.wsUrl);
      const started = Date.now();
      expect(await client.call({ ping: 1 }, 5_000)).toMatchObject({ ping: "pong" });
      const waited = Date.now() - started;
      // Not from the stream (at once), but by the list check after 1 s; the call's own limit bounds it above.
      expect(waited).toBeGreaterThanOrEqual(900);
      const stats = await backendStats(client);
      expect(stats.listRepliesWhileSubscribed).toBe(1);
      await client.close();
    }, 60_000);
  },
);
