/**
 * Server push (docs/push.md): the connection's push URL in each entry, subscriptions opened by a
 * `"subscribe": 1` reply, pushes over `POST /connections/<ref>/messages` and the batch route, `forget` /
 * `forget_all`, and every status a pusher can get. Real sockets through the Worker; pushes with SELF.fetch.
 */
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { StoredSubscription } from "../../src/core/types.js";
import { SocketConnection, type SocketAttachment } from "../../src/worker/connection.js";
import type { GatewayDurableObject } from "../../src/worker/gateway-object.js";
import { gatewayPlan } from "../../src/worker/plan.js";
import { formatRef, parseRef } from "../../src/worker/push-ref.js";
import { openSocket, SELF, uniqueObject, type TestSocket } from "./helpers.js";
import { sleep } from "../support/wait.js";
import { fakeRedis, GatewayObject } from "./test-worker.js";

type Frame = Record<string, unknown>;

/** Sends a `ticks` request and returns its reply and the push URL its entry carried. */
async function ticks(socket: TestSocket, frame: Frame): Promise<{ reply: Frame; connection: string }> {
  const reply = await socket.call({ ticks: "R_100", ...frame });
  const entry = fakeRedis.entries.filter((e) => e.fields.rpc === "ticks").at(-1);
  return { reply, connection: entry?.fields.connection ?? "" };
}

/** `POST <url>/messages` (or `url` itself for the batch route) with a JSON body. */
async function push(url: string, body: unknown, headers: Record<string, string> = {}) {
  const target = url.endsWith("/connections/messages") ? url : `${url}/messages`;
  const response = await SELF.fetch(target, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Frame };
}

/** Pushes until the answer is `status` (a close reaches the object asynchronously); returns the last one. */
async function pushUntil(url: string, body: unknown, status: number): Promise<number> {
  let last = 0;
  for (let attempt = 0; attempt < 40 && last !== status; attempt++) {
    if (attempt > 0) await sleep(50);
    last = (await push(url, body)).status;
  }
  return last;
}

/** Nothing more arrives on `socket` within `ms`. */
async function expectSilence(socket: TestSocket, ms = 300): Promise<void> {
  await sleep(ms);
  expect(socket.queued).toEqual([]);
}

describe("server push", () => {
  it("sends a subscription's frames to its connection with the subscribing request's data, and raw frames as they are, with no Redis command", async () => {
    const object = uniqueObject("push");
    const socket = await openSocket(object);
    const { reply, connection } = await ticks(socket, { subscribe: 1, req_id: 7, passthrough: { p: 1 } });
    const id = (reply.subscription as { id: string }).id;
    expect(reply).toEqual({
      msg_type: "tick",
      tick: { symbol: "R_100", quote: 100, epoch: 1_764_170_000, id },
      subscription: { id },
      req_id: 7,
      passthrough: { p: 1 },
      echo_req: { ticks: "R_100", subscribe: 1, req_id: 7, passthrough: { p: 1 } },
    });
    // The push URL: the upgrade's origin, then the reference naming this object.
    expect(connection).toMatch(
      /^http:\/\/gateway\.test\/connections\/[A-Za-z0-9_-]+\.[0-9a-f-]{36}\.[0-9a-f]{32}$/,
    );
    expect(parseRef(connection)?.objectName).toBe(object);

    const before = fakeRedis.commands.length;
    expect(await push(connection, { subscription: id, data: { quote: 101.5 } })).toEqual({
      status: 202,
      body: { status: 202 },
    });
    expect(await socket.next()).toEqual({
      msg_type: "tick",
      tick: { quote: 101.5 },
      subscription: { id },
      req_id: 7,
      passthrough: { p: 1 },
      echo_req: { ticks: "R_100", subscribe: 1, req_id: 7, passthrough: { p: 1 } },
    });
    expect((await push(connection, { frame: { msg_type: "notice", notice: "hello" } })).status).toBe(202);
    expect(await socket.next()).toEqual({ msg_type: "notice", notice: "hello" });
    expect(fakeRedis.commands.slice(before)).toEqual([]);
    socket.ws.close(1000, "done");
  });

  it("does not open a subscription for a request without subscribe: 1", async () => {
    const socket = await openSocket(uniqueObject("push-once"));
    const { reply, connection } = await ticks(socket, { id: "one-shot" });
    expect(reply).not.toHaveProperty("subscription");
    expect((await push(connection, { subscription: "one-shot", data: 1 })).status).toBe(410);
    socket.ws.close(1000, "done");
  });

  it("answers 404 for a malformed, unknown or wrongly signed reference, and 410 once its connection closed", async () => {
    const object = uniqueObject("push-refs");
    const socket = await openSocket(object);
    const { reply, connection } = await ticks(socket, { subscribe: 1 });
    const id = (reply.subscription as { id: string }).id;
    const ref = parseRef(connection);
    if (!ref) throw new Error(`no reference in ${connection}`);
    const body = { subscription: id, data: 1 };
    const origin = "http://gateway.test/connections";
    const flipped = `${ref.secret.slice(0, -1)}${ref.secret.endsWith("0") ? "1" : "0"}`;
    const wrongSecret = `${origin}/${formatRef({ ...ref, secret: flipped })}`;
    const otherId = `${origin}/${formatRef({ ...ref, connectionId: crypto.randomUUID() })}`;
    const otherObject = `${origin}/${formatRef({ ...ref, objectName: uniqueObject("nobody") })}`;
    for (const url of [`${origin}/not-a-ref`, `${origin}/a.b.c`, wrongSecret, otherId, otherObject]) {
      expect(await push(url, body), url).toEqual({
        status: 404,
        body: { status: 404, error: "no such connection" },
      });
    }
    expect(socket.queued).toEqual([]);

    socket.ws.close(1000, "bye");
    expect(await pushUntil(connection, body, 410)).toBe(410);
    expect((await push(connection, { frame: { msg_type: "x" } })).status).toBe(410);
    // Still 404 for a wrong secret after the close: a closed connection is told apart only with its secret.
    expect((await push(wrongSecret, body)).status).toBe(404);
  });

  it("forget and forget_all are answered by the gateway, and pushes for those subscriptions then get 410", async () => {
    const socket = await openSocket(uniqueObject("push-forget"));
    const { connection } = await ticks(socket, { subscribe: 1, id: "sub-a" });
    await ticks(socket, { subscribe: 1, id: "sub-b" });
    await ticks(socket, { subscribe: 1, id: "sub-c" });
    const before = fakeRedis.commands.length;

    expect(await socket.call({ forget: "sub-a", req_id: 1 })).toEqual({
      msg_type: "forget",
      forget: 1,
      req_id: 1,
      echo_req: { forget: "sub-a", req_id: 1 },
    });
    expect((await push(connection, { subscription: "sub-a", data: 1 })).status).toBe(410);
    expect(await socket.call({ forget: "sub-a" })).toMatchObject({ msg_type: "forget", forget: 0 });
    expect((await push(connection, { subscription: "sub-b", data: 2 })).status).toBe(202);
    expect(await socket.next()).toMatchObject({ tick: 2, subscription: { id: "sub-b" } });

    // Matched by the subscribing action's msg_type ("tick") as well as its name ("ticks").
    expect(await socket.call({ forget_all: ["tick"] })).toEqual({
      msg_type: "forget_all",
      forget_all: ["sub-b", "sub-c"],
      echo_req: { forget_all: ["tick"] },
    });
    for (const id of ["sub-b", "sub-c"]) {
      expect((await push(connection, { subscription: id, data: 3 })).status).toBe(410);
    }
    expect(await socket.call({ forget_all: "ticks" })).toMatchObject({ forget_all: [] });
    expect(fakeRedis.commands.slice(before)).toEqual([]);
    await expectSilence(socket);
    socket.ws.close(1000, "done");
  });

  it("answers 413 for a frame over maxResponseBytes (nothing sent) or a body over maxPushBodyBytes", async () => {
    const socket = await openSocket(uniqueObject("push-big"));
    const { reply, connection } = await ticks(socket, { subscribe: 1 });
    const id = (reply.subscription as { id: string }).id;
    // Under the body limit (700,000 in test-worker.ts), over the built frame's (maxResponseBytes 600,000).
    expect((await push(connection, { subscription: id, data: "x".repeat(650_000) })).status).toBe(413);
    expect((await push(connection, { frame: { msg_type: "big", big: "x".repeat(650_000) } })).status).toBe(
      413,
    );
    expect((await push(connection, { subscription: id, data: "x".repeat(710_000) })).status).toBe(413);
    await expectSilence(socket);
    // The subscription is still there: a frame that fits goes out.
    expect((await push(connection, { subscription: id, data: "fits" })).status).toBe(202);
    expect(await socket.next()).toMatchObject({ tick: "fits" });
    socket.ws.close(1000, "done");
  });

  it("answers 400 for a body that is not a push message", async () => {
    const socket = await openSocket(uniqueObject("push-400"));
    const { reply, connection } = await ticks(socket, { subscribe: 1 });
    const id = (reply.subscription as { id: string }).id;
    for (const body of [
      "{not json",
      [1],
      { data: 1 },
      { subscription: id },
      { frame: "x" },
      { subscription: "bad id!", data: 1 },
    ]) {
      expect((await push(connection, body)).status, JSON.stringify(body)).toBe(400);
    }
    await expectSilence(socket);
    socket.ws.close(1000, "done");
  });

  it("answers 401 without the configured push secret, and delivers with it", async () => {
    const socket = await openSocket(uniqueObject("push-secret"));
    const { reply, connection } = await ticks(socket, { subscribe: 1 });
    const id = (reply.subscription as { id: string }).id;
    // The same object behind a Worker configured with `pushSecret` (test-worker.ts, `?gateway=secret`).
    const url = `${connection}/messages?gateway=secret`;
    const send = (headers: Record<string, string>) =>
      SELF.fetch(url, { method: "POST", headers, body: JSON.stringify({ subscription: id, data: 1 }) });
    expect((await send({})).status).toBe(401);
    expect((await send({ authorization: "Bearer wrong-secret-for-tests" })).status).toBe(401);
    expect((await send({ authorization: "push-secret-for-tests" })).status).toBe(401);
    await expectSilence(socket);
    expect((await send({ authorization: "Bearer push-secret-for-tests" })).status).toBe(202);
    expect(await socket.next()).toMatchObject({ tick: 1, subscription: { id } });
    socket.ws.close(1000, "done");
  });

  it("answers a batch with one status per message, in order", async () => {
    const socketA = await openSocket(uniqueObject("push-batch-a"));
    const socketB = await openSocket(uniqueObject("push-batch-b"));
    const a = await ticks(socketA, { subscribe: 1, id: "batch-a" });
    const b = await ticks(socketB, { subscribe: 1, id: "batch-b" });
    // The batch takes a bare reference as well as a push URL.
    const refB = b.connection.slice(b.connection.lastIndexOf("/") + 1);
    const closed = await openSocket(uniqueObject("push-batch-closed"));
    const c = await ticks(closed, { subscribe: 1, id: "batch-c" });
    closed.ws.close(1000, "bye");
    expect(await pushUntil(c.connection, { subscription: "batch-c", data: 0 }, 410)).toBe(410);

    const { status, body } = await push("http://gateway.test/connections/messages", {
      messages: [
        { connection: a.connection, subscription: "batch-a", data: 1 },
        { connection: refB, subscription: "batch-b", data: 2 },
        { connection: a.connection, subscription: "forgotten", data: 3 },
        { connection: "http://gateway.test/connections/nonsense", subscription: "batch-a", data: 4 },
        { connection: a.connection, data: 5 },
        { connection: a.connection, subscription: "batch-a", data: "x".repeat(610_000) },
        { connection: c.connection, subscription: "batch-c", data: 6 },
        { connection: a.connection, frame: { msg_type: "raw", raw: 7 } },
      ],
    });
    expect(status).toBe(200);
    expect(body).toEqual({
      results: [202, 202, 410, 404, 400, 413, 410, 202].map((s) => ({ status: s })),
    });
    expect(await socketA.next()).toMatchObject({ tick: 1, subscription: { id: "batch-a" } });
    expect(await socketA.next()).toEqual({ msg_type: "raw", raw: 7 });
    expect(await socketB.next()).toMatchObject({ tick: 2, subscription: { id: "batch-b" } });
    await expectSilence(socketA);
    socketA.ws.close(1000, "done");
    socketB.ws.close(1000, "done");
  });

  it("refuses a subscription beyond maxSubscriptionsPerConnection with RateLimit, and does not register it", async () => {
    const socket = await openSocket(uniqueObject("push-limit"));
    let connection = "";
    for (const id of ["l-1", "l-2", "l-3"]) {
      const opened = await ticks(socket, { subscribe: 1, id });
      expect(opened.reply).toMatchObject({ subscription: { id } });
      connection = opened.connection;
    }
    const { reply } = await ticks(socket, { subscribe: 1, id: "l-4", req_id: 4 });
    expect(reply).toMatchObject({ msg_type: "tick", error: { code: "RateLimit" }, req_id: 4 });
    expect(reply).not.toHaveProperty("subscription");
    expect((await push(connection, { subscription: "l-4", data: 1 })).status).toBe(410);
    // A forget frees a place.
    await socket.call({ forget: "l-1" });
    expect((await ticks(socket, { subscribe: 1, id: "l-5" })).reply).toMatchObject({
      subscription: { id: "l-5" },
    });
    socket.ws.close(1000, "done");
  });

  it("keeps subscriptions in the socket attachment: a rebuilt connection and a new incarnation still push", async () => {
    const object = uniqueObject("push-hibernate");
    const socket = await openSocket(object);
    const { connection } = await ticks(socket, { subscribe: 1, id: "kept", req_id: 9 });
    const namespace = (env as unknown as { GATEWAY: DurableObjectNamespace<GatewayDurableObject> }).GATEWAY;
    const stub = namespace.get(namespace.idFromName(object));
    const attachment = await runInDurableObject(stub, (_instance, state) => {
      const [server] = state.getWebSockets();
      return server?.deserializeAttachment() as SocketAttachment;
    });
    const kept: StoredSubscription = {
      id: "kept",
      msgType: "tick",
      action: "ticks",
      reqId: 9,
      echoReq: { ticks: "R_100", subscribe: 1, id: "kept", req_id: 9 },
    };
    expect(attachment.subs).toEqual([kept]);
    expect(attachment.push).toBe(connection);

    // The pool cannot hibernate an object: a socket carrying only that attachment is what a woken object
    // sees, and a second instance of the class is a constructor run again (a new incarnation).
    const [, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    server.serializeAttachment(attachment);
    expect(SocketConnection.of(server).subscriptions?.get("kept")).toEqual(kept);
    const ref = parseRef(connection);
    const statuses = await runInDurableObject(stub, (_instance, state) => {
      const reborn = new GatewayObject(state as DurableObjectState, env as never);
      return reborn.pushMessages([
        {
          connectionId: ref?.connectionId ?? "",
          secret: ref?.secret ?? "",
          message: { subscription: "kept", data: "again" },
        },
      ]);
    });
    expect(statuses).toEqual([202]);
    expect(await socket.next()).toMatchObject({ tick: "again", req_id: 9, subscription: { id: "kept" } });
    socket.ws.close(1000, "done");
  });

  it("reads the push secret from PUSH_SECRET when the option is not set, the option winning", () => {
    const options = { actions: [["ping"]] as [string][] };
    const redis = { UPSTASH_REDIS_REST_URL: "https://example.upstash.io", UPSTASH_REDIS_REST_TOKEN: "t" };
    expect(gatewayPlan(options, { ...redis, PUSH_SECRET: "from-env" }).pushSecret).toBe("from-env");
    const both = { ...redis, PUSH_SECRET: "env" };
    expect(gatewayPlan({ ...options, pushSecret: "option" }, both).pushSecret).toBe("option");
    expect(gatewayPlan(options, redis).pushSecret).toBeUndefined();
  });
});
