/**
 * The gateway's own view of a phase: its reply poller's counters, read over RPC from each object the
 * phase used (`backendStats()` of the Durable Object, through Miniflare). Diagnostics: a run without them
 * (an older gateway, a failed call) still reports everything else.
 */
import type { BenchStack } from "./bench-stack.js";

/** Counter totals over the objects of a phase. */
interface PollerCounters {
  polls: number;
  emptyPolls: number;
  delivered: number;
  /** REST requests the objects sent (a pipeline counts once). */
  redisRequests: number;
  /** Most REST requests open at once on any one object (since it started). */
  maxRedisInFlight: number;
  expectedLatencyMs: number[];
}

/** The poller's figures for one phase. */
export interface PollerFigures {
  pollsPerRequest: number;
  emptyPollsPerRequest: number;
  /** REST requests (pipelines) per delivered reply. */
  redisRequestsPerRequest: number;
  /** Most REST requests open at once on one object (since it started: earlier phases count too). */
  maxRedisInFlight: number;
  /** The poller's expected service latency (its first-poll delay, before clamping) at the end, per object. */
  expectedLatencyMs: number[];
}

/** Reads and sums the default backend's counters of objects `bench-0` .. `bench-<objects-1>`. */
export async function readPollerCounters(
  bench: BenchStack,
  objects: number,
): Promise<PollerCounters | undefined> {
  const total: PollerCounters = {
    polls: 0,
    emptyPolls: 0,
    delivered: 0,
    redisRequests: 0,
    maxRedisInFlight: 0,
    expectedLatencyMs: [],
  };
  for (let index = 0; index < objects; index += 1) {
    const raw = await bench.gateway.callObject("GATEWAY", `bench-${index}`, "backendStats");
    // Miniflare hands objects back as proxies; JSON gives the plain values.
    const stats =
      raw === undefined
        ? undefined
        : (JSON.parse(JSON.stringify(raw)) as Record<string, Record<string, unknown>>);
    const backend = stats?.default;
    if (!backend || typeof backend.polls !== "number") return undefined;
    total.polls += backend.polls;
    total.emptyPolls += Number(backend.emptyPolls);
    total.delivered += Number(backend.delivered);
    total.redisRequests += Number(backend.redisRequests);
    total.maxRedisInFlight = Math.max(total.maxRedisInFlight, Number(backend.maxRedisInFlight));
    total.expectedLatencyMs.push(Math.round(Number(backend.expectedLatencyMs) * 100) / 100);
  }
  return total;
}

/** Figures between two readings, or undefined when an object restarted in between (its counters reset). */
export function pollerFigures(
  before: PollerCounters | undefined,
  after: PollerCounters | undefined,
): PollerFigures | undefined {
  if (!before || !after) return undefined;
  const delivered = after.delivered - before.delivered;
  if (delivered <= 0 || after.polls < before.polls) return undefined;
  return {
    pollsPerRequest: (after.polls - before.polls) / delivered,
    emptyPollsPerRequest: (after.emptyPolls - before.emptyPolls) / delivered,
    redisRequestsPerRequest: (after.redisRequests - before.redisRequests) / delivered,
    maxRedisInFlight: after.maxRedisInFlight,
    expectedLatencyMs: after.expectedLatencyMs,
  };
}
