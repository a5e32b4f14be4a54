/**
 * What a gateway (and its users) notice of a backend service: entries written as the Perl proxy writes
 * them are answered on the reply key, errors have the agreed shapes, deadlines and limits hold, and close()
 * finishes work. Every test runs on both transports.
 */
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { handlers as exampleHandlers } from "../../examples/example-service.js";
import { startBridge } from "../../src/bridge/server.js";
import { INTERNAL_ERROR_RESULT, createRpcService, type RpcServiceOptions } from "../../src/consumer/index.js";
import {
  ServiceHarness,
  TRANSPORTS,
  aclUser,
  startTestRedis,
  type TestRedis,
  pendingEntries,
} from "./helpers.js";
import { waitFor } from "../support/wait.js";

let redis: TestRedis;

/** Calls of `command` Redis has run so far (`INFO commandstats`). */
async function callsOf(command: string): Promise<number> {
  const info = await redis.client.info("commandstats");
  return Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, "m").exec(info)?.[1] ?? 0);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis?.stop();
});

describe.each(TRANSPORTS)("service on the %s transport", (kind) => {
  let harness: ServiceHarness;
  beforeEach(() => {
    harness = new ServiceHarness(redis, kind);
  });
  afterEach(async () => {
    await harness.closeAll();
  });

  it("answers entries written as the Perl proxy writes them, with the reply payload of PROTOCOL 4", async () => {
    const service = await harness.start({ handlers: exampleHandlers });
    expect(service.transport.kind).toBe(kind);
    const { gateway } = harness;
    const ping = await gateway.send("ping", { ping: 1, req_id: 3 });
    const echo = await gateway.send(
      "echo",
      { echo: { hello: "wörld" }, req_id: 4 },
      { stash: { loginid: "CR1" } },
    );
    const login = await gateway.send("login", { login: "a1-secret" });
    // Read the TTL while the replies are still in the list (popping them deletes the key).
    await waitFor(async () => (await redis.client.llen(gateway.who)) === 3);
    const ttl = await redis.client.ttl(gateway.who);
    expect(ttl).toBeGreaterThan(50);
    expect(ttl).toBeLessThanOrEqual(60);
    const replies = await gateway.replies(3);
    expect(replies.get(ping)).toEqual({
      message_id: ping,
      response: { result: "pong", timestamp: expect.any(Number) },
    });
    const timestamp = replies.get(ping)?.response.timestamp ?? 0;
    expect(Math.abs(timestamp - Date.now() / 1000)).toBeLessThan(5);
    expect(replies.get(echo)?.response.result).toEqual({ echo: { hello: "wörld" }, req_id: 4 });
    expect(replies.get(login)?.response.result).toMatchObject({
      stash: { loginid: "CR90000", token: "a1-secret" },
    });
  });

  it("sets the reply TTL on the reply key", async () => {
    await harness.start({ handlers: { hold: () => "x" }, replyTtlSeconds: 17 });
    await harness.gateway.send("hold");
    await waitFor(async () => (await redis.client.llen(harness.gateway.who)) === 1);
    const ttl = await redis.client.ttl(harness.gateway.who);
    expect(ttl).toBeGreaterThan(10);
    expect(ttl).toBeLessThanOrEqual(17);
  });

  it("passes ctx: method, deadline, correlation id, stash names, message id, reply key", async () => {
    let seen: Record<string, unknown> = {};
    await harness.start({
      handlers: {
        inspect: (params, ctx) => {
          seen = { ...ctx, params, signalAborted: ctx.signal.aborted };
          return true;
        },
      },
    });
    const deadlineSeconds = Math.floor(Date.now() / 1000) + 20;
    const id = await harness.gateway.send(
      "inspect",
      { inspect: 1 },
      { deadlineSeconds, stash: { token: "t" } },
    );
    expect(await harness.gateway.resultOf(id)).toBe(true);
    expect(seen).toMatchObject({
      method: "inspect",
      deadline: new Date(deadlineSeconds * 1000),
      correlationId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      stashNames: ["token"],
      messageId: id,
      who: harness.gateway.who,
      deliveryCount: 1,
      params: { args: { inspect: 1 }, token: "t" },
      signalAborted: false,
    });
  });

  it("sends application errors unchanged and turns a throw or an unknown method into InternalServerError", async () => {
    await harness.start({ handlers: exampleHandlers });
    const { gateway } = harness;
    const appError = await gateway.send("app_error", { app_error: 5 });
    const thrown = await gateway.send("fail");
    const unknown = await gateway.send("no_such_method");
    const after = await gateway.send("ping");
    const replies = await gateway.replies(4);
    expect(replies.get(appError)?.response.result).toEqual({
      error: {
        code: "InvalidValue",
        message_to_client: "The value you sent is not accepted.",
        details: { field: "app_error", received: 5 },
      },
    });
    expect(replies.get(thrown)?.response.result).toEqual(INTERNAL_ERROR_RESULT);
    expect(replies.get(unknown)?.response.result).toEqual(INTERNAL_ERROR_RESULT);
    expect(replies.get(after)?.response.result).toBe("pong");
    expect(harness.logs.some((log) => log.msg === "handler threw" && log.method === "fail")).toBe(true);
  });

  it("drops entries whose deadline has passed: acked, never answered, handler not run", async () => {
    let calls = 0;
    await harness.start({ handlers: { late: () => ++calls, ping: () => "pong" } });
    const { gateway } = harness;
    await gateway.send("late", {}, { deadlineSeconds: Math.floor(Date.now() / 1000) - 5 });
    const ping = await gateway.send("ping");
    const replies = await gateway.replies(2, 1500);
    expect([...replies.keys()]).toEqual([ping]);
    expect(calls).toBe(0);
    const [pending] = (await redis.client.xpending(`${harness.streamPrefix}general`, "processors")) as [
      number,
    ];
    expect(pending).toBe(0);
  });

  it("aborts ctx.signal at the deadline, not before", async () => {
    let startedAt = 0;
    let abortedAt = 0;
    await harness.start({
      handlers: {
        wait: (_params, ctx) =>
          new Promise((resolve) => {
            startedAt = Date.now();
            ctx.signal.addEventListener("abort", () => {
              abortedAt = Date.now();
              resolve(`stopped: ${String(ctx.signal.reason)}`);
            });
          }),
      },
    });
    // Two to three seconds away: the handler starts well before it, so an early abort shows.
    const deadlineSeconds = Math.ceil(Date.now() / 1000) + 2;
    const deadlineMs = deadlineSeconds * 1000;
    const id = await harness.gateway.send("wait", {}, { deadlineSeconds });
    expect(await harness.gateway.resultOf(id, 8000)).toBe("stopped: Error: deadline passed");
    expect(startedAt).toBeLessThan(deadlineMs - 500);
    // Node timers may fire a millisecond or so early; anything more is an early abort.
    expect(abortedAt).toBeGreaterThanOrEqual(deadlineMs - 20);
    expect(abortedAt).toBeLessThan(deadlineMs + 2000);
  });

  it("dead-letters a malformed entry with the reason, acks it and keeps serving", async () => {
    await harness.start({ handlers: exampleHandlers });
    const stream = `${harness.streamPrefix}general`;
    const { who } = harness.gateway;
    // A reply key but no message_id: nothing the gateway could match a reply to, so no reply.
    await redis.client.xadd(stream, "*", "who", who, "args", "{}");
    const ping = await harness.gateway.send("ping");
    const replies = await harness.gateway.replies(2, 1000);
    expect([...replies.keys()]).toEqual([ping]);
    await waitFor(async () => (await redis.client.xlen(`${stream}:dead`)) === 1);
    const [[, fields]] = (await redis.client.xrange(`${stream}:dead`, "-", "+")) as [[string, string[]]];
    const dead = Object.fromEntries(fields.flatMap((_, i) => (i % 2 ? [] : [[fields[i], fields[i + 1]]])));
    expect(dead).toMatchObject({ who, reason: "malformed entry: missing rpc, message_id" });
    const [pending] = (await redis.client.xpending(stream, "processors")) as [number];
    expect(pending).toBe(0);
  });

  it("serves several categories and never runs more handlers at once than `concurrency`", async () => {
    let running = 0;
    let peak = 0;
    const work = async () => {
      peak = Math.max(peak, ++running);
      await new Promise((resolve) => setTimeout(resolve, 40));
      running--;
      return "done";
    };
    await harness.start({ handlers: { work }, concurrency: 3, categories: ["general", "mt5"] });
    const ids = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        harness.gateway.send("work", {}, { category: i % 2 ? "mt5" : "general" }),
      ),
    );
    const replies = await harness.gateway.replies(12, 8000);
    expect(ids.every((id) => replies.get(id)?.response.result === "done")).toBe(true);
    expect(peak).toBe(3);
  });

  it("publish mode: a plain SUBSCRIBE on the reply key receives the reply", async () => {
    const subscriber = new Redis(redis.server.url);
    try {
      await subscriber.subscribe(harness.gateway.who);
      const received = new Promise<string>((resolve) =>
        subscriber.on("message", (_channel, message) => resolve(message)),
      );
      await harness.start({ handlers: exampleHandlers, replyMode: "publish" });
      const id = await harness.gateway.send("ping");
      expect(JSON.parse(await received)).toMatchObject({ message_id: id, response: { result: "pong" } });
      expect(await redis.client.exists(harness.gateway.who)).toBe(0);
    } finally {
      subscriber.disconnect();
    }
  });

  it("close() lets running handlers finish, sends their replies and acks, and can be called twice", async () => {
    const service = await harness.start({ handlers: exampleHandlers });
    const id = await harness.gateway.send("slow", { slow: 1, ms: 400 });
    await waitFor(() => service.inFlight === 1);
    await Promise.all([service.close(), service.close()]);
    await service.close();
    expect(await harness.gateway.resultOf(id, 1000)).toEqual({ slept_ms: 400 });
    const [pending] = (await redis.client.xpending(`${harness.streamPrefix}general`, "processors")) as [
      number,
    ];
    expect(pending).toBe(0);
    const late = await harness.gateway.send("ping");
    expect((await harness.gateway.replies(1, 600)).has(late)).toBe(false);
  });

  it("answers a malformed entry that says where to reply with InternalServerError, and dead-letters it", async () => {
    await harness.start({ handlers: exampleHandlers });
    const stream = `${harness.streamPrefix}general`;
    const { who } = harness.gateway;
    await redis.client.xadd(stream, "*", "rpc", "ping", "who", who, "args", "{nope", "message_id", "m-bad");
    const replies = await harness.gateway.replies(1);
    expect(replies.get("m-bad")?.response.result).toEqual(INTERNAL_ERROR_RESULT);
    await waitFor(async () => (await redis.client.xlen(`${stream}:dead`)) === 1);
    const [pending] = (await redis.client.xpending(stream, "processors")) as [number];
    expect(pending).toBe(0);
  });

  it("treats a method named after an Object.prototype member as unknown: nothing inherited is called", async () => {
    await harness.start({ handlers: exampleHandlers });
    const ids = await Promise.all(
      ["constructor", "toString", "hasOwnProperty"].map((method) => harness.gateway.send(method)),
    );
    const replies = await harness.gateway.replies(3);
    expect(ids.map((id) => replies.get(id)?.response.result)).toEqual(Array(3).fill(INTERNAL_ERROR_RESULT));
  });

  it("a deadline weeks away (beyond a timer's range) neither aborts ctx.signal nor abandons the handler", async () => {
    await harness.start({
      handlerGraceMs: 0,
      handlers: {
        patient: async (_params, ctx) => {
          await new Promise((resolve) => setTimeout(resolve, 300));
          return { aborted: ctx.signal.aborted };
        },
      },
    });
    // 40 days: past the 2^31-1 ms (24.8 days) a Node timer can wait.
    const deadlineSeconds = Math.floor(Date.now() / 1000) + 40 * 24 * 3600;
    const id = await harness.gateway.send("patient", {}, { deadlineSeconds });
    expect(await harness.gateway.resultOf(id)).toEqual({ aborted: false });
  });

  it("close() past closeTimeoutMs aborts ctx.signal of running handlers and still sends what they answer", async () => {
    const service = await harness.start({
      closeTimeoutMs: 200,
      handlers: {
        wait: (_params, ctx) =>
          new Promise((resolve) =>
            ctx.signal.addEventListener("abort", () => resolve(`stopped: ${String(ctx.signal.reason)}`)),
          ),
      },
    });
    const id = await harness.gateway.send("wait");
    await waitFor(() => service.inFlight === 1);
    await service.close();
    expect(await harness.gateway.resultOf(id, 1000)).toBe("stopped: Error: service closed");
    expect(harness.logs).toContainEqual({
      level: "warn",
      msg: "close timed out; abandoning running handlers",
      running: 1,
    });
    const [pending] = (await redis.client.xpending(`${harness.streamPrefix}general`, "processors")) as [
      number,
    ];
    expect(pending).toBe(0);
  });

  it("close() returns while every handler slot is held by a hung handler, leaving its entry pending", async () => {
    const service = await harness.start({
      concurrency: 1,
      closeTimeoutMs: 0,
      handlers: { hang: () => new Promise(() => {}) },
    });
    await harness.gateway.send("hang");
    await waitFor(() => service.inFlight === 1);
    let closed = false;
    const closing = service.close().then(() => (closed = true));
    await waitFor(() => closed, 10_000);
    await closing;
    expect(await pendingEntries(redis.client, `${harness.streamPrefix}general`)).toBe(1);
  });

  it("serves an entry without a deadline: no ctx.deadline, ctx.signal quiet, the handler never abandoned", async () => {
    await harness.start({
      handlerGraceMs: 0,
      handlers: {
        patient: async (_params, ctx) => {
          await new Promise((resolve) => setTimeout(resolve, 300));
          return { deadline: ctx.deadline ?? "none", aborted: ctx.signal.aborted };
        },
      },
    });
    const { who } = harness.gateway;
    const stream = `${harness.streamPrefix}general`;
    await redis.client.xadd(stream, "*", "rpc", "patient", "who", who, "args", "{}", "message_id", "m-none");
    expect(await harness.gateway.resultOf("m-none")).toEqual({ deadline: "none", aborted: false });
  });

  it("sends a handler's null result as the result", async () => {
    await harness.start({ handlers: { nothing: () => null } });
    const id = await harness.gateway.send("nothing");
    const replies = await harness.gateway.replies(1);
    expect(replies.get(id)?.response).toEqual({ result: null, timestamp: expect.any(Number) });
  });

  it("a reply key Redis refuses (it holds a string) is logged with the command, and the entry is still acked", async () => {
    let calls = 0;
    await harness.start({ handlers: { ping: () => (++calls, "pong") } });
    const { gateway } = harness;
    await redis.client.set(gateway.who, "not a list");
    await gateway.send("ping");
    const stream = `${harness.streamPrefix}general`;
    await waitFor(() => harness.logs.some((entry) => entry.msg === "redis refused a reply command"));
    expect(harness.logs).toContainEqual(
      expect.objectContaining({
        level: "error",
        msg: "redis refused a reply command",
        command: "RPUSH",
        error: expect.stringMatching(/WRONGTYPE/),
      }),
    );
    await waitFor(async () => (await pendingEntries(redis.client, stream)) === 0);
    expect(calls).toBe(1);
    expect(await redis.client.get(gateway.who)).toBe("not a list");
  });

  it("logs one line when it started (consumer, streams, concurrency, transport) and one when it closed", async () => {
    const service = await harness.start({
      handlers: exampleHandlers,
      consumerName: "svc-1",
      categories: ["general", "mt5"],
      concurrency: 3,
    });
    await service.close();
    expect(harness.logs.filter((entry) => entry.level !== "debug")).toEqual([
      {
        level: "info",
        msg: "service started",
        consumer: "svc-1",
        streams: [`${harness.streamPrefix}general`, `${harness.streamPrefix}mt5`],
        concurrency: 3,
        transport: kind,
        target: service.transport.target,
      },
      { level: "info", msg: "service closed", consumer: "svc-1" },
    ]);
    expect(service.transport.target).toBe(kind === "native" ? redis.server.url : redis.bridge.url);
    expect(service.consumerName).toBe("svc-1");
  });

  it("an idle service backs off its reads: a few a second, not a busy loop", async () => {
    const readsBefore = await callsOf("xreadgroup");
    const service = await harness.start({ handlers: exampleHandlers, pollMinMs: 25, pollMaxMs: 400 });
    await sleep(1500);
    await service.close();
    // Polled (REST): 25, 50, 100, 200 then 400 ms apart, about 7 reads; blocking (native): about 2.
    expect((await callsOf("xreadgroup")) - readsBefore).toBeLessThanOrEqual(12);
  });

  it("close() does not wait for a read blocked for long", async () => {
    const service = await harness.start({ handlers: exampleHandlers, blockMs: 60_000 });
    // Let the first read block.
    await sleep(300);
    await service.close();
    expect(harness.logs).toContainEqual(expect.objectContaining({ msg: "service closed" }));
  });

  it("start() refuses to run twice", async () => {
    const service = await harness.start({ handlers: exampleHandlers });
    await expect(service.start()).rejects.toThrow(/already/);
  });
});

describe("start() with refused credentials", () => {
  it("fails fast with AuthenticationError instead of retrying forever", async () => {
    const service = createRpcService({
      redis: { restUrl: redis.bridge.url, restToken: "wrong-token" },
      handlers: exampleHandlers,
      logger: false,
    });
    await expect(service.start()).rejects.toMatchObject({ name: "AuthenticationError" });
    await service.close();
  });
});

describe.each(TRANSPORTS)("credentials revoked while the service runs on the %s transport", (kind) => {
  let harness: ServiceHarness;
  let cleanUp: (() => Promise<void>) | undefined;
  let restore: (() => Promise<void>) | undefined;
  beforeEach(() => {
    harness = new ServiceHarness(redis, kind);
  });
  afterEach(async () => {
    // Closed first, while a test's credentials may still be refused: close() must not depend on them.
    await harness.closeAll();
    await restore?.();
    await cleanUp?.();
    restore = cleanUp = undefined;
  });

  /**
   * The service's `redis` option with credentials of their own, and how to revoke and restore them: an ACL
   * user whose password changes (its connections killed, so they log in again) for the native transport, a
   * bridge restarted on the same port with another token for REST.
   */
  const outageLogged = () => harness.logs.some((entry) => entry.msg === "redis unavailable, retrying");

  async function credentials(): Promise<{
    redis: RpcServiceOptions["redis"];
    revoke: () => Promise<void>;
    restore: () => Promise<void>;
  }> {
    if (kind === "native") {
      const access = await aclUser(redis);
      cleanUp = access.remove;
      return {
        redis: access.url,
        async revoke() {
          await access.revoke();
          // Commands in flight at the kill wait in ioredis for a login; the next ones fail on the refusal.
          await waitFor(() => outageLogged());
        },
        restore: access.restore,
      };
    }
    const token = "rotated-token-test";
    let bridge = await startBridge({ redisUrl: redis.server.url, port: 0, token });
    const { port } = bridge;
    cleanUp = () => bridge.close();
    return {
      redis: { restUrl: bridge.url, restToken: token },
      async revoke() {
        await bridge.close();
        bridge = await startBridge({ redisUrl: redis.server.url, port, token: "another-token" });
        // The first failures may be the restart's refused connections; then a few reads (at most 200 ms
        // apart) are refused with HTTP 401.
        await waitFor(() => outageLogged());
        await sleep(500);
      },
      async restore() {
        await bridge.close();
        bridge = await startBridge({ redisUrl: redis.server.url, port, token });
      },
    };
  }

  it("keeps retrying (logging the outage once) and serves again once they are restored", async () => {
    const access = await credentials();
    restore = access.restore;
    await harness.start({ handlers: exampleHandlers, redis: access.redis });
    const { gateway } = harness;
    expect(await gateway.resultOf(await gateway.send("ping"))).toBe("pong");
    await access.revoke();
    // Refused credentials stop only start(); a running service treats them as an outage.
    const during = await gateway.send("ping");
    await access.restore();
    restore = undefined;
    const after = await gateway.send("ping");
    const replies = await gateway.replies(2, 10_000);
    expect([...replies.keys()].sort()).toEqual([during, after].sort());
    const outage = harness.logs.filter((entry) => /^redis (unavailable|reachable)/.test(entry.msg));
    expect(outage.map((entry) => entry.msg)).toEqual([
      "redis unavailable, retrying",
      "redis reachable again",
    ]);
  });

  it("close() returns while the credentials are still refused", async () => {
    const access = await credentials();
    restore = access.restore;
    const service = await harness.start({ handlers: exampleHandlers, redis: access.redis });
    const { gateway } = harness;
    expect(await gateway.resultOf(await gateway.send("ping"))).toBe("pong");
    await access.revoke();
    await service.close();
    expect(harness.logs).toContainEqual({
      level: "info",
      msg: "service closed",
      consumer: service.consumerName,
    });
  });
});

describe("credentials revoked while a reply batch is in flight (native transport)", () => {
  it("close() returns, keeps the entry pending for another consumer and says the reply was not written", async () => {
    const harness = new ServiceHarness(redis, "native");
    const access = await aclUser(redis);
    const stream = `${harness.streamPrefix}general`;
    try {
      const service = await harness.start({
        handlers: exampleHandlers,
        redis: access.url,
        closeTimeoutMs: 300,
      });
      await harness.gateway.send("slow", { slow: 1, ms: 500 });
      await waitFor(async () => (await pendingEntries(redis.client, stream)) === 1);
      // Redis holds write commands unanswered, so the reply batch of `slow` goes out and waits there.
      await redis.client.call("CLIENT", "PAUSE", "10000", "WRITE");
      await waitFor(async () =>
        String(await redis.client.call("CLIENT", "LIST"))
          .split("\n")
          .some((line) => line.includes("name=edge-wsproxy-service ") && line.includes("cmd=rpush")),
      );
      // The password changes and the connections are killed with that batch in flight: ioredis would keep
      // it for a login that is now refused, and close() would wait for it for ever.
      await access.revoke();
      await redis.client.call("CLIENT", "UNPAUSE");
      await service.close();
      expect(harness.logs).toContainEqual({
        level: "error",
        msg: "abandoned unsent replies on close",
        entries: 1,
      });
      expect(harness.logs).toContainEqual({
        level: "info",
        msg: "service closed",
        consumer: service.consumerName,
      });
      // Not acked: another consumer reclaims the entry and answers it.
      expect(await pendingEntries(redis.client, stream)).toBe(1);
    } finally {
      await redis.client.call("CLIENT", "UNPAUSE");
      await harness.closeAll();
      await access.remove();
    }
  });
});
