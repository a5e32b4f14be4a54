/**
 * Mutation testing of the code every deployment shares, in two scopes run one after the other by
 * `npm run test:mutation` (not in CI; see docs/mutation-testing.md for the time it takes):
 * - `MUTATION_SCOPE=core` (the default): src/core and src/wire;
 * - `MUTATION_SCOPE=consumer`: src/consumer.
 * Each scope keeps its own incremental file, so a re-run tests only mutants whose code or tests changed.
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
import process from "node:process";

const scope = process.env.MUTATION_SCOPE === "consumer" ? "consumer" : "core";
// The test runners Stryker starts inherit this, and vitest.mutation.config.ts picks its tests by it.
process.env.MUTATION_SCOPE = scope;

export default {
  testRunner: "vitest",
  vitest: { configFile: "vitest.mutation.config.ts", related: false },
  coverageAnalysis: "perTest",
  mutate:
    scope === "core"
      ? ["src/core/**/*.ts", "src/wire/**/*.ts"]
      : [
          "src/consumer/**/*.ts",
          // The service CLI entry point runs only in a child process (the CLI tests, left out).
          "!src/consumer/cli.ts",
        ],
  ignoreStatic: true,
  concurrency: 2,
  timeoutMS: 5_000,
  incremental: true,
  incrementalFile: `reports/stryker-incremental-${scope}.json`,
  reporters: ["clear-text", "progress-append-only", "html", "json"],
  htmlReporter: { fileName: `reports/mutation/${scope}.html` },
  jsonReporter: { fileName: `reports/mutation/${scope}.json` },
  tempDirName: ".stryker-tmp",
  cleanTempDir: "always",
};
