/**
 * The two phases with silent sockets: idle cost (Redis commands per minute with many open connections
 * and no traffic) and capacity (many idle WebSockets on one object, memory per connection).
 */
import { execFileSync } from "node:child_process";
import { performance } from "node:perf_hooks";
import WebSocket from "ws";
import type { BenchStack } from "./bench-stack.js";
import { splitDelta, type CommandSplit } from "./command-stats.js";
import { openInBatches, openSocket } from "./load-clients.js";
import { cpuDelta, processRssBytes, sampleCpu } from "./process-stats.js";

/** Result of the idle phase. */
export interface IdleResult {
  connections: number;
  windowMs: number;
  /** The window was shorter than a minute and its counts are scaled up. */
  scaledToMinute: boolean;
  callerPerMinute: number;
  servicePerMinute: number;
  commands: CommandSplit;
  /** Commands the gateway sent while the sockets were opening (before the idle window). */
  openingCommands: number;
  workerdCpuMsPerMinute: number;
}

/** Result of the capacity phase. */
export interface ConnectionsResult {
  requested: number;
  opened: number;
  /** Still open after the settle time, and the object still answered requests on sampled sockets. */
  stillOpen: number;
  sampledRequestsOk: number;
  sampledRequests: number;
  openSeconds: number;
  workerdRssDeltaBytes: number;
  workerdBytesPerConnection: number;
  benchBytesPerConnection: number;
  /** Set when `ulimit -n` made the run open fewer than asked. */
  limitedBy?: string;
  /** Why opening stopped before `requested`, when a handshake failed. */
  failure?: string;
}

/** A silent socket with the `close()` that `openInBatches` needs. */
class SilentSocket {
  constructor(readonly socket: WebSocket) {
    socket.on("error", () => undefined);
  }
  close(): void {
    this.socket.terminate();
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Opens `connections` silent sockets on one gateway object and counts what Redis sees in `windowMs`. */
export async function runIdlePhase(
  bench: BenchStack,
  connections: number,
  windowMs: number,
): Promise<IdleResult> {
  const before = await bench.commands.snapshot();
  const sockets = await openInBatches(
    connections,
    200,
    async () => new SilentSocket(await openSocket(`${bench.gatewayWsUrl}?object=bench-idle`)),
  );
  try {
    await sleep(1000);
    const windowStart = await bench.commands.snapshot();
    const cpuBefore = sampleCpu(bench.processes);
    await sleep(windowMs);
    const cpu = cpuDelta(cpuBefore, sampleCpu(bench.processes));
    const commands = splitDelta(windowStart, await bench.commands.snapshot());
    const perMinute = 60_000 / windowMs;
    return {
      connections,
      windowMs,
      scaledToMinute: windowMs < 60_000,
      callerPerMinute: commands.caller.total * perMinute,
      servicePerMinute: commands.service.total * perMinute,
      commands,
      openingCommands: splitDelta(before, windowStart).caller.total,
      workerdCpuMsPerMinute: (cpu.workerd ?? 0) * perMinute,
    };
  } finally {
    for (const socket of sockets) socket.close();
  }
}

/** The open-file limit of this process (workerd inherits it). */
export function openFileLimit(): number {
  try {
    return Number(execFileSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" }).trim()) || Infinity;
  } catch {
    return Infinity;
  }
}

/** File descriptors kept free for everything else the bench process and workerd hold. */
export const FD_MARGIN = 1024;

/** Where the capacity phase opens its sockets: the gateway's or the floor's object, and its workerd. */
export interface SocketTarget {
  /** e.g. `ws://127.0.0.1:1234/websockets/v3?object=bench-connections` */
  url: string;
  workerdPid: number | undefined;
}

/** Opens up to `requested` idle sockets on one object; measures workerd's memory per connection. */
export async function runConnectionsPhase(
  target: SocketTarget,
  requested: number,
  log: (line: string) => void,
): Promise<ConnectionsResult> {
  const limit = openFileLimit();
  let count = requested;
  let limitedBy: string | undefined;
  if (limit < requested + FD_MARGIN) {
    count = Math.max(0, limit - FD_MARGIN);
    limitedBy = `ulimit -n is ${limit}`;
  }
  const workerdPid = target.workerdPid ?? -1;
  const rssBefore = processRssBytes(workerdPid) ?? 0;
  const benchBefore = process.memoryUsage().rss;
  const started = performance.now();
  let lastReport = started;
  const { opened: sockets, failure } = await openUntilFailure(count, 250, async (index) => {
    if (performance.now() - lastReport > 5000) {
      lastReport = performance.now();
      log(`  ${index} of ${count} open...`);
    }
    return new SilentSocket(await openSocket(target.url, 30_000));
  });
  if (failure) log(`  stopped opening at ${sockets.length}: ${failure}`);
  const openSeconds = (performance.now() - started) / 1000;
  try {
    await sleep(2000);
    const rssAfter = processRssBytes(workerdPid) ?? 0;
    const benchAfter = process.memoryUsage().rss;
    const stillOpen = sockets.filter((s) => s.socket.readyState === WebSocket.OPEN).length;
    const sample = sockets
      .filter((_, i) => i % Math.max(1, Math.floor(sockets.length / 10)) === 0)
      .slice(0, 10);
    const answers = await Promise.all(sample.map((s, i) => pingOnce(s.socket, 900_000_000 + i)));
    return {
      requested,
      opened: sockets.length,
      stillOpen,
      sampledRequestsOk: answers.filter(Boolean).length,
      sampledRequests: sample.length,
      openSeconds,
      workerdRssDeltaBytes: rssAfter - rssBefore,
      workerdBytesPerConnection: (rssAfter - rssBefore) / Math.max(1, sockets.length),
      benchBytesPerConnection: (benchAfter - benchBefore) / Math.max(1, sockets.length),
      limitedBy,
      failure,
    };
  } finally {
    for (const socket of sockets) socket.close();
    // Give workerd a moment to run the close handlers before the next phase or shutdown.
    await sleep(1000);
  }
}

/**
 * Opens up to `count` sockets `size` at a time and stops after the first batch in which a handshake
 * failed: how many a runtime holds is the figure, so a refusal is a result, not a crash.
 */
async function openUntilFailure(
  count: number,
  size: number,
  open: (index: number) => Promise<SilentSocket>,
): Promise<{ opened: SilentSocket[]; failure?: string }> {
  const opened: SilentSocket[] = [];
  for (let start = 0; start < count; start += size) {
    const batch = Array.from({ length: Math.min(size, count - start) }, (_, i) => open(start + i));
    const outcomes = await Promise.allSettled(batch);
    for (const outcome of outcomes) if (outcome.status === "fulfilled") opened.push(outcome.value);
    const failed = outcomes.find((outcome) => outcome.status === "rejected");
    if (failed) return { opened, failure: String((failed as PromiseRejectedResult).reason) };
  }
  return { opened };
}

/** One `ping` on an idle socket; true when answered without error within 10 s. */
function pingOnce(socket: WebSocket, reqId: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(false), 10_000);
    const onMessage = (data: WebSocket.RawData) => {
      const reply = JSON.parse(String(data)) as { req_id?: number; error?: unknown };
      if (reply.req_id === reqId) done(reply.error === undefined);
    };
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.off("message", onMessage);
      resolve(ok);
    };
    socket.on("message", onMessage);
    socket.send(JSON.stringify({ ping: 1, req_id: reqId }));
  });
}
