/**
 * Per-connection limits (issue 6): requests in flight, frames per second, the 1008 close on sustained
 * abuse, isolation between connections, and no counters left behind once connections close.
 * The dispatcher's clock is a seam (`deps.now`), so every window here is exact, never slept through.
 */
import { describe, expect, it } from "vitest";
import {
  ConfigError,
  createDispatcher,
  createMemoryConnection,
  resolveGatewayOptions,
  type GatewayOptions,
  type JsonObject,
  type MemoryConnection,
  type RpcResponse,
} from "../../src/core/index.js";
import { deferred, fakeBackend, quietLogger, type FakeBackend } from "./helpers.js";

const RATE_LIMIT = {
  msg_type: "error",
  error: { code: "RateLimit", message: "You have reached the rate limit for this connection." },
};

/** A dispatcher with a hand-driven clock; `send` pushes one frame and resolves when it was handled. */
function limited(options: Partial<GatewayOptions>, backend: FakeBackend = fakeBackend()) {
  const clock = { nowMs: 1_000_000 };
  const logger = quietLogger();
  const deps = { logger, now: () => clock.nowMs };
  const dispatcher = createDispatcher({ actions: [["ping"]], ...options }, { default: backend }, deps);
  const send = (conn: MemoryConnection, frame: JsonObject | string) =>
    dispatcher.handleFrame(conn, typeof frame === "string" ? frame : JSON.stringify(frame));
  return { dispatcher, clock, send, backend, logger };
}

/** A backend whose calls stay in flight until `releaseAll()`. */
function heldBackend() {
  const held: ((response: RpcResponse) => void)[] = [];
  const backend = fakeBackend(() => {
    const answer = deferred<RpcResponse>();
    held.push(answer.resolve);
    return answer.promise;
  });
  const releaseAll = () => held.splice(0).forEach((resolve) => resolve({ result: "pong" }));
  return { backend, held, releaseAll };
}

/** Lets every already-settled promise chain run (the fake backends answer on the microtask queue). */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("maxPendingPerConnection", () => {
  it("answers RateLimit with req_id and passthrough, forwards nothing, then recovers", async () => {
    const { backend, held, releaseAll } = heldBackend();
    const { send } = limited({ maxPendingPerConnection: 2 }, backend);
    const conn = createMemoryConnection();
    const inFlight = [send(conn, { ping: 1, req_id: 1 }), send(conn, { ping: 1, req_id: 2 })];
    await send(conn, { ping: 1, req_id: 3, passthrough: { tag: "x" } });
    expect(conn.sent).toEqual([
      {
        ...RATE_LIMIT,
        req_id: 3,
        passthrough: { tag: "x" },
        echo_req: { ping: 1, req_id: 3, passthrough: { tag: "x" } },
      },
    ]);
    expect(held).toHaveLength(2);
    expect(backend.calls).toHaveLength(2);

    releaseAll();
    await Promise.all(inFlight);
    const fourth = send(conn, { ping: 1, req_id: 4 });
    await settle();
    releaseAll();
    await fourth;
    expect(conn.sent.map((frame) => [frame.req_id, frame.msg_type])).toEqual([
      [3, "error"],
      [1, "ping"],
      [2, "ping"],
      [4, "ping"],
    ]);
    expect(conn.closed).toBeUndefined();
  });

  it("does not count frames answered without forwarding (invalid, insane, unrecognised)", async () => {
    const { backend, releaseAll } = heldBackend();
    const { send } = limited({ maxPendingPerConnection: 1 }, backend);
    const conn = createMemoryConnection();
    const first = send(conn, { ping: 1, req_id: 1 });
    await send(conn, "not json");
    await send(conn, { nothing: 1 });
    await send(conn, { ping: "\uE000", req_id: 2 });
    expect(conn.sent.map((frame) => (frame.error as JsonObject).code)).toEqual([
      "BadRequest",
      "UnrecognisedRequest",
      "SanityCheckFailed",
    ]);
    releaseAll();
    await first;
  });
});

describe("byte budgets of requests in flight", () => {
  const frameOf = (reqId: number, bytes: number) => {
    const head = JSON.stringify({ ping: 1, req_id: reqId, pad: [[""]] });
    return JSON.stringify({ ping: 1, req_id: reqId, pad: [["x".repeat(bytes - head.length)]] });
  };

  it("maxPendingBytesPerConnection: RateLimit once a connection's frames in flight reach it, then recovers", async () => {
    const { backend, held, releaseAll } = heldBackend();
    const { send, dispatcher } = limited({ maxPendingBytesPerConnection: 10_000 }, backend);
    const conn = createMemoryConnection();
    const other = createMemoryConnection();
    const inFlight = [send(conn, frameOf(1, 4_000)), send(conn, frameOf(2, 4_000))];
    await send(conn, frameOf(3, 4_000)); // 12,000 bytes would pass the budget
    expect(conn.sent).toHaveLength(1);
    expect(conn.sent[0]).toMatchObject({ ...RATE_LIMIT, req_id: 3 });
    expect(held).toHaveLength(2);
    expect(dispatcher.counters).toMatchObject({ pendingBytes: 8_000, connectionByteRejections: 1 });
    // Another connection has its own budget; a frame alone always fits its own budget.
    const alone = send(other, frameOf(4, 20_000));
    await settle();
    expect(held).toHaveLength(3);
    releaseAll();
    await Promise.all([...inFlight, alone]);
    expect(dispatcher.counters.pendingBytes).toBe(0);
    const again = send(conn, frameOf(5, 4_000));
    await settle();
    releaseAll();
    await again;
    expect(conn.sent.at(-1)).toMatchObject({ msg_type: "ping", req_id: 5 });
  });

  it("maxPendingBytesPerObject: RateLimit for every connection once the object's frames in flight reach it", async () => {
    const { backend, held, releaseAll } = heldBackend();
    const { send, dispatcher } = limited({ maxPendingBytesPerObject: 10_000 }, backend);
    const conns = [createMemoryConnection(), createMemoryConnection(), createMemoryConnection()];
    const inFlight = [send(conns[0]!, frameOf(1, 4_000)), send(conns[1]!, frameOf(2, 4_000))];
    await send(conns[2]!, frameOf(3, 4_000));
    expect(conns[2]!.sent).toHaveLength(1);
    expect(conns[2]!.sent[0]).toMatchObject({ ...RATE_LIMIT, req_id: 3 });
    expect(held).toHaveLength(2);
    expect(dispatcher.counters).toMatchObject({ pendingBytes: 8_000, objectByteRejections: 1 });
    // A connection that closes does not free its bytes until its request ends: the call still holds them.
    conns[0]!.close(1000, "gone");
    await dispatcher.handleClose(conns[0]!, 1000, "gone");
    expect(dispatcher.counters.pendingBytes).toBe(8_000);
    releaseAll();
    await Promise.all(inFlight);
    expect(dispatcher.counters.pendingBytes).toBe(0);
  });

  it("defaults to 256 KiB per connection and 16 MiB per object, with 64 KiB frames at most", () => {
    expect(resolveGatewayOptions({ actions: [] })).toMatchObject({
      maxMessageBytes: 65_536,
      maxPendingBytesPerConnection: 262_144,
      maxPendingBytesPerObject: 16_777_216,
    });
  });
});

describe("maxMessagesPerSecond", () => {
  it("refuses frames over the bucket with RateLimit and refills with time", async () => {
    const { send, clock, backend } = limited({ maxMessagesPerSecond: 2, messageBurst: 3 });
    const conn = createMemoryConnection();
    for (let id = 1; id <= 4; id++) await send(conn, { ping: 1, req_id: id });
    expect(conn.sent.map((frame) => [frame.req_id, frame.msg_type])).toEqual([
      [1, "ping"],
      [2, "ping"],
      [3, "ping"],
      [4, "error"],
    ]);
    expect(conn.sent[3]).toMatchObject({ ...RATE_LIMIT, req_id: 4 });
    expect(backend.calls).toHaveLength(3);

    clock.nowMs += 499; // 0.998 tokens: not yet one frame
    await send(conn, { ping: 1, req_id: 5 });
    clock.nowMs += 2; // just over one token (a refused frame took none)
    await send(conn, { ping: 1, req_id: 6 });
    clock.nowMs += 10_000; // refills to the burst, no further
    for (let id = 7; id <= 10; id++) await send(conn, { ping: 1, req_id: id });
    expect(conn.sent.slice(4).map((frame) => [frame.req_id, frame.msg_type])).toEqual([
      [5, "error"],
      [6, "ping"],
      [7, "ping"],
      [8, "ping"],
      [9, "ping"],
      [10, "error"],
    ]);
  });

  it("counts every frame: invalid ones get RateLimit without req_id, binary ones are dropped", async () => {
    const binaryFrames: Uint8Array[] = [];
    const { dispatcher, send } = limited({
      maxMessagesPerSecond: 1,
      onBinaryFrame: (_conn, bytes) => void binaryFrames.push(bytes),
    });
    const conn = createMemoryConnection();
    await dispatcher.handleFrame(conn, new Uint8Array([1, 2, 3]));
    await dispatcher.handleFrame(conn, new Uint8Array([4, 5, 6]));
    await send(conn, "{oops");
    expect(binaryFrames).toHaveLength(1);
    expect(conn.sent).toEqual([RATE_LIMIT]);
  });
});

describe("sustained abuse", () => {
  it("closes 1008 after abuseCloseAfterRejections refusals within abuseWindowMs, reply first", async () => {
    const { send, clock, dispatcher } = limited({
      maxMessagesPerSecond: 1,
      abuseCloseAfterRejections: 3,
      abuseWindowMs: 1000,
    });
    const conn = createMemoryConnection();
    await send(conn, { ping: 1, req_id: 1 });
    for (let id = 2; id <= 4; id++) {
      clock.nowMs += 300;
      await send(conn, { ping: 1, req_id: id });
    }
    expect(conn.sent.map((frame) => [frame.req_id, frame.msg_type])).toEqual([
      [1, "ping"],
      [2, "error"],
      [3, "error"],
      [4, "error"],
    ]);
    expect(conn.closed).toEqual({ code: 1008, reason: "Policy violation" });
    expect(dispatcher.limitedConnections).toBe(0);
  });

  it("does not close a client whose rejections are spread wider than the window", async () => {
    const { send, clock } = limited({
      maxMessagesPerSecond: 0.5,
      messageBurst: 1,
      abuseCloseAfterRejections: 3,
      abuseWindowMs: 1000,
    });
    const conn = createMemoryConnection();
    await send(conn, { ping: 1 });
    for (let round = 0; round < 10; round++) {
      clock.nowMs += 600; // one rejection every 600 ms: at most 2 in any window
      await send(conn, { ping: 1 });
    }
    expect(conn.closed).toBeUndefined();
    expect(conn.sent.filter((frame) => frame.msg_type === "error").length).toBeGreaterThan(3);
  });

  it("counts every error reply: 3,000 malformed frames end with close 1008, not 3,000 answers", async () => {
    const { send, dispatcher } = limited({});
    const conn = createMemoryConnection();
    const bad = ["not json", '{"nothing":1}', '{"ping":"\uE000"}', "[1]"];
    for (let i = 0; i < 3000 && !conn.closed; i++) await send(conn, bad[i % bad.length]!);
    expect(conn.closed).toEqual({ code: 1008, reason: "Policy violation" });
    expect(conn.sent).toHaveLength(500);
    expect(new Set(conn.sent.map((frame) => (frame.error as JsonObject).code))).toEqual(
      new Set(["BadRequest", "UnrecognisedRequest", "SanityCheckFailed"]),
    );
    expect(dispatcher.counters.abuseCloses).toBe(1);
  });

  it("counts RateLimit rejections from maxPendingPerConnection too", async () => {
    const { backend, releaseAll } = heldBackend();
    const { send } = limited({ maxPendingPerConnection: 1, abuseCloseAfterRejections: 2 }, backend);
    const conn = createMemoryConnection();
    const first = send(conn, { ping: 1, req_id: 1 });
    await send(conn, { ping: 1, req_id: 2 });
    await send(conn, { ping: 1, req_id: 3 });
    expect(conn.closed).toEqual({ code: 1008, reason: "Policy violation" });
    releaseAll();
    await first;
    expect(conn.sent.map((frame) => frame.req_id)).toEqual([2, 3]); // nothing sent after the close
  });
});

describe("isolation and cleanup", () => {
  it("leaves other connections unaffected while one is limited and closed", async () => {
    const { send, dispatcher } = limited({ maxMessagesPerSecond: 2, abuseCloseAfterRejections: 5 });
    const [abuser, bystander] = [createMemoryConnection(), createMemoryConnection()];
    for (let id = 1; id <= 10; id++) await send(abuser, { ping: 1, req_id: id });
    await send(bystander, { ping: 1, req_id: 1 });
    await send(bystander, { ping: 1, req_id: 2 });
    expect(abuser.closed?.code).toBe(1008);
    expect(bystander.closed).toBeUndefined();
    expect(bystander.sent.map((frame) => frame.msg_type)).toEqual(["ping", "ping"]);
    expect(dispatcher.limitedConnections).toBe(1);
  });

  it("removes a connection's counters when it closes, however it closes", async () => {
    const { backend, releaseAll } = heldBackend();
    const { send, dispatcher } = limited({ maxMessageBytes: 100 }, backend);
    const [a, b, c] = [createMemoryConnection(), createMemoryConnection(), createMemoryConnection()];
    const pending = [send(a, { ping: 1 }), send(b, { ping: 1 }), send(c, { ping: 1 })];
    expect(dispatcher.limitedConnections).toBe(3);

    await dispatcher.handleClose(a, 1000, ""); // the platform reports a close
    await send(b, { ping: "x".repeat(200) }); // the gateway closes with 1009
    c.disconnect(); // the peer vanished and nobody told the dispatcher
    await settle();
    releaseAll();
    await Promise.all(pending);
    expect(b.closed?.code).toBe(1009);
    expect(dispatcher.limitedConnections).toBe(0);
    const late = send(c, { ping: 1 }); // a late frame on a closed connection creates nothing
    expect(dispatcher.limitedConnections).toBe(0);
    await settle();
    releaseAll();
    await late;
    expect(dispatcher.limitedConnections).toBe(0);
  });

  it("with the defaults, lets 20 connections keep 10 requests each in flight (the e2e load)", async () => {
    const { backend, held, releaseAll } = heldBackend();
    const { send } = limited({}, backend);
    const conns = Array.from({ length: 20 }, () => createMemoryConnection());
    const all = conns.flatMap((conn) =>
      Array.from({ length: 10 }, (_, i) => send(conn, { ping: 1, req_id: i })),
    );
    await settle();
    expect(held).toHaveLength(200);
    releaseAll();
    await Promise.all(all);
    expect(
      conns.every((conn) => conn.sent.length === 10 && conn.sent.every((f) => f.msg_type === "ping")),
    ).toBe(true);
  });

  it("turns each limit off with 0", async () => {
    const { backend, held, releaseAll } = heldBackend();
    const off = {
      maxPendingPerConnection: 0,
      maxPendingBytesPerConnection: 0,
      maxPendingBytesPerObject: 0,
      maxMessagesPerSecond: 0,
      abuseCloseAfterRejections: 0,
    };
    const { send, dispatcher } = limited(off, backend);
    const conn = createMemoryConnection();
    const all = Array.from({ length: 1000 }, () => send(conn, { ping: 1 }));
    await settle();
    expect(held).toHaveLength(1000);
    releaseAll();
    await Promise.all(all);
    expect(dispatcher.limitedConnections).toBe(0);
  });
});

describe("limit options", () => {
  it("has the documented defaults: 100 in flight, 2000 frames/s (burst 2000), close after 500 in 10 s", () => {
    expect(resolveGatewayOptions({ actions: [] })).toMatchObject({
      maxPendingPerConnection: 100,
      maxMessagesPerSecond: 2000,
      messageBurst: 2000,
      abuseCloseAfterRejections: 500,
      abuseWindowMs: 10_000,
    });
    expect(resolveGatewayOptions({ actions: [], maxMessagesPerSecond: 20 }).messageBurst).toBe(20);
  });

  it.each([
    [{ maxPendingPerConnection: -1 }, "`maxPendingPerConnection`"],
    [{ maxPendingPerConnection: 1.5 }, "`maxPendingPerConnection`"],
    [{ maxMessagesPerSecond: Number.POSITIVE_INFINITY }, "`maxMessagesPerSecond`"],
    [{ maxMessagesPerSecond: -2 }, "`maxMessagesPerSecond`"],
    [{ messageBurst: 0.5 }, "`messageBurst`"],
    [{ abuseCloseAfterRejections: Number.NaN }, "`abuseCloseAfterRejections`"],
    [{ abuseWindowMs: 0 }, "`abuseWindowMs`"],
  ])("rejects %j with a ConfigError naming the option", (limits, named) => {
    const resolve = () => resolveGatewayOptions({ actions: [], ...limits });
    expect(resolve).toThrow(ConfigError);
    expect(resolve).toThrow(named);
  });
});
