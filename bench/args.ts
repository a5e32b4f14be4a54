/**
 * The benchmark's command line. Defaults keep a full run under about five minutes, `--quick` under one.
 */
import { parseArgs } from "node:util";
import type { PhaseSettings, Target } from "./load-phase.js";
import { transportSettings } from "./transport.js";

/** One-line usage, printed with `--help` and with every flag error. */
export const USAGE =
  "usage: npm run bench -- [--quick] [--json <file>] [--clients 1,8,64,256] [--targets direct,pushed,floor,bare,gateway] " +
  "[--objects N|1,2,4] [--duration-ms MS] [--idle-connections N] [--idle-seconds S] [--connections N] " +
  "[--reply-transport poll|subscribe] [--bridge-latency-ms MS] [--var NAME=value]... [--service-arg=--flag=value]... [--verbose]";

/** A bad flag; the CLI prints the message (which ends with the usage) and exits 2. */
export class BenchUsageError extends Error {
  override readonly name = "BenchUsageError";
}

/** The parsed command line. */
export interface BenchArgs {
  quick: boolean;
  jsonFile?: string;
  clients: number[];
  targets: Target[];
  phase: PhaseSettings;
  idleConnections: number;
  idleWindowMs: number;
  connections: number;
  /**
   * `--objects 1,2,4`: after the load levels, the gateway alone at `scalingClients` clients spread over
   * each of these numbers of objects. A single number only spreads the load phases (`gatewayObjects`).
   */
  objectCounts: number[];
  /** Clients of the scaling phases: the largest of `--clients` up to 64. */
  scalingClients: number;
  /** Extra vars of the gateway Worker (`--var NAME=value`, repeatable), e.g. to try a poller setting. */
  gatewayVars: Record<string, string>;
  /** Extra flags of the service CLI (`--service-arg=--concurrency=64`, repeatable). */
  serviceArgs: string[];
  /**
   * `--bridge-latency-ms MS`: the bridge simulates this network round trip on every REST request (a
   * distant Upstash database); every target that uses REST (all but `direct`) pays it. @default 0
   */
  bridgeLatencyMs: number;
  verbose: boolean;
}

const ALL_TARGETS: Target[] = ["direct", "pushed", "floor", "bare", "gateway"];

/** Parses `argv` (without `node script`); throws with {@link USAGE} on a bad flag. */
export function parseBenchArgs(argv: string[]): BenchArgs | "help" {
  const { values } = parseStrict(argv);
  if (values.help) return "help";
  const quick = values.quick ?? false;
  const transport = values["reply-transport"] ?? "poll";
  if (transport !== "poll" && transport !== "subscribe") {
    throw new BenchUsageError(`--reply-transport must be poll or subscribe. ${USAGE}`);
  }
  // subscribe: the gateway subscribes to its reply channel, the service publishes, the baselines SUBSCRIBE.
  const subscribe = transport === "subscribe";
  const stackSettings = transportSettings(subscribe);
  const targets = (values.targets?.split(",") ?? ALL_TARGETS) as Target[];
  const unknown = targets.find((target) => !ALL_TARGETS.includes(target));
  if (unknown) throw new BenchUsageError(`unknown target "${unknown}". ${USAGE}`);
  const clients = values.clients
    ? values.clients.split(",").map((value) => count(value, "--clients"))
    : [1, 8, 64, 256];
  // A full run measures the scaling by default; `--quick` only when asked.
  const objectCounts = values.objects
    ? values.objects.split(",").map((value) => count(value, "--objects"))
    : quick
      ? [1]
      : [1, 2, 4];
  return {
    quick,
    jsonFile: values.json,
    clients,
    targets: ALL_TARGETS.filter((target) => targets.includes(target)),
    phase: {
      warmupMs: quick ? 300 : 1000,
      durationMs: values["duration-ms"] ? count(values["duration-ms"], "--duration-ms") : quick ? 1000 : 6000,
      rounds: quick ? 2 : 3,
      maxRequestsPerClient: 200_000,
      requestTimeoutMs: 10_000,
      gatewayObjects: objectCounts.length === 1 ? (objectCounts[0] as number) : 1,
      replyMode: subscribe ? "publish" : "list",
    },
    idleConnections: values["idle-connections"]
      ? count(values["idle-connections"], "--idle-connections", true)
      : 1000,
    idleWindowMs:
      (values["idle-seconds"] ? count(values["idle-seconds"], "--idle-seconds") : quick ? 4 : 60) * 1000,
    objectCounts: objectCounts.length > 1 ? objectCounts : [],
    scalingClients: Math.max(...clients.filter((n) => n <= 64), Math.min(...clients)),
    connections: values.connections
      ? count(values.connections, "--connections", true)
      : quick
        ? 1000
        : 10_000,
    gatewayVars: { ...stackSettings.gatewayVars, ...Object.fromEntries((values.var ?? []).map(keyValue)) },
    serviceArgs: [...stackSettings.serviceArgs, ...(values["service-arg"] ?? [])],
    bridgeLatencyMs: values["bridge-latency-ms"]
      ? count(values["bridge-latency-ms"], "--bridge-latency-ms", true)
      : 0,
    verbose: values.verbose ?? false,
  };
}

function keyValue(text: string): [string, string] {
  const at = text.indexOf("=");
  if (at <= 0) throw new BenchUsageError(`--var must be NAME=value, got "${text}". ${USAGE}`);
  return [text.slice(0, at), text.slice(at + 1)];
}

/** The flags (see {@link USAGE}). */
const OPTIONS = {
  quick: { type: "boolean" },
  json: { type: "string" },
  clients: { type: "string" },
  targets: { type: "string" },
  objects: { type: "string" },
  "duration-ms": { type: "string" },
  "idle-connections": { type: "string" },
  "idle-seconds": { type: "string" },
  connections: { type: "string" },
  "reply-transport": { type: "string" },
  "bridge-latency-ms": { type: "string" },
  var: { type: "string", multiple: true },
  "service-arg": { type: "string", multiple: true },
  verbose: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

function parseStrict(argv: string[]) {
  try {
    return parseArgs({ args: argv, strict: true, allowPositionals: false, options: OPTIONS });
  } catch (error) {
    throw new BenchUsageError(`${(error as Error).message}. ${USAGE}`);
  }
}

function count(value: string, flag: string, zeroAllowed = false): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < (zeroAllowed ? 0 : 1))
    throw new BenchUsageError(`${flag} must be a positive integer. ${USAGE}`);
  return number;
}
