/**
 * `npm run bench [-- --quick] [-- --json <file>]`: the benchmark of issue 8 on the real local stack.
 * Starts redis-server, the REST bridge, the example service and two Workers served by Miniflare directly
 * (the gateway and the runtime floor), runs every phase, prints the tables and stops everything it
 * started, also on Ctrl-C. See docs/performance.md for what each figure means.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { performance } from "node:perf_hooks";
import { StartError } from "../src/devstack/processes.js";
import { BenchUsageError, parseBenchArgs, USAGE, type BenchArgs } from "./args.js";
import { startBenchStack, type BenchStack } from "./bench-stack.js";
import { runLoadLevel, type PhaseResult } from "./load-phase.js";
import { describeMachine } from "./machine.js";
import { checkTargets, formatReport, type BenchReport, type ScalingResult } from "./report.js";
import {
  FD_MARGIN,
  openFileLimit,
  runConnectionsPhase,
  runIdlePhase,
  type IdleResult,
} from "./socket-phases.js";
import { runTracePhase, type TraceResult } from "./trace-phase.js";
import { fixed } from "./table.js";
import { SERVED_BY } from "./worker-server.js";

const runStarted = performance.now();
const log = (line: string): void =>
  console.log(`[bench ${((performance.now() - runStarted) / 1000).toFixed(1).padStart(5)} s] ${line}`);

function summarizePhase(r: PhaseResult): string {
  return (
    `${r.target} ${Math.round(r.requestsPerSecond)} req/s p50 ${r.latencyMs.p50.toFixed(2)} ms ` +
    `${r.errors} err ${r.perRequest.caller.toFixed(2)}+${r.perRequest.service.toFixed(2)} cmd`
  );
}

/** Runs a phase with a progress line before and after. */
async function timed<T>(label: string, phase: () => Promise<T>, summary: (result: T) => string): Promise<T> {
  log(`${label}...`);
  const started = performance.now();
  const result = await phase();
  log(`${label}: ${summary(result)} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  return result;
}

/** Like {@link timed}, but a failure is logged and the run goes on without this phase's figures. */
async function optional<T>(
  label: string,
  phase: () => Promise<T>,
  summary: (result: T) => string,
): Promise<T | undefined> {
  try {
    return await timed(label, phase, summary);
  } catch (error) {
    log(`${label}: FAILED: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
}

async function run(args: BenchArgs, holder: { bench?: BenchStack }): Promise<BenchReport> {
  const startedAt = new Date().toISOString();
  const machine = describeMachine();
  log(
    `machine: ${Object.entries(machine)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}`,
  );
  log(`Workers served by: ${SERVED_BY}. Everything shares the machine's ${machine.cpus} cores.`);
  const fdLimit = openFileLimit();
  if (args.connections > 0 && fdLimit < args.connections + FD_MARGIN) {
    log(
      `WARNING: ulimit -n is ${fdLimit}; ${args.connections} connections need about ${args.connections + FD_MARGIN} ` +
        `file descriptors in this process and in workerd. Raise it (ulimit -n ${args.connections + 4096}) and run ` +
        `again; this run measures ${Math.max(0, fdLimit - FD_MARGIN)} connections instead.`,
    );
  }
  const bench = await startBenchStack({
    log,
    workerLog: args.verbose ? (line) => log(line) : undefined,
    gatewayVars: args.gatewayVars,
    serviceArgs: args.serviceArgs,
    bridgeLatencyMs: args.bridgeLatencyMs,
  });
  holder.bench = bench;
  log(
    `stack up: gateway ${bench.gatewayWsUrl}, floor ${bench.floorWsUrl}, bridge ${bench.stack.bridge.url}, redis ${bench.stack.redis.url}`,
  );

  const phases: PhaseResult[] = [];
  for (const clients of args.clients) {
    // The bare path is a bound on the 1-client latency target only.
    const targets = clients === 1 ? args.targets : args.targets.filter((target) => target !== "bare");
    const level = await timed(
      `load x ${clients} clients (${targets.join(", ")}; ${args.phase.rounds} rounds)`,
      () => runLoadLevel(bench, targets, clients, args.phase, (round) => log(`  round ${round}...`)),
      (results) => results.map(summarizePhase).join("; "),
    );
    phases.push(...level);
  }
  const scaling: ScalingResult[] = [];
  if (args.targets.includes("gateway")) {
    for (const objects of args.objectCounts) {
      const [phase] = await timed(
        `scaling: gateway x ${args.scalingClients} clients over ${objects} object(s)`,
        () =>
          runLoadLevel(
            bench,
            ["gateway"],
            args.scalingClients,
            { ...args.phase, gatewayObjects: objects },
            (round) => log(`  round ${round}...`),
          ),
        (results) => results.map(summarizePhase).join("; "),
      );
      if (phase) scaling.push({ objects, phase });
    }
  }
  let trace: TraceResult | undefined;
  if (args.targets.includes("gateway") && args.targets.includes("floor")) {
    trace = await optional(
      "trace: 1 client, 500 requests on the gateway then the floor, under Redis MONITOR",
      () => runTracePhase(bench, 500),
      (r) =>
        (r.replyCommand === "RPUSH" ? `poll wait ${fixed(r.pollWaitMs, 2)} ms, ` : "") +
        `cycle ${fixed(r.cycleMs, 2)} ms`,
    );
  }
  let idle: IdleResult | undefined;
  if (args.targets.includes("gateway") && args.idleConnections > 0) {
    idle = await optional(
      `idle: ${args.idleConnections} silent connections, ${args.idleWindowMs / 1000} s window`,
      () => runIdlePhase(bench, args.idleConnections, args.idleWindowMs),
      (r) => `gateway ${r.callerPerMinute.toFixed(1)} commands/min`,
    );
  }
  const connections: BenchReport["connections"] = {};
  for (const target of (["floor", "gateway"] as const).filter((t) => args.targets.includes(t))) {
    if (args.connections === 0) break;
    const socketTarget =
      target === "gateway"
        ? { url: `${bench.gatewayWsUrl}?object=bench-connections`, workerdPid: bench.gateway.workerdPid }
        : { url: `${bench.floorWsUrl}?object=floor-connections`, workerdPid: bench.floor.workerdPid };
    connections[target] = await optional(
      `connections: ${args.connections} idle WebSockets on one ${target} object`,
      () => runConnectionsPhase(socketTarget, args.connections, log),
      (r) =>
        `${r.stillOpen} open, ${(r.workerdBytesPerConnection / 1024).toFixed(1)} KiB per connection in workerd`,
    );
  }
  return {
    startedAt,
    durationSeconds: (performance.now() - runStarted) / 1000,
    mode: args.quick ? "quick" : "default",
    machine,
    servedBy: SERVED_BY,
    settings: {
      ...args.phase,
      clients: args.clients,
      targets: args.targets,
      idleConnections: args.idleConnections,
      idleWindowMs: args.idleWindowMs,
      connections: args.connections,
      objectCounts: args.objectCounts,
      scalingClients: args.scalingClients,
      gatewayVars: args.gatewayVars,
      serviceArgs: args.serviceArgs,
      bridgeLatencyMs: args.bridgeLatencyMs,
    },
    phases,
    trace,
    idle,
    connections,
    targets: checkTargets(phases, idle, connections.gateway),
    scaling,
  };
}

async function main(): Promise<void> {
  const args = parseBenchArgs(process.argv.slice(2));
  if (args === "help") {
    console.log(USAGE);
    return;
  }
  const holder: { bench?: BenchStack } = {};
  let stopping = false;
  const stopAll = async (): Promise<void> => {
    const bench = holder.bench;
    holder.bench = undefined;
    await bench?.stop();
  };
  const onSignal = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping everything the benchmark started...`);
    void stopAll().finally(() => process.exit(130));
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGHUP", () => onSignal("SIGHUP"));
  try {
    const report = await run(args, holder);
    console.log(
      `\n## Results (${report.mode} run, ${report.durationSeconds.toFixed(0)} s, ${report.startedAt})\n`,
    );
    console.log(formatReport(report));
    if (args.jsonFile) {
      // A folder that does not exist yet is made, rather than losing a whole run's figures at the end.
      mkdirSync(dirname(args.jsonFile), { recursive: true });
      writeFileSync(args.jsonFile, JSON.stringify(report, null, 2) + "\n");
      log(`wrote ${args.jsonFile}`);
    }
  } finally {
    if (!stopping) {
      log("stopping the stack...");
      await stopAll();
    }
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    if (error instanceof BenchUsageError) {
      console.error(error.message);
      process.exit(2);
    }
    console.error(error instanceof StartError ? error.message : error);
    process.exit(1);
  },
);
