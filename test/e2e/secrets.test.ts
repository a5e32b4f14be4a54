/**
 * "The Redis token never appears in a log line, /health or /metrics", tested where it can break: the e2e
 * Worker under `wrangler dev` talks to a Redis REST endpoint that fails every command with an error
 * quoting the token it was sent (as a misbehaving proxy might), so the token reaches the gateway's error
 * paths for real. Only `[redacted]` may show; emptying the gateway's redaction list turns this red.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningWorker } from "../../src/devstack/stack.js";
import { connect, startE2eWorker } from "./helpers.js";
import { waitFor } from "../support/wait.js";

const TOKEN = `echoed-token-${Math.random().toString(36).slice(2)}`;
let server: Server;
let worker: RunningWorker;
const workerLines: string[] = [];

beforeAll(async () => {
  // Every command fails with Upstash's error shape, quoting the Authorization header it received.
  server = createServer((request, response) => {
    request.resume();
    request.on("end", () => {
      response.writeHead(400, { "content-type": "application/json" });
      response.end(JSON.stringify({ error: `ERR invalid credentials: ${request.headers.authorization}` }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  worker = await startE2eWorker({ url, token: TOKEN }, {}, (line) => workerLines.push(line));
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await new Promise((resolve) => server?.close(resolve));
});

describe("the Redis token", () => {
  it("is redacted from log lines, /health and /metrics when a Redis error quotes it", async () => {
    const client = await connect(worker.wsUrl);
    const reply = await client.call({ ping: 1 }, 10_000);
    expect(reply).toMatchObject({ error: { code: "WrongResponse" } });
    await client.close();
    const health = await fetch(`${worker.httpUrl}/health`);
    const healthText = await health.text();
    const metrics = await (await fetch(`${worker.httpUrl}/metrics`)).text();
    // The failure was logged (the token passed through the gateway's error path)...
    await waitFor(() => workerLines.some((line) => line.includes("ERR invalid credentials")), 10_000);
    expect(health.status).toBe(503);
    expect(healthText).toContain("ERR invalid credentials: Bearer [redacted]");
    expect(workerLines.join("\n")).toContain("[redacted]");
    expect(metrics).toContain('wsproxy_redis_errors_total{command="XADD"}');
    // ...and never shows.
    const exposed = [JSON.stringify(reply), healthText, metrics, ...workerLines].join("\n");
    expect(exposed).not.toContain(TOKEN);
  });
});
