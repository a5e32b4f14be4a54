import { defineConfig } from "vitest/config";

/**
 * The tests Stryker runs for each mutant (`npm run test:mutation`, see docs/mutation-testing.md): the node tests
 * of src/core, src/consumer and src/wire. Left out: the fuzz test (one 10 s property run that covers every core
 * line, so it would run for every core mutant) and the CLI tests (they spawn a child process, whose coverage
 * Stryker cannot see).
 */
export default defineConfig({
  resolve: { tsconfigPaths: true },
  test: {
    include: ["test/core/**/*.test.ts", "test/consumer/**/*.test.ts"],
    exclude: ["test/core/fuzz.test.ts", "test/consumer/cli.test.ts"],
    environment: "node",
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
