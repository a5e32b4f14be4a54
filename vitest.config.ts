import { defineConfig } from "vitest/config";

/**
 * Two kinds of test: `node` (core units, the bridge, the service SDK and the end-to-end suites, which start
 * their own redis-server, bridge, service and Worker) and `workers` (the Durable Object inside workerd,
 * configured in test/worker/vitest.config.ts).
 */
export default defineConfig({
  test: {
    reporters: ["default", "./test/summary-reporter.ts"],
    projects: [
      {
        // "edge-wsproxy" and its subpaths resolve to src/ through tsconfig.json's `paths`, as in tsc, tsx and
        // wrangler's esbuild (see docs/package.md).
        resolve: { tsconfigPaths: true },
        test: {
          name: "node",
          include: ["test/{core,bridge,consumer,devstack,docs,e2e}/**/*.test.ts"],
          environment: "node",
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      "test/worker/vitest.config.ts",
    ],
  },
});
