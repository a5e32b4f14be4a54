/**
 * `node --import tsx bench/steady.ts [clients] [seconds] [-- command ...]`: a closed loop of `clients`
 * WebSocket clients (default 1) on the gateway, or on the runtime floor with `STEADY_TARGET=floor` (`bare`: the
 * floor object's poll mode, the poll transport's I/O with none of the gateway's code), for
 * `seconds` (default 5) after a 1.5 s warm-up, with no other phase around it (with
 * `PROFILE_TRANSPORT=subscribe`, `bare` is the floor object's `?mode=sub`). Prints requests/s, p50, and
 * each process's CPU ms per request, so a change to the per-request path can be weighed in steady state
 * (the full benchmark alternates targets every two seconds). `PROFILE_TRANSPORT=subscribe` runs the
 * subscribe reply transport, as `bench/profile.ts` does; `STEADY_BRIDGE_LATENCY_MS=4` puts Redis a simulated
 * round trip away (as the benchmark's `--bridge-latency-ms`). On the gateway it also prints the object's
 * backend counters at the end (polls, early polls, the latency estimate, REST requests).
 *
 * A command after `--` runs during the measured seconds, with `{pid}` replaced by the target's workerd pid
 * and `{s}` by the seconds: `-- perf stat -e task-clock -p {pid} -- sleep {s}`, or `perf record` with
 * `--call-graph dwarf` to see where the runtime spends an object's CPU.
 */
import { spawn } from "node:child_process";
import { startBenchStack } from "./bench-stack.js";
import { bareWsUrl, transportSettings } from "./transport.js";
import { WebSocketClient } from "./load-clients.js";
import { cpuDelta, sampleCpu } from "./process-stats.js";

const separator = process.argv.indexOf("--");
const positional = separator === -1 ? process.argv.slice(2) : process.argv.slice(2, separator);
const command = separator === -1 ? [] : process.argv.slice(separator + 1);
const clients = Number(positional[0] ?? 1);
const seconds = Number(positional[1] ?? 5);
/** `floor`, or `bare` for the floor object's poll mode (`bench/floor-worker.ts`, `?mode=poll`). */
const target = process.env.STEADY_TARGET ?? "gateway";
const floor = target === "floor" || target === "bare";
const subscribe = process.env.PROFILE_TRANSPORT === "subscribe";
const bridgeLatencyMs = Number(process.env.STEADY_BRIDGE_LATENCY_MS ?? 0);

const bench = await startBenchStack({
  log: (line) => console.log(line),
  ...transportSettings(subscribe),
  bridgeLatencyMs,
});
try {
  const url =
    target === "bare"
      ? bareWsUrl(bench.floorWsUrl, "bare", subscribe)
      : floor
        ? `${bench.floorWsUrl}?object=floor`
        : `${bench.gatewayWsUrl}?object=bench-0`;
  const loadClients = await Promise.all(Array.from({ length: clients }, () => WebSocketClient.connect(url)));
  let stop = false;
  let count = 0;
  const latencies: number[] = [];
  const running = loadClients.map(async (client) => {
    let reqId = 0;
    while (!stop) {
      const started = performance.now();
      await client.request(++reqId);
      latencies.push(performance.now() - started);
      count += 1;
    }
  });
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  latencies.length = 0;
  const before = count;
  const cpuBefore = sampleCpu(bench.processes);
  const pid = String((floor ? bench.floor : bench.gateway).workerdPid ?? "");
  const child =
    command.length > 0
      ? spawn(
          command[0] as string,
          command.slice(1).map((arg) => arg.replaceAll("{pid}", pid).replaceAll("{s}", String(seconds))),
          { stdio: "inherit" },
        )
      : undefined;
  await new Promise((resolve) => setTimeout(resolve, seconds * 1_000));
  const requests = count - before;
  const cpu = cpuDelta(cpuBefore, sampleCpu(bench.processes));
  stop = true;
  await Promise.all(running);
  if (child && child.exitCode === null) await new Promise((resolve) => child.once("exit", resolve));
  latencies.sort((a, b) => a - b);
  const p50 = latencies[Math.floor(latencies.length / 2)] ?? NaN;
  console.log(
    `${target}, ${clients} client(s): ${(requests / seconds).toFixed(0)} req/s, ` +
      `p50 ${p50.toFixed(2)} ms, workerd pid ${pid}`,
  );
  const perRequest = Object.entries(cpu)
    .filter(([, ms]) => ms > 0)
    .map(([role, ms]) => `${role} ${((ms * 1_000) / requests).toFixed(0)} us`);
  console.log(`CPU per request: ${perRequest.join(", ")}`);
  if (!floor) {
    const stats = await bench.gateway.callObject("GATEWAY", "bench-0", "backendStats");
    // Miniflare hands objects back as proxies; JSON gives the plain values.
    console.log(`backend counters (since the object started): ${JSON.stringify(stats)}`);
  }
  for (const client of loadClients) client.close();
} finally {
  await bench.stop();
}
process.exit(0);
