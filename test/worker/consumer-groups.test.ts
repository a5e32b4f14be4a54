/**
 * The consumer-groups backend on the in-memory Redis: the exact stream entry, category routing and
 * timeouts, Redis failures, and the replies it must drop (late, duplicate, unknown, foreign, unusable).
 */
import { describe, expect, it } from "vitest";
import { ConsumerGroupsBackend, resolveConsumerGroupsOptions } from "../../src/backends/index.js";
import { ConfigError, ProtocolError, RpcTimeoutError, TransportError } from "../../src/core/errors.js";
import type { Connection } from "../../src/core/types.js";
import { FakeRedis, replyPayload, serveFake } from "./fake-redis.js";
import { pingRequest } from "./helpers.js";
import { sleep } from "../support/wait.js";

const conn = { id: "conn-1" } as Connection;
const quietLogger = { warn: () => undefined, error: () => undefined };

const request = pingRequest;

function backend(redis: FakeRedis, options: Record<string, unknown> = {}): ConsumerGroupsBackend {
  return new ConsumerGroupsBackend({ redis, objectId: "obj", logger: quietLogger, ...options });
}

describe("ConsumerGroupsBackend", () => {
  it("writes the entry exactly as PROTOCOL.md section 3 says", async () => {
    const redis = new FakeRedis();
    serveFake(redis, { whoami: () => "ok" });
    const cg = backend(redis, { timeout: 7 });
    const req = request({ name: "whoami", method: "whoami", stashParams: ["loginid"] });
    const before = Math.floor(Date.now() / 1000);
    await expect(cg.call(req, { args: { whoami: 1 }, loginid: "CR1" }, conn)).resolves.toMatchObject({
      result: "ok",
    });
    const [entry] = redis.entries;
    expect(entry?.stream).toBe("general");
    expect(entry?.command).toEqual([
      "MINID",
      "~",
      entry?.command[2],
      "*",
      "rpc",
      "whoami",
      "who",
      cg.whoami,
      "deadline",
      entry?.fields.deadline,
      "args",
      '{"args":{"whoami":1},"loginid":"CR1"}',
      "stash",
      '["loginid"]',
      "req_log_context",
      '{"correlation_id":"c0ffee00-0000-4000-8000-000000000001"}',
      "message_id",
      entry?.fields.message_id,
    ]);
    // Trimmed by age: nothing younger than the longest wait (7 s) plus a minute of clock margin goes.
    const [minMs, minSeq] = (entry?.command[2] ?? "").split("-").map(Number);
    expect(minSeq).toBe(0);
    expect(Date.now() - (minMs ?? 0)).toBeGreaterThanOrEqual(67_000);
    expect(Date.now() - (minMs ?? 0)).toBeLessThan(80_000);
    const deadline = Number(entry?.fields.deadline);
    expect(deadline).toBeGreaterThanOrEqual(before + 7);
    expect(deadline).toBeLessThanOrEqual(before + 8);
    expect(req.category).toBe("general");
  });

  it("names its reply key per incarnation", () => {
    const redis = new FakeRedis();
    const a = backend(redis, { streamPrefix: "test:" });
    const b = backend(redis, { streamPrefix: "test:" });
    expect(a.whoami).toMatch(/^test:wsp:reply:obj:[0-9a-f]{16}$/);
    expect(a.whoami).not.toBe(b.whoami);
  });

  it("routes by category only with queue separation, with each category's timeout", async () => {
    const redis = new FakeRedis();
    const options = {
      queueSeparationEnabled: true,
      categoryTimeoutConfig: { general: 5, mt5: 0.2 },
      rpcTimeoutExtendPercentage: 50,
      rpcTimeoutExtendOffset: 0.1,
      streamPrefix: "p:",
    };
    const cg = backend(redis, options);
    expect(cg.localWaitSeconds("mt5")).toBeCloseTo(0.4);
    const req = request({ action: { category: "mt5" }, category: "mt5" });
    const started = Date.now();
    await expect(cg.call(req, { args: {} }, conn)).rejects.toBeInstanceOf(RpcTimeoutError);
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(380);
    expect(waited).toBeLessThan(10_000); // not the default timeout; generous for a busy machine
    expect(redis.entries[0]?.stream).toBe("p:mt5");
    expect(req.category).toBe("mt5");

    const offRedis = new FakeRedis();
    const off = backend(offRedis, { ...options, queueSeparationEnabled: false });
    const offReq = request({ action: { category: "mt5" }, category: "mt5" });
    serveFake(offRedis, { ping: () => "pong" });
    await off.call(offReq, { args: {} }, conn);
    expect(offReq.category).toBe("general");
  });

  it("never builds a stream key from an unconfigured category", async () => {
    const redis = new FakeRedis();
    const cg = backend(redis, { queueSeparationEnabled: true });
    const req = request({ category: "../evil" });
    await expect(cg.call(req, { args: {} }, conn)).rejects.toBeInstanceOf(ConfigError);
    expect(redis.count("XADD")).toBe(0);
  });

  it("still answers at the timeout when an XADD never settles", async () => {
    const redis = new FakeRedis();
    const exec = redis.exec.bind(redis);
    redis.exec = ((command: [string, ...string[]]) =>
      command[0] === "XADD" ? new Promise(() => undefined) : exec(command)) as typeof redis.exec;
    const cg = backend(redis, { timeout: 0.3 });
    const started = Date.now();
    const failure = await cg.call(request(), { args: {} }, conn).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(RpcTimeoutError);
    expect(Date.now() - started).toBeLessThan(10_000); // generous: the point is that it answers at all
    expect(cg.stats()).toMatchObject({ pending: 0 });
  });

  it("fails fast with a RedisError TransportError when XADD fails", async () => {
    const redis = new FakeRedis();
    redis.failing.add("XADD");
    const cg = backend(redis, { timeout: 30 });
    const started = Date.now();
    const failure = await cg.call(request(), { args: {} }, conn).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(TransportError);
    expect((failure as TransportError).failureType).toBe("RedisError");
    expect((failure as TransportError).operation).toBe("XADD general");
    // Well under the 30 s timeout it would otherwise wait (generous: a busy 2-core machine is slow).
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(cg.stats()).toMatchObject({ pending: 0, failed: 1 });
    await sleep(20);
    expect(redis.count("LPOP")).toBe(0);
  });

  it("gives each concurrent request its own reply, whatever the order", async () => {
    const redis = new FakeRedis();
    const cg = backend(redis);
    const calls = [0, 1, 2, 3, 4].map((n) => cg.call(request({ args: { n } }), { args: { n } }, conn));
    await sleep(10);
    const who = cg.whoami;
    for (const entry of [...redis.entries].reverse()) {
      const { n } = (JSON.parse(entry.fields.args ?? "{}") as { args: { n: number } }).args;
      redis.push(who, replyPayload(entry.fields.message_id ?? "", { n }));
    }
    const replies = await Promise.all(calls);
    expect(replies.map((reply) => (reply as { result: { n: number } }).result.n)).toEqual([0, 1, 2, 3, 4]);
  });

  it("drops late, duplicate, unknown, foreign and unusable replies, and counts them", async () => {
    const redis = new FakeRedis();
    const cg = backend(redis, { timeout: 0.1 });
    const who = cg.whoami;
    await expect(cg.call(request(), { args: {} }, conn)).rejects.toBeInstanceOf(RpcTimeoutError);
    const first = redis.entries[0]?.fields.message_id ?? "";

    const second = cg.call(request(), { args: {} }, conn);
    await sleep(5);
    const id = redis.entries[1]?.fields.message_id ?? "";
    redis.push(
      who,
      replyPayload(first, "late"),
      replyPayload("999", "unknown"),
      JSON.stringify({ message_id: id, who: "wsp:reply:someone-else:00", response: { result: "foreign" } }),
      "not json",
      JSON.stringify({ message_id: id, response: { result: "mine" } }),
      replyPayload(id, "duplicate"),
    );
    await expect(second).resolves.toEqual({ result: "mine" });
    await sleep(20);
    expect(cg.stats()).toMatchObject({
      late: 1,
      unknown: 1,
      foreign: 1,
      invalid: 1,
      duplicate: 1,
      delivered: 1,
    });
  });

  it("fails a request at once when its reply is unusable", async () => {
    const redis = new FakeRedis();
    const cg = backend(redis, { timeout: 30 });
    const call = cg.call(request(), { args: {} }, conn);
    await sleep(5);
    const id = redis.entries[0]?.fields.message_id ?? "";
    redis.push(cg.whoami, JSON.stringify({ message_id: id, response: "not an object" }));
    await expect(call).rejects.toBeInstanceOf(ProtocolError);
  });

  it("sends no command at all once nothing is pending", async () => {
    const redis = new FakeRedis();
    serveFake(redis, { ping: () => "pong" });
    const cg = backend(redis);
    await cg.call(request(), { args: {} }, conn);
    const count = redis.commands.length;
    await sleep(300);
    expect(redis.commands.length).toBe(count);
  });

  it("close() fails pending calls and refuses new ones", async () => {
    const cg = backend(new FakeRedis(), { timeout: 30 });
    const call = cg.call(request(), { args: {} }, conn);
    await sleep(5);
    cg.close();
    cg.close();
    await expect(call).rejects.toBeInstanceOf(TransportError);
    await expect(cg.call(request(), { args: {} }, conn)).rejects.toThrow(/closed/);
  });
});

describe("resolveConsumerGroupsOptions", () => {
  const redis = new FakeRedis();

  it("fills in the defaults (the environment's timeout is the plan's: plan.test.ts)", () => {
    const resolved = resolveConsumerGroupsOptions({ redis });
    expect(resolved).toMatchObject({ timeout: 30, streamPrefix: "", streamMaxLen: 100_000 });
    expect(resolveConsumerGroupsOptions({ redis, timeout: 3 }).timeout).toBe(3);
    expect([
      ...resolveConsumerGroupsOptions({ redis, categoryTimeoutConfig: { mt5: 9 } }).categories,
    ]).toEqual(["general", "mt5"]);
  });

  it("names the bad option", () => {
    expect(() => resolveConsumerGroupsOptions({})).toThrow(/redisUrl/);
    expect(() => resolveConsumerGroupsOptions({ redisUrl: "http://x" })).toThrow(/redisToken/);
    expect(() => resolveConsumerGroupsOptions({ redis, pollMaxMs: 0 })).toThrow(/pollMaxMs/);
    expect(() => resolveConsumerGroupsOptions({ redis, pollMinMs: 9, pollMaxMs: 5 })).toThrow(/pollMinMs/);
    expect(() => resolveConsumerGroupsOptions({ redis, timeout: 0 })).toThrow(/`timeout`/);
    expect(() => resolveConsumerGroupsOptions({ redis, categoryTimeoutConfig: { mt5: -1 } })).toThrow(
      /categoryTimeoutConfig.mt5/,
    );
    expect(() => resolveConsumerGroupsOptions({ redis, categories: ["bad key"] })).toThrow(/categories/);
    expect(() => resolveConsumerGroupsOptions({ redis, pollMaxInFlight: 7 })).toThrow(
      /`pollMaxInFlight` must be an integer from 1 to `maxRedisConnections` \(6\), got 7/,
    );
    expect(() => resolveConsumerGroupsOptions({ redis, pollMaxInFlight: 0 })).toThrow(/pollMaxInFlight/);
  });

  it("sends up to half the object's connections as LPOPs on a backlog, unless told otherwise", () => {
    expect(resolveConsumerGroupsOptions({ redis }).pollMaxInFlight).toBe(3);
    expect(resolveConsumerGroupsOptions({ redis, maxRedisConnections: 1 }).pollMaxInFlight).toBe(1);
    expect(resolveConsumerGroupsOptions({ redis, maxRedisConnections: 5 }).pollMaxInFlight).toBe(2);
    expect(resolveConsumerGroupsOptions({ redis, pollMaxInFlight: 6 }).pollMaxInFlight).toBe(6);
  });
});
