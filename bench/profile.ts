/**
 * `npx tsx bench/profile.ts [clients] [seconds]`: a CPU profile of the gateway's workerd under a closed
 * loop (default 1 client, 5 s), through workerd's V8 inspector. Prints the functions with the most self
 * time, so a change to the per-request path can be aimed and checked. Starts and stops its own stack.
 * `PROFILE_TRANSPORT=subscribe` profiles the subscribe reply transport (service in `publish-batch` mode);
 * `PROFILE_TARGET=bare` profiles the floor object's bare path for that transport (`bench/floor-worker.ts`),
 * the same I/O with none of the gateway's code, to set the two profiles side by side;
 * `PROFILE_CALLERS=<function>` also prints who calls that function; `PROFILE_INTERVAL_US` sets the sampling
 * interval (default 50 µs; 500 costs the worker far less time, for a longer run).
 */
import { WebSocket } from "ws";
import { startBenchStack } from "./bench-stack.js";
import { bareWsUrl, transportSettings } from "./transport.js";
import { WebSocketClient } from "./load-clients.js";

const clients = Number(process.argv[2] ?? 1);
const seconds = Number(process.argv[3] ?? 5);
const INSPECTOR_PORT = 9239;
/** `PROFILE_TRANSPORT=subscribe`: the subscribe reply transport, as `npm run bench -- --reply-transport subscribe`. */
const subscribe = process.env.PROFILE_TRANSPORT === "subscribe";
/** `PROFILE_TARGET=bare`: the floor object's bare path for that transport instead of the gateway. */
const bare = process.env.PROFILE_TARGET === "bare";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

function frameKey(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  return `${functionName || "(anonymous)"} ${url.split("/").pop()}:${lineNumber + 1}`;
}

/** Samples per function including its callees, each sample counted once per function on its stack. */
function inclusiveHits(nodes: ProfileNode[]): Map<string, number> {
  const byId = new Map(nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const totals = new Map<string, number>();
  for (const node of nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0) continue;
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const key = frameKey(byId.get(id) as ProfileNode);
      if (seen.has(key)) continue;
      seen.add(key);
      totals.set(key, (totals.get(key) ?? 0) + hits);
    }
  }
  return totals;
}

async function inspectorSocket(): Promise<WebSocket> {
  const targets = (await (await fetch(`http://127.0.0.1:${INSPECTOR_PORT}/json`)).json()) as Array<{
    webSocketDebuggerUrl?: string;
    title?: string;
    id?: string;
  }>;
  const target = targets.find(
    (t) => t.webSocketDebuggerUrl && /gateway|GatewayObject|core/.test(JSON.stringify(t)),
  );
  const url = target?.webSocketDebuggerUrl ?? `ws://127.0.0.1:${INSPECTOR_PORT}/${targets[0]?.id ?? ""}`;
  console.log("inspector targets:", targets.map((t) => t.title ?? t.id).join(", "), "->", url);
  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => {
    socket.once("open", resolve);
    socket.once("error", reject);
  });
  return socket;
}

function rpc(socket: WebSocket) {
  let next = 1;
  const waiting = new Map<number, (result: unknown) => void>();
  socket.on("message", (data) => {
    const message = JSON.parse(String(data)) as { id?: number; result?: unknown };
    if (message.id !== undefined) waiting.get(message.id)?.(message.result);
  });
  return (method: string, params: Record<string, unknown> = {}) =>
    new Promise<unknown>((resolve) => {
      const id = next++;
      waiting.set(id, resolve);
      socket.send(JSON.stringify({ id, method, params }));
    });
}

async function main(): Promise<void> {
  const bench = await startBenchStack({
    log: (line) => console.log(line),
    ...transportSettings(subscribe),
    ...(bare ? { floorInspectorPort: INSPECTOR_PORT } : { gatewayInspectorPort: INSPECTOR_PORT }),
  });
  try {
    const loadClients = await Promise.all(
      Array.from({ length: clients }, () =>
        WebSocketClient.connect(
          bare ? bareWsUrl(bench.floorWsUrl, "bare", subscribe) : `${bench.gatewayWsUrl}?object=bench-0`,
        ),
      ),
    );
    let stop = false;
    let count = 0;
    const loop = async (client: WebSocketClient) => {
      let reqId = 0;
      while (!stop) {
        await client.request(++reqId);
        count += 1;
      }
    };
    const running = loadClients.map(loop);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const socket = await inspectorSocket();
    const call = rpc(socket);
    await call("Profiler.enable");
    await call("Profiler.setSamplingInterval", { interval: Number(process.env.PROFILE_INTERVAL_US ?? 50) });
    await call("Profiler.start");
    const before = count;
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    const { profile } = (await call("Profiler.stop")) as {
      profile: { nodes: ProfileNode[]; startTime: number; endTime: number };
    };
    const requests = count - before;
    stop = true;
    await Promise.all(running);
    socket.close();
    const total = profile.nodes.reduce((sum, node) => sum + (node.hitCount ?? 0), 0);
    const byFunction = new Map<string, number>();
    for (const node of profile.nodes) {
      const key = frameKey(node);
      byFunction.set(key, (byFunction.get(key) ?? 0) + (node.hitCount ?? 0));
    }
    const ms = (profile.endTime - profile.startTime) / 1000;
    const line = (hits: number, key: string): string =>
      `${((hits / total) * 100).toFixed(1).padStart(5)}%  ${(((hits / total) * ms * 1000) / requests).toFixed(1).padStart(6)} us/req  ${key}`;
    console.log(`${requests} requests in ${seconds} s; ${total} samples over ${ms.toFixed(0)} ms`);
    console.log("self time:");
    for (const [key, hits] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 40))
      console.log(line(hits, key));
    // Self time by origin: the bundle's code (the gateway and its packages), the runtime's built-ins and
    // calls into it (`fetch`, `send`, `read`, ...), V8's own work, and time with nothing to do.
    const byOrigin = new Map<string, number>();
    for (const [key, hits] of byFunction) {
      const origin = key.includes(".mjs:")
        ? "the bundle's code"
        : /^\((idle|program|garbage collector)\)/.test(key)
          ? (key.split(" ")[0] ?? key)
          : "runtime built-ins";
      byOrigin.set(origin, (byOrigin.get(origin) ?? 0) + hits);
    }
    console.log("self time by origin:");
    for (const [key, hits] of [...byOrigin].sort((a, b) => b[1] - a[1])) console.log(line(hits, key));
    console.log("total time (with callees) of the worker's own functions:");
    const inclusive = [...inclusiveHits(profile.nodes)].filter(([key]) => key.includes(".mjs:"));
    for (const [key, hits] of inclusive.sort((a, b) => b[1] - a[1]).slice(0, 40))
      console.log(line(hits, key));
    const callersOf = process.env.PROFILE_CALLERS;
    if (callersOf) {
      // Who calls `PROFILE_CALLERS` (a function name): samples under it, by caller.
      const byId = new Map(profile.nodes.map((node) => [node.id, node]));
      const parentOf = new Map<number, ProfileNode>();
      for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node);
      const subtree = (node: ProfileNode): number =>
        (node.hitCount ?? 0) +
        (node.children ?? []).reduce((sum, id) => sum + subtree(byId.get(id) as ProfileNode), 0);
      const callers = new Map<string, number>();
      for (const node of profile.nodes) {
        if (node.callFrame.functionName !== callersOf) continue;
        let caller = parentOf.get(node.id);
        while (caller && !caller.callFrame.url) caller = parentOf.get(caller.id);
        const key = caller ? frameKey(caller) : "(root)";
        callers.set(key, (callers.get(key) ?? 0) + subtree(node));
      }
      console.log(`callers of ${callersOf}:`);
      for (const [key, hits] of [...callers].sort((a, b) => b[1] - a[1]).slice(0, 15))
        console.log(line(hits, key));
    }
    for (const client of loadClients) client.close();
  } finally {
    await bench.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
