/**
 * Worker-side admission, in workerd: per-client-address caps per object (connections, frames/s; the
 * address from `cf-connecting-ip`, test-worker.ts sets 3 connections and 20 frames/s), `/metrics` behind
 * a token (open on loopback only) without waking an object for a refused scrape, and `/health`'s cached
 * `PING`.
 */
import { env } from "cloudflare:workers";
import { createExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { GatewayEnv } from "../../src/worker/config.js";
import { createGateway } from "../../src/worker/gateway.js";
import type { GatewayDurableObject } from "../../src/worker/gateway-object.js";
import { frameSocket, type Frame } from "../support/socket.js";
import { waitFor } from "../support/wait.js";
import { SELF, uniqueObject, type TestSocket } from "./helpers.js";
import { fakeRedis } from "./test-worker.js";

/** Opens a socket to `object` as a client at `address` (no header when undefined). */
async function openFrom(object: string, address?: string): Promise<TestSocket> {
  const headers: Record<string, string> = { upgrade: "websocket" };
  if (address) headers["cf-connecting-ip"] = address;
  const response = await SELF.fetch(`http://gateway.test/websockets/v3?object=${object}`, { headers });
  const ws = response.webSocket;
  if (response.status !== 101 || !ws) throw new Error(`upgrade failed: ${response.status}`);
  ws.accept();
  return frameSocket(ws);
}

/** The admission counter of one object, by reason. */
async function refused(object: string, reason: string): Promise<number> {
  const namespace = (env as unknown as { GATEWAY: DurableObjectNamespace<GatewayDurableObject> }).GATEWAY;
  const snapshot = await namespace.get(namespace.idFromName(object)).metricsSnapshot();
  const sample = snapshot.samples.find(
    (entry) => entry.name === "wsproxy_admission_refused_total" && entry.labels.reason === reason,
  );
  return sample?.value ?? 0;
}

describe("per-address caps", () => {
  it("closes a connection over maxConnectionsPerAddress with 1008; other addresses and a freed slot still fit", async () => {
    const object = uniqueObject("per-address");
    const held = await Promise.all([1, 2, 3].map(() => openFrom(object, "203.0.113.7")));
    const extra = await openFrom(object, "203.0.113.7");
    expect(await extra.closed).toEqual({ code: 1008, reason: "Too many connections from this address" });
    // Another address, and a client without the header (local development), are served.
    const other = await openFrom(object, "198.51.100.1");
    const unknown = await openFrom(object);
    for (const client of [...held, other, unknown]) {
      expect(await client.call({ ping: 1 })).toMatchObject({ ping: "pong" });
    }
    await held[0]?.close();
    const again = await openFrom(object, "203.0.113.7");
    expect(await again.call({ ping: 1 })).toMatchObject({ ping: "pong" });
    expect(await refused(object, "address_connections")).toBe(1);
    await Promise.all([...held.slice(1), other, unknown, again].map((client) => client.close()));
  });

  it("answers RateLimit over maxFramesPerSecondPerAddress, counted over the address's connections, while others are served", async () => {
    const object = uniqueObject("per-address-rate");
    // Two connections of one address, each under the per-connection rate, together over the address's.
    const flooders = await Promise.all([openFrom(object, "203.0.113.9"), openFrom(object, "203.0.113.9")]);
    const bystander = await openFrom(object, "198.51.100.2");
    for (let i = 0; i < 30; i += 1) {
      for (const flooder of flooders) flooder.sendRaw(JSON.stringify({ local: 1, req_id: i }));
    }
    const replies: Frame[] = [];
    await waitFor(() => {
      for (const flooder of flooders) replies.push(...flooder.queued.splice(0));
      return replies.length === 60;
    }, 10_000);
    const limited = replies.filter((reply) => (reply.error as { code?: string })?.code === "RateLimit");
    expect(limited.length).toBeGreaterThanOrEqual(60 - 21 - 5);
    expect(limited[0]).toMatchObject({ req_id: expect.any(Number) });
    expect(await bystander.call({ ping: 1 })).toMatchObject({ ping: "pong" });
    expect(await refused(object, "address_frames")).toBe(limited.length);
    await Promise.all([...flooders, bystander].map((client) => client.close()));
  });
});

describe("GET /metrics", () => {
  /** A namespace that counts the objects asked (none must be for a refused scrape). */
  function countingNamespace() {
    const asked: string[] = [];
    const namespace = {
      idFromName: (name: string) => name,
      get: (name: string) => {
        asked.push(name);
        return { metricsSnapshot: () => ({ samples: [] }) };
      },
    };
    return { asked, namespace };
  }

  it("is 404 on a public host without a token, and open on a loopback host", async () => {
    const gateway = createGateway({ actions: [["ping"]] });
    const { asked, namespace } = countingNamespace();
    const vars = { ...(env as unknown as GatewayEnv), GATEWAY: namespace };
    const ctx = createExecutionContext();
    const publicScrape = await gateway.fetch(new Request("https://gateway.example.com/metrics"), vars, ctx);
    expect(publicScrape.status).toBe(404);
    expect(asked).toEqual([]);
    const local = await gateway.fetch(new Request("http://127.0.0.1:8787/metrics"), vars, ctx);
    expect(local.status).toBe(200);
    expect(asked).toHaveLength(4);
  });

  it("asks for the bearer token when one is configured (option or METRICS_TOKEN), 401 otherwise", async () => {
    const { asked, namespace } = countingNamespace();
    const ctx = createExecutionContext();
    const url = "https://gateway.example.com/metrics";
    const byOption = createGateway({ actions: [["ping"]], metricsToken: "scrape-secret-1" });
    const byEnv = createGateway({ actions: [["ping"]] });
    const base = { ...(env as unknown as GatewayEnv), GATEWAY: namespace };
    for (const [gateway, vars, token] of [
      [byOption, base, "scrape-secret-1"],
      [byEnv, { ...base, METRICS_TOKEN: "scrape-secret-2" }, "scrape-secret-2"],
    ] as const) {
      for (const authorization of [undefined, "Bearer wrong", `Bearer ${token}x`]) {
        const headers: Record<string, string> = authorization ? { authorization } : {};
        const response = await gateway.fetch(new Request(url, { headers }), vars, ctx);
        expect(response.status).toBe(401);
      }
      // Even on loopback: a configured token is always required.
      const local = await gateway.fetch(new Request("http://127.0.0.1/metrics"), vars, ctx);
      expect(local.status).toBe(401);
      expect(asked).toEqual([]);
      const ok = await gateway.fetch(
        new Request(url, { headers: { authorization: `Bearer ${token}` } }),
        vars,
        ctx,
      );
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain("wsproxy_objects_failed 0");
      asked.length = 0;
    }
  });
});

describe("GET /health", () => {
  it("reuses its PING for healthCacheMs (one billed command per interval), then asks again", async () => {
    const backends = { default: { type: "consumer_groups" as const, redis: fakeRedis } };
    const gateway = createGateway({ actions: [["ping"]], backends, healthCacheMs: 60_000 });
    const uncached = createGateway({ actions: [["ping"]], backends, healthCacheMs: 0 });
    const ctx = createExecutionContext();
    const vars: GatewayEnv = {};
    const pings = () => fakeRedis.count("PING");
    const before = pings();
    for (let i = 0; i < 5; i += 1) {
      const response = await gateway.fetch(new Request("http://gateway.test/health"), vars, ctx);
      expect(await response.json()).toMatchObject({ ok: true, redis: { default: { reachable: true } } });
    }
    expect(pings()).toBe(before + 1);
    for (let i = 0; i < 2; i += 1) await uncached.fetch(new Request("http://gateway.test/health"), vars, ctx);
    expect(pings()).toBe(before + 3);
  });
});
