/**
 * `npm run check:package`: checks the package as a user gets it, offline.
 *
 * 1. `npm pack` (its `prepack` builds dist/): prints the tarball's size and file count, and fails when a
 *    file the `exports` map or `bin` names is missing from it, or when it holds TypeScript sources.
 * 2. A scratch project installs the tarball with `npm ci --offline`: its lockfile is cut from ours (the
 *    runtime dependencies and theirs, same versions and integrity), so everything comes from the npm cache
 *    that our own `npm ci` filled; no network.
 * 3. There, the 4-line Worker of the README passes `wrangler deploy --dry-run` (our wrangler), and its bundle
 *    passes the checks of `npm run check:bundle` (no `node:` import, no Node-only package, gzip budget).
 * 4. Plain Node (no TypeScript loader) imports `edge-wsproxy/service` and `edge-wsproxy/bridge`, and the
 *    three `bin` commands answer `--help`.
 * 5. `tsc` type-checks the Worker and a service against the shipped declarations.
 *
 *   npm run check:package [-- --keep]     (--keep leaves the scratch folder and prints its path)
 *
 * Exits 1 when a check fails.
 */
import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { checkBundle, dryRun } from "./check-bundle.js";

const ROOT = resolve(import.meta.dirname, "..");
const NODE_MODULES = join(ROOT, "node_modules");

/** The Worker a user writes first (the README's four lines). */
export const USER_WORKER = [
  `import { createGateway } from "edge-wsproxy";`,
  `const gateway = createGateway({ actions: [["ping"], ["time"]] });`,
  `export default { fetch: gateway.fetch };`,
  `export const GatewayObject = gateway.GatewayObject;`,
].join("\n");

/** Its wrangler.toml: the Durable Object binding and migration the gateway needs. */
const USER_WRANGLER_TOML = [
  `name = "my-gateway"`,
  `main = "worker.ts"`,
  `compatibility_date = "2026-04-20"`,
  `compatibility_flags = ["nodejs_compat"]`,
  `[[durable_objects.bindings]]`,
  `name = "GATEWAY"`,
  `class_name = "GatewayObject"`,
  `[[migrations]]`,
  `tag = "v1"`,
  `new_sqlite_classes = ["GatewayObject"]`,
].join("\n");

/** A first service, type-checked against the shipped declarations. */
const USER_SERVICE = [
  `import { createRpcService, type RpcHandlers } from "edge-wsproxy/service";`,
  `export const handlers: RpcHandlers = { ping: () => "pong", time: () => Math.floor(Date.now() / 1000) };`,
  `export const service = createRpcService({ redis: "redis://127.0.0.1:6379", handlers });`,
].join("\n");

/** Plain Node, no loader: the service SDK and the bridge load from the built JavaScript. */
const NODE_IMPORTS = [
  `const service = await import("edge-wsproxy/service");`,
  `const bridge = await import("edge-wsproxy/bridge");`,
  `if (typeof service.createRpcService !== "function") throw new Error("no createRpcService in edge-wsproxy/service");`,
  `if (typeof bridge.startBridge !== "function") throw new Error("no startBridge in edge-wsproxy/bridge");`,
  `console.log("edge-wsproxy/service: createRpcService, edge-wsproxy/bridge: startBridge");`,
].join("\n");

interface PackedFile {
  path: string;
}
/** What `npm pack --json` reports about the tarball. */
export interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  integrity: string;
  entryCount: number;
  files: PackedFile[];
}

interface LockEntry {
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  dev?: boolean;
  devOptional?: boolean;
  peer?: boolean;
  [key: string]: unknown;
}

/** Runs a command to its end; returns its stdout, throws with all its output when it fails. */
function run(command: string, args: string[], options: SpawnSyncOptions & { cwd: string }): string {
  const result = spawnSync(command, args, {
    encoding: "utf8",
    ...options,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0", ...options.env },
  });
  const output = `${String(result.stdout ?? "")}${String(result.stderr ?? "")}`;
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(" ")} failed (exit ${result.status}):\n${output}`);
  }
  return String(result.stdout ?? "");
}

/**
 * Our lockfile's entries for the runtime dependencies and what they depend on, at the same paths (Node's
 * resolution walks up from a nested `node_modules`, as npm laid them out).
 */
export function runtimeLockEntries(
  lockPackages: Record<string, LockEntry>,
  dependencies: Record<string, string>,
): Record<string, LockEntry> {
  const picked: Record<string, LockEntry> = {};
  const visit = (fromPath: string, name: string) => {
    // Where Node finds `name` from the package at `fromPath`: its own node_modules, then each parent's.
    let base = fromPath;
    for (;;) {
      const candidate = `${base ? `${base}/` : ""}node_modules/${name}`;
      if (lockPackages[candidate]) {
        if (picked[candidate]) return;
        const { dev: _dev, devOptional: _devOptional, peer: _peer, ...entry } = lockPackages[candidate];
        picked[candidate] = entry;
        for (const dep of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) {
          visit(candidate, dep);
        }
        return;
      }
      if (!base) throw new Error(`package-lock.json has no entry for ${name} (needed by ${fromPath || "."})`);
      const cut = base.lastIndexOf("/node_modules/");
      base = cut === -1 ? "" : base.slice(0, cut);
    }
  };
  for (const name of Object.keys(dependencies)) visit("", name);
  return picked;
}

/** What the exports map and `bin` point at, as paths inside the tarball (`dist/index.js`, ...). */
export function promisedFiles(pkg: {
  exports?: Record<string, string | Record<string, string>>;
  bin?: Record<string, string>;
}): string[] {
  const targets = new Set<string>();
  for (const target of Object.values(pkg.exports ?? {})) {
    for (const path of typeof target === "string" ? [target] : Object.values(target)) targets.add(path);
  }
  for (const path of Object.values(pkg.bin ?? {})) targets.add(path);
  return [...targets].map((path) => path.replace(/^\.\//, ""));
}

function kib(bytes: number): string {
  return (bytes / 1024).toFixed(1);
}

/** Packs, installs and checks the package (the steps above); returns each failed check, one line each. */
export function checkPackage(options: { keep?: boolean; log?: (line: string) => void } = {}): {
  problems: string[];
  packed?: PackResult;
} {
  const log = options.log ?? (() => {});
  const work = mkdtempSync(join(tmpdir(), "edge-wsproxy-package-"));
  const problems: string[] = [];
  let packed: PackResult | undefined;
  try {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));

    log("== npm pack (prepack builds dist/)");
    const packOutput = run("npm", ["pack", "--json", "--pack-destination", work], { cwd: ROOT });
    [packed] = JSON.parse(packOutput.slice(packOutput.search(/^\[/m))) as PackResult[];
    if (!packed) throw new Error(`npm pack printed no result:\n${packOutput}`);
    log(
      `${packed.filename}: ${kib(packed.size)} KiB packed, ${kib(packed.unpackedSize)} KiB unpacked, ` +
        `${packed.entryCount} files`,
    );
    for (const key of ["exports", "bin"]) if (!pkg[key]) problems.push(`package.json has no \`${key}\``);
    if (pkg.private) problems.push("package.json says `private`: npm refuses to publish it");
    const inTarball = new Set(packed.files.map((file) => file.path));
    for (const path of promisedFiles(pkg)) {
      if (!inTarball.has(path)) problems.push(`the tarball lacks ${path} (named by exports or bin)`);
    }
    const sources = packed.files.filter((file) => /(?<!\.d)\.ts$/.test(file.path)).map((file) => file.path);
    if (sources.length > 0) problems.push(`the tarball holds TypeScript sources: ${sources.join(", ")}`);

    log("== npm ci --offline in a scratch project (lockfile cut from ours)");
    const project = join(work, "project");
    mkdirSync(project);
    const tarballSpec = `file:../${packed.filename}`;
    const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8"));
    writeFileSync(
      join(project, "package.json"),
      JSON.stringify(
        { name: "my-gateway", private: true, type: "module", dependencies: { "edge-wsproxy": tarballSpec } },
        null,
        2,
      ),
    );
    writeFileSync(
      join(project, "package-lock.json"),
      JSON.stringify(
        {
          name: "my-gateway",
          lockfileVersion: 3,
          requires: true,
          packages: {
            "": { name: "my-gateway", dependencies: { "edge-wsproxy": tarballSpec } },
            "node_modules/edge-wsproxy": {
              version: pkg.version,
              resolved: tarballSpec,
              integrity: packed.integrity,
              license: pkg.license,
              dependencies: pkg.dependencies,
              bin: pkg.bin,
              engines: pkg.engines,
            },
            ...runtimeLockEntries(lock.packages, pkg.dependencies),
          },
        },
        null,
        2,
      ),
    );
    run("npm", ["ci", "--offline", "--no-audit", "--no-fund", "--ignore-scripts"], { cwd: project });
    log(`installed ${packed.filename} and ${Object.keys(pkg.dependencies).join(", ")} from the cache`);

    log("== the 4-line Worker: wrangler deploy --dry-run");
    writeFileSync(join(project, "worker.ts"), USER_WORKER + "\n");
    writeFileSync(join(project, "wrangler.toml"), USER_WRANGLER_TOML + "\n");
    const outdir = join(work, "bundle");
    dryRun(join(project, "wrangler.toml"), outdir, project);
    const bundle = checkBundle(outdir);
    problems.push(...bundle.problems);
    log(`dry run ok; bundle ${kib(bundle.rawBytes)} KiB raw, ${kib(bundle.gzipBytes)} KiB gzip`);

    log("== plain Node imports and the bin commands");
    log(run(process.execPath, ["--input-type=module", "-e", NODE_IMPORTS], { cwd: project }).trim());
    for (const name of Object.keys(pkg.bin ?? {})) {
      const bin = join(project, "node_modules/.bin", name);
      const result = spawnSync(bin, ["--help"], { cwd: project, encoding: "utf8" });
      const firstLine = `${result.stdout}${result.stderr}`.trim().split("\n")[0] ?? "";
      if (result.status !== 0 || !/usage/i.test(firstLine)) {
        problems.push(`${name} --help: exit ${result.status}, ${firstLine || result.error?.message}`);
      } else log(`${name} --help: ${firstLine.slice(0, 70)}...`);
    }

    log("== tsc against the shipped declarations");
    writeFileSync(join(project, "service.ts"), USER_SERVICE + "\n");
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "ESNext",
          moduleResolution: "Bundler",
          lib: ["ES2023"],
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          // The Workers and Node globals, from our node_modules (a real project installs both).
          typeRoots: [join(NODE_MODULES, "@types"), join(NODE_MODULES, "@cloudflare")],
          types: ["node", "workers-types"],
        },
        files: ["worker.ts", "service.ts"],
      }),
    );
    run(process.execPath, [join(NODE_MODULES, "typescript/bin/tsc"), "-p", "tsconfig.json"], {
      cwd: project,
    });
    log("worker.ts and service.ts type-check");
  } catch (error) {
    problems.push((error as Error).message);
  } finally {
    if (options.keep) log(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
  return { problems, packed };
}

function main(): number {
  const { values } = parseArgs({ options: { keep: { type: "boolean" } } });
  const { problems } = checkPackage({ keep: values.keep, log: (line) => console.log(line) });
  for (const problem of problems) console.error(`FAIL ${problem}`);
  if (problems.length === 0) console.log("package ok");
  return problems.length === 0 ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = main();
}
