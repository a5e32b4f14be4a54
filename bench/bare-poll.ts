/**
 * `node --import tsx bench/bare-poll.ts [rounds] [seconds]`: can anything that polls meet the p50 target at
 * 1 client on this machine? One client at a time, in turn for `rounds` rounds (default 4) of `seconds`
 * (default 2) each, after a warm-up:
 *
 * - (c) the runtime floor and (a) a pushed reply, the target's two baselines (see docs/performance.md);
 * - `bare poll`: the floor object in its poll mode (`bench/floor-worker.ts`, `?mode=poll`), the poll
 *   transport's I/O with nothing of the gateway in it: the gateway's `XADD`, then an `LPOP` sent the moment
 *   the `XADD` is answered and again at once while empty. It spends commands freely, so it is a bound on
 *   latency, not a design;
 * - `two PINGs`: the floor object sending two `PING`s in turn per message (`?mode=ping2`): two REST round
 *   trips, as the poll path has, but no service at work on the same cores meanwhile;
 * - the gateway, poll transport.
 *
 * Prints each one's requests/s and p50, the two polling ones against (a)+(c), the CPU its object's workerd
 * spent per request, and `LPOP`s per request; then the CPU per request of the bridge, the service,
 * redis-server, this process and the rest of the machine, so a difference between two targets shows in
 * the process that pays it. When the bare poll path itself is over (a)+(c), no polling gateway can meet
 * the target on this runtime and machine. The benchmark measures the same bound, for either transport, as
 * its target (d).
 * `PROFILE_TRANSPORT=subscribe` does the same for the subscribe transport: the service publishes its
 * replies, (a) waits on its channel, `bare sub` is the floor object's `?mode=sub` and the gateway subscribes.
 * `BRIDGE_LATENCY_MS=4` puts Redis a simulated round trip away, as the benchmark's `--bridge-latency-ms`.
 */
import { startBenchStack } from "./bench-stack.js";
import { bareWsUrl, transportSettings } from "./transport.js";
import { emptySamples, loopResult, mergeSamples, runClosedLoop, type LoopSamples } from "./closed-loop.js";
import { PushedClient, WebSocketClient, type LoadClient } from "./load-clients.js";
import { cpuDelta, sampleCpu } from "./process-stats.js";
import { fixed, formatTable, ratio } from "./table.js";

const rounds = Number(process.argv[2] ?? 4);
const seconds = Number(process.argv[3] ?? 2);
const bridgeLatencyMs = Number(process.env.BRIDGE_LATENCY_MS ?? 0);
const subscribe = process.env.PROFILE_TRANSPORT === "subscribe";
const transport = subscribe ? "subscribe" : "poll";
const bareName = subscribe ? "bare sub" : "bare poll";
/** The processes besides the object's workerd whose CPU per request is printed (`others`: the rest of the machine). */
const OTHER_ROLES = ["bridge", "service", "redis", "bench", "others"];

const bench = await startBenchStack({
  log: (line) => console.log(line),
  ...transportSettings(subscribe),
  bridgeLatencyMs,
});
const clients: LoadClient[] = [];
try {
  const floorUrl = bench.floorWsUrl;
  const targets: Array<[name: string, client: LoadClient]> = [
    ["(c) floor", await WebSocketClient.connect(`${floorUrl}?object=floor`)],
    [
      "(a) pushed",
      await PushedClient.connect(
        bench.rest.send,
        bench.stack.redis.url,
        "bench:bare-poll:pushed",
        subscribe ? "publish" : "list",
      ),
    ],
    [bareName, await WebSocketClient.connect(bareWsUrl(floorUrl, `floor-${transport}`, subscribe))],
    ["two PINGs", await WebSocketClient.connect(`${floorUrl}?object=floor-ping2&mode=ping2`)],
    [`gateway (${transport})`, await WebSocketClient.connect(`${bench.gatewayWsUrl}?object=bench-0`)],
  ];
  clients.push(...targets.map(([, client]) => client));
  const limits = (ms: number) => ({ durationMs: ms, maxRequestsPerClient: 1e9, requestTimeoutMs: 10_000 });
  for (const [, client] of targets) await runClosedLoop([client], limits(1_000), new Set());
  const samples = new Map<string, LoopSamples>(targets.map(([name]) => [name, emptySamples()]));
  /** CPU ms of the object's workerd (the floor's serves the floor and the bare poll path) per target. */
  const objectCpuMs = new Map<string, number>();
  /** CPU ms of the other processes (and of the rest of the machine) per target. */
  const processCpuMs = new Map<string, Record<string, number>>();
  /** `LPOP`s sent per target (all of Redis's, counted around each slice). */
  const lpops = new Map<string, number>();
  for (let round = 1; round <= rounds; round++) {
    console.log(`round ${round} of ${rounds}...`);
    for (const [name, client] of targets) {
      const before = sampleCpu(bench.processes);
      const commandsBefore = await bench.commands.snapshot();
      mergeSamples(samples.get(name)!, await runClosedLoop([client], limits(seconds * 1000), new Set()));
      const used = cpuDelta(before, sampleCpu(bench.processes));
      const popped = ((await bench.commands.snapshot()).lpop ?? 0) - (commandsBefore.lpop ?? 0);
      lpops.set(name, (lpops.get(name) ?? 0) + popped);
      const role = name.startsWith("gateway") ? "workerd" : "workerd-floor";
      objectCpuMs.set(name, (objectCpuMs.get(name) ?? 0) + (used[role] ?? 0));
      const roles = processCpuMs.get(name) ?? {};
      for (const other of OTHER_ROLES) roles[other] = (roles[other] ?? 0) + (used[other] ?? 0);
      processCpuMs.set(name, roles);
    }
  }
  const results = new Map([...samples].map(([name, merged]) => [name, loopResult(merged)]));
  const p50 = (name: string) => results.get(name)?.latencyMs.p50;
  const limit = (p50("(a) pushed") ?? NaN) + (p50("(c) floor") ?? NaN);
  console.log(
    `\n1 client, ${rounds} x ${seconds} s each, Redis ${bridgeLatencyMs ? `${bridgeLatencyMs} ms away` : "on the loopback"}`,
  );
  console.log(
    formatTable(
      [
        "target",
        "req/s",
        "p50 ms",
        "p95 ms",
        "errors",
        "p50 / ((a)+(c))",
        "object's workerd CPU/req",
        "LPOP/req",
      ],
      [...results].map(([name, result]) => {
        const polls = name === bareName || name.startsWith("gateway");
        const cpuUs = ((objectCpuMs.get(name) ?? NaN) * 1000) / result.requests;
        return [
          name,
          fixed(result.requestsPerSecond, 0),
          fixed(result.latencyMs.p50, 2),
          fixed(result.latencyMs.p95, 2),
          String(result.errors),
          polls ? ratio(result.latencyMs.p50, limit) : "",
          name === "(a) pushed" ? "" : `${fixed(cpuUs, 0)} us`,
          polls ? fixed((lpops.get(name) ?? NaN) / result.requests, 2) : "",
        ];
      }),
    ),
  );
  console.log(`(a)+(c) = ${fixed(limit, 2)} ms`);
  console.log("\nCPU per request of the other processes (us)");
  console.log(
    formatTable(
      ["target", ...OTHER_ROLES],
      [...results].map(([name, result]) => [
        name,
        ...OTHER_ROLES.map((role) =>
          fixed(((processCpuMs.get(name)?.[role] ?? NaN) * 1000) / result.requests, 0),
        ),
      ]),
    ),
  );
} finally {
  for (const client of clients) client.close();
  await bench.stop();
}
