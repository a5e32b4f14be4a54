/**
 * `node --import tsx bench/hot-path.ts [requests] [--workerd]`: the CPU the gateway's own code spends per request,
 * with no I/O: a client frame through the dispatcher (decoding, limits, hooks, routing) and the
 * consumer-groups backend (the stream entry, the Redis pipe, the reply poller, the pending table, the
 * reply's parsing) to the frame sent back, in Node, one request at a time. Redis is a stand-in that
 * answers each command in a microtask and has the reply ready for the poll at the `XADD`'s answer, as the
 * 1-client runs of the benchmark find it.
 *
 * Prints CPU µs per request. `--workerd` runs the same loop inside workerd (one Durable Object served by
 * Miniflare, `bench/hot-path-worker.ts`) and prints workerd's CPU per request, measured around the run. Set it beside the object's workerd CPU per request in `bench/bare-poll.ts`
 * (the gateway against the poll path with none of its code) to tell the gateway's code from what its use
 * of the runtime costs.
 */
import { join } from "node:path";
import { PROJECT_ROOT } from "../src/devstack/stack.js";
import { compatibilityDate } from "./bench-stack.js";
import { runHotPath, type HotPathRun } from "./hot-path-loop.js";
import { processCpuMs } from "./process-stats.js";
import { serveWorker } from "./worker-server.js";

const inWorkerd = process.argv.includes("--workerd");
const requests = Number(process.argv.slice(2).find((arg) => !arg.startsWith("--")) ?? 20_000);
const WARMUP = 2_000;
/** Measured runs, one after the other (the first may still run code V8 has not optimised yet). */
const RUNS = 3;

/** Runs the loop in this process, {@link RUNS} times: CPU µs and wall µs per request of each. */
async function inNode(): Promise<Array<[HotPathRun, number, number]>> {
  const results: Array<[HotPathRun, number, number]> = [];
  for (let index = 0; index < RUNS; index++) {
    let cpu = { user: 0, system: 0 };
    let wallMs = 0;
    const run = await runHotPath(index === 0 ? WARMUP : 0, requests, async (loop) => {
      const cpuBefore = process.cpuUsage();
      const started = performance.now();
      await loop();
      cpu = process.cpuUsage(cpuBefore);
      wallMs = performance.now() - started;
    });
    results.push([run, (cpu.user + cpu.system) / requests, (wallMs * 1000) / requests]);
  }
  return results;
}

/** Runs the loop in a Durable Object, {@link RUNS} times: workerd's CPU µs and wall µs per request of each. */
async function inObject(): Promise<Array<[HotPathRun, number, number]>> {
  const worker = await serveWorker({
    name: "hot-path",
    entry: join(PROJECT_ROOT, "bench/hot-path-worker.ts"),
    durableObject: { binding: "HOT_PATH", className: "HotPathObject" },
    bindings: {},
    compatibilityDate: compatibilityDate(),
  });
  try {
    const pid = worker.workerdPid;
    if (pid === undefined) throw new Error("workerd's pid was not found");
    await fetch(`${worker.httpUrl}/?n=${WARMUP}`).then((response) => response.json());
    const results: Array<[HotPathRun, number, number]> = [];
    for (let index = 0; index < RUNS; index++) {
      const cpuBefore = processCpuMs(pid) ?? NaN;
      const started = performance.now();
      const run = (await (await fetch(`${worker.httpUrl}/?n=${requests}`)).json()) as HotPathRun;
      const wallMs = performance.now() - started;
      results.push([
        run,
        (((processCpuMs(pid) ?? NaN) - cpuBefore) * 1000) / requests,
        (wallMs * 1000) / requests,
      ]);
    }
    return results;
  } finally {
    await worker.dispose();
  }
}

for (const [round, [run, cpuUs, wallUs]] of (inWorkerd ? await inObject() : await inNode()).entries()) {
  console.log(
    `${inWorkerd ? "workerd" : "Node"}, run ${round + 1}: ${requests} requests, ${run.answered} answered ` +
      `(${run.errors} errors): ${cpuUs.toFixed(1)} us CPU and ${wallUs.toFixed(1)} us per request; ` +
      `${run.lpopPerXadd.toFixed(2)} LPOP per XADD`,
  );
}
