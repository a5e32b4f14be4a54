/**
 * A short run of the push benchmark (bench/push-run.ts, `npm run bench:push` for the full one) on the real
 * stack, with no timing assertion: 5 subscriptions pushed one POST per frame and 40 pushed in batches,
 * every frame on its own connection with its own `subscription.id` and `req_id`, none the gateway accepted
 * missing, each subscription's push after the close answered 410, and no gateway-side Redis command while
 * only pushes flow.
 */
import { join } from "node:path";
import { expect, it } from "vitest";
import { runPushPhase, serviceReports, type PushPhaseSettings } from "../../bench/push-run.js";
import { PROJECT_ROOT } from "../../src/devstack/stack.js";
import { useE2eStack } from "./helpers.js";

const { reports, onLine } = serviceReports();
const e2e = useE2eStack({
  service: { args: ["--module", join(PROJECT_ROOT, "bench/push-service.ts")] },
  worker: "example",
  log: onLine,
});

it.each<PushPhaseSettings>([
  { name: "single", connections: 5, mode: "single", windowMs: 2000, rate: 10 },
  { name: "batch", connections: 40, mode: "batch", windowMs: 3000, rate: 10 },
])(
  "delivers every accepted push to its own connection ($mode)",
  async (settings) => {
    const result = await runPushPhase(e2e.worker.wsUrl, e2e.stack.redis.url, reports, settings);
    expect(result.subscribed).toBe(settings.connections);
    expect(result.framesInWindow).toBeGreaterThan(0);
    expect({
      lost: result.lost,
      gaps: result.gaps,
      duplicates: result.duplicates,
      crossed: result.crossed,
      goneBeforeClose: result.goneBeforeClose,
      goneAfterClose: result.goneAfterClose,
      gatewayRedisCommands: result.gatewayRedisCommands,
    }).toEqual({
      lost: 0,
      gaps: 0,
      duplicates: 0,
      crossed: 0,
      goneBeforeClose: 0,
      goneAfterClose: settings.connections,
      gatewayRedisCommands: 0,
    });
  },
  120_000,
);
