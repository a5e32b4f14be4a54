/**
 * The options of {@link createRpcService}, their defaults, and the one place they are checked.
 */
import { hostname } from "node:os";
import { ConfigError } from "../core/errors.js";
import type { PusherOptions } from "./push.js";
import type { ServiceTransport } from "./transport.js";
import type { LogEntry, LogLevel, RpcHandlers, ServiceLogger } from "./types.js";

/** How a service hands replies back (see `replyMode`). */
export type ReplyMode = "list" | "publish" | "publish-batch";
const REPLY_MODES: readonly ReplyMode[] = ["list", "publish", "publish-batch"];

/** Upstash REST credentials. */
export interface RestConnection {
  /** e.g. `https://eu1-xyz.upstash.io` (env `UPSTASH_REDIS_REST_URL`). */
  restUrl: string;
  /** The REST token (env `UPSTASH_REDIS_REST_TOKEN`); never logged. */
  restToken: string;
}

/** Options of {@link createRpcService}. */
export interface RpcServiceOptions {
  /**
   * Where Redis is: a `redis://` URL (native connection, blocking reads), Upstash REST credentials
   * (polled reads), or a ready {@link ServiceTransport}. Required.
   */
  redis: string | RestConnection | ServiceTransport;
  /** Handlers by RPC method. Required. */
  handlers: RpcHandlers;
  /** Categories to serve; each is the stream `<streamPrefix><category>`. @default ["general"] */
  categories?: string[];
  /** Prepended to every stream name; must match the gateway's. @default "" */
  streamPrefix?: string;
  /** Consumer name within the group; keep it stable per process. @default "<hostname>-<pid>" */
  consumerName?: string;
  /** Handlers running at once, all categories together. @default 16 */
  concurrency?: number;
  /** Entries read per XREADGROUP (never more than free handler slots). @default 32 */
  readCount?: number;
  /** How long a native XREADGROUP blocks before it is sent again. @default 5000 */
  blockMs?: number;
  /** REST only: first poll delay after an empty read; doubles up to `pollMaxMs`, resets on work. @default 25 */
  pollMinMs?: number;
  /** REST only: longest delay between polls while idle. @default 1000 */
  pollMaxMs?: number;
  /** Entries pending (unacked) longer than this in any consumer are taken over. @default 60000 */
  claimIdleMs?: number;
  /** How often each stream is checked for stalled entries. @default half of claimIdleMs */
  claimIntervalMs?: number;
  /** An entry delivered more often goes to `<stream>:dead` and is acked. @default 5 */
  maxDeliveries?: number;
  /**
   * Length kept (approximately) in each dead-letter stream, enforced by an `XTRIM MAXLEN ~` sent with the
   * first dead letter per stream and then with every 100th (one XADD takes MAXLEN or MINID, not both).
   * @default 10000
   */
  deadLetterMaxLen?: number;
  /**
   * Dead letters older than this are dropped (`MINID ~` in every dead-letter XADD, so the age is enforced
   * whenever a dead letter is written). @default 604800 (7 days)
   */
  deadLetterMaxAgeSeconds?: number;
  /**
   * Keys whose values are replaced by `"<not shown>"` in a dead letter's copy of `args` (the client's frame
   * and the stash values), at any depth, compared case-insensitively. The handler still sees them.
   * @default ["password", "token"]
   */
  sensitiveFields?: string[];
  /**
   * A handler still running this long after its entry's deadline is abandoned: its slot is freed, the entry
   * dead-lettered with reason `handler_timeout` (and acked, so it is not handed on) and its late result
   * dropped. `ctx.signal` aborted at the deadline; the grace is for handlers that honour it. Entries without
   * a deadline are not guarded. Keep deadline + grace below `claimIdleMs`, or other consumers reclaim first.
   * @default 5000
   */
  handlerGraceMs?: number;
  /**
   * `list`: `RPUSH`+`EXPIRE` the reply key; `publish`: `PUBLISH` to it, one message per reply (the Perl
   * proxy); `publish-batch`: `PUBLISH` the replies of one round trip to one reply key as one message (a
   * JSON array when there are several), for gateways of this project only. @default "list"
   */
  replyMode?: ReplyMode;
  /**
   * TTL of the reply list: set by the first reply, by a reply that re-creates the key after the gateway
   * popped it empty, and refreshed once a third of it has passed (not with every reply). @default 60
   */
  replyTtlSeconds?: number;
  /** close() waits this long for running handlers, then abandons them (their entries get reclaimed). @default 30000 */
  closeTimeoutMs?: number;
  /** Shortest wait before retrying after Redis failed; doubles with jitter. @default 100 */
  retryMinMs?: number;
  /** Longest wait before retrying after Redis failed. @default 5000 */
  retryMaxMs?: number;
  /** Receives log lines; `false` silences the service. @default JSON lines on stderr */
  logger?: ServiceLogger | false;
  /** Least severe level logged. @default "info" */
  logLevel?: LogLevel;
  /**
   * How `ctx.push()` and subscriptions push to the gateway (secret, retries, fetch).
   * @default {} (secret from env `PUSH_SECRET`, 3 retries)
   */
  push?: PusherOptions;
}

/** {@link RpcServiceOptions} with every default filled in. */
export type ResolvedRpcServiceOptions = Required<Omit<RpcServiceOptions, "logger" | "claimIntervalMs">> & {
  claimIntervalMs: number;
  logger: ServiceLogger;
  /** The category streams, prefix included, in `categories` order. */
  streams: string[];
};

/** The defaults of {@link RpcServiceOptions} (`consumerName` and `claimIntervalMs` are computed). */
export const DEFAULT_RPC_SERVICE_OPTIONS = {
  categories: ["general"] as string[],
  streamPrefix: "",
  concurrency: 16,
  readCount: 32,
  blockMs: 5000,
  pollMinMs: 25,
  pollMaxMs: 1000,
  claimIdleMs: 60_000,
  maxDeliveries: 5,
  deadLetterMaxLen: 10_000,
  deadLetterMaxAgeSeconds: 7 * 24 * 3600,
  sensitiveFields: ["password", "token"] as string[],
  handlerGraceMs: 5000,
  replyMode: "list" as ReplyMode,
  replyTtlSeconds: 60,
  closeTimeoutMs: 30_000,
  retryMinMs: 100,
  retryMaxMs: 5000,
  logLevel: "info" as LogLevel,
  push: {} as PusherOptions,
};

const LEVELS: LogLevel[] = ["debug", "info", "warn", "error"];
const POSITIVE_INTEGERS = [
  "concurrency",
  "readCount",
  "blockMs",
  "pollMinMs",
  "pollMaxMs",
  "claimIdleMs",
  "claimIntervalMs",
  "maxDeliveries",
  "deadLetterMaxLen",
  "deadLetterMaxAgeSeconds",
  "replyTtlSeconds",
  "retryMinMs",
  "retryMaxMs",
] as const;

/** Fills in defaults and checks the options; throws a {@link ConfigError} naming the bad option. */
export function resolveRpcServiceOptions(options: RpcServiceOptions): ResolvedRpcServiceOptions {
  checkRedis(options.redis);
  if (!options.handlers || typeof options.handlers !== "object") {
    throw new ConfigError("`handlers` must be an object of functions by method name");
  }
  for (const [method, handler] of Object.entries(options.handlers)) {
    if (typeof handler !== "function") throw new ConfigError(`\`handlers.${method}\` must be a function`);
  }
  const merged = { ...DEFAULT_RPC_SERVICE_OPTIONS, ...withoutUndefined(options) };
  const claimIntervalMs = options.claimIntervalMs ?? Math.max(1, Math.round(merged.claimIdleMs / 2));
  const resolved = {
    ...merged,
    redis: options.redis,
    handlers: options.handlers,
    claimIntervalMs,
    consumerName: options.consumerName ?? defaultConsumerName(),
  };
  for (const key of POSITIVE_INTEGERS) {
    const value = resolved[key];
    if (!Number.isInteger(value) || value <= 0)
      throw new ConfigError(`\`${key}\` must be a positive integer`);
  }
  if (!Number.isInteger(resolved.closeTimeoutMs) || resolved.closeTimeoutMs < 0) {
    throw new ConfigError("`closeTimeoutMs` must be an integer >= 0");
  }
  if (!Number.isInteger(resolved.handlerGraceMs) || resolved.handlerGraceMs < 0) {
    throw new ConfigError("`handlerGraceMs` must be an integer >= 0");
  }
  const { sensitiveFields } = resolved;
  if (!Array.isArray(sensitiveFields) || sensitiveFields.some((name) => typeof name !== "string" || !name)) {
    throw new ConfigError("`sensitiveFields` must be a list of non-empty key names");
  }
  const { categories, replyMode, logLevel, consumerName, streamPrefix } = resolved;
  if (
    !Array.isArray(categories) ||
    categories.length === 0 ||
    categories.some((c) => !/^[\w.:-]+$/.test(c))
  ) {
    throw new ConfigError("`categories` must be a non-empty list of names made of letters, digits, _ . : -");
  }
  if (new Set(categories).size !== categories.length)
    throw new ConfigError("`categories` lists a name twice");
  if (!REPLY_MODES.includes(replyMode))
    throw new ConfigError('`replyMode` must be "list", "publish" or "publish-batch"');
  if (!LEVELS.includes(logLevel)) throw new ConfigError(`\`logLevel\` must be one of ${LEVELS.join(", ")}`);
  if (typeof consumerName !== "string" || consumerName === "")
    throw new ConfigError("`consumerName` must be non-empty");
  if (typeof streamPrefix !== "string") throw new ConfigError("`streamPrefix` must be a string");
  const logger = levelFilter(
    options.logger === false ? () => {} : (options.logger ?? stderrLogger),
    logLevel,
  );
  return { ...resolved, logger, streams: categories.map((category) => streamPrefix + category) };
}

/** `<hostname>-<pid>`: stable for the life of the process, distinct between processes. */
export function defaultConsumerName(): string {
  return `${hostname()}-${process.pid}`;
}

/** Writes one JSON line per entry to stderr, with a timestamp. */
export function stderrLogger(entry: LogEntry): void {
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), ...entry }) + "\n");
}

function levelFilter(logger: ServiceLogger, least: LogLevel): ServiceLogger {
  const threshold = LEVELS.indexOf(least);
  return (entry) => {
    if (LEVELS.indexOf(entry.level) >= threshold) logger(entry);
  };
}

function checkRedis(redis: RpcServiceOptions["redis"]): void {
  if (typeof redis === "string") {
    if (!/^rediss?:\/\//.test(redis)) throw new ConfigError("`redis` must be a redis:// or rediss:// URL");
    return;
  }
  if (redis && typeof redis === "object") {
    if ("pipeline" in redis && "read" in redis) return;
    if ("restUrl" in redis) {
      if (!/^https?:\/\//.test(redis.restUrl))
        throw new ConfigError("`redis.restUrl` must be an http(s):// URL");
      if (!redis.restToken) throw new ConfigError("`redis.restToken` is required with `redis.restUrl`");
      return;
    }
  }
  throw new ConfigError("`redis` must be a redis:// URL, { restUrl, restToken } or a ServiceTransport");
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
