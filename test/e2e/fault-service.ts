/**
 * The service of the fault and load tests: the example handlers plus the misbehaving ones a fault needs.
 * Run with `--module test/e2e/fault-service.ts`.
 */
import { handlers as exampleHandlers } from "../../examples/example-service.js";
import type { RpcHandlers } from "../../src/consumer/index.js";

/** `args.ms` of the client frame, clamped to [0, 60000]. */
function msOf(params: Record<string, unknown>): number {
  const args = (params.args ?? {}) as Record<string, unknown>;
  return Math.min(Math.max(Number(args.ms) || 0, 0), 60_000);
}

/** The example handlers, plus `hold`, `stubborn`, `reflect` and `crash`. */
export const handlers: RpcHandlers = {
  ...exampleHandlers,
  /** The example `slow` under another name, for an action on a backend with a longer timeout. */
  hold: (params, ctx) => exampleHandlers.slow!(params, ctx),
  /** Waits `args.ms` and ignores the deadline, so its reply can arrive after the gateway gave up. */
  stubborn: async (params) => {
    const ms = msOf(params);
    await new Promise((resolve) => setTimeout(resolve, ms));
    return { slept_ms: ms };
  },
  /** Returns the client's frame as it came, `stash` included: a service that reflects its input. */
  reflect: (params) => params.args,
  /** Kills the service process on every delivery: a poison entry. */
  crash: () => process.exit(1),
};
