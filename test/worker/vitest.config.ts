import { fileURLToPath } from "node:url";
import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineProject } from "vitest/config";

/**
 * The `workers` project: the Durable Object and the Worker inside workerd (test/worker/test-worker.ts, on
 * an in-memory Redis), run by @cloudflare/vitest-pool-workers.
 */
export default defineProject({
  plugins: [
    cloudflareTest({ wrangler: { configPath: fileURLToPath(new URL("./wrangler.toml", import.meta.url)) } }),
  ],
  test: {
    name: "workers",
    // The repository root, so paths and Vite's cache are the same as the node project's.
    root: fileURLToPath(new URL("../..", import.meta.url)),
    include: ["test/worker/**/*.test.ts"],
    testTimeout: 20_000,
  },
});
