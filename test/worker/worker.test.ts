import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { GatewayEnv } from "../../src/worker/config.js";
import { createGateway } from "../../src/worker/gateway.js";
import { createExecutionContext } from "cloudflare:test";
import { SELF } from "./helpers.js";
import worker, { fakeRedis } from "./test-worker.js";

describe("the Worker", () => {
  it("answers 426 Upgrade Required on the WebSocket path without an upgrade", async () => {
    const get = await SELF.fetch("http://gateway.test/websockets/v3");
    expect(get.status).toBe(426);
    expect(get.headers.get("upgrade")).toBe("websocket");
    // Called directly: through `exports.default.fetch` the pool turns an upgrade POST into a GET.
    const post = await worker.fetch(
      new Request("http://gateway.test/websockets/v3", { method: "POST", headers: { upgrade: "websocket" } }),
      env as unknown as GatewayEnv,
      createExecutionContext(),
    );
    expect(post.status).toBe(426);
  });

  it("reports health with Redis reachability", async () => {
    const before = fakeRedis.count("PING");
    const response = await SELF.fetch("http://gateway.test/health");
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ ok: true, redis: { default: { reachable: true } } });
    expect(fakeRedis.count("PING")).toBe(before + 1);
  });

  it("reports an unreachable Redis as 503", async () => {
    fakeRedis.failing.add("PING");
    try {
      const response = await SELF.fetch("http://gateway.test/health");
      expect(response.status).toBe(503);
      expect(await response.json()).toMatchObject({ ok: false, redis: { default: { reachable: false } } });
    } finally {
      fakeRedis.failing.delete("PING");
    }
  });

  it("logs the missing variable once, answers a generic error, and never shows the token", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const gateway = createGateway({ actions: [["ping"]] });
    const ctx = createExecutionContext();
    const generic = { error: "The gateway is misconfigured: see the Worker's log." };
    for (let i = 0; i < 2; i += 1) {
      const noUrl = await gateway.fetch(new Request("http://gateway.test/health"), {}, ctx);
      expect(noUrl.status).toBe(503);
      expect(await noUrl.json()).toMatchObject({ ok: false, ...generic });
    }

    const env = { UPSTASH_REDIS_REST_URL: "http://127.0.0.1:1" };
    const upgrade = await gateway.fetch(
      new Request("http://gateway.test/websockets/v3", { headers: { upgrade: "websocket" } }),
      env,
      ctx,
    );
    expect(upgrade.status).toBe(500);
    expect(await upgrade.json()).toEqual(generic);
    const lines = errors.mock.calls.map((call) => call.map(String).join(" "));
    expect(lines.filter((line) => line.includes("UPSTASH_REDIS_REST_URL is not set"))).toHaveLength(1);
    expect(lines.filter((line) => line.includes("UPSTASH_REDIS_REST_TOKEN is not set"))).toHaveLength(1);
    vi.restoreAllMocks();

    const secret = "very-secret-token";
    const down = await gateway.fetch(
      new Request("http://gateway.test/health"),
      { UPSTASH_REDIS_REST_URL: "http://127.0.0.1:1", UPSTASH_REDIS_REST_TOKEN: secret },
      ctx,
    );
    expect(down.status).toBe(503);
    expect(await down.text()).not.toContain(secret);
  });

  it("refuses an action whose category or backend is not configured, at start-up", async () => {
    const { buildBackends, gatewayPlan } = await import("../../src/worker/plan.js");
    const options = {
      actions: [["ticks", { category: "mt5" }]] as [string, { category: string }][],
      backends: {
        default: { type: "consumer_groups" as const, redis: fakeRedis, queueSeparationEnabled: true },
      },
    };
    expect(() => buildBackends(gatewayPlan(options, {}), "object-1")).toThrow(
      /"ticks": category "mt5" is not configured/,
    );
    const configured = {
      ...options,
      backends: { default: { ...options.backends.default, categories: ["mt5"] } },
    };
    expect(() => buildBackends(gatewayPlan(configured, {}), "object-1")).not.toThrow();
    const noDefault = { actions: [["ping"]] as [string][], backends: { other: options.backends.default } };
    expect(() => buildBackends(gatewayPlan(noDefault, {}), "object-1")).toThrow(
      /"ping" uses backend "default"/,
    );
  });
});
