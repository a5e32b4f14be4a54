/**
 * Serves a TypeScript Worker with Miniflare directly (workerd, no `wrangler dev` proxy in front): the entry
 * is bundled with esbuild the way wrangler does it (workerd/worker/browser conditions, `node:*` and
 * `cloudflare:*` left to the runtime), then run by one `Miniflare` instance, so one workerd process.
 */
import { readdirSync, readFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build, stop as stopEsbuild } from "esbuild";
import { Miniflare } from "miniflare";

/** How the benchmark serves a Worker. */
export const SERVED_BY = "Miniflare class (workerd, no wrangler dev proxy), esbuild bundle";

/** What {@link serveWorker} needs. */
export interface WorkerServeSpec {
  /** Short name for logs, e.g. `gateway`. */
  name: string;
  /** The TypeScript entry, e.g. `examples/gateway/worker.ts`. */
  entry: string;
  /** The Durable Object binding and its class. */
  durableObject: { binding: string; className: string };
  /** Text vars and secrets. */
  bindings: Record<string, string>;
  compatibilityDate: string;
  /** Opens workerd's V8 inspector on this port of 127.0.0.1 (for CPU profiles). @default closed */
  inspectorPort?: number;
  /** Receives workerd's output lines. @default discarded */
  log?: (line: string) => void;
}

/** A Worker being served. */
export interface ServedWorker {
  /** e.g. `http://127.0.0.1:41234` */
  readonly httpUrl: string;
  /** PID of this instance's workerd (for RSS and CPU), or undefined when it could not be found. */
  readonly workerdPid: number | undefined;
  /**
   * Calls `method()` over RPC on the Durable Object `name` of `binding` (e.g. the gateway's
   * `backendStats()`), or resolves undefined when the object has no such method or the call fails.
   */
  callObject(binding: string, name: string, method: string): Promise<unknown>;
  /** Disposes Miniflare (stops workerd) and removes the bundle. Idempotent. */
  dispose(): Promise<void>;
}

/** Bundles `spec.entry` and serves it on a free port of 127.0.0.1. */
export async function serveWorker(spec: WorkerServeSpec): Promise<ServedWorker> {
  const outDir = mkdtempSync(join(tmpdir(), `edge-wsproxy-bench-${spec.name}-`));
  const scriptPath = join(outDir, "worker.mjs");
  const workerdBefore = new Set(childWorkerdPids());
  let miniflare: Miniflare | undefined;
  try {
    await build({
      entryPoints: [spec.entry],
      outfile: scriptPath,
      bundle: true,
      format: "esm",
      target: "es2022",
      platform: "browser",
      conditions: ["workerd", "worker", "browser"],
      external: ["node:*", "cloudflare:*"],
      logLevel: "silent",
    });
    // esbuild keeps a service process for further builds; there are none, and it would outlive the run.
    await stopEsbuild();
    miniflare = new Miniflare({
      host: "127.0.0.1",
      port: 0,
      modules: true,
      // The bundle lives in a temporary folder; module names must not climb out of the modules root.
      modulesRoot: outDir,
      scriptPath,
      compatibilityDate: spec.compatibilityDate,
      compatibilityFlags: ["nodejs_compat"],
      ...(spec.inspectorPort === undefined ? {} : { inspectorPort: spec.inspectorPort }),
      durableObjects: {
        [spec.durableObject.binding]: { className: spec.durableObject.className, useSQLite: true },
      },
      durableObjectsPersist: false,
      bindings: spec.bindings,
      handleRuntimeStdio: (stdout, stderr) => {
        for (const stream of [stdout, stderr]) {
          stream.on("data", (chunk: Buffer) => {
            for (const line of chunk.toString().split("\n"))
              if (line.trim()) spec.log?.(`[${spec.name}] ${line}`);
          });
        }
      },
    });
    const url = await miniflare.ready;
    const workerdPid = childWorkerdPids().find((pid) => !workerdBefore.has(pid));
    let disposed: Promise<void> | undefined;
    const instance = miniflare;
    return {
      httpUrl: url.origin,
      workerdPid,
      async callObject(binding, name, method) {
        try {
          const namespace = await instance.getDurableObjectNamespace(binding);
          const stub = namespace.get(namespace.idFromName(name)) as unknown as Record<
            string,
            () => Promise<unknown>
          >;
          return await stub[method]?.();
        } catch {
          // Diagnostics only: a run without them is still a run.
          return undefined;
        }
      },
      dispose() {
        disposed ??= instance.dispose().finally(() => rmSync(outDir, { recursive: true, force: true }));
        return disposed;
      },
    };
  } catch (error) {
    await miniflare?.dispose().catch(() => undefined);
    rmSync(outDir, { recursive: true, force: true });
    throw error;
  }
}

/** PIDs of `workerd` processes whose parent is this process (Miniflare spawns workerd directly). */
function childWorkerdPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (stat.includes("(workerd)") && Number(fields[1]) === process.pid) pids.push(Number(entry));
    } catch {
      // The process ended between listing and reading: it is not ours to measure.
    }
  }
  return pids;
}
