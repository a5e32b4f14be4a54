/**
 * Where the time of one request goes, at 1 client: Redis `MONITOR` stamps every command as Redis runs it,
 * so for each gateway request it shows the service's part (`XADD` to `RPUSH`), the poll wait (`RPUSH`
 * to the `LPOP` that took the reply) and the turnaround (that `LPOP` to the next request's `XADD`: the
 * reply's way back to the object, to the client, the client's next frame and the object's `XADD`). With
 * the subscribe transport the service's reply is a `PUBLISH`, there is no poll wait, and the turnaround
 * starts at the `PUBLISH`. The floor's `PING` to `PING` cycle is the same turnaround with no gateway in
 * it. MONITOR slows Redis a little, so this runs apart from the measured phases.
 */
import { Redis } from "ioredis";
import type { BenchStack } from "./bench-stack.js";
import { runClosedLoop } from "./closed-loop.js";
import { WebSocketClient } from "./load-clients.js";

/** Medians over the traced requests, ms. */
export interface TraceResult {
  requests: number;
  /** How the service's reply reached the object: `RPUSH` (polled) or `PUBLISH` (pushed, no poll wait). */
  replyCommand: "RPUSH" | "PUBLISH";
  serviceMs: number;
  /** NaN with `PUBLISH`. */
  pollWaitMs: number;
  turnaroundMs: number;
  cycleMs: number;
  floorCycleMs: number;
  lpopsPerRequest: number;
}

type Stamp = [ms: number, command: string];

/** Drives `requests` sequential requests on the gateway, then on the floor, under MONITOR. */
export async function runTracePhase(bench: BenchStack, requests: number): Promise<TraceResult> {
  const base = new Redis(bench.stack.redis.url, { maxRetriesPerRequest: 1 });
  base.on("error", () => undefined);
  const monitor = await base.monitor();
  monitor.on("error", () => undefined);
  let stamps: Stamp[] | undefined;
  monitor.on("monitor", (time: string, args: unknown[]) =>
    stamps?.push([Number(time) * 1000, String(args[0]).toUpperCase()]),
  );
  try {
    const gateway = await drive(`${bench.gatewayWsUrl}?object=bench-trace`, requests, (s) => (stamps = s));
    const floor = await drive(`${bench.floorWsUrl}?object=floor-trace`, requests, (s) => (stamps = s));
    return {
      requests,
      ...gatewayParts(gateway),
      floorCycleMs: median(gaps(floor.filter(([, c]) => c === "PING").map(([t]) => t))),
    };
  } finally {
    monitor.disconnect();
    base.disconnect();
  }
}

async function drive(
  url: string,
  requests: number,
  record: (stamps: Stamp[] | undefined) => void,
): Promise<Stamp[]> {
  const client = await WebSocketClient.connect(url);
  try {
    const limits = {
      durationMs: 10_000,
      maxRequestsPerClient: Math.ceil(requests / 5),
      requestTimeoutMs: 10_000,
    };
    await runClosedLoop([client], limits, new Set());
    const stamps: Stamp[] = [];
    record(stamps);
    await runClosedLoop([client], { ...limits, maxRequestsPerClient: requests }, new Set());
    // MONITOR lines arrive just after the commands ran; give the last ones time to come in.
    await new Promise((resolve) => setTimeout(resolve, 100));
    record(undefined);
    return stamps;
  } finally {
    client.close();
  }
}

function gatewayParts(stamps: Stamp[]): Omit<TraceResult, "requests" | "floorCycleMs"> {
  const service: number[] = [];
  const pollWait: number[] = [];
  const turnaround: number[] = [];
  const cycle: number[] = [];
  let xadd = -1;
  let rpush = -1;
  let takingLpop = -1;
  let lpops = 0;
  let published = false;
  for (const [ms, command] of stamps) {
    if (command === "XADD") {
      if (takingLpop >= 0) turnaround.push(ms - takingLpop);
      if (xadd >= 0) cycle.push(ms - xadd);
      [xadd, rpush, takingLpop] = [ms, -1, -1];
    } else if (command === "PUBLISH" && xadd >= 0) {
      // Subscribe transport: the reply is pushed, so the turnaround starts at the PUBLISH; no poll wait.
      service.push(ms - xadd);
      takingLpop = ms;
      published = true;
    } else if (command === "RPUSH" && xadd >= 0) {
      rpush = ms;
      service.push(ms - xadd);
    } else if (command === "LPOP") {
      lpops += 1;
      // The first LPOP after the RPUSH is the one that took the reply (one request in flight).
      if (rpush >= 0 && takingLpop < 0) {
        takingLpop = ms;
        pollWait.push(ms - rpush);
      }
    }
  }
  return {
    replyCommand: published ? "PUBLISH" : "RPUSH",
    serviceMs: median(service),
    pollWaitMs: median(pollWait),
    turnaroundMs: median(turnaround),
    cycleMs: median(cycle),
    lpopsPerRequest: lpops / Math.max(1, service.length),
  };
}

function gaps(times: number[]): number[] {
  return times.slice(1).map((time, index) => time - (times[index] ?? time));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}
