/**
 * The gateway's one door to Redis (`createRedisPort`) against a real redis-server behind the bridge: a
 * turn's commands share one REST request and keep their own results and errors, the observer (the
 * object's metrics) sees each, a subscription holds one of the object's connections only until its headers
 * arrive, and
 * no other module of the gateway builds a Redis client or opens a subscription itself.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readEventData } from "../../src/backends/event-stream-reader.js";
import { createRedisPort, type RedisCommand } from "../../src/backends/redis-port.js";
import { startBridgeFixture, TOKEN, type BridgeFixture } from "./helpers.js";
import { waitFor } from "../support/wait.js";

let fixture: BridgeFixture;
beforeAll(async () => {
  fixture = await startBridgeFixture();
});
afterAll(async () => {
  await fixture?.stop();
});

const port = (maxConnections = 6, fetcher?: typeof fetch) => {
  const sent: string[] = [];
  const failed: string[] = [];
  const redis = createRedisPort({
    url: fixture.bridge.url,
    token: TOKEN,
    requestTimeoutMs: 5_000,
    maxConnections,
    ...(fetcher ? { fetch: fetcher } : {}),
    observer: {
      sent: (commands: readonly RedisCommand[]) => sent.push(...commands.map((c) => c[0])),
      failed: (command: RedisCommand) => failed.push(command[0]),
    },
  });
  return { redis, sent, failed };
};

/**
 * A port with one connection and requests of at most 110 bytes: `["ECHO", text]` counts
 * 2 + (4 + 3) + (40 + 3) = 52, so two fit in a request and a third does not. `sent` has each request's
 * number of commands.
 */
const narrowPort = () => {
  const sent: number[] = [];
  const redis = createRedisPort({
    url: fixture.bridge.url,
    token: TOKEN,
    requestTimeoutMs: 5_000,
    maxConnections: 1,
    batchBytes: 110,
    observer: {
      sent: (commands: readonly RedisCommand[]) => sent.push(commands.length),
      failed: () => undefined,
    },
  });
  return { redis, sent, text: "x".repeat(40) };
};

describe("the Redis port", () => {
  it("sends a turn's commands in one request, each with its own result or error, all seen by the observer", async () => {
    const { redis, sent, failed } = port();
    const key = `port:${Date.now()}`;
    const results = await Promise.allSettled([
      redis.exec(["SET", key, "not a number"]),
      redis.exec(["GET", key]),
      redis.exec(["INCR", key]),
    ]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "rejected"]);
    expect((results[1] as PromiseFulfilledResult<unknown>).value).toBe("not a number");
    expect(redis.stats).toMatchObject({ redisRequests: 1, redisCommandsSent: 3, redisInFlight: 0 });
    expect(sent).toEqual(["SET", "GET", "INCR"]);
    expect(failed).toEqual(["INCR"]);
    const piped = await redis.pipeline([
      ["INCR", key],
      ["DEL", key],
    ]);
    expect(piped[0]?.error).toMatch(/not an integer/);
    expect(piped[1]?.result).toBe(1);
  });

  it("sends a lone command on an idle port without waiting for a timer; commands queued behind an open request go together", async () => {
    const { redis, sent } = port();
    const first = redis.exec(["PING"]);
    // Out by the end of this turn's microtasks: no timer between a request at light load and Redis.
    await Promise.resolve();
    await Promise.resolve();
    expect(sent).toEqual(["PING"]);
    await new Promise((resolve) => setTimeout(resolve, 0));
    const behind = [redis.exec(["ECHO", "a"]), redis.exec(["ECHO", "b"])];
    await Promise.all([first, ...behind]);
    expect(sent).toEqual(["PING", "ECHO", "ECHO"]);
    expect(redis.stats).toMatchObject({ redisCommandsSent: 3, redisInFlight: 0 });
    expect(redis.stats.redisRequests).toBeLessThanOrEqual(2);
  });

  it("splits a turn's commands into requests of at most batchBytes, counting each argument's characters", async () => {
    const { redis, sent, text } = narrowPort();
    const replies = await Promise.all(Array.from({ length: 5 }, () => redis.exec(["ECHO", text])));
    expect(replies).toEqual(Array.from({ length: 5 }, () => text));
    // Five queued in one turn go two by two.
    expect(sent).toEqual([2, 2, 1]);
    // A command larger than the limit is not refused: it goes alone.
    await expect(redis.exec(["ECHO", "y".repeat(500)])).resolves.toBe("y".repeat(500));
    expect(sent).toEqual([2, 2, 1, 1]);
  });

  it("asks whether a command is still wanted once, as its request starts, not while it waits its turn", async () => {
    // Two of these ECHOs fit in one request: the third is cut from the first request.
    const { redis, sent, text } = narrowPort();
    /** Each command's name, with the number of requests sent when it was asked. */
    const asked: Array<[string, number]> = [];
    const exec = (name: string) =>
      redis.exec(["ECHO", text], () => {
        asked.push([name, sent.length]);
        return true;
      });
    await Promise.all(["a", "b", "c"].map(exec));
    // The gateway times a request's first poll from this question (the XADD leaves now): c waits for the
    // only connection, and is asked once, when its own request goes.
    expect(asked).toEqual([
      ["a", 0],
      ["b", 0],
      ["c", 1],
    ]);
    expect(sent).toEqual([2, 1]);
  });

  it("never puts two commands with a large answer (whole LPOP batches) in one request; small ones ride along", async () => {
    const requests: string[][] = [];
    const redis = createRedisPort({
      url: fixture.bridge.url,
      token: TOKEN,
      requestTimeoutMs: 5_000,
      observer: {
        sent: (commands: readonly RedisCommand[]) => requests.push(commands.map((c) => c[0])),
        failed: () => undefined,
      },
    });
    const key = `port:large:${Date.now()}`;
    await redis.exec(["RPUSH", key, "a", "b", "c", "d"]);
    requests.length = 0;
    const results = await Promise.all([
      redis.exec(["LPOP", key, "2"], undefined, true),
      redis.exec(["ECHO", "small"]),
      redis.exec(["LPOP", key, "2"], undefined, true),
      redis.exec(["ECHO", "small too"]),
    ]);
    // Each batch of replies came back whole, in the order the pops were queued.
    expect(results).toEqual([["a", "b"], "small", ["c", "d"], "small too"]);
    // Two responses, each with at most one large answer: Upstash's size limit holds per response.
    expect(requests).toEqual([
      ["LPOP", "ECHO"],
      ["LPOP", "ECHO"],
    ]);
  });

  it("holds one of the object's connections while a subscription waits for its headers, none once the stream is open", async () => {
    // The real fetch to the bridge, started only when the test lets it: the window while the object waits
    // for the stream's response headers, the only time Cloudflare counts the connection.
    let letThrough!: () => void;
    const gate = new Promise<void>((resolve) => (letThrough = resolve));
    const gated: typeof fetch = async (input, init) => {
      await gate;
      return fetch(input, init);
    };
    const { redis } = port(1, gated);
    const controller = new AbortController();
    const opening = redis.subscribe("port:channel", controller.signal);
    // Waiting for headers: the only connection is the stream's, so a command waits in the queue.
    const ping = redis.exec<string>(["PING"]);
    await waitFor(() => redis.stats.queuedCommands === 1);
    expect(redis.stats).toMatchObject({ redisInFlight: 1, redisCommandsSent: 0 });
    letThrough();
    const response = await opening;
    expect(response.status).toBe(200);
    const events: string[] = [];
    const reading = readEventData(response.body as ReadableStream<Uint8Array>, (data) => events.push(data));
    // Headers in: the command goes out on the connection while the stream stays open and delivers.
    await expect(ping).resolves.toBe("PONG");
    await redis.exec(["PUBLISH", "port:channel", "after the ping"]);
    await waitFor(() => events.includes("message,port:channel,after the ping"));
    expect(events[0]).toBe("subscribe,port:channel,1");
    expect(redis.stats).toMatchObject({ redisInFlight: 0, redisRequests: 3, maxRedisInFlight: 1 });
    controller.abort();
    await reading.catch(() => undefined);
  });

  it("gives the connection back when a subscription fails before its headers", async () => {
    const refused: typeof fetch = () => Promise.reject(new TypeError("connection refused"));
    const { redis } = port(1, refused);
    await expect(redis.subscribe("port:nowhere", new AbortController().signal)).rejects.toThrow(
      "connection refused",
    );
    await expect(redis.exec<string>(["PING"])).resolves.toBe("PONG");
    expect(redis.stats).toMatchObject({ redisInFlight: 0, redisRequests: 2 });
  });
});

describe("one door to Redis", () => {
  it("no gateway module but the port builds a Redis client or opens a subscription", () => {
    const src = join(import.meta.dirname, "../../src");
    const files = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
        entry.isDirectory() ? files(join(dir, entry.name)) : [join(dir, entry.name)],
      );
    const callers = files(src)
      .filter((file) => /\.ts$/.test(file) && !/src\/(bridge|consumer|devstack)\//.test(file))
      .filter((file) =>
        /\b(createRedisClient|openSubscription)\(|new Redis\(/.test(readFileSync(file, "utf8")),
      )
      .map((file) => relative(src, file));
    expect(callers.sort()).toEqual(["backends/redis-client.ts", "backends/redis-port.ts"]);
  });
});
