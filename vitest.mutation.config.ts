import { defineConfig } from "vitest/config";

/**
 * The tests Stryker runs for each mutant (`npm run test:mutation`, see docs/mutation-testing.md), by scope
 * (`MUTATION_SCOPE`, set by stryker.config.mjs for its test runners):
 * - `core`: src/core and src/wire against test/core (fast, in-memory) and the SDK's wire round trip;
 * - `consumer`: src/consumer against test/consumer (a real redis-server and bridge per file, so slow).
 * Left out: the fuzz test (one 10 s property run that covers every core line, so it would run for every
 * core mutant) and the CLI tests, the service's and `npm run call`'s (they spawn a child process, whose
 * coverage Stryker cannot see).
 */
const scope = process.env.MUTATION_SCOPE === "consumer" ? "consumer" : "core";

export default defineConfig({
  resolve: { tsconfigPaths: true },
  test: {
    include:
      scope === "core"
        ? ["test/core/**/*.test.ts", "test/consumer/wire-round-trip.test.ts"]
        : ["test/consumer/**/*.test.ts"],
    exclude: ["test/core/fuzz.test.ts", "test/consumer/cli.test.ts", "test/consumer/call-cli.test.ts"],
    environment: "node",
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
