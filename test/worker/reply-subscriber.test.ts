/**
 * `replyTransport: "subscribe"` on the in-memory Redis and a fake `/subscribe` endpoint: the `XADD` waits
 * for the confirmation, one stream serves a burst and closes after the grace period, a broken stream is
 * polled around and reopened with back-off, a list-mode service is still served, and the options.
 */
import { describe, expect, it } from "vitest";
import { ConsumerGroupsBackend, resolveConsumerGroupsOptions } from "../../src/backends/index.js";
import { readEventData } from "../../src/backends/event-stream-reader.js";
import { ConfigError } from "../../src/core/errors.js";
import type { Connection, RpcRequest } from "../../src/core/types.js";
import { fakePubSub, servePublishing, type FakePubSub } from "./fake-pubsub.js";
import { FakeRedis, replyPayload, serveFake } from "./fake-redis.js";
import { pingRequest } from "./helpers.js";
import { manualClock } from "../support/manual-clock.js";
import { sleep, waitFor } from "../support/wait.js";

const conn = { id: "conn-1" } as Connection;
const TOKEN = "secret-token-123";

const request = (): RpcRequest => pingRequest();

/** A subscribing backend; `logs` collects what it writes. */
function subscriber(redis: FakeRedis, pubsub: FakePubSub, options: Record<string, unknown> = {}) {
  const logs: string[] = [];
  const logger = { warn: (m: string) => logs.push(m), error: (m: string) => logs.push(m) };
  const cg = new ConsumerGroupsBackend({
    redis,
    redisUrl: "http://redis.test/",
    redisToken: TOKEN,
    replyTransport: "subscribe",
    fetch: pubsub.fetch,
    objectId: "obj",
    logger,
    ...options,
  });
  return { cg, logs };
}

describe("ReplySubscriber through the consumer-groups backend", () => {
  it("writes the entry only after the subscription is confirmed, and takes the reply from the stream", async () => {
    const redis = new FakeRedis();
    const pubsub = fakePubSub();
    pubsub.autoConfirm = false;
    servePublishing(redis, pubsub, { ping: () => "pong" });
    // A manual clock: the list check (1 s on the real one) cannot fire however slow a loaded turn is, so
    // `polls: 0` holds.
    const { cg } = subscriber(redis, pubsub, { clock: manualClock() });
    const call = cg.call(request(), { args: { ping: 1 } }, conn);
    await sleep(50);
    expect(pubsub.streams).toHaveLength(1);
    expect(redis.count("XADD")).toBe(0);
    const [stream] = pubsub.streams;
    // The channel goes in the path as @upstash/redis sends it: colons raw, not `%3A`.
    expect(cg.whoami).toContain(":");
    expect(stream?.url).toBe(`http://redis.test/subscribe/${cg.whoami}`);
    expect(stream?.headers.get("authorization")).toBe(`Bearer ${TOKEN}`);
    expect(stream?.headers.get("accept")).toBe("text/event-stream");
    stream?.confirm();
    await expect(call).resolves.toMatchObject({ result: "pong" });
    expect(redis.count("XADD")).toBe(1);
    expect(redis.count("LPOP")).toBe(0);
    expect(cg.stats()).toMatchObject({ subscriptions: 1, pushedReplies: 1, polls: 0 });
    cg.close();
  });

  it("writes nothing for a request that timed out while the confirmation was awaited", async () => {
    const redis = new FakeRedis();
    const pubsub = fakePubSub();
    pubsub.autoConfirm = false;
    // A manual clock: the timeout fires while the stream is surely unconfirmed (no wall-clock bound).
    const clock = manualClock();
    const { cg } = subscriber(redis, pubsub, { timeout: 0.1, subscribeGraceMs: 20, clock });
    const call = cg.call(request(), { args: {} }, conn);
    call.catch(() => undefined);
    await waitFor(() => pubsub.streams.length === 1);
    await clock.advance(100);
    await expect(call).rejects.toThrow(/within 100 ms/);
    pubsub.streams[0]?.confirm();
    // Time for a wrong `XADD` to show, then the grace period ends the unused stream.
    await sleep(60);
    expect(redis.count("XADD")).toBe(0);
    await clock.advance(20);
    expect(pubsub.streams[0]?.closed).toBe(true);
    cg.close();
  });

  it("keeps one stream for a burst and closes it after the grace period, leaving no timer", async () => {
    const redis = new FakeRedis();
    const pubsub = fakePubSub();
    servePublishing(redis, pubsub, { ping: () => "pong" });
    const { cg } = subscriber(redis, pubsub, { subscribeGraceMs: 100 });
    for (let i = 0; i < 3; i++) await cg.call(request(), { args: {} }, conn);
    await Promise.all([1, 2, 3].map(() => cg.call(request(), { args: {} }, conn)));
    expect(pubsub.streams).toHaveLength(1);
    await sleep(40);
    expect(pubsub.streams[0]?.closed).toBe(false);
    await sleep(120);
    expect(pubsub.streams[0]?.closed).toBe(true);
    expect(pubsub.streams[0]?.signal?.aborted).toBe(true);
    const commands = redis.commands.length;
    await sleep(100);
    expect(redis.commands.length).toBe(commands);
    // The next burst opens a new stream.
    await cg.call(request(), { args: {} }, conn);
    expect(pubsub.streams).toHaveLength(2);
    expect(cg.stats()).toMatchObject({ subscriptions: 2, streamBreaks: 0, subscribeFailures: 0 });
    cg.close();
    expect(pubsub.open()).toBeUndefined();
  });

  it("closes the stream subscribeGraceMs after the last request, and a lone client costs a timer a second", async () => {
    const redis = new FakeRedis();
    const pubsub = fakePubSub();
    servePublishing(redis, pubsub, { ping: () => "pong" });
    const base = manualClock();
    let timersSet = 0;
    const clock = {
      ...base,
      setTimeout(callback: () => void, ms: number) {
        // The pipe's guard for a Redis client that does not abort its own requests (this fake) is set
        // per request at redisRequestTimeoutMs + 1 s; the REST client needs none. Not counted.
        if (ms <= 1_000) timersSet += 1;
        return base.setTimeout(callback, ms);
      },
    };
    const { cg } = subscriber(redis, pubsub, { subscribeGraceMs: 1_000, clock });
    await cg.call(request(), { args: {} }, conn);
    const before = timersSet;
    // 200 requests one after another over 2 s: twice the grace period, so the grace timer set after the
    // first one comes due while later ones keep the stream wanted.
    for (let i = 0; i < 200; i++) {
      await expect(cg.call(request(), { args: {} }, conn)).resolves.toMatchObject({ result: "pong" });
      await clock.advance(10);
    }
    expect(pubsub.streams).toHaveLength(1);
    // Each request used to set two (the grace period and the list check) and clear them again.
    expect(timersSet - before).toBeLessThanOrEqual(12);
    await clock.advance(500);
    expect(pubsub.streams[0]?.closed).toBe(false);
    await clock.advance(600);
    expect(pubsub.streams[0]?.closed).toBe(true);
    expect(cg.stats()).toMatchObject({ subscriptions: 1, pushedReplies: 201, polls: 0 });
    cg.close();
  });

  it("gives a stream's connection back when the stream ends by itself", async () => {
    const redis = new FakeRedis();
    const pubsub = fakePubSub();
    servePublishing(redis, pubsub, { ping: () => "pong" });
    // Two connections: one for the stream, one for the commands. A stream that kept its connection after
    // ending would leave the next stream the last one, and the next XADD none.
    const { cg } = subscriber(redis, pubsub, { maxRedisConnections: 2, subscribeGraceMs: 50, timeout: 5 });
    for (let round = 0; round < 3; round++) {
      const reply = cg.call(request(), { args: {} }, conn);
      await expect(reply).resolves.toMatchObject({ result: "pong" });
      pubsub.streams[round]?.end();
      await waitFor(() => cg.stats().streamBreaks === round + 1);
    }
    expect(pubsub.streams).toHaveLength(3);
    cg.close();
  });

  it("polls the list while a broken stream is reopened, then takes replies from the new stream", async () => {
    const redis = new FakeRedis();
    const pubsub = fakePubSub();
    const { cg, logs } = subscriber(redis, pubsub, { replyListCheckMs: 0, subscribeGraceMs: 50 });
    const first = cg.call(request(), { args: { n: 1 } }, conn);
    const second = cg.call(request(), { args: { n: 2 } }, conn);
    // Each request's `message_id`, from its stored entry (not from the order of the writes).
    const idOf = (n: number): string => {
      const entry = redis.entries.find(
        (e) => (JSON.parse(e.fields.args ?? "{}") as { args?: { n?: number } }).args?.n === n,
      );
      if (!entry?.fields.message_id) throw new Error(`no entry for request ${n}`);
      return entry.fields.message_id;
    };
    // Wait for the stored entries, not `count("XADD")`: the fake logs a command a turn before it stores
    // it, and a reply built in between carried no `message_id`, so `first` waited out its 30 s timeout.
    await waitFor(() => redis.entries.length === 2);
    pubsub.streams[0]?.end();
    // A reply pushed to the list meanwhile is found by the fallback poll.
    redis.push(cg.whoami, replyPayload(idOf(1), "from the list"));
    await expect(first).resolves.toMatchObject({ result: "from the list" });
    expect(redis.count("LPOP")).toBeGreaterThan(0);
    // Still wanted (the second request waits): subscribed again after the back-off.
    await waitFor(() => pubsub.open() !== undefined && pubsub.streams.length === 2);
    expect(pubsub.publishTo(cg.whoami, replyPayload(idOf(2), "pushed again"))).toBe(1);
    await expect(second).resolves.toMatchObject({ result: "pushed again" });
    expect(cg.stats()).toMatchObject({ subscriptions: 2, streamBreaks: 1, pushedReplies: 1 });
    expect(logs.join("\n")).toMatch(/SUBSCRIBE .*the subscription stream ended/);
    cg.close();
  });

  it("backs off between failed attempts, serves requests by polling meanwhile, and never logs the token", async () => {
    const redis = new FakeRedis();
    const pubsub = fakePubSub();
    pubsub.failWithStatus = 401;
    serveFake(redis, { ping: () => "pong" });
    const { cg, logs } = subscriber(redis, pubsub, { subscribeRetryMaxMs: 400 });
    await expect(cg.call(request(), { args: {} }, conn)).resolves.toMatchObject({ result: "pong" });
    // A request that is never answered keeps the stream wanted for 700 ms: attempts 100, 200, 400 ms
    // apart (each ±20%) after the first call's two, not one per poll.
    const waiting = cg.call({ ...request(), method: "never" }, { args: {} }, conn);
    await sleep(700);
    const attempts = cg.stats().subscriptions ?? 0;
    expect(attempts).toBeGreaterThanOrEqual(3);
    expect(attempts).toBeLessThanOrEqual(6);
    expect(logs.join("\n")).toContain("HTTP 401");
    expect(logs.join("\n")).not.toContain(TOKEN);
    cg.close();
    await expect(waiting).rejects.toThrow();
  });

  it("holds a request that arrives during the back-off until the next attempt is confirmed", async () => {
    // The back-off runs on a manual clock: on the real one its 40-60 ms window raced the test (a slow
    // turn let the retry fire first, failing again or succeeding before the request arrived).
    const clock = manualClock();
    const redis = new FakeRedis();
    const pubsub = fakePubSub();
    pubsub.failWithStatus = 503;
    const { cg } = subscriber(redis, pubsub, { clock });
    // Keeps the stream wanted; its own attempt fails, so the subscriber backs off (50 ms +-20%).
    const waiting = cg.call({ ...request(), method: "never" }, { args: {} }, conn);
    // The stored entry, not `count("XADD")` (logged a turn earlier): else this entry reached the
    // `onEntry` below, with no stream up, and `streamUpAtXadd` read [false, true].
    await waitFor(() => redis.entries.length === 1);
    pubsub.failWithStatus = 0;
    const streamUpAtXadd: boolean[] = [];
    servePublishing(redis, pubsub, { ping: () => "pong" });
    const serve = redis.onEntry;
    redis.onEntry = (entry) => {
      streamUpAtXadd.push(pubsub.open() !== undefined);
      serve?.(entry);
    };
    const call = cg.call(request(), { args: {} }, conn);
    // Time stands still, so the back-off cannot end: the request is held, no stream is attempted.
    await sleep(50);
    expect(redis.count("XADD")).toBe(1);
    expect(cg.stats()).toMatchObject({ subscriptions: 1, subscribeFailures: 1 });
    await clock.advance(60);
    await expect(call).resolves.toMatchObject({ result: "pong" });
    expect(streamUpAtXadd).toEqual([true]);
    expect(cg.stats()).toMatchObject({ subscriptions: 2, subscribeFailures: 1, pushedReplies: 1 });
    cg.close();
    await expect(waiting).rejects.toThrow();
  });

  it("serves a list-mode service by the list check, with one warning", async () => {
    const redis = new FakeRedis();
    const pubsub = fakePubSub();
    serveFake(redis, { ping: () => "pong" });
    const { cg, logs } = subscriber(redis, pubsub, { replyListCheckMs: 100 });
    const started = Date.now();
    await expect(cg.call(request(), { args: {} }, conn)).resolves.toMatchObject({ result: "pong" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    await cg.call(request(), { args: {} }, conn);
    expect(cg.stats()).toMatchObject({ listRepliesWhileSubscribed: 2, pushedReplies: 0 });
    expect(logs.filter((line) => line.includes("--reply-mode publish"))).toHaveLength(1);
    cg.close();
  });

  it("drops foreign and duplicate replies from the stream and counts them", async () => {
    const redis = new FakeRedis();
    const pubsub = fakePubSub();
    servePublishing(redis, pubsub, { ping: () => "pong" });
    const { cg } = subscriber(redis, pubsub);
    await cg.call(request(), { args: {} }, conn);
    const again = cg.call(request(), { args: {} }, conn);
    await waitFor(() => redis.entries.length === 2);
    const [answered, waiting] = redis.entries.map((entry) => entry.fields.message_id);
    pubsub.publishTo(cg.whoami, JSON.stringify({ message_id: answered, response: { result: "dup" } }));
    pubsub.publishTo(
      cg.whoami,
      JSON.stringify({ message_id: waiting, who: "other", response: { result: 1 } }),
    );
    await expect(again).resolves.toMatchObject({ result: "pong" });
    await waitFor(() => cg.stats().foreign === 1);
    expect(cg.stats()).toMatchObject({ foreign: 1, duplicate: 1 });
    cg.close();
  });
});

describe("reply transport options", () => {
  const redis = new FakeRedis();
  const base = { redis, redisUrl: "http://r", redisToken: "t" };

  it("defaults to poll and names a bad value (REPLY_TRANSPORT is the plan's: plan.test.ts)", () => {
    expect(resolveConsumerGroupsOptions(base)).toMatchObject({
      replyTransport: "poll",
      subscribeGraceMs: 2000,
      subscribeRetryMaxMs: 5000,
      replyListCheckMs: 1000,
    });
    expect(resolveConsumerGroupsOptions({ ...base, replyTransport: "subscribe" }).replyTransport).toBe(
      "subscribe",
    );
    expect(() => resolveConsumerGroupsOptions({ ...base, replyTransport: "push" as "poll" })).toThrow(
      /`replyTransport`/,
    );
    expect(() => resolveConsumerGroupsOptions({ redis, replyTransport: "subscribe" })).toThrow(ConfigError);
    expect(() => resolveConsumerGroupsOptions({ ...base, subscribeGraceMs: -1 })).toThrow(/subscribeGraceMs/);
  });
});

describe("readEventData", () => {
  /** The events of a body delivered in `chunks`. */
  async function eventsOf(chunks: string[]): Promise<string[]> {
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk));
        controller.close();
      },
    });
    const events: string[] = [];
    await readEventData(body, (data) => events.push(data));
    return events;
  }

  it("reads the standard framing split across chunks, with CRLF and comments", async () => {
    const chunks = ["data: subscribe,c,1\r", "\n\r\n: keep-alive\n\nda", 'ta: message,c,{"a":1}\n\n'];
    expect(await eventsOf(chunks)).toEqual(["subscribe,c,1", 'message,c,{"a":1}']);
  });

  it("reads Upstash's framing: one data line per event, no blank line, LF or CRLF", async () => {
    for (const eol of ["\n", "\r\n"]) {
      const text = `data: subscribe,c,1${eol}data: message,c,{"a":1}${eol}: keep-alive${eol}data:message,c,2${eol}`;
      // Every split point, so a line end or a CRLF cut in two is covered.
      for (let at = 1; at < text.length; at++) {
        expect(
          await eventsOf([text.slice(0, at), text.slice(at)]),
          `${JSON.stringify(eol)} at ${at}`,
        ).toEqual(["subscribe,c,1", 'message,c,{"a":1}', "message,c,2"]);
      }
    }
  });

  it("reads a multi-line standard event as one event per data line, as @upstash/redis does", async () => {
    expect(await eventsOf(["data: x\ndata: y\n\n"])).toEqual(["x", "y"]);
  });

  /** The events of a body delivered as `bytes` cut at each of `cuts`. */
  async function eventsOfBytes(bytes: Uint8Array, cuts: number[]): Promise<string[]> {
    const edges = [0, ...cuts, bytes.length];
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let index = 1; index < edges.length; index++)
          controller.enqueue(bytes.slice(edges[index - 1], edges[index]));
        controller.close();
      },
    });
    const events: string[] = [];
    await readEventData(body, (data) => events.push(data));
    return events;
  }

  it("reads a payload whose UTF-8 characters are cut across chunks, at every cut", async () => {
    const text = 'data: message,c,{"t":"héllo ✓ 😀"}\rdata: two\r\n';
    const bytes = new TextEncoder().encode(text);
    for (let at = 1; at < bytes.length; at++) {
      expect(await eventsOfBytes(bytes, [at]), `cut at byte ${at}`).toEqual([
        'message,c,{"t":"héllo ✓ 😀"}',
        "two",
      ]);
    }
    // Every byte its own chunk.
    expect(
      await eventsOfBytes(
        bytes,
        Array.from({ length: bytes.length - 1 }, (_, index) => index + 1),
      ),
    ).toEqual(['message,c,{"t":"héllo ✓ 😀"}', "two"]);
  });

  it("hands on no last line without a line end, and skips other fields", async () => {
    expect(await eventsOf(["event: x\nid: 3\ndata:a\ndat: b\ndata: cut off"])).toEqual(["a"]);
  });

  it("ends the stream with an error when one line grows past 16 MB", async () => {
    const mib = new Uint8Array(1024 * 1024).fill(0x61);
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("data: "));
        for (let index = 0; index < 17; index++) controller.enqueue(mib);
        controller.close();
      },
    });
    await expect(readEventData(body, () => undefined)).rejects.toThrow(/exceeded 16 MB/);
  });
});
