/**
 * The whole local stack on private ports: redis-server, the REST bridge, example services and the Worker
 * under `wrangler dev`. Used by `npm start`, the end-to-end tests and the benchmark. Each part is a child
 * process stopped by PID; a failed start stops what already started.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis as NativeRedis } from "ioredis";
import { freePort, startProcess, type LineSink, type ManagedProcess } from "./processes.js";
import { startRedis, type ManagedRedis } from "./redis.js";

/** The repository root (where package.json and wrangler.toml are). */
export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** Options of {@link startStack}. */
export interface StackOptions {
  /** Start the example service (or services with other flags; each entry is one process). @default false */
  service?: boolean | ServiceSpec | ServiceSpec[];
  /** Start the Worker under `wrangler dev`. @default false */
  worker?: boolean | WorkerSpec;
  /** Receives every output line, prefixed with the part's name. @default discarded */
  log?: LineSink;
  /** Bridge token. @default a random one */
  bridgeToken?: string;
  /** The bridge's `--sse-framing` (`upstash` or `blank-line`). @default the bridge's, "upstash" */
  bridgeSseFraming?: string;
  /** The bridge's `--latency-ms`: a simulated network round trip on every REST request. @default 0 */
  bridgeLatencyMs?: number;
}

/** One service process. */
export interface ServiceSpec {
  /** Extra CLI flags for `src/consumer/cli.ts`, e.g. `["--category", "mt5"]`. */
  args?: string[];
  /** Use the REST transport through the bridge instead of a native connection. @default false */
  rest?: boolean;
}

/** The Worker process. */
export interface WorkerSpec {
  /** HTTP port. @default a free port */
  port?: number;
  /** The wrangler config of the Worker to run. @default the repository's wrangler.toml (the example deployment) */
  configPath?: string;
  /** Log prefix. @default "worker" */
  name?: string;
  /** Extra Worker vars (e.g. `{ RPC_QUEUE_RESPONSE_TIMEOUT: "2" }`). */
  vars?: Record<string, string>;
}

/** A running service process. */
export interface RunningService {
  readonly pid: number;
  stop(): Promise<void>;
}

/** A running stack. */
export interface Stack {
  readonly redis: ManagedRedis;
  readonly bridge: {
    readonly url: string;
    readonly token: string;
    stop(): Promise<void>;
    /** Starts the bridge again on the same port (after {@link stop}, or stops it first). */
    restart(): Promise<void>;
  };
  readonly services: RunningService[];
  readonly worker?: { readonly httpUrl: string; readonly wsUrl: string; stop(): Promise<void> };
  /** Starts one more service process. */
  startService(spec?: ServiceSpec): Promise<RunningService>;
  /** Total Redis commands executed so far (`INFO commandstats`, the INFO calls themselves left out). */
  commandCount(): Promise<number>;
  /** Stops every part, newest first. Safe to call twice. */
  stop(): Promise<void>;
}

/** `node --import tsx <file>`: one process per part, so one PID stops it. */
function tsxArgs(file: string, args: string[]): string[] {
  return ["--import", "tsx", join(PROJECT_ROOT, file), ...args];
}

/** Starts the parts asked for, in dependency order. */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const started: Array<{ stop(): Promise<void> }> = [];
  const stopAll = async (): Promise<void> => {
    while (started.length > 0) await started.pop()?.stop();
  };
  try {
    const redis = await startRedis({ log: options.log });
    started.push(redis);
    const token = options.bridgeToken ?? randomBytes(12).toString("hex");
    const bridgePort = await freePort();
    const launchBridge = (): Promise<ManagedProcess> =>
      startProcess({
        name: "bridge",
        command: process.execPath,
        args: tsxArgs("src/bridge/cli.ts", [
          ...["--redis", redis.url, "--port", String(bridgePort)],
          ...(options.bridgeSseFraming ? ["--sse-framing", options.bridgeSseFraming] : []),
          ...(options.bridgeLatencyMs ? ["--latency-ms", String(options.bridgeLatencyMs)] : []),
        ]),
        env: { ...process.env, BRIDGE_TOKEN: token },
        cwd: PROJECT_ROOT,
        readyLine: /listening on (http:\/\/\S+)/,
        log: options.log,
      });
    let bridgeProcess = await launchBridge();
    const bridge = {
      url: bridgeProcess.ready[1] ?? "",
      token,
      stop: () => bridgeProcess.stop(),
      async restart() {
        await bridgeProcess.stop();
        bridgeProcess = await launchBridge();
      },
    };
    started.push(bridge);

    const services: RunningService[] = [];
    const startService = async (spec: ServiceSpec = {}): Promise<RunningService> => {
      const transport = spec.rest ? ["--rest-url", bridge.url] : ["--redis", redis.url];
      const child = await startProcess({
        name: `service${services.length === 0 ? "" : `-${services.length + 1}`}`,
        command: process.execPath,
        args: tsxArgs("src/consumer/cli.ts", [...transport, ...(spec.args ?? [])]),
        env: { ...process.env, UPSTASH_REDIS_REST_TOKEN: token },
        cwd: PROJECT_ROOT,
        readyLine: /service ready/,
        log: options.log,
      });
      const service = { pid: child.pid, stop: () => child.stop() };
      started.push(service);
      services.push(service);
      return service;
    };
    const serviceSpecs = specList(options.service);
    for (const spec of serviceSpecs) await startService(spec);

    const worker = options.worker
      ? await startWorker(options.worker === true ? {} : options.worker, bridge, options.log)
      : undefined;
    if (worker) started.push(worker);

    const stack: Stack = {
      redis,
      bridge,
      services,
      worker,
      startService,
      commandCount: () => countCommands(redis.url),
      stop: stopAll,
    };
    return stack;
  } catch (error) {
    await stopAll();
    throw error;
  }
}

function specList(service: StackOptions["service"]): ServiceSpec[] {
  if (!service) return [];
  if (service === true) return [{}];
  return Array.isArray(service) ? service : [service];
}

/** A Worker running under `wrangler dev`. */
export interface RunningWorker {
  readonly httpUrl: string;
  readonly wsUrl: string;
  stop(): Promise<void>;
}

/**
 * `wrangler dev` on a free port, its state in a temporary folder. The Redis token goes in through an env
 * file, not `--var`, so wrangler shows it as hidden instead of printing it.
 */
export async function startWorker(
  spec: WorkerSpec,
  bridge: { url: string; token: string },
  log: LineSink | undefined,
): Promise<RunningWorker> {
  const port = spec.port ?? (await freePort());
  const stateDir = mkdtempSync(join(tmpdir(), "edge-wsproxy-worker-"));
  const envFile = join(stateDir, "worker.env");
  const vars = { UPSTASH_REDIS_REST_URL: bridge.url, UPSTASH_REDIS_REST_TOKEN: bridge.token, ...spec.vars };
  writeFileSync(
    envFile,
    Object.entries(vars)
      .map(([k, v]) => `${k}=${envFileValue(k, v)}\n`)
      .join(""),
    {
      mode: 0o600,
    },
  );
  let child: ManagedProcess;
  try {
    child = await startProcess({
      name: spec.name ?? "worker",
      command: process.execPath,
      args: [
        join(PROJECT_ROOT, "node_modules/wrangler/bin/wrangler.js"),
        "dev",
        "--config",
        spec.configPath ?? join(PROJECT_ROOT, "wrangler.toml"),
        "--ip",
        "127.0.0.1",
        "--port",
        String(port),
        "--inspector-port",
        String(await freePort()),
        "--env-file",
        envFile,
        "--persist-to",
        join(stateDir, "state"),
        "--show-interactive-dev-session=false",
      ],
      // No `Request.cf` download: it needs the internet, and without it wrangler prints a scary stack.
      env: {
        ...process.env,
        WRANGLER_SEND_METRICS: "false",
        CLOUDFLARE_CF_FETCH_ENABLED: "false",
        NO_COLOR: "1",
        FORCE_COLOR: "0",
      },
      cwd: PROJECT_ROOT,
      readyLine: /Ready on (http:\/\/\S+)/,
      readyTimeoutMs: 60_000,
      log,
    });
  } catch (error) {
    rmSync(stateDir, { recursive: true, force: true });
    throw error;
  }
  const httpUrl = `http://127.0.0.1:${port}`;
  return {
    httpUrl,
    wsUrl: `ws://127.0.0.1:${port}/websockets/v3`,
    async stop() {
      await child.stop();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/**
 * One value in wrangler's .env format: single quotes keep it literal (JSON with double quotes included);
 * a value with a single quote and a newline cannot be written and is refused.
 */
function envFileValue(key: string, value: string): string {
  if (!value.includes("'")) return `'${value}'`;
  if (!value.includes('"') && !value.includes("\n")) return `"${value}"`;
  throw new Error(`the Worker var ${key} holds both quote kinds; wrangler's env file cannot carry it`);
}

/** Sum of `calls=` over `INFO commandstats`, less the INFO commands (this one included). */
export async function countCommands(redisUrl: string): Promise<number> {
  const client = new NativeRedis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    const info = await client.info("commandstats");
    let total = 0;
    for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      if (match[1] !== "info") total += Number(match[2]);
    }
    return total;
  } finally {
    client.disconnect();
  }
}
