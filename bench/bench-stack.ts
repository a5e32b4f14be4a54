/**
 * Everything a run measures, started on private ports: redis-server, the REST bridge and the example
 * service (native transport) from the dev-stack harness, then the gateway and the runtime floor, each
 * served by its own Miniflare instance (one workerd each). `stop()` ends all of it, newest first.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PROJECT_ROOT, startStack, type Stack } from "../src/devstack/stack.js";
import { CommandStats } from "./command-stats.js";
import { findChild, type WatchedProcess } from "./process-stats.js";
import { createRestClient } from "./rest-client.js";
import { serveWorker, type ServedWorker } from "./worker-server.js";

/** A running benchmark stack. */
export interface BenchStack {
  readonly stack: Stack;
  readonly gateway: ServedWorker;
  readonly floor: ServedWorker;
  /** `ws://.../websockets/v3` of the gateway and of the floor. */
  readonly gatewayWsUrl: string;
  readonly floorWsUrl: string;
  readonly rest: ReturnType<typeof createRestClient>;
  readonly commands: CommandStats;
  /** workerd (gateway), workerd (floor), bridge, redis, service. */
  readonly processes: WatchedProcess[];
  stop(): Promise<void>;
}

/** What {@link startBenchStack} needs. */
export interface BenchStackOptions {
  /** Progress lines. */
  log: (line: string) => void;
  /** workerd's output lines. @default discarded */
  workerLog?: (line: string) => void;
  /** Extra vars of the gateway Worker (not of the floor). */
  gatewayVars: Record<string, string>;
  /** Extra flags of the service CLI. */
  serviceArgs: string[];
  /** A simulated network round trip at the bridge (`--bridge-latency-ms`), ms. @default 0 */
  bridgeLatencyMs?: number;
  /** Opens the floor's workerd inspector on this port (`bench/profile.ts` with `PROFILE_TARGET=bare`). */
  floorInspectorPort?: number;
  /** Opens the gateway's workerd inspector on this port (`bench/profile.ts`). */
  gatewayInspectorPort?: number;
}

/** The compatibility date of wrangler.toml, so the bench runs what a deployment runs. */
export function compatibilityDate(): string {
  const toml = readFileSync(join(PROJECT_ROOT, "wrangler.toml"), "utf8");
  return toml.match(/^compatibility_date\s*=\s*"([^"]+)"/m)?.[1] ?? "2026-04-20";
}

/** Starts the stack; on a failed start, stops what had started and rethrows. */
export async function startBenchStack(options: BenchStackOptions): Promise<BenchStack> {
  const { log, workerLog } = options;
  const parts: Array<() => Promise<void> | void> = [];
  const stop = async (): Promise<void> => {
    while (parts.length > 0) await parts.pop()?.();
  };
  try {
    log("starting redis-server, the REST bridge and the example service (native transport)...");
    const stack = await startStack({
      service: { args: options.serviceArgs },
      bridgeLatencyMs: options.bridgeLatencyMs,
    });
    parts.push(() => stack.stop());
    const bindings = {
      UPSTASH_REDIS_REST_URL: stack.bridge.url,
      UPSTASH_REDIS_REST_TOKEN: stack.bridge.token,
      RPC_QUEUE_RESPONSE_TIMEOUT: "30",
    };
    const gatewayBindings = { ...bindings, ...options.gatewayVars };
    log(
      "bundling and serving the gateway (bench/gateway-worker.ts -> examples/gateway/worker.ts) with Miniflare...",
    );
    const gateway = await serveWorker({
      name: "gateway",
      entry: join(PROJECT_ROOT, "bench/gateway-worker.ts"),
      durableObject: { binding: "GATEWAY", className: "GatewayObject" },
      bindings: gatewayBindings,
      compatibilityDate: compatibilityDate(),
      inspectorPort: options.gatewayInspectorPort,
      log: workerLog,
    });
    parts.push(() => gateway.dispose());
    log("bundling and serving the runtime floor (bench/floor-worker.ts) with Miniflare...");
    const floor = await serveWorker({
      name: "floor",
      entry: join(PROJECT_ROOT, "bench/floor-worker.ts"),
      durableObject: { binding: "FLOOR", className: "FloorObject" },
      bindings,
      compatibilityDate: compatibilityDate(),
      inspectorPort: options.floorInspectorPort,
      log: workerLog,
    });
    parts.push(() => floor.dispose());
    const rest = createRestClient(stack.bridge.url, stack.bridge.token);
    parts.push(() => rest.close());
    const commands = new CommandStats(stack.redis.url);
    parts.push(() => commands.close());

    const processes: WatchedProcess[] = [
      { role: "workerd", pid: gateway.workerdPid ?? -1 },
      { role: "workerd-floor", pid: floor.workerdPid ?? -1 },
      { role: "bridge", pid: findChild("bridge/cli.ts") ?? -1 },
      { role: "redis", pid: stack.redis.pid },
      { role: "service", pid: stack.services[0]?.pid ?? -1 },
    ];
    return {
      stack,
      gateway,
      floor,
      gatewayWsUrl: `${gateway.httpUrl.replace(/^http/, "ws")}/websockets/v3`,
      floorWsUrl: `${floor.httpUrl.replace(/^http/, "ws")}/`,
      rest,
      commands,
      processes: processes.filter((p) => p.pid > 0),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
