/**
 * Load over the real stack: the example deployment with queue separation on (`slow` on its own stream),
 * one service per category, many connections sending random actions, a few closing mid-request. Every
 * request of a connection that stayed gets exactly one reply, its own. CI runs 200 connections x 5
 * requests; `npm run test:faults` runs 1,000 x 10 at about 330 requests/s (`LOAD_CONNECTIONS`,
 * `LOAD_REQUESTS`, `LOAD_GAP_MS`).
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../src/devstack/stack.js";
import { useE2eStack } from "./helpers.js";
import { runLoad } from "../../bench/load-run.js";

const CONNECTIONS = Number(process.env.LOAD_CONNECTIONS ?? 200);
const REQUESTS = Number(process.env.LOAD_REQUESTS ?? 5);
/** Mean gap between a connection's requests, ms: 200 connections at 300 ms make about 670 requests/s. */
const GAP_MS = Number(process.env.LOAD_GAP_MS ?? 300);
const service = (category: string) => ({
  args: [
    "--module",
    join(PROJECT_ROOT, "test/e2e/fault-service.ts"),
    "--category",
    category,
    "--concurrency",
    "64",
  ],
});

const e2e = useE2eStack({
  service: [service("general"), service("slow")],
  worker: "example",
  vars: { QUEUE_SEPARATION_ENABLED: "1" },
});

describe("load", () => {
  it(`${CONNECTIONS} connections x ${REQUESTS} random requests: none lost, none misrouted`, async () => {
    const { ledger, seed, connectMs, runMs } = await runLoad({
      wsUrl: e2e.worker.wsUrl,
      connections: CONNECTIONS,
      requestsPerConnection: REQUESTS,
      meanGapMs: GAP_MS,
    });
    const counts = ledger.counts();
    console.log(
      `load (seed ${seed}): ${ledger.summaryLine()}; connected in ${connectMs} ms, answered in ${runMs} ms`,
    );
    // Every connection the client did not close on purpose sent all its requests (how many it closes is
    // random: about 5%, so a fixed share of the total would fail now and then).
    expect(counts.sent).toBeGreaterThanOrEqual((CONNECTIONS - counts.abandoned) * REQUESTS);
    expect(counts, JSON.stringify(ledger.problems())).toMatchObject({
      lost: 0,
      misrouted: 0,
      errors: {},
      closedByServer: 0,
    });
    expect(counts.abandoned).toBeGreaterThan(0);
    // Both category streams carried requests.
    expect(await e2e.redis.xlen("general")).toBeGreaterThan(0);
    expect(await e2e.redis.xlen("slow")).toBeGreaterThan(0);
    await ledger.closeAll();
  }, 240_000);
});
