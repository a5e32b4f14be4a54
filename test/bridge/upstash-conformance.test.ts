/**
 * The bridge as `@upstash/redis` sees it: every test runs with each combination of response encoding
 * (base64 / none), auto-pipelining (on / off) and automatic deserialisation (on / off).
 */
import { randomUUID } from "node:crypto";
import type { Redis as UpstashRedis } from "@upstash/redis";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { waitFor } from "../support/wait.js";
import {
  CLIENT_MATRIX,
  describeSettings,
  startBridgeFixture,
  upstashClient,
  type BridgeFixture,
} from "./helpers.js";

let fixture: BridgeFixture;
beforeAll(async () => {
  fixture = await startBridgeFixture();
});
afterAll(async () => {
  await fixture?.stop();
});

/** Values that are not JSON, so every client setting must return them unchanged. */
const PLAIN_STRINGS = [
  "héllo wörld",
  "🎉 family: 👩‍👩‍👧 flag: 🇯🇵",
  "中文字符 日本語 한국어",
  "e\u0301 a\u0308 combining marks",
  "aGVsbG8=", // looks like base64: must not be decoded twice
  "T0s=", // base64 of "OK"
  "OK", // the one string Upstash sends unencoded at the top level
  "PONG",
  "",
  'nul \u0000 byte, tab\t, newline\n, quote " and backslash \\',
];

describe.each(CLIENT_MATRIX)("@upstash/redis with %o", (settings) => {
  const deserialize = settings.automaticDeserialization;
  let redis: UpstashRedis;
  let prefix: string;
  beforeAll(() => {
    redis = upstashClient(fixture.bridge, settings);
  });
  const key = (name: string) => `${prefix}:${name}`;
  beforeEach(() => {
    prefix = `${describeSettings(settings)}:${randomUUID()}`;
  });

  it("round-trips Unicode and binary-looking strings unchanged, alone and inside arrays", async () => {
    await Promise.all(PLAIN_STRINGS.map((value, i) => redis.set(key(`s${i}`), value)));
    const singles = await Promise.all(PLAIN_STRINGS.map((_, i) => redis.get(key(`s${i}`))));
    expect(singles).toEqual(PLAIN_STRINGS);
    const many = await redis.mget(...PLAIN_STRINGS.map((_, i) => key(`s${i}`)), key("missing"));
    expect(many).toEqual([...PLAIN_STRINGS, null]);
  });

  it("returns JSON-looking strings as the client's deserialisation setting says", async () => {
    const values = ["42", "null", '{"a":[1,"x"]}', "true", "-0.5"];
    await Promise.all(values.map((value, i) => redis.set(key(`j${i}`), value)));
    const read = await Promise.all(values.map((_, i) => redis.get(key(`j${i}`))));
    expect(read).toEqual(deserialize ? [42, null, { a: [1, "x"] }, true, -0.5] : values);
    expect(await redis.incr(key("j0"))).toBe(43);
    expect(await redis.get(key("never-set"))).toBeNull();
  });

  it("hashes", async () => {
    expect(await redis.hset(key("h"), { name: "Zoë 🎉", count: "7" })).toBe(2);
    expect(await redis.hget(key("h"), "name")).toBe("Zoë 🎉");
    expect(await redis.hincrby(key("h"), "count", 3)).toBe(10);
    const all = await redis.hgetall(key("h"));
    expect(all).toEqual(deserialize ? { name: "Zoë 🎉", count: 10 } : ["name", "Zoë 🎉", "count", "10"]);
    // The client maps the empty reply of a missing hash to null only when it deserialises.
    expect(await redis.hgetall(key("no-hash"))).toEqual(deserialize ? null : []);
  });

  it("lists, including LPOP with a count", async () => {
    expect(await redis.rpush(key("l"), "a", "b", "c", "d")).toBe(4);
    expect(await redis.lrange(key("l"), 0, -1)).toEqual(["a", "b", "c", "d"]);
    expect(await redis.lpop(key("l"), 2)).toEqual(["a", "b"]);
    expect(await redis.lpop(key("l"))).toBe("c");
    expect(await redis.llen(key("l"))).toBe(1);
    expect(await redis.lpop(key("empty"), 2)).toBeNull();
  });

  it("keys with a TTL", async () => {
    expect(await redis.set(key("t"), "v", { ex: 100 })).toBe("OK");
    const ttl = await redis.ttl(key("t"));
    expect(ttl).toBeGreaterThan(90);
    expect(ttl).toBeLessThanOrEqual(100);
    expect(await redis.persist(key("t"))).toBe(1);
    expect(await redis.ttl(key("t"))).toBe(-1);
    // Long enough to be seen before it expires on a busy machine; then it must go by itself.
    await redis.set(key("short"), "v", { px: 1500 });
    expect(await redis.exists(key("short"))).toBe(1);
    await waitFor(async () => (await redis.exists(key("short"))) === 0, 10_000);
    expect(await redis.ttl(key("short"))).toBe(-2);
  });

  it("streams: consumer group, read, pending, autoclaim, ack, range, delete", async () => {
    const stream = key("stream");
    const group = "processors";
    const trim = { type: "MAXLEN", threshold: 1000, comparison: "~" } as const;
    expect(await redis.xgroup(stream, { type: "CREATE", group, id: "$", options: { MKSTREAM: true } })).toBe(
      "OK",
    );
    const ids: string[] = [];
    for (const job of ["job-1", "job-2", "job-3"]) {
      ids.push(await redis.xadd(stream, "*", { rpc: "ping", job }, { trim }));
    }
    expect(ids).toEqual([expect.stringMatching(/^\d+-\d+$/), expect.anything(), expect.anything()]);
    const [id1, id2, id3] = ids as [string, string, string];

    const read = await redis.xreadgroup(group, "worker-a", stream, ">", { count: 2 });
    expect(read).toEqual([
      [
        stream,
        [
          [id1, ["rpc", "ping", "job", "job-1"]],
          [id2, ["rpc", "ping", "job", "job-2"]],
        ],
      ],
    ]);
    const pending = (await redis.xpending(stream, group, "-", "+", 10)) as unknown[][];
    expect(pending.map((entry) => entry.slice(0, 2))).toEqual([
      [id1, "worker-a"],
      [id2, "worker-a"],
    ]);
    const claimed = await redis.xautoclaim(stream, group, "worker-b", 0, "0-0", { count: 10 });
    expect(claimed).toEqual([
      "0-0",
      [
        [id1, ["rpc", "ping", "job", "job-1"]],
        [id2, ["rpc", "ping", "job", "job-2"]],
      ],
      [],
    ]);
    expect(await redis.xack(stream, group, [id1, id2])).toBe(2);
    expect(await redis.xpending(stream, group, "-", "+", 10)).toEqual([]);
    expect(await redis.xdel(stream, id3)).toBe(1);
    const range = await redis.xrange(stream, "-", "+");
    expect(range).toEqual(
      deserialize
        ? { [id1]: { rpc: "ping", job: "job-1" }, [id2]: { rpc: "ping", job: "job-2" } }
        : [
            [id1, ["rpc", "ping", "job", "job-1"]],
            [id2, ["rpc", "ping", "job", "job-2"]],
          ],
    );
  });

  it("XADD with MAXLEN ~ trims the stream", async () => {
    const stream = key("capped");
    const trim = { type: "MAXLEN", threshold: 10, comparison: "~" } as const;
    const pipeline = redis.pipeline();
    for (let i = 0; i < 250; i++) pipeline.xadd(stream, "*", { i: `n${i}` }, { trim });
    await pipeline.exec();
    const length = await redis.xlen(stream);
    expect(length).toBeGreaterThanOrEqual(10);
    expect(length).toBeLessThan(250);
  });

  it("PUBLISH answers with the number of subscribers", async () => {
    expect(await redis.publish(key("channel"), "nobody listens")).toBe(0);
  });

  it("pipelines keep order and report errors per command", async () => {
    const run = () =>
      redis.pipeline().set(key("p"), "1").incr(key("p")).get(key("p")).lpush(key("p"), "x").echo("🎉 OK");
    await expect(run().exec()).rejects.toThrow(/Command 4 \[ lpush \] failed: WRONGTYPE/);
    const results = await run().exec({ keepErrors: true });
    expect(results.map((entry) => entry.result)).toEqual([
      "OK",
      2,
      deserialize ? 2 : "2",
      undefined,
      "🎉 OK",
    ]);
    expect(results[3]?.error).toMatch(/^WRONGTYPE Operation against a key holding the wrong kind of value/);
    expect(results.filter((entry) => entry.error)).toHaveLength(1);
  });

  it("transactions run atomically and return every result", async () => {
    const counter = key("tx");
    expect(await redis.multi().set(counter, "0").incr(counter).incr(counter).get(counter).exec()).toEqual([
      "OK",
      1,
      2,
      deserialize ? 2 : "2",
    ]);
  });

  it("a transaction with a failing command reports it and still applies the others", async () => {
    await redis.set(key("text"), "not a number");
    const run = () => redis.multi().incr(key("text")).set(key("after"), "applied");
    await expect(run().exec()).rejects.toThrow(/Command 1 \[ incr \] failed: ERR value is not an integer/);
    const results = await run().exec({ keepErrors: true });
    expect(results[0]?.error).toMatch(/^ERR value is not an integer or out of range/);
    expect(results[1]).toMatchObject({ result: "OK" });
    expect(await redis.get(key("after"))).toBe("applied");
  });

  it("a transaction with an invalid command is aborted as a whole", async () => {
    // HSET without fields is an arity error, which Redis reports while queueing: EXECABORT.
    const aborted = redis.multi().set(key("x1"), "should not be set").hset(key("x2"), {}).exec();
    await expect(aborted).rejects.toThrow(/EXECABORT.*wrong number of arguments for 'hset'/);
    expect(await redis.exists(key("x1"))).toBe(0);
  });

  it("Redis errors are thrown with the Redis message, without failing neighbouring commands", async () => {
    await redis.set(key("e"), "text");
    const [good, bad, wrongType] = await Promise.allSettled([
      redis.get(key("e")),
      redis.incr(key("e")),
      redis.lpush(key("e"), "x"),
    ]);
    expect(good).toEqual({ status: "fulfilled", value: "text" });
    expect(bad).toMatchObject({
      status: "rejected",
      reason: { message: expect.stringMatching(/ERR value is not an integer/) },
    });
    expect(wrongType).toMatchObject({
      status: "rejected",
      reason: { message: expect.stringMatching(/WRONGTYPE Operation against a key/) },
    });
  });

  it("XREADGROUP with BLOCK is refused, as Upstash refuses it", async () => {
    const stream = key("blocking");
    await redis.xgroup(stream, { type: "CREATE", group: "g", id: "$", options: { MKSTREAM: true } });
    await expect(redis.xreadgroup("g", "c", stream, ">", { blockMS: 50 })).rejects.toThrow(
      /XREADGROUP with BLOCK is not supported/,
    );
    // Without BLOCK the same read is served; an empty stream is nil in RESP2.
    expect(await redis.xreadgroup("g", "c", stream, ">")).toBeNull();
  });

  it("a wrong token is rejected with Unauthorized", async () => {
    const intruder = upstashClient(fixture.bridge, settings, "not-the-token");
    await expect(intruder.set(key("intruder"), "x")).rejects.toThrow(/Unauthorized/);
    expect(await redis.exists(key("intruder"))).toBe(0);
  });
});
