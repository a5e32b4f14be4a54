/**
 * Mutation testing of the code every deployment shares: src/core, src/consumer and src/wire.
 * Run with `npm run test:mutation` (not in CI: about 20 minutes on 2 cores). See docs/mutation-testing.md.
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
  testRunner: "vitest",
  vitest: { configFile: "vitest.mutation.config.ts", related: false },
  coverageAnalysis: "perTest",
  mutate: [
    "src/core/**/*.ts",
    "src/consumer/**/*.ts",
    "src/wire/**/*.ts",
    // The service CLI entry point runs only in a child process (the CLI tests, left out: see vitest.mutation.config.ts).
    "!src/consumer/cli.ts",
  ],
  ignoreStatic: true,
  concurrency: 2,
  timeoutMS: 15_000,
  // Re-runs only test mutants whose code or covering tests changed since the last run.
  incremental: true,
  incrementalFile: "reports/stryker-incremental.json",
  reporters: ["clear-text", "progress-append-only", "html", "json"],
  htmlReporter: { fileName: "reports/mutation/index.html" },
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  tempDirName: ".stryker-tmp",
  cleanTempDir: "always",
};
