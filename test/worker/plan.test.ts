/**
 * The gateway's plan (`src/worker/plan.ts`): `createGateway()`'s options and the Worker's env resolved
 * once. The environment variables reach the backends through it, a backend setting is evaluated once
 * per env (not per request), a backend's `checkAction` refuses an action at start-up, and every default
 * is in `GATEWAY_DEFAULTS`.
 */
import { createExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ConsumerGroupsBackend, type BackendConfig } from "../../src/backends/index.js";
import type { Backend } from "../../src/core/types.js";
import type { CreateGatewayOptions, GatewayEnv } from "../../src/worker/config.js";
import { createGateway } from "../../src/worker/gateway.js";
import { buildBackends, compileGateway, GATEWAY_DEFAULTS, gatewayPlan } from "../../src/worker/plan.js";
import { FakeRedis } from "./fake-redis.js";

const redis = new FakeRedis();
const options: CreateGatewayOptions = {
  actions: [["ping"]],
  backends: { default: { type: "consumer_groups", redis } },
};

/** The consumer-groups backend an object would build from this env. */
function backendFor(env: GatewayEnv, config: Partial<BackendConfig> = {}): ConsumerGroupsBackend {
  const withConfig = { ...options, backends: { default: { type: "consumer_groups", redis, ...config } } };
  const backends = buildBackends(gatewayPlan(withConfig as CreateGatewayOptions, env), "object-1");
  return backends.default as ConsumerGroupsBackend;
}

describe("the gateway's plan", () => {
  it("gives consumer-groups backends RPC_QUEUE_RESPONSE_TIMEOUT and REPLY_TRANSPORT; options win", () => {
    const env = { RPC_QUEUE_RESPONSE_TIMEOUT: "12", REPLY_TRANSPORT: "subscribe" };
    const urls = { redisUrl: "http://r", redisToken: "t" };
    expect(backendFor(env, urls).options).toMatchObject({ timeout: 12, replyTransport: "subscribe" });
    expect(backendFor({}).options).toMatchObject({ timeout: 30, replyTransport: "poll" });
    const own = backendFor(env, { timeout: 3, replyTransport: "poll" });
    expect(own.options).toMatchObject({ timeout: 3, replyTransport: "poll" });
    own.close();
    expect(() => backendFor({ RPC_QUEUE_RESPONSE_TIMEOUT: "soon" })).toThrow(/RPC_QUEUE_RESPONSE_TIMEOUT/);
    expect(() => backendFor({ REPLY_TRANSPORT: "push" })).toThrow(/REPLY_TRANSPORT.*"push"/);
    // A malformed variable a backend does not use is not an error.
    expect(() => backendFor({ RPC_QUEUE_RESPONSE_TIMEOUT: "soon" }, { timeout: 5 })).not.toThrow();
  });

  it("evaluates a backend setting once per env, not on every request", async () => {
    let evaluated = 0;
    const gateway = createGateway({
      actions: [["ping"]],
      backends: {
        default: () => {
          evaluated += 1;
          return { type: "consumer_groups", redis };
        },
      },
    });
    const env: GatewayEnv = {};
    for (let i = 0; i < 3; i += 1) {
      const health = await gateway.fetch(
        new Request("http://gateway.test/health"),
        env,
        createExecutionContext(),
      );
      expect(health.status).toBe(200);
    }
    expect(evaluated).toBe(1);
    await gateway.fetch(new Request("http://gateway.test/health"), { ...env }, createExecutionContext());
    expect(evaluated).toBe(2);
  });

  it("lets a backend refuse an action at start-up (checkAction), naming the action", () => {
    const picky: Backend = {
      call: () => Promise.resolve({ result: null }),
      checkAction: (action) => {
        if (action.queue !== "known") throw new Error(`queue "${String(action.queue)}" does not exist`);
      },
    };
    const plan = (queue: string) =>
      gatewayPlan(
        { actions: [["ticks", { queue }]], backends: { default: { type: "custom", backend: picky } } },
        {},
      );
    expect(() => buildBackends(plan("typo"), "object-1")).toThrow(
      '`actions`: "ticks": queue "typo" does not exist',
    );
    expect(buildBackends(plan("known"), "object-1").default).toBe(picky);
  });

  it("is frozen, and holds every default of createGateway from GATEWAY_DEFAULTS", () => {
    const plan = gatewayPlan(options, {});
    expect(Object.isFrozen(plan)).toBe(true);
    expect(Object.isFrozen(plan.backends)).toBe(true);
    expect(Object.isFrozen(GATEWAY_DEFAULTS)).toBe(true);
    expect(GATEWAY_DEFAULTS).toMatchObject({
      basePath: "/websockets/v3",
      binding: "GATEWAY",
      objectShards: 4,
      healthTimeoutMs: 1_000,
      maxConnectionsPerObject: 10_000,
      maxAttachmentBytes: 2048,
      logLevel: "warn",
      metrics: true,
      playground: false,
      timeout: 30,
      replyTransport: "poll",
    });
    expect(compileGateway({ actions: [] })).toMatchObject({
      binding: GATEWAY_DEFAULTS.binding,
      objectShards: GATEWAY_DEFAULTS.objectShards,
      healthTimeoutMs: GATEWAY_DEFAULTS.healthTimeoutMs,
      maxConnectionsPerObject: GATEWAY_DEFAULTS.maxConnectionsPerObject,
      metricsObjects: ["shard-0", "shard-1", "shard-2", "shard-3"],
    });
    expect(gatewayPlan(options, { LOG_LEVEL: "debug" }).logLevel).toBe("debug");
    expect(gatewayPlan(options, { LOG_LEVEL: "loud" }).logLevel).toBe(GATEWAY_DEFAULTS.logLevel);
  });

  it("refuses a bad maxAttachmentBytes when the gateway is created", () => {
    expect(() => createGateway({ actions: [], maxAttachmentBytes: 0 })).toThrow(/maxAttachmentBytes/);
  });
});
