/**
 * Options of the consumer-groups backend (PROTOCOL.md section 3) with their defaults in one place.
 */
import { ConfigError } from "../core/errors.js";
import type { Clock } from "../core/pending-requests.js";
import type { Logger } from "../core/types.js";
import type { RedisCommands, RedisObserver } from "./redis-port.js";
import type { ReplyPollerOptions } from "./reply-poller.js";

/** The category every request goes to without queue separation. */
export const DEFAULT_CATEGORY = "general";

/** Options of {@link ConsumerGroupsBackend}; the Perl option names, camelCased. */
export interface ConsumerGroupsOptions extends Partial<ReplyPollerOptions> {
  /** An `@upstash/redis`-compatible client; wins over `redisUrl`/`redisToken`. */
  redis?: RedisCommands;
  /** REST URL (`UPSTASH_REDIS_REST_URL`), used when `redis` is not given. */
  redisUrl?: string;
  /** REST token (`UPSTASH_REDIS_REST_TOKEN`), used when `redis` is not given. */
  redisToken?: string;
  /** Told about every command the backend sends (the object's metrics count them). */
  redisObserver?: RedisObserver;
  /** Each REST call fails after this long (a failed `XADD` becomes WrongResponse). @default 5000 */
  redisRequestTimeoutMs?: number;
  /** Default wait for a reply, seconds. @default 30 (`createGateway`: env `RPC_QUEUE_RESPONSE_TIMEOUT`, else 30) */
  timeout?: number;
  /** Route each action to its `category` stream (else everything goes to `general`). @default false */
  queueSeparationEnabled?: boolean;
  /** Per-category timeouts in seconds, e.g. `{ general: 5, mt5: 120 }`. @default {} */
  categoryTimeoutConfig?: Record<string, number>;
  /**
   * The categories that may become stream keys. An action naming any other category is a configuration
   * error. @default ["general", ...keys of categoryTimeoutConfig]
   */
  categories?: string[];
  /** The local wait is the category timeout plus this percentage of it. @default 0 */
  rpcTimeoutExtendPercentage?: number;
  /** ...plus this many seconds. @default 0 */
  rpcTimeoutExtendOffset?: number;
  /** Prefix of stream and reply keys; `""` keeps the Perl system's key names. @default "" */
  streamPrefix?: string;
  /**
   * Second bound on a stream's length: every 1,000th `XADD` of an object to a stream is followed (in the
   * same pipeline) by `XTRIM <stream> MAXLEN ~ <streamMaxLen>`. The first bound is age: each `XADD` carries
   * `MINID ~ <now - longest local wait - 60 s>`, so entries whose deadline has passed for every category
   * are dropped as new ones arrive (Redis takes only one of MAXLEN/MINID per `XADD`). A stream is one
   * record, and Upstash caps a record at 100 MB ("Max Record Size",
   * https://upstash.com/docs/redis/troubleshooting/max_record_size_exceeded): 100,000 entries of 256 KiB
   * would pass it, entries that outlived their deadline are what keep it small. @default 100000
   */
  streamMaxLen?: number;
  /**
   * REST requests to Redis one object keeps open at once (the reply subscription's stream counts only
   * until its response headers arrive); more wait in the object's queue. A Durable Object may have 6
   * outgoing connections waiting for their response headers and the runtime queues the rest (Durable
   * Objects limits, https://developers.cloudflare.com/durable-objects/platform/limits/; counted only
   * while waiting for headers since
   * https://developers.cloudflare.com/changelog/2026-04-09-relaxed-connection-limiting). A request's
   * `redisRequestTimeoutMs` starts when its command is sent, its reply wait when it arrived. @default 6
   */
  maxRedisConnections?: number;
  /**
   * `LPOP`s of the reply key in flight at once while reply batches come back full (a backlog on the list;
   * each in a REST request of its own, since a full batch is sized to fill one Upstash response). With
   * Redis a round trip away, an object collects at most this many batches per round trip. At most
   * `maxRedisConnections`. @default half of `maxRedisConnections`, at least 1 (3)
   */
  pollMaxInFlight?: number;
  /** Commands sent together in one `/pipeline` request (a burst's `XADD`s and the `LPOP`). @default 100 */
  writeBatchSize?: number;
  /**
   * Size of one `/pipeline` request, counted in characters of its commands' arguments; a single larger
   * command goes alone. The request itself can be up to 3x that in bytes (escapes, UTF-8), so keep it at
   * most 3 MiB to stay under Upstash's 10 MB request limit
   * (https://upstash.com/docs/redis/troubleshooting/max_request_size_exceeded). @default 2097152
   */
  writeBatchBytes?: number;
  /** Names this object in its reply key: `<prefix>wsp:reply:<objectId>:<random>`. @default "local" */
  objectId?: string;
  /** @default systemClock */
  clock?: Clock;
  /** Where poll errors and dropped replies are reported. @default console */
  logger?: Logger;
  /**
   * How replies reach the object: `"poll"` (`LPOP` on the reply key while requests wait) or `"subscribe"`
   * (a server-sent events subscription to it, for services that `PUBLISH`; see the README's "Reply
   * transports"). Needs `redisUrl` and `redisToken` even when `redis` is given.
   * @default "poll" (`createGateway`: env `REPLY_TRANSPORT`, else "poll")
   */
  replyTransport?: ReplyTransport;
  /** Subscribe mode: the stream stays open this long after the last waiting request. @default 2000 */
  subscribeGraceMs?: number;
  /** Subscribe mode: ceiling of the back-off between failed subscription attempts. @default 5000 */
  subscribeRetryMaxMs?: number;
  /**
   * Subscribe mode: a request unanswered this long is also looked for on the reply list (a service in
   * list mode), then at growing gaps up to 8x this while it waits; 0 never looks (publish-only services).
   * @default 1000
   */
  replyListCheckMs?: number;
  /** Subscribe mode: the fetch that opens the stream (a test double, say). @default globalThis.fetch */
  fetch?: typeof fetch;
  /**
   * The largest reply the gateway sends; `createGateway` passes its own `maxResponseBytes`. Bounds
   * `pollBatchSize` (see {@link maxPollBatchSize}). @default 600000
   */
  maxResponseBytes?: number;
}

/**
 * Upstash refuses a request or response over 10 MB ("ERR max request size exceeded",
 * https://upstash.com/docs/redis/troubleshooting/max_request_size_exceeded; "Max request size 10 MB" on
 * https://upstash.com/docs/redis/overall/billing). Counted as 10,000,000 bytes, the stricter reading.
 */
export const UPSTASH_MAX_RESPONSE_BYTES = 10_000_000;

/**
 * The largest `LPOP` batch whose response fits within Upstash's 10 MB when every reply is as large as
 * `maxResponseBytes` (a larger one becomes ResponseTooLarge anyway): a fifth of the limit is kept for the
 * JSON escaping the payloads get inside the REST response. At least 1.
 */
export function maxPollBatchSize(maxResponseBytes: number): number {
  return Math.max(1, Math.floor((UPSTASH_MAX_RESPONSE_BYTES * 0.8) / maxResponseBytes));
}

/** The reply transports of {@link ConsumerGroupsOptions.replyTransport}. */
export type ReplyTransport = "poll" | "subscribe";

/** The defaults of {@link ConsumerGroupsOptions}. `createGateway` fills `timeout` and `replyTransport` from the env. */
export const DEFAULT_CONSUMER_GROUPS_OPTIONS = {
  redisRequestTimeoutMs: 5_000,
  timeout: 30,
  queueSeparationEnabled: false,
  categoryTimeoutConfig: {} as Record<string, number>,
  rpcTimeoutExtendPercentage: 0,
  rpcTimeoutExtendOffset: 0,
  streamPrefix: "",
  streamMaxLen: 100_000,
  maxRedisConnections: 6,
  writeBatchSize: 100,
  writeBatchBytes: 2 * 1024 * 1024,
  objectId: "local",
  pollInitialDelayMs: 2,
  pollMinMs: 1,
  pollMaxMs: 50,
  pollLateBackoffMs: 1_000,
  pollBackoffFactor: 2,
  pollBatchSize: 100,
  maxResponseBytes: 600_000,
  replyTransport: "poll" as ReplyTransport,
  subscribeGraceMs: 2_000,
  subscribeRetryMaxMs: 5_000,
  replyListCheckMs: 1_000,
} as const;

/** {@link ConsumerGroupsOptions} after {@link resolveConsumerGroupsOptions}. */
export type ResolvedConsumerGroupsOptions = Omit<ConsumerGroupsOptions, "categories"> &
  Required<Omit<typeof DEFAULT_CONSUMER_GROUPS_OPTIONS, "categoryTimeoutConfig" | "pollBatchSize">> & {
    categoryTimeoutConfig: Record<string, number>;
    /** At most {@link maxPollBatchSize} of `maxResponseBytes`. */
    pollBatchSize: number;
    pollMaxInFlight: number;
    categories: ReadonlySet<string>;
  };

/**
 * Fills in defaults and checks every option; throws a {@link ConfigError} naming the bad one.
 *
 * `pollBatchSize` is clamped to {@link maxPollBatchSize} of `maxResponseBytes` (13 with the defaults), so
 * one `LPOP` response stays within Upstash's 10 MB. Clamped rather than refused: the two options belong to
 * different layers (the backend, the gateway) and the default batch of 100 is only an upper bound; an
 * explicit `pollBatchSize` that is lowered is reported with one warning naming both options.
 */
export function resolveConsumerGroupsOptions(options: ConsumerGroupsOptions): ResolvedConsumerGroupsOptions {
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const resolved = {
    ...DEFAULT_CONSUMER_GROUPS_OPTIONS,
    ...given,
  } as ResolvedConsumerGroupsOptions & {
    categories?: unknown;
  };
  if (!options.redis && !(options.redisUrl && options.redisToken)) {
    throw new ConfigError(
      `consumer_groups backend: give \`redis\` (a client) or both \`redisUrl\` and \`redisToken\`; missing: ${
        options.redisUrl ? "redisToken" : "redisUrl"
      }`,
    );
  }
  for (const key of [
    "timeout",
    "redisRequestTimeoutMs",
    "streamMaxLen",
    "pollMaxMs",
    "pollLateBackoffMs",
    "pollBatchSize",
  ] as const) {
    positive(key, resolved[key]);
  }
  const { replyTransport } = resolved;
  if (replyTransport !== "poll" && replyTransport !== "subscribe") {
    throw new ConfigError(
      `\`replyTransport\` must be "poll" or "subscribe", got ${JSON.stringify(replyTransport)}`,
    );
  }
  if (replyTransport === "subscribe" && !(options.redisUrl && options.redisToken)) {
    throw new ConfigError(
      '`replyTransport: "subscribe"` opens `<redisUrl>/subscribe/<reply key>`: give `redisUrl` and `redisToken`',
    );
  }
  positive("subscribeRetryMaxMs", resolved.subscribeRetryMaxMs);
  for (const key of [
    "rpcTimeoutExtendPercentage",
    "rpcTimeoutExtendOffset",
    "pollInitialDelayMs",
    "subscribeGraceMs",
    "replyListCheckMs",
  ] as const) {
    nonNegative(key, resolved[key]);
  }
  positive("pollMinMs", resolved.pollMinMs);
  if (resolved.pollMinMs > resolved.pollMaxMs)
    throw new ConfigError("`pollMinMs` must not exceed `pollMaxMs`");
  if (!(resolved.pollBackoffFactor >= 1)) throw new ConfigError("`pollBackoffFactor` must be at least 1");
  if (!Number.isInteger(resolved.pollBatchSize)) throw new ConfigError("`pollBatchSize` must be an integer");
  for (const key of ["maxRedisConnections", "writeBatchSize", "writeBatchBytes"] as const) {
    const value = resolved[key];
    if (!Number.isInteger(value) || value < 1)
      throw new ConfigError(`\`${key}\` must be a positive integer, got ${String(value)}`);
  }
  const pollMaxInFlight =
    resolved.pollMaxInFlight ?? Math.max(1, Math.floor(resolved.maxRedisConnections / 2));
  if (
    !Number.isInteger(pollMaxInFlight) ||
    pollMaxInFlight < 1 ||
    pollMaxInFlight > resolved.maxRedisConnections
  )
    throw new ConfigError(
      `\`pollMaxInFlight\` must be an integer from 1 to \`maxRedisConnections\` (${resolved.maxRedisConnections}), got ${String(pollMaxInFlight)}`,
    );
  positive("maxResponseBytes", resolved.maxResponseBytes);
  const batchCap = maxPollBatchSize(resolved.maxResponseBytes);
  if (resolved.pollBatchSize > batchCap) {
    if (options.pollBatchSize !== undefined) {
      (options.logger ?? console).warn(
        `[wsproxy] \`pollBatchSize\` ${resolved.pollBatchSize} lowered to ${batchCap}: ${resolved.pollBatchSize} replies of up to \`maxResponseBytes\` ${resolved.maxResponseBytes} bytes would not fit in one Upstash response (10 MB)`,
      );
    }
  }
  const pollBatchSize = Math.min(resolved.pollBatchSize, batchCap);
  for (const [category, seconds] of Object.entries(resolved.categoryTimeoutConfig)) {
    positive(`categoryTimeoutConfig.${category}`, seconds);
  }
  const categories = new Set(
    options.categories ?? [DEFAULT_CATEGORY, ...Object.keys(resolved.categoryTimeoutConfig)],
  );
  categories.add(DEFAULT_CATEGORY);
  for (const category of categories) {
    if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(category)) {
      throw new ConfigError(`\`categories\`: "${category}" is not a valid category name`);
    }
  }
  return { ...resolved, pollBatchSize, pollMaxInFlight, categories };
}

function positive(name: string, value: number): void {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new ConfigError(`\`${name}\` must be a positive number, got ${String(value)}`);
  }
}

function nonNegative(name: string, value: number): void {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new ConfigError(`\`${name}\` must be zero or a positive number, got ${String(value)}`);
  }
}
