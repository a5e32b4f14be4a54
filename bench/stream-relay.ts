/**
 * `npx tsx bench/stream-relay.ts [rounds]`: how long the local runtime takes to hand a server-sent event to
 * an object, the subscribe transport's reply path with nothing of the gateway in it. Prints medians of:
 *
 * - `echo`: a WebSocket message to an object and back (the WebSocket hop, both ways);
 * - `node`: `PUBLISH` (native) until a Node reader of the bridge's `/subscribe` stream has the event;
 * - `object`: `PUBLISH` until an object reading the same stream has sent the event on over its WebSocket.
 *
 * `object - node - echo / 2` is the time workerd adds between the event's bytes reaching it and the
 * object's code reading them (docs/performance.md). Starts and stops its own redis-server and bridge.
 */
import http from "node:http";
import { join } from "node:path";
import { Redis } from "ioredis";
import { WebSocket } from "ws";
import { PROJECT_ROOT, startStack } from "../src/devstack/stack.js";
import { processCpuMs } from "./process-stats.js";
import { serveWorker } from "./worker-server.js";
import { compatibilityDate } from "./bench-stack.js";

const rounds = Number(process.argv[2] ?? 3_000);

/** workerd's CPU per round of the last {@link medianOf}, µs (undefined when its PID is unknown). */
let workerdPid: number | undefined;
const cpuPerRound: Record<string, number[]> = {};

/**
 * Median of `samples` (ms), after running `once` `rounds` times one after the other; workerd's CPU per
 * round goes to `cpuPerRound[name]`.
 */
async function medianOf(name: string, once: (index: number) => Promise<void>): Promise<number> {
  const cpuBefore = workerdPid === undefined ? undefined : processCpuMs(workerdPid);
  const samples: number[] = [];
  for (let index = 0; index < rounds; index++) {
    const started = process.hrtime.bigint();
    await once(index);
    samples.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  const cpuAfter = workerdPid === undefined ? undefined : processCpuMs(workerdPid);
  if (cpuBefore !== undefined && cpuAfter !== undefined)
    (cpuPerRound[name] ??= []).push(((cpuAfter - cpuBefore) * 1000) / rounds);
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)] ?? NaN;
}

/** Resolves `next()`'s promise at each message of `socket` that `matches`. */
function arrivals(on: (listener: (text: string) => void) => void, matches: (text: string) => boolean) {
  let resolve: (() => void) | undefined;
  on((text) => {
    if (matches(text)) resolve?.();
  });
  return () => new Promise<void>((done) => (resolve = done));
}

async function main(): Promise<void> {
  const stack = await startStack({});
  const worker = await serveWorker({
    name: "relay",
    entry: join(PROJECT_ROOT, "bench/stream-relay-worker.ts"),
    durableObject: { binding: "RELAY", className: "RelayObject" },
    bindings: { UPSTASH_REDIS_REST_URL: stack.bridge.url, UPSTASH_REDIS_REST_TOKEN: stack.bridge.token },
    compatibilityDate: compatibilityDate(),
  });
  workerdPid = worker.workerdPid;
  const publisher = new Redis(stack.redis.url);
  const agent = new http.Agent({ keepAlive: true });
  try {
    const open = async (mode: string): Promise<WebSocket> => {
      const socket = new WebSocket(`${worker.httpUrl.replace(/^http/, "ws")}/?mode=${mode}`);
      await new Promise((resolve, reject) => socket.once("open", resolve).once("error", reject));
      return socket;
    };
    const echo = await open("echo");
    const echoed = arrivals(
      (listener) => echo.on("message", (data) => listener(String(data))),
      () => true,
    );
    const stream = await open("stream");
    const streamed = arrivals(
      (listener) => stream.on("message", (data) => listener(String(data))),
      (text) => text.includes("message,relay,"),
    );
    // A Node reader of the same channel, through the same bridge.
    const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const request = http.request(`${stack.bridge.url}/subscribe/relay`, {
        method: "POST",
        agent,
        headers: { authorization: `Bearer ${stack.bridge.token}`, accept: "text/event-stream" },
      });
      request.once("response", resolve).once("error", reject);
      request.end("[]");
    });
    const nodeRead = arrivals(
      (listener) => response.on("data", (chunk: Buffer) => listener(chunk.toString())),
      (text) => text.includes("message,relay,"),
    );
    // Both readers subscribed, and a warm-up for the JIT.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const results: Record<string, number[]> = { echo: [], node: [], object: [] };
    for (let pass = 0; pass < 3; pass++) {
      results.echo?.push(
        await medianOf("echo", async (index) => {
          const arrived = echoed();
          echo.send(String(index));
          await arrived;
        }),
      );
      // Each PUBLISH reaches both readers; each figure waits for its own reader only.
      results.node?.push(
        await medianOf("node", async (index) => {
          const arrived = nodeRead();
          await publisher.publish("relay", `{"message_id":"${index}"}`);
          await arrived;
        }),
      );
      results.object?.push(
        await medianOf("object", async (index) => {
          const arrived = streamed();
          await publisher.publish("relay", `{"message_id":"${index}"}`);
          await arrived;
        }),
      );
    }
    // The best of three passes: the machine's other work only ever adds time.
    const best = (name: string) => Math.min(...(results[name] ?? [NaN]));
    const [echoMs, nodeMs, objectMs] = [best("echo"), best("node"), best("object")];
    const cpu = (name: string) => {
      const values = cpuPerRound[name];
      return values ? `, workerd CPU ${Math.min(...values).toFixed(0)} us per round` : "";
    };
    console.log(`echo (WebSocket to the object and back): ${echoMs.toFixed(3)} ms${cpu("echo")}`);
    console.log(
      `node (PUBLISH to a Node reader of the bridge's stream): ${nodeMs.toFixed(3)} ms${cpu("node")}`,
    );
    console.log(
      `object (PUBLISH to the object's reader, then its WebSocket): ${objectMs.toFixed(3)} ms${cpu("object")}`,
    );
    console.log(
      `workerd's share (object - node - echo/2): ${(objectMs - nodeMs - echoMs / 2).toFixed(3)} ms`,
    );
    echo.close();
    stream.close();
    response.destroy();
  } finally {
    agent.destroy();
    publisher.disconnect();
    await worker.dispose();
    await stack.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
