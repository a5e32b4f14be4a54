/**
 * `npm run call` with a subscription, as a user at a terminal sees it: the reply and then every pushed
 * frame printed until Ctrl-C; a request without `subscribe` still prints one reply and exits; a gateway
 * that is not there gets a message saying where the CLI tried. A `ws` server stands in for the gateway (it
 * answers like the gateway does for the example's `ticks`).
 */
import { spawn } from "node:child_process";
import type { AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import { afterEach, beforeEach, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { waitFor } from "../support/wait.js";

const CLI = new URL("../../src/call/cli.ts", import.meta.url).pathname;

let server: WebSocketServer;
let timers: NodeJS.Timeout[] = [];
beforeEach(async () => {
  server = new WebSocketServer({ port: 0, host: "127.0.0.1" });
  await new Promise((resolve) => server.once("listening", resolve));
  // Each request gets its reply; a subscribing one then gets a tick every 50 ms while the socket is open.
  server.on("connection", (socket) => {
    socket.on("message", (data) => {
      const request = JSON.parse(String(data)) as Record<string, unknown>;
      const frame = (n: number) =>
        JSON.stringify({
          msg_type: "tick",
          tick: { symbol: request.ticks, quote: n, id: "sub1" },
          ...(request.subscribe ? { subscription: { id: "sub1" } } : {}),
          req_id: request.req_id,
        });
      socket.send(frame(0));
      if (!request.subscribe) return;
      let n = 0;
      const timer = setInterval(() => socket.send(frame(++n)), 50);
      timers.push(timer);
      socket.on("close", () => clearInterval(timer));
    });
  });
});
afterEach(async () => {
  for (const timer of timers) clearInterval(timer);
  timers = [];
  for (const client of server.clients) client.terminate();
  await new Promise((resolve) => server.close(resolve));
});

function runCall(request: string) {
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const child = spawn(process.execPath, ["--import", "tsx", CLI, "--url", url, request], {
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const stdout: string[] = [];
  createInterface({ input: child.stdout }).on("line", (line) => stdout.push(line));
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")),
  );
  return { child, stdout, exited };
}

it('prints pushed frames after the reply until Ctrl-C when the request had "subscribe": 1', async () => {
  const call = runCall('{"ticks":"R_100","subscribe":1}');
  try {
    await waitFor(() => call.stdout.length >= 4, 20_000);
    const quotes = call.stdout.map((line) => (JSON.parse(line) as { tick: { quote: number } }).tick.quote);
    expect(quotes.slice(0, 4)).toEqual([0, 1, 2, 3]);
    // Ctrl-C at a terminal signals the whole foreground process group (npm, its shell and the CLI).
    process.kill(-call.child.pid!, "SIGINT");
    expect(await call.exited).toBe(0);
  } finally {
    if (call.child.exitCode === null && call.child.signalCode === null)
      process.kill(-call.child.pid!, "SIGKILL");
  }
}, 30_000);

it("prints one reply and exits without subscribe", async () => {
  const call = runCall('{"ticks":"R_100"}');
  try {
    expect(await call.exited).toBe(0);
    expect(call.stdout).toHaveLength(1);
    expect(JSON.parse(call.stdout[0] as string)).toMatchObject({ msg_type: "tick", req_id: 1 });
  } finally {
    if (call.child.exitCode === null && call.child.signalCode === null)
      process.kill(-call.child.pid!, "SIGKILL");
  }
}, 30_000);

it("says where it tried and how to start a gateway when nothing answers, and exits 3", async () => {
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  server = new WebSocketServer({ noServer: true });
  const child = spawn(
    process.execPath,
    ["--import", "tsx", CLI, "--url", `ws://127.0.0.1:${port}/websockets/v3`, '{"ping":1}'],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise((resolve) => child.once("exit", resolve));
  expect(code).toBe(3);
  expect(stderr).toContain(`cannot connect to ws://127.0.0.1:${port}/websockets/v3`);
  expect(stderr).toContain("npm start (on another port, use the --url it prints)");
}, 30_000);
