/**
 * The pure parts of the service SDK: option checking, entry validation, reply batching and CLI flags.
 */
import { describe, expect, it, vi } from "vitest";
import { parseCliArgs } from "../../src/consumer/cli-args.js";
import { buildReplyPayload, parseRpcEntry } from "../../src/wire/index.js";
import { resolveRpcServiceOptions, type LogEntry, type RpcServiceOptions } from "../../src/consumer/index.js";
import { buildCommands } from "../../src/consumer/outbox.js";
import { ReplyKeyTtl } from "../../src/consumer/reply-ttl.js";
import { redactUrl } from "../../src/consumer/transport.js";

const handlers = { ping: () => "pong" };

describe("resolveRpcServiceOptions", () => {
  it("fills in the defaults and the stream names", () => {
    const resolved = resolveRpcServiceOptions({
      redis: "redis://127.0.0.1:6379",
      handlers,
      streamPrefix: "p:",
    });
    // Literal values, as the docs state them: a changed default must change this test too.
    expect(resolved).toMatchObject({
      categories: ["general"],
      concurrency: 16,
      readCount: 32,
      blockMs: 5000,
      pollMinMs: 25,
      pollMaxMs: 1000,
      claimIdleMs: 60_000,
      maxDeliveries: 5,
      deadLetterMaxLen: 10_000,
      deadLetterMaxAgeSeconds: 604_800,
      sensitiveFields: ["password", "token"],
      handlerGraceMs: 5000,
      replyMode: "list",
      replyTtlSeconds: 60,
      closeTimeoutMs: 30_000,
      retryMinMs: 100,
      retryMaxMs: 5000,
      logLevel: "info",
      streamPrefix: "p:",
      streams: ["p:general"],
      claimIntervalMs: 30_000,
    });
    expect(resolved.consumerName).toMatch(new RegExp(`-${process.pid}$`));
  });

  it.each([
    [{ concurrency: 0 }, /`concurrency`/],
    [{ replyMode: "mail" }, /`replyMode`/],
    [{ categories: ["a b"] }, /`categories`/],
    [{ redis: "http://x" }, /`redis`/],
    [{ redis: { restUrl: "https://x", restToken: "" } }, /`redis.restToken`/],
    [{ handlers: { ping: "pong" } }, /`handlers.ping`/],
    [{ logLevel: "loud" }, /`logLevel`/],
    [{ handlerGraceMs: -1 }, /`handlerGraceMs`/],
    [{ deadLetterMaxAgeSeconds: 0 }, /`deadLetterMaxAgeSeconds`/],
    [{ sensitiveFields: "password" }, /`sensitiveFields`/],
  ])("throws a message naming the bad option for %j", (override, message) => {
    expect(() => resolveRpcServiceOptions({ redis: "redis://h", handlers, ...(override as object) })).toThrow(
      message,
    );
  });
});

describe("resolveRpcServiceOptions, every check", () => {
  const base = { redis: "redis://h", handlers };
  const resolve = (override: object) =>
    resolveRpcServiceOptions({ ...base, ...override } as RpcServiceOptions);

  it.each([
    "concurrency",
    "readCount",
    "blockMs",
    "pollMinMs",
    "pollMaxMs",
    "claimIdleMs",
    "claimIntervalMs",
    "maxDeliveries",
    "deadLetterMaxLen",
    "deadLetterMaxAgeSeconds",
    "replyTtlSeconds",
    "retryMinMs",
    "retryMaxMs",
  ])("`%s` must be a positive integer: 0 and 2.5 refused, 1 kept", (key) => {
    const message = `\`${key}\` must be a positive integer`;
    expect(() => resolve({ [key]: 0 })).toThrow(message);
    expect(() => resolve({ [key]: 2.5 })).toThrow(message);
    expect(() => resolve({ [key]: "3" })).toThrow(message);
    expect(resolve({ [key]: 1 })).toMatchObject({ [key]: 1 });
  });

  it.each(["closeTimeoutMs", "handlerGraceMs"])("`%s` may be 0 but not negative or fractional", (key) => {
    const message = `\`${key}\` must be an integer >= 0`;
    expect(() => resolve({ [key]: -1 })).toThrow(message);
    expect(() => resolve({ [key]: 0.5 })).toThrow(message);
    expect(resolve({ [key]: 0 })).toMatchObject({ [key]: 0 });
  });

  it("an option given as undefined keeps its default; claimIntervalMs defaults to half of claimIdleMs", () => {
    expect(resolve({ concurrency: undefined, claimIdleMs: 9 })).toMatchObject({
      concurrency: 16,
      claimIntervalMs: 5,
    });
    expect(resolve({ claimIdleMs: 9, claimIntervalMs: 7 }).claimIntervalMs).toBe(7);
    expect(resolve({ consumerName: "worker-7" }).consumerName).toBe("worker-7");
  });

  it("checks handlers, sensitiveFields, categories, consumerName and streamPrefix", () => {
    expect(() => resolve({ handlers: undefined })).toThrow("`handlers` must be an object of functions");
    expect(() => resolve({ handlers: "ping" })).toThrow("`handlers` must be an object of functions");
    expect(() => resolve({ sensitiveFields: [""] })).toThrow("`sensitiveFields` must be a list");
    expect(() => resolve({ sensitiveFields: [1] })).toThrow("`sensitiveFields` must be a list");
    expect(resolve({ sensitiveFields: [] }).sensitiveFields).toEqual([]);
    const categories = "`categories` must be a non-empty list of names";
    expect(() => resolve({ categories: [] })).toThrow(categories);
    expect(() => resolve({ categories: "general" })).toThrow(categories);
    expect(() => resolve({ categories: ["ok", "x/y"] })).toThrow(categories);
    expect(() => resolve({ categories: ["a", "b", "a"] })).toThrow("`categories` lists a name twice");
    expect(resolve({ categories: ["a.b:c-d_1", "e"], streamPrefix: "s:" }).streams).toEqual([
      "s:a.b:c-d_1",
      "s:e",
    ]);
    expect(() => resolve({ consumerName: "" })).toThrow("`consumerName` must be non-empty");
    expect(() => resolve({ consumerName: 7 })).toThrow("`consumerName` must be non-empty");
    expect(() => resolve({ streamPrefix: 7 })).toThrow("`streamPrefix` must be a string");
    for (const replyMode of ["list", "publish", "publish-batch"])
      expect(resolve({ replyMode }).replyMode).toBe(replyMode);
    expect(() => resolve({ replyMode: "mail" })).toThrow(
      '`replyMode` must be "list", "publish" or "publish-batch"',
    );
    expect(() => resolve({ logLevel: "loud" })).toThrow("`logLevel` must be one of debug, info, warn, error");
  });

  it("takes redis:// and rediss:// URLs, http(s) REST credentials, or a transport; names what is wrong", () => {
    expect(resolve({ redis: "rediss://h:6380" }).redis).toBe("rediss://h:6380");
    expect(() => resolve({ redis: "xredis://h" })).toThrow("`redis` must be a redis:// or rediss:// URL");
    const rest = { restUrl: "http://127.0.0.1:8080", restToken: "t" };
    expect(resolve({ redis: rest }).redis).toEqual(rest);
    expect(resolve({ redis: { ...rest, restUrl: "https://x" } }).redis).toMatchObject({
      restUrl: "https://x",
    });
    expect(() => resolve({ redis: { ...rest, restUrl: "ftp://x" } })).toThrow(
      "`redis.restUrl` must be an http(s):// URL",
    );
    expect(() => resolve({ redis: { ...rest, restUrl: "see https://x" } })).toThrow("`redis.restUrl`");
    expect(() => resolve({ redis: { restUrl: "https://x" } })).toThrow(
      "`redis.restToken` is required with `redis.restUrl`",
    );
    const transport = { pipeline: () => Promise.resolve([]), read: () => Promise.resolve(null) };
    expect(resolve({ redis: transport }).redis).toBe(transport);
    const wrong = "`redis` must be a redis:// URL, { restUrl, restToken } or a ServiceTransport";
    expect(() => resolve({ redis: { pipeline: () => undefined } })).toThrow(wrong);
    expect(() => resolve({ redis: undefined })).toThrow(wrong);
    expect(() => resolve({ redis: 6379 })).toThrow(wrong);
  });

  it("logs at logLevel and above, nothing with `logger: false`, JSON lines on stderr by default", () => {
    const seen: LogEntry[] = [];
    const { logger } = resolve({ logLevel: "warn", logger: (entry: LogEntry) => seen.push(entry) });
    for (const level of ["debug", "info", "warn", "error"] as const) logger({ level, msg: level });
    expect(seen.map((entry) => entry.msg)).toEqual(["warn", "error"]);
    const all: LogEntry[] = [];
    resolve({ logLevel: "debug", logger: (entry: LogEntry) => all.push(entry) }).logger({
      level: "debug",
      msg: "d",
    });
    expect(all).toHaveLength(1);
    const written: string[] = [];
    const write = vi.spyOn(process.stderr, "write").mockImplementation((chunk) => {
      written.push(String(chunk));
      return true;
    });
    try {
      resolve({ logger: false }).logger({ level: "error", msg: "silenced" });
      resolve({}).logger({ level: "debug", msg: "below info" });
      resolve({}).logger({ level: "warn", msg: "shown", stream: "s" });
    } finally {
      write.mockRestore();
    }
    expect(written).toHaveLength(1);
    expect(written[0]?.endsWith("\n")).toBe(true);
    expect(JSON.parse(written[0] ?? "")).toEqual({
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      level: "warn",
      msg: "shown",
      stream: "s",
    });
  });
});

describe("parseRpcEntry", () => {
  const fields = [
    "rpc",
    "ping",
    "who",
    "k",
    "deadline",
    "1700000030",
    "args",
    '{"args":{"ping":1}}',
    "message_id",
    "7",
  ];

  it("decodes an entry as the Perl proxy writes it", () => {
    const entry = parseRpcEntry([
      ...fields,
      "stash",
      '["loginid"]',
      "req_log_context",
      '{"correlation_id":"c-1"}',
    ]);
    expect(entry).toEqual({
      method: "ping",
      who: "k",
      messageId: "7",
      deadlineSeconds: 1700000030,
      params: { args: { ping: 1 } },
      stashNames: ["loginid"],
      correlationId: "c-1",
    });
  });

  it("reports what is wrong with a malformed entry, keeping where to reply", () => {
    expect(parseRpcEntry(["who", "k", "message_id", "7"])).toMatchObject({
      malformed: "malformed entry: missing rpc",
      who: "k",
    });
    expect(parseRpcEntry([...fields, "args", "{nope"])).toMatchObject({ malformed: /args/ });
    expect(parseRpcEntry([...fields, "stash", "{}"])).toMatchObject({ malformed: /stash/ });
  });

  it("builds the reply payload of PROTOCOL 4", () => {
    expect(JSON.parse(buildReplyPayload("7", { a: 1 }, 1_700_000_000_500))).toEqual({
      message_id: "7",
      response: { result: { a: 1 }, timestamp: 1_700_000_000.5 },
    });
  });
});

describe("buildCommands", () => {
  const settings = {
    group: "processors",
    replyTtlSeconds: 60,
    deadLetterMaxLen: 10,
    deadLetterMaxAgeSeconds: 60,
    retryMinMs: 1,
    retryMaxMs: 1,
  };
  const batch = [
    { stream: "general", entryId: "1-0", reply: { who: "k1", payload: "a" } },
    { stream: "general", entryId: "2-0", reply: { who: "k2", payload: "b" } },
    { stream: "general", entryId: "3-0", reply: { who: "k1", payload: "c" } },
    { stream: "other", entryId: "4-0", deadLetter: ["rpc", "x", "reason", "r"] },
  ];

  it("sends one RPUSH per reply key, EXPIRE only for the keys due, one XACK per stream, acks last", () => {
    const now = 1_700_000_000_000;
    const commands = buildCommands(
      batch,
      { ...settings, replyMode: "list" },
      now,
      new Set(["other:dead"]),
      new Set(["k1", "k3"]),
    );
    expect(commands).toEqual([
      ["XADD", "other:dead", "MINID", "~", String(now - 60_000), "*", "rpc", "x", "reason", "r"],
      ["XTRIM", "other:dead", "MAXLEN", "~", "10"],
      ["RPUSH", "k1", "a", "c"],
      ["EXPIRE", "k1", "60"],
      ["RPUSH", "k2", "b"],
      // k3 has no reply in this batch: an earlier push created it without a TTL.
      ["EXPIRE", "k3", "60"],
      ["XACK", "general", "processors", "1-0", "2-0", "3-0"],
      ["XACK", "other", "processors", "4-0"],
    ]);
  });

  it("publishes each reply in publish mode", () => {
    const commands = buildCommands(batch.slice(0, 2), { ...settings, replyMode: "publish" }, 0);
    expect(commands).toEqual([
      ["PUBLISH", "k1", "a"],
      ["PUBLISH", "k2", "b"],
      ["XACK", "general", "processors", "1-0", "2-0"],
    ]);
  });

  it("publishes one message per reply key in publish-batch mode: an array for several, the reply itself for one", () => {
    const payloads = ['{"message_id":"1"}', '{"message_id":"2"}', '{"message_id":"3"}'];
    const replies = batch
      .slice(0, 3)
      .map((item, i) => ({ ...item, reply: { ...item.reply!, payload: payloads[i]! } }));
    const commands = buildCommands(
      replies,
      { ...settings, replyMode: "publish-batch" },
      0,
      new Set(),
      new Set(["k1"]),
    );
    expect(commands).toEqual([
      ["PUBLISH", "k1", `[${payloads[0]},${payloads[2]}]`],
      ["PUBLISH", "k2", payloads[1]],
      // No EXPIRE: nothing is stored under a channel.
      ["XACK", "general", "processors", "1-0", "2-0", "3-0"],
    ]);
  });

  it("publish-batch: cuts a key's replies into messages of at most 256 KiB, in order; a larger reply goes alone", () => {
    /** A reply payload of exactly `length` characters. */
    const payload = (id: number, length: number) => {
      const head = `{"message_id":"${id}","pad":"`;
      return `${head}${"x".repeat(length - head.length - 2)}"}`;
    };
    const half = 128 * 1024;
    const payloads = [payload(1, 300 * 1024), payload(2, half), payload(3, half), payload(4, 100)];
    expect(payloads.map((text) => text.length)).toEqual([300 * 1024, half, half, 100]);
    const commands = buildCommands(
      payloads.map((text, i) => ({
        stream: "general",
        entryId: `${i + 1}-0`,
        reply: { who: "k1", payload: text },
      })),
      { ...settings, replyMode: "publish-batch" },
      0,
    );
    expect(commands).toEqual([
      ["PUBLISH", "k1", payloads[0]],
      // Exactly 256 KiB of replies fit in one message.
      ["PUBLISH", "k1", `[${payloads[1]},${payloads[2]}]`],
      ["PUBLISH", "k1", payloads[3]],
      ["XACK", "general", "processors", "1-0", "2-0", "3-0", "4-0"],
    ]);
  });
});

describe("redactUrl (the transport's target in logs)", () => {
  it("hides the password, keeps the rest, and never prints a URL it cannot parse", () => {
    expect(redactUrl("redis://app:s3cret@redis.internal:6380/2")).toBe(
      "redis://app:***@redis.internal:6380/2",
    );
    expect(redactUrl("rediss://:s3cret@redis.internal")).toBe("rediss://:***@redis.internal");
    expect(redactUrl("redis://127.0.0.1:6379")).toBe("redis://127.0.0.1:6379");
    expect(redactUrl("https://eu1-example.upstash.io/")).toBe("https://eu1-example.upstash.io");
    expect(redactUrl("not a url with s3cret")).toBe("(invalid url)");
  });
});

describe("ReplyKeyTtl", () => {
  const t0 = 1_700_000_000_000;

  it("asks for an EXPIRE on the first push and again once a third of the TTL has passed", () => {
    const ttl = new ReplyKeyTtl(60);
    expect(ttl.isDue("k", t0)).toBe(true);
    ttl.sent("k", t0);
    // The first push created the key, with its EXPIRE in the same round trip.
    expect(ttl.pushed("k", 1, 1, true)).toBe(false);
    expect(ttl.isDue("k", t0 + 19_999)).toBe(false);
    expect(ttl.isDue("k", t0 + 20_000)).toBe(true);
  });

  it("owes an EXPIRE when a push without one re-created the key, then sends it with every push until the key holds replies", () => {
    const ttl = new ReplyKeyTtl(60);
    ttl.sent("k", t0);
    // RPUSH of 2 values answered 2: the list was empty (popped) and the key had no TTL any more.
    expect(ttl.pushed("k", 2, 2, false)).toBe(true);
    expect(ttl.isDue("k", t0 + 1)).toBe(true);
    ttl.sent("k", t0 + 1);
    expect(ttl.pushed("k", 1, 1, true)).toBe(false);
    expect(ttl.isDue("k", t0 + 2)).toBe(true);
    ttl.sent("k", t0 + 2);
    expect(ttl.pushed("k", 3, 1, true)).toBe(false);
    expect(ttl.isDue("k", t0 + 3)).toBe(false);
  });

  it("asks again for a key it was told to forget (a round trip that failed)", () => {
    const ttl = new ReplyKeyTtl(60);
    ttl.sent("k", t0);
    ttl.forget("k");
    expect(ttl.isDue("k", t0 + 1)).toBe(true);
  });
});

describe("parseCliArgs", () => {
  it("takes repeated and comma-separated categories and numeric flags", () => {
    const config = parseCliArgs(
      ["--redis", "redis://h:1", "--category", "a,b", "--category", "c", "--concurrency", "4"],
      {},
    );
    expect(config).toMatchObject({
      options: { redis: "redis://h:1", categories: ["a", "b", "c"], concurrency: 4 },
    });
  });

  it("falls back to REDIS_URL, then to the Upstash variables", () => {
    expect(parseCliArgs([], { REDIS_URL: "redis://env:2" })).toMatchObject({
      options: { redis: "redis://env:2" },
    });
    const env = { UPSTASH_REDIS_REST_URL: "https://u", UPSTASH_REDIS_REST_TOKEN: "t" };
    expect(parseCliArgs([], env)).toMatchObject({
      options: { redis: { restUrl: "https://u", restToken: "t" } },
    });
  });

  it.each([
    [["--concurrency", "0", "--redis", "redis://h"], /--concurrency/],
    [[], /say where Redis is/],
    [["--rest-url", "https://u"], /--rest-token/],
    [["--nope"], /nope/],
  ])("rejects %j", (argv, message) => {
    expect(() => parseCliArgs(argv, {})).toThrow(message);
  });
});
