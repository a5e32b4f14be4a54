/**
 * `npm run bench:push [-- --connections 1000 --seconds 30 --latency-connections 10 --latency-seconds 10
 * --json file]`: server push through the local stack (redis-server, the bridge, `bench/push-service.ts`, the
 * example deployment under `wrangler dev`), in two phases:
 *
 * 1. latency: a few subscriptions, each frame its own `POST <connection>/messages`;
 * 2. load: many connections with one subscription each, 10 frames/s, pushed with `pushBatch`.
 *
 * Prints a table per phase (see bench/push-run.ts for what each column checks) and the machine.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { PROJECT_ROOT, startStack } from "../src/devstack/stack.js";
import { describeMachine } from "./machine.js";
import { runPushPhase, serviceReports, type PushPhaseResult } from "./push-run.js";
import { fixed, formatTable } from "./table.js";

const { values } = parseArgs({
  options: {
    connections: { type: "string", default: "1000" },
    seconds: { type: "string", default: "30" },
    "latency-connections": { type: "string", default: "10" },
    "latency-seconds": { type: "string", default: "10" },
    json: { type: "string" },
    verbose: { type: "boolean", default: false },
  },
});
const positive = (name: keyof typeof values): number => {
  const value = Number(values[name]);
  if (!Number.isInteger(value) || value < 1) {
    console.error(`--${name} must be a positive integer`);
    process.exit(2);
  }
  return value;
};
const settings = {
  connections: positive("connections"),
  seconds: positive("seconds"),
  latencyConnections: positive("latency-connections"),
  latencySeconds: positive("latency-seconds"),
};

const { reports, onLine } = serviceReports();
const machine = describeMachine();
const stack = await startStack({
  service: { args: ["--module", join(PROJECT_ROOT, "bench/push-service.ts")] },
  worker: true,
  log: (line) => {
    onLine(line);
    if (values.verbose) console.error(line);
  },
});
const progress = (line: string) => console.error(`[bench:push] ${line}`);
const results: PushPhaseResult[] = [];
try {
  const wsUrl = stack.worker?.wsUrl ?? "";
  results.push(
    await runPushPhase(
      wsUrl,
      stack.redis.url,
      reports,
      {
        name: "latency",
        connections: settings.latencyConnections,
        mode: "single",
        windowMs: settings.latencySeconds * 1000,
        rate: 10,
      },
      progress,
    ),
  );
  results.push(
    await runPushPhase(
      wsUrl,
      stack.redis.url,
      reports,
      {
        name: "load",
        connections: settings.connections,
        mode: "batch",
        windowMs: settings.seconds * 1000,
        rate: 10,
      },
      progress,
    ),
  );
} finally {
  await stack.stop();
}

console.log(
  formatTable(
    [
      "phase",
      "push",
      "subs",
      "window s",
      "frames",
      "of expected",
      "p50 ms",
      "p99 ms",
      "max ms",
      "lost",
      "gaps",
      "dup",
      "crossed",
      "410 after close",
      "410 before close",
      "gateway Redis cmds",
    ],
    results.map((r) => [
      r.name,
      r.mode,
      String(r.subscribed),
      String(r.windowMs / 1000),
      String(r.framesInWindow),
      `${fixed(r.deliveredShare * 100, 1)}%`,
      fixed(r.latencyP50Ms, 1),
      fixed(r.latencyP99Ms, 1),
      fixed(r.latencyMaxMs, 1),
      String(r.lost),
      String(r.gaps),
      String(r.duplicates),
      String(r.crossed),
      `${r.goneAfterClose}/${r.subscribed}`,
      String(r.goneBeforeClose),
      String(r.gatewayRedisCommands),
    ]),
  ),
);
console.log(`\nservice: ${JSON.stringify(results.at(-1)?.serviceStats ?? {})}`);
console.log(`machine: ${JSON.stringify(machine)}`);
if (values.json) writeFileSync(values.json, JSON.stringify({ machine, settings, results }, null, 2));
