/**
 * The playground routes (`/`, `/playground`, `/actions`), `GET /metrics` (Prometheus text, summed over the
 * objects in `metricsObjects`) and the JSON logger, in workerd.
 */
import { env } from "cloudflare:workers";
import { createExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { GatewayEnv } from "../../src/worker/config.js";
import { createGateway } from "../../src/worker/gateway.js";
import { createJsonLogger } from "../../src/worker/log.js";
import { MetricsRecorder, replyOutcome, type MetricsSnapshot } from "../../src/worker/metrics.js";
import { mergeSnapshots, renderPrometheus } from "../../src/worker/prometheus.js";
import { openSocket, SELF } from "./helpers.js";

/** `name{labels} value` lines of a scrape, by series. */
async function scrape(): Promise<Map<string, number>> {
  const response = await SELF.fetch("http://127.0.0.1/metrics");
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toContain("text/plain; version=0.0.4");
  const series = new Map<string, number>();
  for (const line of (await response.text()).split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    expect(match, `malformed line: ${line}`).not.toBeNull();
    series.set(match?.[1] ?? "", Number(match?.[2]));
  }
  return series;
}

const get = (series: Map<string, number>, key: string): number => series.get(key) ?? 0;

describe("the playground routes", () => {
  it("serves the page at / and /playground with a strict content security policy", async () => {
    for (const path of ["/", "/playground"]) {
      const response = await SELF.fetch(`http://gateway.test${path}`);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(response.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
      expect(await response.text()).toContain("<title>edge-wsproxy playground</title>");
    }
  });

  it("lists the actions in priority order with an example frame each", async () => {
    const response = await SELF.fetch("http://gateway.test/actions");
    const body = (await response.json()) as {
      basePath: string;
      actions: { name: string; example: unknown }[];
    };
    expect(body.basePath).toBe("/websockets/v3");
    expect(body.actions.map((action) => action.name).slice(0, 3)).toEqual(["ping", "login", "whoami"]);
    expect(body.actions[0]?.example).toEqual({ ping: 1, passthrough: { from: "example" } });
    expect(body.actions[1]).toEqual({ name: "login", msgType: "login", example: { login: 1 } });
  });

  it("is off unless asked for; /metrics is on unless turned off", async () => {
    const ctx = createExecutionContext();
    const plain = createGateway({ actions: [["ping"]], metrics: false });
    for (const path of ["/", "/actions", "/metrics"]) {
      expect((await plain.fetch(new Request(`http://gateway.test${path}`), {}, ctx)).status).toBe(404);
    }
  });
});

describe("GET /metrics", () => {
  it("sums requests by action and outcome, latency, Redis commands and connections over the objects", async () => {
    const before = await scrape();
    const a = await openSocket("metrics-a");
    const b = await openSocket("metrics-b");
    expect(await a.call({ ping: 1 })).toMatchObject({ ping: "pong" });
    expect(await b.call({ ping: 1 })).toMatchObject({ ping: "pong" });
    expect(await a.call({ nothing: 1 })).toMatchObject({ error: { code: "UnrecognisedRequest" } });
    a.ws.send("{not json");
    expect(await a.next()).toMatchObject({ error: { code: "BadRequest" } });
    expect(await b.call({ never: 1 })).toMatchObject({ error: { code: "WrongResponse" } });
    const after = await scrape();
    const delta = (key: string): number => get(after, key) - get(before, key);

    expect(delta('wsproxy_requests_total{action="ping",outcome="ok"}')).toBe(2);
    expect(delta('wsproxy_requests_total{action="none",outcome="UnrecognisedRequest"}')).toBe(1);
    expect(delta('wsproxy_requests_total{action="none",outcome="BadRequest"}')).toBe(1);
    expect(delta('wsproxy_requests_total{action="never",outcome="WrongResponse"}')).toBe(1);
    expect(delta('wsproxy_request_duration_seconds_count{action="ping"}')).toBe(2);
    expect(delta('wsproxy_request_duration_seconds_bucket{action="never",le="0.25"}')).toBe(0);
    expect(delta('wsproxy_request_duration_seconds_bucket{action="never",le="+Inf"}')).toBe(1);
    expect(delta('wsproxy_redis_commands_total{command="XADD"}')).toBe(3);
    expect(delta('wsproxy_redis_commands_total{command="LPOP"}')).toBeGreaterThanOrEqual(2);
    expect(delta('wsproxy_backend_timeouts_total{backend="default"}')).toBe(1);
    expect(delta("wsproxy_connections_opened_total")).toBe(2);
    expect(get(after, "wsproxy_open_connections")).toBeGreaterThanOrEqual(2);
    expect(get(after, 'wsproxy_pending_requests{backend="default"}')).toBe(0);
    expect(get(after, "wsproxy_objects_reporting")).toBe(2);
    expect(get(after, "wsproxy_objects_failed")).toBe(0);
    a.ws.close(1000);
    b.ws.close(1000);
  });

  it("never shows the Redis token, nor does /health", async () => {
    const secret = "very-secret-token-for-metrics";
    const withToken = { ...(env as unknown as GatewayEnv), UPSTASH_REDIS_REST_TOKEN: secret };
    const gateway = createGateway({ actions: [["ping"]], metricsObjects: ["metrics-a"] });
    const ctx = createExecutionContext();
    for (const path of ["/metrics", "/health"]) {
      const response = await gateway.fetch(new Request(`http://gateway.test${path}`), withToken, ctx);
      expect(await response.text()).not.toContain(secret);
    }
  });

  it("renders histograms, escapes label values and sums equal series", () => {
    const snapshot = (value: number): MetricsSnapshot => ({
      samples: [
        { name: "wsproxy_requests_total", labels: { action: 'a"b\\c', outcome: "ok" }, value },
        { name: "wsproxy_open_connections", labels: {}, value },
      ],
    });
    const text = renderPrometheus(mergeSnapshots([snapshot(1), snapshot(2)]));
    expect(text).toContain('wsproxy_requests_total{action="a\\"b\\\\c",outcome="ok"} 3\n');
    expect(text).toContain("# TYPE wsproxy_open_connections gauge\nwsproxy_open_connections 3\n");
    expect(replyOutcome({ msg_type: "x", error: { code: "InvalidValue" } })).toBe("app_error");
    expect(replyOutcome({ msg_type: "x", error: { code: "RateLimit" } })).toBe("RateLimit");
  });
});

describe("structured logs", () => {
  afterEach(() => vi.restoreAllMocks());

  it("writes one JSON line per request with the correlation id, and never the token", () => {
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((line: string) => void lines.push(line));
    vi.spyOn(console, "error").mockImplementation((line: string) => void lines.push(line));
    const logger = createJsonLogger("info", ["s3cret-token"], { object: "shard-0" });
    const recorder = new MetricsRecorder(new Map([["ping", {}]]), () => 1_000, logger.request);
    const message = { ping: 1 };
    const conn = { id: "conn-1" } as Parameters<typeof recorder.countReply>[0];
    recorder.noteRequest(conn, {
      name: "ping",
      args: message,
      correlationId: "corr-1",
      receivedAtMs: 990,
    } as unknown as Parameters<typeof recorder.noteRequest>[1]);
    recorder.countReply(conn, message, { msg_type: "ping", ping: "pong" });
    logger.error("Redis failed", new Error("401 for token s3cret-token", { cause: "s3cret-token" }));
    logger.debug("not written at info");

    expect(lines).toHaveLength(2);
    const [request, error] = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(request).toMatchObject({
      level: "info",
      object: "shard-0",
      msg: "request",
      action: "ping",
      outcome: "ok",
      duration_ms: 10,
      correlation_id: "corr-1",
      connection_id: "conn-1",
    });
    expect(error).toMatchObject({ level: "error", msg: "Redis failed", details: { name: "Error" } });
    expect(lines.join("\n")).not.toContain("s3cret-token");
  });
});
