/**
 * The closed-loop driver: every client keeps exactly one request in flight until the phase's time or
 * request budget is spent; then the latencies become percentiles. Bounded on every side: a request that
 * does not answer within `requestTimeoutMs`, or a closed socket, counts as an error and retires its client.
 */
import { performance } from "node:perf_hooks";
import type { LoadClient, Outcome } from "./load-clients.js";

/** Limits of one measured run. */
export interface LoopLimits {
  durationMs: number;
  /** Stop each client after this many requests, whatever the time. */
  maxRequestsPerClient: number;
  requestTimeoutMs: number;
}

/** The raw outcome of one or more runs, merged with {@link mergeSamples}. */
export interface LoopSamples {
  /** Latency of every successful request, ms (failed ones are counted, not timed). */
  latencies: number[];
  errors: number;
  /** Failed requests by what went wrong (the answer's error code, `timeout`, `closed`, ...). */
  errorCodes: Record<string, number>;
  /** Requests that got no answer at all within `requestTimeoutMs` (also counted in `errors`). */
  timeouts: number;
  elapsedMs: number;
}

/** What the runs of a phase measured. */
export interface LoopResult {
  /** Successful requests. */
  requests: number;
  errors: number;
  errorCodes: Record<string, number>;
  timeouts: number;
  elapsedMs: number;
  /** Successful requests per second. */
  requestsPerSecond: number;
  latencyMs: { p50: number; p95: number; p99: number; mean: number; max: number };
}

/** Request ids are unique across the whole run, so a late answer can never be taken for a new one. */
let nextReqId = 1;

/**
 * Runs every client in a closed loop under `limits`. A client whose request timed out (it may still be in
 * flight) or whose socket was closed is added to `retired` and not driven again.
 */
export async function runClosedLoop(
  clients: LoadClient[],
  limits: LoopLimits,
  retired: Set<LoadClient>,
): Promise<LoopSamples> {
  const samples = emptySamples();
  const started = performance.now();
  const endAt = started + limits.durationMs;

  const drive = async (client: LoadClient): Promise<void> => {
    for (let sent = 0; sent < limits.maxRequestsPerClient && performance.now() < endAt; sent += 1) {
      const t0 = performance.now();
      const outcome = await withTimeout(client.request(nextReqId++), limits.requestTimeoutMs);
      if (outcome === true) {
        samples.latencies.push(performance.now() - t0);
        continue;
      }
      samples.errors += 1;
      samples.errorCodes[outcome] = (samples.errorCodes[outcome] ?? 0) + 1;
      if (outcome === "timeout") samples.timeouts += 1;
      // A client that got no answer, or whose socket the server closed (e.g. 1008 after RateLimit), is
      // done: driving it again would only spin on the same failure.
      if (outcome === "timeout" || outcome === "closed") {
        retired.add(client);
        return;
      }
    }
  };
  await Promise.all(clients.filter((client) => !retired.has(client)).map(drive));
  samples.elapsedMs = performance.now() - started;
  return samples;
}

/** Samples with nothing in them yet. */
export function emptySamples(): LoopSamples {
  return { latencies: [], errors: 0, errorCodes: {}, timeouts: 0, elapsedMs: 0 };
}

/** Adds `more` to `into`. */
export function mergeSamples(into: LoopSamples, more: LoopSamples): void {
  for (const latency of more.latencies) into.latencies.push(latency);
  into.errors += more.errors;
  for (const [code, count] of Object.entries(more.errorCodes)) {
    into.errorCodes[code] = (into.errorCodes[code] ?? 0) + count;
  }
  into.timeouts += more.timeouts;
  into.elapsedMs += more.elapsedMs;
}

/** Throughput and percentiles of merged samples. */
export function loopResult(samples: LoopSamples): LoopResult {
  const requests = samples.latencies.length;
  return {
    requests,
    errors: samples.errors,
    errorCodes: samples.errorCodes,
    timeouts: samples.timeouts,
    elapsedMs: samples.elapsedMs,
    requestsPerSecond: samples.elapsedMs > 0 ? (requests * 1000) / samples.elapsedMs : 0,
    latencyMs: summarize(samples.latencies),
  };
}

async function withTimeout(request: Promise<Outcome>, timeoutMs: number): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">(
    (resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)),
  );
  try {
    // A transport failure (connection refused, REST error) is an error answer, not a crash of the run.
    return await Promise.race([request.catch(() => "transport"), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Nearest-rank percentiles of `samples` (ms). */
export function summarize(samples: number[]): LoopResult["latencyMs"] {
  if (samples.length === 0) return { p50: NaN, p95: NaN, p99: NaN, mean: NaN, max: NaN };
  const sorted = Float64Array.from(samples).sort();
  const rank = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
  const mean = sorted.reduce((sum, value) => sum + value, 0) / sorted.length;
  return { p50: rank(50), p95: rank(95), p99: rank(99), mean, max: sorted[sorted.length - 1] ?? NaN };
}
