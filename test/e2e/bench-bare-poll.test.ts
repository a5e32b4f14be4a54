/**
 * The floor's poll mode (bench/floor-worker.ts `?mode=poll`, measured by bench/bare-poll.ts) on the real
 * stack: redis-server, the bridge and the example service in list mode. Each message is answered only
 * once the service's reply to the entry it wrote was popped from the object's reply key, so the bound it
 * measures is the poll transport's whole I/O path. No timing assertion.
 */
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { WebSocket } from "ws";
import { compatibilityDate } from "../../bench/bench-stack.js";
import { serveWorker, type ServedWorker } from "../../bench/worker-server.js";
import { PROJECT_ROOT, startStack, type Stack } from "../../src/devstack/stack.js";
import { stackLog } from "./helpers.js";

let stack: Stack;
let floor: ServedWorker;

beforeAll(async () => {
  stack = await startStack({ service: true, log: stackLog });
  floor = await serveWorker({
    name: "floor-poll-test",
    entry: join(PROJECT_ROOT, "bench/floor-worker.ts"),
    durableObject: { binding: "FLOOR", className: "FloorObject" },
    bindings: { UPSTASH_REDIS_REST_URL: stack.bridge.url, UPSTASH_REDIS_REST_TOKEN: stack.bridge.token },
    compatibilityDate: compatibilityDate(),
  });
}, 120_000);

afterAll(async () => {
  await floor?.dispose();
  await stack?.stop();
});

it("answers each message after popping the service's reply to its own XADD", async () => {
  const redis = new Redis(stack.redis.url);
  const socket = new WebSocket(`${floor.httpUrl.replace(/^http/, "ws")}/?object=poll-test&mode=poll`);
  try {
    await new Promise((resolve, reject) => socket.once("open", resolve).once("error", reject));
    const entriesBefore = await redis.xlen("general");
    const replies: Array<{ ping?: string; req_id?: number; error?: unknown }> = [];
    for (let reqId = 1; reqId <= 5; reqId += 1) {
      const reply = new Promise<string>((resolve) => socket.once("message", (data) => resolve(String(data))));
      socket.send(JSON.stringify({ ping: 1, req_id: reqId }));
      replies.push(JSON.parse(await reply) as { ping?: string; req_id?: number });
    }
    expect(replies).toEqual(
      [1, 2, 3, 4, 5].map((reqId) => ({ msg_type: "ping", ping: "pong", req_id: reqId })),
    );
    // One gateway entry per message, served by the service; every reply taken off the list.
    expect((await redis.xlen("general")) - entriesBefore).toBe(5);
    const entry = (await redis.xrevrange("general", "+", "-", "COUNT", 1))[0]?.[1] ?? [];
    const who = entry[entry.indexOf("who") + 1] ?? "";
    expect(who).toMatch(/^bench:bare-poll:/);
    expect(await redis.llen(who)).toBe(0);
  } finally {
    socket.close();
    redis.disconnect();
  }
}, 60_000);
