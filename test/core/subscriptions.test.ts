/**
 * Subscriptions and server push through the core (PROTOCOL.md 7), in Node: a `"subscribe": 1` request whose
 * reply carries a subscription id registers it on the connection, `handlePush` sends that subscription's
 * frames (or raw frames), and `forget` / `forget_all` are answered by the gateway. The connection keeps its
 * subscriptions in a Map here; the Durable Object keeps them in the socket attachment (test/worker/push.test.ts).
 */
import { describe, expect, it } from "vitest";
import {
  parsePushMessage,
  type GatewayOptions,
  type RpcResponse,
  type StoredSubscription,
  type SubscriptionRegistry,
} from "../../src/core/index.js";
import { fakeBackend, gateway } from "./helpers.js";

/** A registry in a Map, as a platform would keep it; `capacity` makes `add` fail beyond that many. */
function mapRegistry(capacity = Infinity) {
  const subs = new Map<string, StoredSubscription>();
  const registry: SubscriptionRegistry & { subs: Map<string, StoredSubscription> } = {
    subs,
    get count() {
      return subs.size;
    },
    get: (id) => subs.get(id),
    add: (subscription) => {
      if (!subs.has(subscription.id) && subs.size >= capacity) return false;
      subs.set(subscription.id, subscription);
      return true;
    },
    remove: (id) => subs.delete(id),
    removeMatching: (names) => {
      const gone = [...subs.values()].filter((sub) => names.has(sub.action) || names.has(sub.msgType));
      for (const sub of gone) subs.delete(sub.id);
      return gone.map((sub) => sub.id);
    },
  };
  return registry;
}

/**
 * A gateway with a `ticks` action (msg_type `tick`) whose backend opens a subscription with the request's
 * `id` field (or "sub-1"), and a connection that keeps subscriptions unless `registry` is null.
 */
function pushGateway(
  options: Partial<GatewayOptions> = {},
  registry: SubscriptionRegistry | null = mapRegistry(),
  answer?: (args: Record<string, unknown>) => RpcResponse,
) {
  const backend = fakeBackend(
    (req) =>
      answer?.(req.args) ?? {
        result: { quote: 100 },
        subscriptionId: typeof req.args.id === "string" ? req.args.id : "sub-1",
      },
  );
  const g = gateway({ actions: [["ticks", { msgType: "tick" }]], ...options }, { default: backend });
  const conn = registry ? Object.assign(g.conn, { subscriptions: registry }) : g.conn;
  return {
    ...g,
    conn,
    backend,
    push: (message: Parameters<typeof g.dispatcher.handlePush>[1]) => g.dispatcher.handlePush(conn, message),
  };
}

describe("opening a subscription", () => {
  it("adds subscription.id to the reply and sends each pushed frame like that reply", async () => {
    const { conn, send, push } = pushGateway({ sensitiveFields: ["token"] });
    await send({ ticks: "R_100", subscribe: 1, req_id: 7, passthrough: { p: 1 }, token: "secret" });
    const echo = { ticks: "R_100", subscribe: 1, req_id: 7, passthrough: { p: 1 }, token: "<not shown>" };
    expect(conn.sent).toEqual([
      {
        msg_type: "tick",
        tick: { quote: 100 },
        subscription: { id: "sub-1" },
        req_id: 7,
        passthrough: { p: 1 },
        echo_req: echo,
      },
    ]);

    expect(await push({ subscription: "sub-1", data: { quote: 101.5 } })).toBe(202);
    expect(conn.sent[1]).toEqual({
      msg_type: "tick",
      tick: { quote: 101.5 },
      subscription: { id: "sub-1" },
      req_id: 7,
      passthrough: { p: 1 },
      echo_req: echo,
    });
  });

  it("pushed frames carry only what the subscribing request had", async () => {
    const { conn, send, push } = pushGateway();
    await send({ ticks: "R_100", subscribe: 1 });
    expect(await push({ subscription: "sub-1", data: 1 })).toBe(202);
    expect(conn.sent[1]).toStrictEqual({
      msg_type: "tick",
      tick: 1,
      subscription: { id: "sub-1" },
      echo_req: { ticks: "R_100", subscribe: 1 },
    });
  });

  it("with requestData off, neither the reply nor the pushed frames carry the request's data", async () => {
    const { conn, send, push } = pushGateway({ requestData: false });
    await send({ ticks: "R_100", subscribe: 1, req_id: 7, passthrough: { p: 1 } });
    expect(await push({ subscription: "sub-1", data: { quote: 2 } })).toBe(202);
    expect(conn.sent).toEqual([
      { msg_type: "tick", tick: { quote: 100 }, subscription: { id: "sub-1" } },
      { msg_type: "tick", tick: { quote: 2 }, subscription: { id: "sub-1" } },
    ]);
  });

  it("with requestData off, a large request takes no room where the connection keeps its subscriptions", async () => {
    // The Durable Object keeps subscriptions in the socket attachment, refused beyond maxAttachmentBytes.
    const registry = mapRegistry();
    const add = registry.add;
    registry.add = (subscription) => JSON.stringify(subscription).length <= 200 && add(subscription);
    const { conn, send, push } = pushGateway({ requestData: false }, registry);
    await send({
      ticks: "R_100",
      subscribe: 1,
      req_id: 1,
      passthrough: { notes: Array.from({ length: 40 }, (_, i) => `note ${i}`) },
    });
    expect(conn.sent).toEqual([{ msg_type: "tick", tick: { quote: 100 }, subscription: { id: "sub-1" } }]);
    expect(await push({ subscription: "sub-1", data: 2 })).toBe(202);
  });

  it("a push without data sends null as the subscription's data", async () => {
    const { conn, send, push } = pushGateway({ requestData: false });
    await send({ ticks: "R_100", subscribe: 1 });
    expect(await push({ subscription: "sub-1", data: undefined })).toBe(202);
    expect(conn.sent[1]).toStrictEqual({ msg_type: "tick", tick: null, subscription: { id: "sub-1" } });
  });

  it.each([
    ["without subscribe", { ticks: "R_100" }],
    ["with subscribe: 0", { ticks: "R_100", subscribe: 0 }],
  ])("opens nothing for a request %s, even when the service gave an id", async (_, frame) => {
    const { conn, send, push } = pushGateway({ requestData: false });
    await send(frame);
    expect(conn.sent).toEqual([{ msg_type: "tick", tick: { quote: 100 } }]);
    expect(await push({ subscription: "sub-1", data: 1 })).toBe(410);
    expect(conn.sent).toHaveLength(1);
  });

  it("opens nothing when the service gave no id", async () => {
    const registry = mapRegistry();
    const { conn, send } = pushGateway({ requestData: false }, registry, () => ({ result: { quote: 1 } }));
    await send({ ticks: "R_100", subscribe: 1 });
    expect(conn.sent).toEqual([{ msg_type: "tick", tick: { quote: 1 } }]);
    expect(registry.count).toBe(0);
  });

  it("opens nothing when the reply is an error", async () => {
    const registry = mapRegistry();
    const { conn, send, push } = pushGateway({ requestData: false }, registry, () => ({
      result: { error: { code: "MarketIsClosed", message_to_client: "Closed." } },
      subscriptionId: "sub-1",
    }));
    await send({ ticks: "R_100", subscribe: 1 });
    expect(conn.sent).toEqual([{ msg_type: "tick", error: { code: "MarketIsClosed", message: "Closed." } }]);
    expect(registry.count).toBe(0);
    expect(await push({ subscription: "sub-1", data: 1 })).toBe(410);
  });

  it("on a connection that keeps no subscriptions (push off), the reply is sent as it came", async () => {
    const { conn, send, push } = pushGateway({ requestData: false }, null);
    await send({ ticks: "R_100", subscribe: 1 });
    expect(conn.sent).toEqual([{ msg_type: "tick", tick: { quote: 100 } }]);
    expect(await push({ subscription: "sub-1", data: 1 })).toBe(410);
  });

  it("refuses the subscription beyond maxSubscriptionsPerConnection with RateLimit", async () => {
    const registry = mapRegistry();
    const { conn, send, push, logger } = pushGateway(
      { requestData: false, maxSubscriptionsPerConnection: 2 },
      registry,
    );
    for (const id of ["a", "b", "c"]) await send({ ticks: "R_100", subscribe: 1, id });
    expect(conn.sent.slice(0, 2)).toEqual([
      { msg_type: "tick", tick: { quote: 100 }, subscription: { id: "a" } },
      { msg_type: "tick", tick: { quote: 100 }, subscription: { id: "b" } },
    ]);
    expect(conn.sent[2]).toMatchObject({ msg_type: "tick", error: { code: "RateLimit" } });
    expect(conn.sent[2]).not.toHaveProperty("subscription");
    expect([...registry.subs.keys()]).toEqual(["a", "b"]);
    expect(await push({ subscription: "c", data: 1 })).toBe(410);
    expect(logger.warn).toHaveBeenCalledTimes(1);
  });

  it("a second reply with an id already open does not count twice toward the limit", async () => {
    const { conn, send } = pushGateway({ requestData: false, maxSubscriptionsPerConnection: 1 });
    await send({ ticks: "R_100", subscribe: 1, id: "a" });
    await send({ ticks: "R_100", subscribe: 1, id: "a" });
    expect(conn.sent).toEqual([
      { msg_type: "tick", tick: { quote: 100 }, subscription: { id: "a" } },
      { msg_type: "tick", tick: { quote: 100 }, subscription: { id: "a" } },
    ]);
  });

  it("a second reply with an id already open keeps the first request's data for the pushed frames", async () => {
    const { conn, send, push } = pushGateway();
    await send({ ticks: "R_100", subscribe: 1, id: "a", req_id: 1 });
    await send({ ticks: "R_100", subscribe: 1, id: "a", req_id: 2 });
    expect(await push({ subscription: "a", data: 1 })).toBe(202);
    expect(conn.sent[2]).toMatchObject({ req_id: 1, echo_req: { req_id: 1 } });
  });

  it("answers RateLimit when the connection cannot store the subscription", async () => {
    const { conn, send, push } = pushGateway({ requestData: false }, mapRegistry(0));
    await send({ ticks: "R_100", subscribe: 1 });
    expect(conn.sent).toEqual([
      { msg_type: "tick", error: { code: "RateLimit", message: expect.any(String) as string } },
    ]);
    expect(await push({ subscription: "sub-1", data: 1 })).toBe(410);
  });
});

describe("handlePush", () => {
  it("sends a raw frame as it is, without request data", async () => {
    const { conn, push } = pushGateway();
    expect(await push({ frame: { msg_type: "notice", notice: "hello" } })).toBe(202);
    expect(conn.sent).toStrictEqual([{ msg_type: "notice", notice: "hello" }]);
  });

  it("answers 410 once the connection closed, and sends nothing", async () => {
    const { conn, send, push } = pushGateway();
    await send({ ticks: "R_100", subscribe: 1 });
    conn.disconnect();
    expect(await push({ subscription: "sub-1", data: 1 })).toBe(410);
    expect(await push({ frame: { msg_type: "x" } })).toBe(410);
    expect(conn.sent).toHaveLength(1);
  });

  it("answers 413 for a frame over maxResponseBytes, and sends nothing", async () => {
    const { conn, send, push } = pushGateway({ maxResponseBytes: 1_000 });
    await send({ ticks: "R_100", subscribe: 1 });
    expect(await push({ subscription: "sub-1", data: "x".repeat(2_000) })).toBe(413);
    expect(await push({ frame: { msg_type: "big", big: "x".repeat(2_000) } })).toBe(413);
    expect(conn.sent).toHaveLength(1);
  });

  it("answers 410, never rejects, when the connection's registry fails", async () => {
    const registry = mapRegistry();
    registry.get = () => {
      throw new Error("attachment unreadable");
    };
    const { conn, push, logger } = pushGateway({}, registry);
    expect(await push({ subscription: "sub-1", data: 1 })).toBe(410);
    expect(conn.sent).toEqual([]);
    expect(logger.error).toHaveBeenCalled();
  });
});

describe("forget and forget_all", () => {
  async function threeOpen(options: Partial<GatewayOptions> = {}) {
    const g = pushGateway({
      requestData: false,
      actions: [["ticks", { msgType: "tick" }], ["proposal"]],
      ...options,
    });
    await g.send({ ticks: "R_100", subscribe: 1, id: "t1" });
    await g.send({ ticks: "R_50", subscribe: 1, id: "t2" });
    await g.send({ proposal: 1, subscribe: 1, id: "p1" });
    g.conn.sent.length = 0;
    return g;
  }

  it("forget removes one subscription and answers 1, or 0 when there was none", async () => {
    const { conn, send, push, backend } = await threeOpen();
    const calls = backend.calls.length;
    await send({ forget: "t1" });
    await send({ forget: "t1" });
    await send({ forget: 5 });
    expect(conn.sent).toEqual([
      { msg_type: "forget", forget: 1 },
      { msg_type: "forget", forget: 0 },
      { msg_type: "forget", forget: 0 },
    ]);
    expect(await push({ subscription: "t1", data: 1 })).toBe(410);
    expect(await push({ subscription: "t2", data: 1 })).toBe(202);
    expect(backend.calls).toHaveLength(calls);
  });

  it("forget_all removes the subscriptions of the named actions or msg_types, and lists them", async () => {
    const { conn, send, push } = await threeOpen();
    await send({ forget_all: "tick" });
    await send({ forget_all: ["proposal", 3, "ticks"] });
    expect(conn.sent).toEqual([
      { msg_type: "forget_all", forget_all: ["t1", "t2"] },
      { msg_type: "forget_all", forget_all: ["p1"] },
    ]);
    for (const id of ["t1", "t2", "p1"]) expect(await push({ subscription: id, data: 1 })).toBe(410);
  });

  it("forget_all by action name", async () => {
    const { conn, send } = await threeOpen();
    await send({ forget_all: ["ticks"] });
    expect(conn.sent).toEqual([{ msg_type: "forget_all", forget_all: ["t1", "t2"] }]);
  });

  it("on a connection that keeps no subscriptions, forget answers 0 and forget_all []", async () => {
    const { conn, send } = pushGateway({ requestData: false }, null);
    await send({ forget: "t1" });
    await send({ forget_all: "ticks" });
    expect(conn.sent).toEqual([
      { msg_type: "forget", forget: 0 },
      { msg_type: "forget_all", forget_all: [] },
    ]);
  });
});

describe("parsePushMessage (the body of a push)", () => {
  it.each([
    [
      { subscription: "sub-1", data: { quote: 1 } },
      { subscription: "sub-1", data: { quote: 1 } },
    ],
    [
      { subscription: "A-z_09", data: null },
      { subscription: "A-z_09", data: null },
    ],
    [{ frame: { msg_type: "x" } }, { frame: { msg_type: "x" } }],
  ])("accepts %j", (body, expected) => {
    expect(parsePushMessage(body)).toStrictEqual(expected);
  });

  it.each([
    [[1], /JSON object/],
    ["text", /JSON object/],
    [{}, /exactly one of "subscription" and "frame"/],
    [{ subscription: "a", data: 1, frame: {} }, /exactly one of/],
    [{ frame: [1] }, /"frame" must be a JSON object/],
    [{ frame: "x" }, /"frame" must be a JSON object/],
    [{ subscription: 5, data: 1 }, /subscription id/],
    [{ subscription: "", data: 1 }, /subscription id/],
    [{ subscription: "a b", data: 1 }, /subscription id/],
    [{ subscription: "x".repeat(65), data: 1 }, /subscription id/],
    [{ subscription: "a" }, /needs "data"/],
  ])("refuses %j, saying why", (body, why) => {
    expect(parsePushMessage(body)).toMatch(why);
  });
});
