/**
 * Load phases: N clients of each target connect, warm up, then run measured closed loops while the Redis
 * command counts and every process's CPU time are sampled around each one.
 */
import type { BenchStack } from "./bench-stack.js";
import { emptySplit, mergeSplit, splitDelta, type CommandSplit } from "./command-stats.js";
import {
  emptySamples,
  loopResult,
  mergeSamples,
  runClosedLoop,
  type LoopLimits,
  type LoopResult,
  type LoopSamples,
} from "./closed-loop.js";
import {
  DirectClient,
  openInBatches,
  PushedClient,
  WebSocketClient,
  type LoadClient,
} from "./load-clients.js";
import type { ReplyMode } from "./reply-waiters.js";
import { bareWsUrl } from "./transport.js";
import { pollerFigures, readPollerCounters, type PollerFigures } from "./poller-stats.js";
import { cpuDelta, sampleCpu, type CpuSample } from "./process-stats.js";

/**
 * What is measured: the gateway, one of the three baselines, or (1 client only) the bare path: the reply
 * transport's I/O with none of the gateway's code (`bench/floor-worker.ts`, `?mode=poll` or `?mode=sub`),
 * a bound on what any gateway with that transport can reach on this machine.
 */
export type Target = "gateway" | "pushed" | "direct" | "floor" | "bare";

/** How each target is named in the tables. */
export const LABELS: Record<Target, string> = {
  gateway: "gateway",
  pushed: "(a) pushed",
  direct: "(b) direct",
  floor: "(c) floor",
  bare: "(d) bare path",
};

/** Upstash pay-as-you-go: $0.20 per 100,000 commands. */
export const USD_PER_COMMAND = 0.2 / 100_000;

/** Settings of a phase. */
export interface PhaseSettings {
  warmupMs: number;
  /** Measured time per target and level, split over `rounds`. */
  durationMs: number;
  rounds: number;
  maxRequestsPerClient: number;
  requestTimeoutMs: number;
  /** How the service replies, so the baselines wait the same way (`BLPOP` or `SUBSCRIBE`). */
  replyMode: ReplyMode;
  /** Gateway objects the clients are spread over (`?object=bench-<i mod n>`). */
  gatewayObjects: number;
}

/** The result of one phase. */
export interface PhaseResult extends LoopResult {
  target: Target;
  clients: number;
  commands: CommandSplit;
  /** Commands per request: the caller's side (gateway, or the baseline's client), the service's, both. */
  perRequest: { caller: number; service: number; total: number };
  /** Upstash cost per million requests, USD: the caller's commands, and the whole system's. */
  usdPerMillion: { caller: number; total: number };
  /** CPU ms per 1,000 requests, by process role (`bench` is the load generator). */
  cpuMsPerKRequests: Record<string, number>;
  /** Average cores busy during the phase, by process role. */
  coresBusy: Record<string, number>;
  /** The gateway's reply poller during the phase (gateway phases only, when readable). */
  poller?: PollerFigures;
}

/** One target's clients and what its rounds measured so far. */
interface TargetRun {
  target: Target;
  clients: LoadClient[];
  retired: Set<LoadClient>;
  samples: LoopSamples;
  commands: CommandSplit;
  cpuMs: CpuSample;
}

/**
 * Runs one concurrency level for every target. The measured time of each target is cut into `rounds`
 * slices run in turn (direct, pushed, floor, gateway, direct, ...), so a burst of other work on a shared
 * machine lands on every target rather than on one; `onRound` reports progress.
 */
export async function runLoadLevel(
  bench: BenchStack,
  targets: Target[],
  clients: number,
  settings: PhaseSettings,
  onRound: (round: number) => void,
): Promise<PhaseResult[]> {
  const runs: TargetRun[] = [];
  try {
    for (const target of targets) {
      const loadClients = await connectClients(bench, target, clients, settings);
      runs.push({
        target,
        clients: loadClients,
        retired: new Set(),
        samples: emptySamples(),
        commands: emptySplit(),
        cpuMs: {},
      });
    }
    const limits = {
      requestTimeoutMs: settings.requestTimeoutMs,
      maxRequestsPerClient: settings.maxRequestsPerClient,
    };
    for (const run of runs)
      // A client retired in the warm-up is tried again (and counted) in the measured rounds.
      await runClosedLoop(run.clients, { ...limits, durationMs: settings.warmupMs }, new Set());
    const objects = targets.includes("gateway") ? Math.min(clients, settings.gatewayObjects) : 0;
    const pollerBefore = objects > 0 ? await readPollerCounters(bench, objects) : undefined;
    for (let round = 1; round <= settings.rounds; round += 1) {
      onRound(round);
      for (const run of runs)
        await measureSlice(bench, run, { ...limits, durationMs: settings.durationMs / settings.rounds });
    }
    const poller =
      objects > 0 ? pollerFigures(pollerBefore, await readPollerCounters(bench, objects)) : undefined;
    return runs.map((run) => phaseResult(run, clients, run.target === "gateway" ? poller : undefined));
  } finally {
    for (const run of runs) for (const client of run.clients) client.close();
  }
}

async function measureSlice(bench: BenchStack, run: TargetRun, limits: LoopLimits): Promise<void> {
  const commandsBefore = await bench.commands.snapshot();
  const cpuBefore = sampleCpu(bench.processes);
  mergeSamples(run.samples, await runClosedLoop(run.clients, limits, run.retired));
  const cpu = cpuDelta(cpuBefore, sampleCpu(bench.processes));
  for (const [role, ms] of Object.entries(cpu)) run.cpuMs[role] = (run.cpuMs[role] ?? 0) + ms;
  // Let the service's last batch (RPUSH, EXPIRE, XACK in one pipeline) land before counting.
  await new Promise((resolve) => setTimeout(resolve, 50));
  mergeSplit(run.commands, splitDelta(commandsBefore, await bench.commands.snapshot()));
}

function phaseResult(run: TargetRun, clients: number, poller: PollerFigures | undefined): PhaseResult {
  const loop = loopResult(run.samples);
  const { commands } = run;
  const perRequest = {
    caller: commands.caller.total / loop.requests,
    service: commands.service.total / loop.requests,
    total: (commands.caller.total + commands.service.total) / loop.requests,
  };
  return {
    target: run.target,
    clients,
    ...loop,
    commands,
    perRequest,
    usdPerMillion: {
      caller: perRequest.caller * 1e6 * USD_PER_COMMAND,
      total: perRequest.total * 1e6 * USD_PER_COMMAND,
    },
    cpuMsPerKRequests: mapValues(run.cpuMs, (ms) => (ms * 1000) / loop.requests),
    coresBusy: mapValues(run.cpuMs, (ms) => (loop.elapsedMs > 0 ? ms / loop.elapsedMs : NaN)),
    poller,
  };
}

async function connectClients(
  bench: BenchStack,
  target: Target,
  count: number,
  settings: PhaseSettings,
): Promise<LoadClient[]> {
  const run = Date.now().toString(36);
  const connectOne = (index: number): Promise<LoadClient> => {
    switch (target) {
      case "gateway":
        return WebSocketClient.connect(
          `${bench.gatewayWsUrl}?object=bench-${index % settings.gatewayObjects}`,
        );
      case "floor":
        return WebSocketClient.connect(`${bench.floorWsUrl}?object=floor`);
      case "bare": {
        // An object per client, each with its own reply key; the service's reply mode says which path.
        const subscribe = settings.replyMode === "publish";
        return WebSocketClient.connect(bareWsUrl(bench.floorWsUrl, `bare-${run}-${index}`, subscribe));
      }
      case "pushed":
        return PushedClient.connect(
          bench.rest.send,
          bench.stack.redis.url,
          `bench:reply:${run}:${index}`,
          settings.replyMode,
        );
      case "direct":
        return DirectClient.connect(bench.stack.redis.url, `bench:reply:${run}:${index}`, settings.replyMode);
    }
  };
  // In batches, so 256 handshakes do not queue behind each other past their timeout.
  return openInBatches(count, 64, connectOne);
}

function mapValues(record: Record<string, number>, map: (value: number) => number): Record<string, number> {
  return Object.fromEntries(Object.entries(record).map(([key, value]) => [key, map(value)]));
}
