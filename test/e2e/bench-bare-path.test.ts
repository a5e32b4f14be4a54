/**
 * The floor's bare paths (bench/floor-worker.ts `?mode=poll` and `?mode=sub`, the benchmark's (d) and
 * bench/bare-poll.ts) on the real stack: redis-server, the bridge and the example service, in list mode for
 * the poll path and in publish-batch mode for the subscribe path. Each message is answered only once the
 * service's reply to the entry it wrote came back (popped from the object's reply key, or published on its
 * channel), so the bound they measure is the transport's whole I/O path. No timing assertion.
 */
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { compatibilityDate } from "../../bench/bench-stack.js";
import { serveWorker, type ServedWorker } from "../../bench/worker-server.js";
import { PROJECT_ROOT, startStack, type Stack } from "../../src/devstack/stack.js";
import { waitFor } from "../support/wait.js";
import { stackLog } from "./helpers.js";

/** The stack with its service in `replyMode`, and the floor Worker in front of its bridge. */
function floorOn(replyMode: "list" | "publish-batch") {
  const running: { stack?: Stack; floor?: ServedWorker } = {};
  beforeAll(async () => {
    running.stack = await startStack({
      service: { args: [`--reply-mode=${replyMode}`] },
      log: stackLog,
    });
    running.floor = await serveWorker({
      name: `floor-bare-${replyMode}`,
      entry: join(PROJECT_ROOT, "bench/floor-worker.ts"),
      durableObject: { binding: "FLOOR", className: "FloorObject" },
      bindings: {
        UPSTASH_REDIS_REST_URL: running.stack.bridge.url,
        UPSTASH_REDIS_REST_TOKEN: running.stack.bridge.token,
      },
      compatibilityDate: compatibilityDate(),
    });
  }, 120_000);
  afterAll(async () => {
    await running.floor?.dispose();
    await running.stack?.stop();
  });
  return running as { stack: Stack; floor: ServedWorker };
}

/** An open socket to the floor object `object` in `mode`. */
async function openFloor(floor: ServedWorker, object: string, mode: string): Promise<WebSocket> {
  const socket = new WebSocket(`${floor.httpUrl.replace(/^http/, "ws")}/?object=${object}&mode=${mode}`);
  await new Promise((resolve, reject) => socket.once("open", resolve).once("error", reject));
  return socket;
}

/** Sends five pings one at a time on `mode` and returns the replies; the entries written are checked. */
async function fivePings(running: { stack: Stack; floor: ServedWorker }, mode: string) {
  const socket = await openFloor(running.floor, `${mode}-test`, mode);
  const redis = new Redis(running.stack.redis.url);
  try {
    const entriesBefore = await redis.xlen("general");
    const replies: unknown[] = [];
    for (let reqId = 1; reqId <= 5; reqId += 1) {
      const reply = new Promise<string>((resolve) => socket.once("message", (data) => resolve(String(data))));
      socket.send(JSON.stringify({ ping: 1, req_id: reqId }));
      replies.push(JSON.parse(await reply));
    }
    // One gateway entry per message, each served by the service.
    expect((await redis.xlen("general")) - entriesBefore).toBe(5);
    const entry = (await redis.xrevrange("general", "+", "-", "COUNT", 1))[0]?.[1] ?? [];
    const who = entry[entry.indexOf("who") + 1] ?? "";
    expect(who).toMatch(/^bench:bare:/);
    return { replies, listLength: await redis.llen(who) };
  } finally {
    socket.close();
    redis.disconnect();
  }
}

/**
 * With the service stopped, a message on `mode` gets no answer within a second (its reply cannot exist
 * yet); once a service in `replyMode` is back, the answer comes.
 */
async function waitsForTheService(
  running: { stack: Stack; floor: ServedWorker },
  mode: string,
  replyMode: string,
): Promise<void> {
  const socket = await openFloor(running.floor, `${mode}-wait`, mode);
  try {
    // The path is set up (the sub mode's stream open) before the service goes away.
    const first = new Promise<string>((resolve) => socket.once("message", (data) => resolve(String(data))));
    socket.send(JSON.stringify({ ping: 1, req_id: 1 }));
    await first;
    await running.stack.services.at(-1)?.stop();
    const answers: string[] = [];
    socket.on("message", (data) => answers.push(String(data)));
    socket.send(JSON.stringify({ ping: 1, req_id: 2 }));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(answers).toEqual([]);
    await running.stack.startService({ args: [`--reply-mode=${replyMode}`] });
    await waitFor(() => answers.length > 0, 20_000);
    expect(JSON.parse(answers[0] ?? "{}")).toEqual({ msg_type: "ping", ping: "pong", req_id: 2 });
  } finally {
    socket.close();
  }
}

const pongs = [1, 2, 3, 4, 5].map((reqId) => ({ msg_type: "ping", ping: "pong", req_id: reqId }));

describe.each([
  // The poll path pops every reply off the list; the subscribe path's replies are published, never listed.
  { mode: "poll", replyMode: "list", comesBack: "popped from its reply key" },
  { mode: "sub", replyMode: "publish-batch", comesBack: "published on its reply channel" },
] as const)("the floor's ?mode=$mode, service in $replyMode mode", ({ mode, replyMode, comesBack }) => {
  const running = floorOn(replyMode);
  it(`answers each message once the service's reply to its own XADD is ${comesBack}`, async () => {
    const { replies, listLength } = await fivePings(running, mode);
    expect(replies).toEqual(pongs);
    expect(listLength).toBe(0);
  }, 60_000);

  it("waits for the service's reply: none while the service is down, the answer once it is back", async () => {
    await waitsForTheService(running, mode, replyMode);
  }, 60_000);
});
