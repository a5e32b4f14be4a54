/**
 * `npx tsx scripts/load.ts --connections 1000 --requests 10`: the load run of `test/e2e/load.test.ts`, bigger and
 * on its own. Starts the local stack (the example deployment with queue separation, one example service
 * per category), or drives a running gateway with `--url`, and prints
 * `sent N / answered N / lost N / misrouted N`. Exit code 1 when anything was lost or misrouted.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { PROJECT_ROOT, startStack, type Stack } from "../src/devstack/stack.js";
import { runLoad } from "../bench/load-run.js";

const USAGE = `usage: npx tsx scripts/load.ts [--connections 1000] [--requests 10] [--gap-ms 3000] [--slow-max-ms 50]
  [--abandon 0.05] [--seed N] [--url ws://host/websockets/v3] [--log]
  --gap-ms   mean gap between two requests of one connection (uniform in [0, 2 x gap])
  --abandon  share of connections closed after sending half their requests
  --url      drive this gateway instead of starting the local stack (its services must be the example ones)`;

function numberFlag(value: string | undefined, fallback: number, flag: string): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0) throw new Error(`${flag} must be a non-negative number`);
  return parsed;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      connections: { type: "string" },
      requests: { type: "string" },
      "gap-ms": { type: "string" },
      "slow-max-ms": { type: "string" },
      abandon: { type: "string" },
      seed: { type: "string" },
      url: { type: "string" },
      log: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const service = (category: string) => ({
    args: ["--module", join(PROJECT_ROOT, "examples/example-service.ts"), "--category", category],
  });
  let stack: Stack | undefined;
  try {
    if (!values.url) {
      console.log("starting redis-server, the bridge, two services and the Worker...");
      stack = await startStack({
        service: [service("general"), service("slow")].map((s) => ({
          args: [...s.args, "--concurrency", "64"],
        })),
        worker: { vars: { QUEUE_SEPARATION_ENABLED: "1" } },
        log: values.log ? (line) => console.log(line) : undefined,
      });
    }
    const { ledger, seed, connectMs, runMs } = await runLoad({
      wsUrl: values.url ?? stack?.worker?.wsUrl ?? "",
      connections: numberFlag(values.connections, 1000, "--connections"),
      requestsPerConnection: numberFlag(values.requests, 10, "--requests"),
      meanGapMs: numberFlag(values["gap-ms"], 3000, "--gap-ms"),
      slowMaxMs: numberFlag(values["slow-max-ms"], 50, "--slow-max-ms"),
      abandonShare: numberFlag(values.abandon, 0.05, "--abandon"),
      seed: values.seed === undefined ? undefined : numberFlag(values.seed, 0, "--seed"),
    });
    console.log(ledger.summaryLine());
    console.log(`seed ${seed}; connected in ${connectMs} ms; sent and answered in ${runMs} ms`);
    const counts = ledger.counts();
    if (counts.lost > 0 || counts.misrouted > 0) console.log(JSON.stringify(ledger.problems()));
    await ledger.closeAll();
    return counts.lost === 0 && counts.misrouted === 0 ? 0 : 1;
  } finally {
    await stack?.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    console.error(USAGE);
    process.exit(2);
  },
);
