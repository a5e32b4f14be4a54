/**
 * The benchmark's runtime floor (baseline c, bench/floor-worker.ts) in real workerd: it keeps the
 * platform's six outgoing connections per object even though local workerd lets more through, so a floor
 * measured with Redis some milliseconds away is one a deployment could have. Its ping2 mode (used by
 * bench/bare-poll.ts) makes two REST round trips per message.
 */
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { WebSocket } from "ws";
import { serveWorker, type ServedWorker } from "../../bench/worker-server.js";
import { compatibilityDate } from "../../bench/bench-stack.js";
import { PROJECT_ROOT } from "../../src/devstack/stack.js";

/** A REST endpoint that answers every `PING` after 100 ms and records how many it held at once. */
let endpoint: Server;
let open = 0;
let mostOpen = 0;
let pings = 0;
let floor: ServedWorker;

beforeAll(async () => {
  endpoint = createServer((request, response) => {
    open += 1;
    pings += 1;
    mostOpen = Math.max(mostOpen, open);
    request.resume();
    setTimeout(() => {
      open -= 1;
      response.writeHead(200, { "content-type": "application/json" });
      response.end('{"result":"PONG"}');
    }, 100);
  });
  await new Promise<void>((resolve) => endpoint.listen(0, "127.0.0.1", resolve));
  const address = endpoint.address();
  const port = typeof address === "object" && address ? address.port : 0;
  floor = await serveWorker({
    name: "floor-test",
    entry: join(PROJECT_ROOT, "bench/floor-worker.ts"),
    durableObject: { binding: "FLOOR", className: "FloorObject" },
    bindings: { UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${port}`, UPSTASH_REDIS_REST_TOKEN: "token" },
    compatibilityDate: compatibilityDate(),
  });
}, 60_000);

afterAll(async () => {
  await floor?.dispose();
  await new Promise((resolve) => endpoint?.close(resolve));
});

it("answers 20 messages sent at once with at most six PINGs in flight", async () => {
  const socket = new WebSocket(`${floor.httpUrl.replace(/^http/, "ws")}/websockets/v3?object=limit`);
  await new Promise((resolve, reject) => {
    socket.once("open", resolve);
    socket.once("error", reject);
  });
  const replies: Array<{ ping?: string; req_id?: number }> = [];
  const done = new Promise<void>((resolve) => {
    socket.on("message", (data) => {
      replies.push(JSON.parse(String(data)) as { ping?: string; req_id?: number });
      if (replies.length === 20) resolve();
    });
  });
  for (let reqId = 1; reqId <= 20; reqId += 1) socket.send(JSON.stringify({ ping: 1, req_id: reqId }));
  await done;
  socket.close();
  expect(replies.map((reply) => reply.ping)).toEqual(new Array(20).fill("pong"));
  expect(replies.map((reply) => reply.req_id).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual(
    Array.from({ length: 20 }, (_, index) => index + 1),
  );
  // Six at once, not twenty: the limit holds, and the floor still uses all of it.
  expect(mostOpen).toBe(6);
});

it("sends two PINGs one after the other per message in its ping2 mode", async () => {
  const socket = new WebSocket(`${floor.httpUrl.replace(/^http/, "ws")}/?object=ping2&mode=ping2`);
  await new Promise((resolve, reject) => socket.once("open", resolve).once("error", reject));
  const before = pings;
  for (let reqId = 1; reqId <= 3; reqId += 1) {
    const reply = new Promise<string>((resolve) => socket.once("message", (data) => resolve(String(data))));
    socket.send(JSON.stringify({ ping: 1, req_id: reqId }));
    expect(JSON.parse(await reply)).toEqual({ msg_type: "ping", ping: "pong", req_id: reqId });
  }
  socket.close();
  expect(pings - before).toBe(6);
});
