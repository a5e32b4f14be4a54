/**
 * `npm run check:bundle`: builds what `wrangler deploy` would upload (`wrangler deploy --dry-run --outdir`,
 * offline) and checks it:
 * - gzip size under 100 KiB: the Workers Free plan's limit is 3 MB compressed, but a small bundle starts
 *   fast (Cloudflare Workers docs, "Limits", Worker size);
 * - no `node:` import and no Node-only package (ioredis, ws, a Node built-in by its bare name) in it: the
 *   gateway runs on workerd without Node's APIs, and a `node:` import that `nodejs_compat` happens to
 *   polyfill would hide a service-side module that slipped into the Worker;
 * - no local value among the vars it deploys (a loopback or plain-http URL belongs in `.dev.vars`).
 *
 *   npm run check:bundle [-- --config wrangler.toml] [--dir <an existing --outdir>] [--max-gzip-kib 100]
 *
 * Prints the raw and gzip sizes; exits 1 when a check fails, 2 on bad usage.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";

const ROOT = resolve(import.meta.dirname, "..");

/** The default gzip budget of the bundle, KiB. */
export const MAX_GZIP_KIB = 100;

/** Packages that only run on Node (sockets, `net`, `tls`): the service SDK's and the bridge's. */
export const NODE_ONLY_PACKAGES = ["ioredis", "ws", "redis", "@redis/client", "node-fetch", "undici"];

/** What {@link checkBundle} found. */
export interface BundleReport {
  /** The JavaScript files checked (source maps left out). */
  files: string[];
  rawBytes: number;
  gzipBytes: number;
  /** Each failed check, one line each. */
  problems: string[];
}

/**
 * Runs `wrangler deploy --dry-run --outdir <outdir>` for `configPath` (our wrangler, from `cwd`); returns
 * wrangler's output.
 */
export function dryRun(configPath: string, outdir: string, cwd = ROOT): string {
  const result = spawnSync(
    process.execPath,
    [
      join(ROOT, "node_modules/wrangler/bin/wrangler.js"),
      "deploy",
      "--dry-run",
      "--outdir",
      outdir,
      "--config",
      configPath,
    ],
    {
      cwd,
      encoding: "utf8",
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0" },
    },
  );
  const output = `${result.stdout}${result.stderr}`;
  if (result.status !== 0)
    throw new Error(`wrangler deploy --dry-run failed (exit ${result.status}):\n${output}`);
  return output;
}

/** The module specifiers imported or required by `code`. */
function specifiers(code: string): string[] {
  const found = new Set<string>();
  const pattern = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s*|\brequire\s*\(\s*)["']([^"'\s]+)["']/gm;
  for (const match of code.matchAll(pattern)) if (match[1]) found.add(match[1]);
  return [...found];
}

/** Checks the JavaScript of a `--outdir` (size, imports, inlined Node-only packages). */
export function checkBundle(dir: string, maxGzipKiB = MAX_GZIP_KIB): BundleReport {
  const files = readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((f) =>
    /\.(m?js|cjs)$/.test(f),
  );
  const problems: string[] = [];
  let rawBytes = 0;
  let gzipBytes = 0;
  const builtins = new Set(builtinModules.filter((name) => !name.startsWith("_")));
  for (const file of files) {
    const bytes = readFileSync(join(dir, file));
    rawBytes += bytes.length;
    gzipBytes += gzipSync(bytes).length;
    const code = bytes.toString("utf8");
    for (const spec of specifiers(code)) {
      const name = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0];
      if (spec.startsWith("node:")) problems.push(`${file}: imports "${spec}" (a node: module)`);
      else if (builtins.has(name ?? "")) problems.push(`${file}: imports "${spec}" (a Node built-in)`);
      else if (NODE_ONLY_PACKAGES.includes(name ?? ""))
        problems.push(`${file}: imports "${spec}" (a Node-only package)`);
    }
    // esbuild (unminified, as wrangler bundles) marks each inlined module with a `// <path>` comment line.
    const inlined = new Set<string>();
    for (const match of code.matchAll(/^\/\/ (?:\S*\/)?node_modules\/((?:@[^/\s]+\/)?[^/\s]+)\//gm)) {
      if (NODE_ONLY_PACKAGES.includes(match[1] ?? "")) inlined.add(match[1] ?? "");
    }
    for (const pkg of inlined) problems.push(`${file}: the Node-only package ${pkg} inlined`);
  }
  if (files.length === 0) problems.push(`${dir}: no JavaScript file (is it a wrangler --outdir?)`);
  if (gzipBytes > maxGzipKiB * 1024) {
    problems.push(`gzip size ${kib(gzipBytes)} KiB is over the budget of ${maxGzipKiB} KiB`);
  }
  return { files, rawBytes, gzipBytes, problems };
}

/** The vars wrangler lists as deployed (`env.NAME ("value")  Environment Variable`) with a local value. */
export function localVars(wranglerOutput: string): string[] {
  const local = /^http:\/\/|\/\/(localhost|127\.\d+\.\d+\.\d+|\[::1\])(?=[:/]|$)/i;
  const found: string[] = [];
  for (const match of wranglerOutput.matchAll(/env\.(\w+) \("(.*)"\)\s+Environment Variable/g)) {
    if (local.test(match[2] ?? "")) found.push(match[1] ?? "");
  }
  return found;
}

function kib(bytes: number): string {
  return (bytes / 1024).toFixed(2);
}

function main(): number {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        config: { type: "string" },
        dir: { type: "string" },
        "max-gzip-kib": { type: "string" },
      },
    }));
  } catch (error) {
    console.error((error as Error).message);
    return 2;
  }
  const maxGzipKiB = Number(values["max-gzip-kib"] ?? MAX_GZIP_KIB);
  const configPath = resolve(values.config ?? join(ROOT, "wrangler.toml"));
  const outdir = values.dir ? resolve(values.dir) : mkdtempSync(join(tmpdir(), "edge-wsproxy-bundle-"));
  try {
    const problems: string[] = [];
    if (!values.dir) {
      console.log(`wrangler deploy --dry-run --config ${configPath} --outdir ${outdir}`);
      for (const name of localVars(dryRun(configPath, outdir))) {
        problems.push(`var ${name} holds a loopback or plain-http URL: keep local values in .dev.vars`);
      }
    }
    const report = checkBundle(outdir, maxGzipKiB);
    problems.push(...report.problems);
    console.log(
      `bundle ${report.files.join(", ")}: ${kib(report.rawBytes)} KiB raw, ${kib(report.gzipBytes)} KiB gzip ` +
        `(budget ${maxGzipKiB} KiB gzip)`,
    );
    for (const problem of problems) console.error(`FAIL ${problem}`);
    if (problems.length === 0) console.log("bundle ok: no node: import, no Node-only package, no local var");
    return problems.length === 0 ? 0 : 1;
  } finally {
    if (!values.dir) rmSync(outdir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = main();
}
