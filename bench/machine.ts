/**
 * The machine a run measured: CPU count and model, memory, and the versions of what runs the stack.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { PROJECT_ROOT } from "../src/devstack/stack.js";

/** nproc, CPU model, memory, Node, redis-server, workerd (Miniflare) and the open-file limit. */
export function describeMachine(): Record<string, string | number> {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? "unknown",
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    redis: shell("redis-server", ["--version"]).match(/v=(\S+)/)?.[1] ?? "unknown",
    miniflare: packageVersion("miniflare"),
    wrangler: packageVersion("wrangler"),
    ulimitN: shell("sh", ["-c", "ulimit -n"]).trim(),
    // Other work on the machine when the run started (a shared machine shows it here and in `others`).
    loadAverage1m: Math.round((loadavg()[0] ?? 0) * 100) / 100,
  };
}

function shell(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: "utf8" });
  } catch {
    return "unknown";
  }
}

function packageVersion(name: string): string {
  try {
    const pkg = JSON.parse(
      readFileSync(join(PROJECT_ROOT, "node_modules", name, "package.json"), "utf8"),
    ) as { version?: string };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}
