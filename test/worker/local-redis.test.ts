import { env } from "cloudflare:workers";
import { createExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createGateway } from "../../src/worker/gateway.js";
import { isLocalRedisUrl, isLoopbackHost } from "../../src/worker/local-redis.js";
import { SELF } from "./helpers.js";

// The Worker's vars (test/worker/wrangler.toml) hold a local bridge's URL: http://127.0.0.1:9.
const LOCAL_URL = "http://127.0.0.1:9";
const TOKEN = "test-token-not-a-secret";

afterEach(() => {
  vi.restoreAllMocks();
});

describe("a plain-http or loopback Redis URL", () => {
  it("is refused with a generic 503 when the gateway is reached on a public host (the detail is logged)", async () => {
    const response = await SELF.fetch("https://gateway.example.com/health?gateway=env");
    expect(response.status).toBe(503);
    const text = await response.text();
    const body = JSON.parse(text) as { ok: boolean; error?: string; redis: Record<string, unknown> };
    expect(body.ok).toBe(false);
    expect(body.error).toBe("The gateway is misconfigured: see the Worker's log.");
    // Refused before any PING, and neither the URL nor the token is shown.
    expect(body.redis).toEqual({});
    expect(text).not.toContain("127.0.0.1");
    expect(text).not.toContain(TOKEN);
  });

  it("is accepted while the gateway is reached on a loopback address (local development)", async () => {
    for (const host of ["127.0.0.1", "localhost:8787", "[::1]:8787"]) {
      const response = await SELF.fetch(`http://${host}/health?gateway=env`);
      const body = (await response.json()) as { error?: string; redis: Record<string, unknown> };
      // Nothing listens on port 9: the PING was tried (not refused) and failed.
      expect(body.error, host).toBeUndefined();
      expect(body.redis.default, host).toMatchObject({ reachable: false });
    }
  });

  it("refuses a WebSocket upgrade from a public host with a generic 503, and accepts it on loopback", async () => {
    const refused = await SELF.fetch("https://gateway.example.com/websockets/v3?gateway=env", {
      headers: { upgrade: "websocket" },
    });
    expect(refused.status).toBe(503);
    const text = await refused.text();
    expect(text).toBe("Service Unavailable");

    const accepted = await SELF.fetch("http://127.0.0.1/websockets/v3?gateway=env", {
      headers: { upgrade: "websocket" },
    });
    expect(accepted.status).toBe(101);
    accepted.webSocket?.accept();
    accepted.webSocket?.close(1000, "done");
  });

  it("is refused by the Durable Object itself for an upgrade forwarded from a public host", async () => {
    const namespace = (env as unknown as { ENV_GATEWAY: DurableObjectNamespace }).ENV_GATEWAY;
    const stub = namespace.get(namespace.idFromName(`direct-${crypto.randomUUID()}`));
    const refused = await stub.fetch("https://gateway.example.com/websockets/v3", {
      headers: { upgrade: "websocket" },
    });
    expect(refused.status).toBe(503);
    expect(await refused.text()).toBe("Service Unavailable");
    const accepted = await stub.fetch("http://localhost/websockets/v3", {
      headers: { upgrade: "websocket" },
    });
    expect(accepted.status).toBe(101);
    accepted.webSocket?.accept();
    accepted.webSocket?.close(1000, "done");
  });

  it("is logged once per isolate, not once per request, without the URL or the token", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const gateway = createGateway({ actions: [["ping"]] });
    const vars = { UPSTASH_REDIS_REST_URL: LOCAL_URL, UPSTASH_REDIS_REST_TOKEN: TOKEN };
    const ctx = createExecutionContext();
    for (let i = 0; i < 3; i += 1) {
      const health = await gateway.fetch(new Request("https://gateway.example.com/health"), vars, ctx);
      expect(health.status).toBe(503);
      const upgrade = await gateway.fetch(
        new Request("https://gateway.example.com/websockets/v3", { headers: { upgrade: "websocket" } }),
        vars,
        ctx,
      );
      expect(upgrade.status).toBe(503);
    }
    const lines = errors.mock.calls.map((call) => call.map(String).join(" "));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("UPSTASH_REDIS_REST_URL is a plain-http or loopback address");
    expect(lines[0]).not.toContain("127.0.0.1");
    expect(lines[0]).not.toContain(TOKEN);
  });

  it("is an https Upstash URL only when not plain http and not on a loopback host", () => {
    expect(isLocalRedisUrl("https://eu1-example-12345.upstash.io")).toBe(false);
    for (const url of [
      "http://eu1-example-12345.upstash.io",
      "https://127.0.0.1:8079",
      "https://127.8.9.10",
      "https://localhost:8079",
      "https://[::1]:8079",
    ]) {
      expect(isLocalRedisUrl(url), url).toBe(true);
    }
    expect(isLoopbackHost("128.0.0.1")).toBe(false);
    expect(isLoopbackHost("localhost.example.com")).toBe(false);
  });
});
