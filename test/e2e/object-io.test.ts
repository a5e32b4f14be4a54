/**
 * One object's Redis traffic against the real REST bridge and redis-server: the connection limit, the
 * pipelined writes of a burst, per-command errors inside a pipeline, and the stream trimmed by age.
 * A tiny service answers entries with ioredis (`XREAD` + `RPUSH`), so only the gateway side is measured.
 */
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ConsumerGroupsBackend } from "../../src/backends/index.js";
import { TransportError } from "../../src/core/errors.js";
import type { Connection } from "../../src/core/types.js";
import { startBridgeFixture, TOKEN, type BridgeFixture } from "../bridge/helpers.js";

const conn = { id: "conn-1" } as Connection;
const quietLogger = { warn: () => undefined, error: () => undefined };

let fixture: BridgeFixture;
let redis: Redis;
let stopService: (() => Promise<void>) | undefined;

/** What the gateway sent over HTTP, seen at the global fetch the REST client uses. */
interface Traffic {
  requests: number;
  commands: number;
  maxOpen: number;
}

let traffic: Traffic;
const realFetch = globalThis.fetch;

beforeAll(async () => {
  fixture = await startBridgeFixture();
  redis = new Redis(fixture.redis.url);
  let open = 0;
  globalThis.fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = String(input instanceof Request ? input.url : input);
    if (!url.startsWith(fixture.bridge.url)) return realFetch(input, init);
    traffic.requests += 1;
    const body = JSON.parse(String(init?.body ?? "[]")) as unknown[];
    traffic.commands += url.endsWith("/pipeline") ? body.length : 1;
    open += 1;
    traffic.maxOpen = Math.max(traffic.maxOpen, open);
    try {
      return await realFetch(input, init);
    } finally {
      open -= 1;
    }
  };
}, 60_000);

afterEach(async () => {
  await stopService?.();
  stopService = undefined;
  await redis.flushall();
});

afterAll(async () => {
  globalThis.fetch = realFetch;
  redis?.disconnect();
  await fixture?.stop();
});

function backend(options: Record<string, unknown> = {}): ConsumerGroupsBackend {
  traffic = { requests: 0, commands: 0, maxOpen: 0 };
  return new ConsumerGroupsBackend({
    redisUrl: fixture.bridge.url,
    redisToken: TOKEN,
    objectId: "obj",
    logger: quietLogger,
    timeout: 10,
    ...options,
  });
}

/** Answers every entry of `streams` with `{ pong: <message_id> }` on its `who` list. */
function serve(streams: string[]): void {
  const reader = new Redis(fixture.redis.url);
  let running = true;
  const done = (async () => {
    const last = streams.map(() => "$");
    while (running) {
      const read = (await reader.xread("COUNT", 500, "BLOCK", 100, "STREAMS", ...streams, ...last)) ?? [];
      for (const [stream, entries] of read) {
        last[streams.indexOf(stream)] = entries.at(-1)?.[0] ?? "$";
        // One round trip per batch read, as the service SDK answers.
        const replies = reader.pipeline();
        for (const [, flat] of entries) {
          const fields: Record<string, string> = {};
          for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i] ?? ""] = flat[i + 1] ?? "";
          const reply = { message_id: fields.message_id, response: { result: { pong: fields.message_id } } };
          replies.rpush(fields.who ?? "", JSON.stringify(reply));
        }
        await replies.exec();
      }
    }
  })();
  stopService = async () => {
    running = false;
    await done;
    reader.disconnect();
  };
}

function ping(): { method: string; action: Record<string, never> } {
  return { method: "ping", action: {} };
}

describe("an object's Redis traffic over the real bridge", () => {
  it("answers a burst of 90 with at most 6 requests open and about one HTTP request per 4 calls", async () => {
    serve(["general"]);
    await new Promise((resolve) => setTimeout(resolve, 150));
    const cg = backend();
    const calls = Array.from({ length: 90 }, () => cg.call(ping() as never, { args: {} }, conn));
    const replies = await Promise.all(calls);
    expect(replies).toHaveLength(90);
    expect(new Set(replies.map((reply) => JSON.stringify(reply))).size).toBe(90);
    const perRequest = traffic.requests / 90;
    expect(traffic.maxOpen).toBeLessThanOrEqual(6);
    expect(perRequest).toBeLessThanOrEqual(0.3);
    // One XADD each, an XTRIM for the stream, and the few polls that collect the replies.
    expect(traffic.commands / 90).toBeLessThan(1.15);
    expect(cg.stats()).toMatchObject({ maxRedisInFlight: traffic.maxOpen, redisRequests: traffic.requests });
    expect(cg.stats().maxQueuedCommands).toBeGreaterThan(0);
    console.log(
      `burst of 90 on one object: ${traffic.requests} HTTP requests (${perRequest.toFixed(2)} per request), ` +
        `${traffic.commands} commands, at most ${traffic.maxOpen} open, ` +
        `at most ${cg.stats().maxQueuedCommands} commands queued`,
    );
    cg.close();
  });

  it("holds a lower maxRedisConnections", async () => {
    serve(["general"]);
    await new Promise((resolve) => setTimeout(resolve, 150));
    const cg = backend({ maxRedisConnections: 2, writeBatchSize: 5 });
    await Promise.all(Array.from({ length: 40 }, () => cg.call(ping() as never, { args: {} }, conn)));
    expect(traffic.maxOpen).toBeLessThanOrEqual(2);
    expect(traffic.maxOpen).toBeGreaterThan(0);
    cg.close();
  });

  it("fails only the request whose XADD Redis refused, at once, in a pipeline with others", async () => {
    serve(["general"]);
    await new Promise((resolve) => setTimeout(resolve, 150));
    // A key of the wrong type: every XADD to it is refused (WRONGTYPE), the others are fine.
    await redis.set("broken", "not a stream");
    const cg = backend({ queueSeparationEnabled: true, categories: ["general", "broken"], timeout: 10 });
    const started = Date.now();
    const outcomes = await Promise.allSettled(
      Array.from({ length: 30 }, (_, i) =>
        cg.call({ ...ping(), category: i % 3 === 0 ? "broken" : "general" } as never, { args: {} }, conn),
      ),
    );
    const failed = outcomes.filter((outcome) => outcome.status === "rejected");
    expect(failed).toHaveLength(10);
    for (const outcome of failed) {
      const reason = (outcome as PromiseRejectedResult).reason as TransportError;
      expect(reason).toBeInstanceOf(TransportError);
      expect(reason.failureType).toBe("RedisError");
      expect(reason.message).toContain("WRONGTYPE");
    }
    expect(Date.now() - started).toBeLessThan(5_000);
    // Fewer HTTP requests than calls: the refused and the accepted XADDs shared pipelines.
    expect(traffic.requests).toBeLessThan(30);
    cg.close();
  });

  it("trims the stream by age in the XADD: entries past every deadline go, live ones stay", async () => {
    // 300 entries from long ago (ids in 1970), then 5 from now.
    const old = redis.pipeline();
    for (let i = 1; i <= 300; i++) old.xadd("general", `1000-${i}`, "rpc", "old");
    await old.exec();
    const live: string[] = [];
    for (let i = 0; i < 5; i++) live.push((await redis.xadd("general", "*", "rpc", "live")) ?? "");
    serve(["general"]);
    await new Promise((resolve) => setTimeout(resolve, 150));
    const cg = backend({ timeout: 5 });
    await cg.call(ping() as never, { args: {} }, conn);
    const left = await redis.xrange("general", "-", "+");
    const oldLeft = left.filter(([, fields]) => fields[1] === "old").length;
    // Approximate trimming drops whole radix-tree nodes (100 entries each by default).
    expect(oldLeft).toBeLessThanOrEqual(100);
    const ids = left.map(([id]) => id);
    for (const id of live) expect(ids).toContain(id);
    expect(left.filter(([, fields]) => fields[1] === "ping")).toHaveLength(1);
    cg.close();
  });

  it("sends message_ids of 16 random hex digits, never neighbours", async () => {
    serve(["general"]);
    await new Promise((resolve) => setTimeout(resolve, 150));
    const cg = backend();
    await cg.call(ping() as never, { args: {} }, conn);
    await cg.call(ping() as never, { args: {} }, conn);
    const ids = (await redis.xrange("general", "-", "+")).map(([, fields]) => {
      const index = fields.indexOf("message_id");
      return fields[index + 1] ?? "";
    });
    expect(ids).toHaveLength(2);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{16}$/);
    const [a, b] = ids.map((id) => BigInt(`0x${id}`)) as [bigint, bigint];
    expect(a - b === 1n || b - a === 1n || a === b).toBe(false);
    cg.close();
  });
});
