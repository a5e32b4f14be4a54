import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { checkBundle, dryRun, localVars, MAX_GZIP_KIB } from "../../scripts/check-bundle.js";
import { PROJECT_ROOT } from "../../src/devstack/stack.js";

// `wrangler deploy --dry-run` bundles offline: what `npm run check:bundle` (and CI) checks.
const work = mkdtempSync(join(tmpdir(), "edge-wsproxy-bundle-test-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("the example deployment's bundle", () => {
  it("fits the gzip budget, imports nothing from Node and deploys no local var", () => {
    const outdir = join(work, "example");
    const output = dryRun(join(PROJECT_ROOT, "wrangler.toml"), outdir);
    expect(localVars(output)).toEqual([]);
    const report = checkBundle(outdir);
    expect(report.problems).toEqual([]);
    expect(report.gzipBytes).toBeLessThan(MAX_GZIP_KIB * 1024);
  }, 120_000);

  it("is refused when a node: import or a Node-only package sneaks into the Worker", () => {
    const entry = join(work, "sneaky.ts");
    const example = join(PROJECT_ROOT, "examples/gateway/worker.ts");
    // By absolute path: the entry lives outside the repository, away from its node_modules.
    const ioredis = createRequire(join(PROJECT_ROOT, "package.json")).resolve("ioredis");
    writeFileSync(
      entry,
      [
        `import { readFileSync } from "node:fs";`,
        `import Redis from ${JSON.stringify(ioredis)};`,
        `import worker from ${JSON.stringify(example)};`,
        `export { GatewayObject } from ${JSON.stringify(example)};`,
        `export default { fetch: (r, e, c) => (readFileSync && Redis ? worker.fetch(r, e, c) : null) };`,
      ].join("\n"),
    );
    const config = join(work, "wrangler.toml");
    writeFileSync(
      config,
      [
        `name = "sneaky"`,
        `main = "sneaky.ts"`,
        `compatibility_date = "2026-04-20"`,
        `compatibility_flags = ["nodejs_compat"]`,
        `[[durable_objects.bindings]]`,
        `name = "GATEWAY"`,
        `class_name = "GatewayObject"`,
        `[[migrations]]`,
        `tag = "v1"`,
        `new_sqlite_classes = ["GatewayObject"]`,
        `[vars]`,
        `UPSTASH_REDIS_REST_URL = "http://127.0.0.1:8079"`,
      ].join("\n"),
    );
    const outdir = join(work, "sneaky");
    expect(localVars(dryRun(config, outdir))).toEqual(["UPSTASH_REDIS_REST_URL"]);
    const problems = checkBundle(outdir).problems.join("\n");
    expect(problems).toContain(`imports "node:fs" (a node: module)`);
    expect(problems).toContain("the Node-only package ioredis inlined");
  }, 120_000);
});
