/**
 * `createGateway()` options and how they become backends, from wrangler vars and secrets.
 */
import {
  ConsumerGroupsBackend,
  createBackend,
  createRedisClient,
  DEFAULT_CONSUMER_GROUPS_OPTIONS,
  type BackendConfig,
  type RedisCommands,
} from "../backends/index.js";
import { ConfigError } from "../core/errors.js";
import { resolveGatewayOptions, type GatewayOptions } from "../core/options.js";
import type { Backend, Logger } from "../core/types.js";
import type { LogLevel } from "./log.js";
import type { PlaygroundOptions } from "./playground.js";

/** The Worker's bindings, vars and secrets the gateway reads (names Upstash users already have). */
export interface GatewayEnv {
  /**
   * Redis REST URL, a secret (`wrangler secret put UPSTASH_REDIS_REST_URL`). A plain-http or loopback URL
   * is served only to requests on a loopback address (local development).
   */
  UPSTASH_REDIS_REST_URL?: string;
  /** Redis REST token, a secret (`wrangler secret put UPSTASH_REDIS_REST_TOKEN`). */
  UPSTASH_REDIS_REST_TOKEN?: string;
  /** Default reply wait in seconds. */
  RPC_QUEUE_RESPONSE_TIMEOUT?: string;
  /** Log level when the `logLevel` option is not set: `debug`, `info`, `warn` or `error`. */
  LOG_LEVEL?: string;
  [binding: string]: unknown;
}

type ConsumerGroupsConfig = BackendConfig & { type: "consumer_groups" };

/** A backend entry: its configuration, or a function of the Worker's env that returns it. */
export type BackendSetting = BackendConfig | ((env: GatewayEnv) => BackendConfig);

/** Options of `createGateway()`: the core's {@link GatewayOptions} plus the platform's. */
export interface CreateGatewayOptions extends GatewayOptions {
  /**
   * Backends by name. A `consumer_groups` entry without `redis`/`redisUrl` uses `UPSTASH_REDIS_REST_URL`
   * and `UPSTASH_REDIS_REST_TOKEN`, and `RPC_QUEUE_RESPONSE_TIMEOUT` for its `timeout`.
   * @default { default: { type: "consumer_groups" } }
   */
  backends?: Record<string, BackendSetting>;
  /** The Durable Object namespace binding. @default "GATEWAY" */
  binding?: string;
  /**
   * Names the Durable Object that holds a new connection. @default a random one of `objectShards` names
   * (`shard-0` ... `shard-<n-1>`)
   */
  objectName?: (request: Request, env: GatewayEnv) => string;
  /** Number of objects the default `objectName` spreads connections over. @default 4 */
  objectShards?: number;
  /** Upgrade request headers kept for hooks in `conn.upgrade.headers`. @default DEFAULT_UPGRADE_HEADERS */
  upgradeHeaders?: string[];
  /**
   * Query parameters of the upgrade URL that carry credentials: removed from `conn.upgrade.url` (kept with
   * the socket and shown to hooks) and handed to authentication in `conn.upgrade.credentials`.
   * @default ["token"]
   */
  credentialParams?: string[];
  /** Timeout of the Redis `PING` of `GET /health`. @default 1000 */
  healthTimeoutMs?: number;
  /**
   * Serve the playground page at `GET /` (and `/playground`) and the action list at `GET /actions`; an
   * object gives example frames. Off by default: a production gateway may not want a console at `/`.
   * @default false
   */
  playground?: boolean | PlaygroundOptions;
  /** Serve `GET /metrics` (Prometheus text format, summed over `metricsObjects`). @default true */
  metrics?: boolean;
  /**
   * The objects `GET /metrics` asks for their figures. @default `shard-0` ... `shard-<objectShards-1>`
   * with the default `objectName`; none with a custom one (the Worker cannot list names it did not make)
   */
  metricsObjects?: string[];
  /** Least severe structured log line written (requests are logged at `info`). @default env `LOG_LEVEL`, else "warn" */
  logLevel?: LogLevel;
  /**
   * Origins whose browser pages may connect, exactly as browsers send them (`https://app.example.com`);
   * an upgrade with another `Origin` gets 403. An upgrade without `Origin` (not a browser) is allowed;
   * `"*"` allows every origin. @default undefined (no check)
   */
  allowedOrigins?: string[];
  /**
   * Connections one Durable Object holds at most. One more is accepted and closed at once with 1013
   * "Try again later" (a close code browsers can read, unlike an HTTP error). 0 = no cap.
   * @default 10000
   */
  maxConnectionsPerObject?: number;
  /**
   * Size limit of a socket's attachment (its id, kept upgrade headers and stash), as UTF-8 JSON. A stash
   * change that would exceed it is refused with a log line and the previous stash kept. Cloudflare allows
   * 2,048 bytes (local workerd more), so raise it only for a runtime that allows more.
   * @default 2048
   */
  maxAttachmentBytes?: number;
}

/** The default of `maxConnectionsPerObject`. */
export const DEFAULT_MAX_CONNECTIONS_PER_OBJECT = 10_000;

/** What the Durable Object adds to its consumer-groups backends: a counting Redis wrapper and its logger. */
export interface BackendInstrumentation {
  wrapRedis?: (client: RedisCommands) => RedisCommands;
  logger?: Logger;
}

/** A consumer-groups config with the object's Redis wrapper (around the client it would make) and logger. */
function instrumented(
  config: ConsumerGroupsConfig,
  { wrapRedis, logger }: BackendInstrumentation,
): ConsumerGroupsConfig {
  const withLogger = logger && !config.logger ? { ...config, logger } : config;
  if (!wrapRedis) return withLogger;
  const client =
    config.redis ??
    createRedisClient({
      url: config.redisUrl ?? "",
      token: config.redisToken ?? "",
      requestTimeoutMs: config.redisRequestTimeoutMs ?? DEFAULT_CONSUMER_GROUPS_OPTIONS.redisRequestTimeoutMs,
    });
  return { ...withLogger, redis: wrapRedis(client) };
}

/** The default backends: one consumer-groups backend configured from the environment. */
export const DEFAULT_BACKENDS: Record<string, BackendSetting> = { default: { type: "consumer_groups" } };

/** Each backend's configuration for this env, environment defaults filled in; throws a ConfigError. */
export function backendConfigs(
  options: CreateGatewayOptions,
  env: GatewayEnv,
): Record<string, BackendConfig> {
  const configs: Record<string, BackendConfig> = {};
  for (const [name, setting] of Object.entries(options.backends ?? DEFAULT_BACKENDS)) {
    const config = typeof setting === "function" ? setting(env) : setting;
    configs[name] = config.type === "consumer_groups" ? withRedisEnv(config, env) : config;
  }
  return configs;
}

function withRedisEnv(config: BackendConfig & { type: "consumer_groups" }, env: GatewayEnv): BackendConfig {
  if (config.redis) return { env, ...config };
  const redisUrl = config.redisUrl ?? nonEmpty(env.UPSTASH_REDIS_REST_URL);
  const redisToken = config.redisToken ?? nonEmpty(env.UPSTASH_REDIS_REST_TOKEN);
  if (!redisUrl) {
    throw new ConfigError(
      "UPSTASH_REDIS_REST_URL is not set: run `wrangler secret put UPSTASH_REDIS_REST_URL` (or put it in .dev.vars, or give the backend `redisUrl`)",
    );
  }
  if (!redisToken) {
    throw new ConfigError(
      "UPSTASH_REDIS_REST_TOKEN is not set: run `wrangler secret put UPSTASH_REDIS_REST_TOKEN` (or put it in .dev.vars)",
    );
  }
  return { env, ...config, redisUrl, redisToken };
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

/**
 * Builds this object incarnation's backends. `objectId` names the reply keys of consumer-groups backends.
 * Also checks that every action has its backend and that its `category` is configured there, so a typo
 * fails at start-up.
 */
export function buildBackends(
  options: CreateGatewayOptions,
  env: GatewayEnv,
  objectId: string,
  instrument: BackendInstrumentation = {},
): Record<string, Backend> {
  const backends: Record<string, Backend> = {};
  const resolved = resolveGatewayOptions(options);
  // The gateway's reply size bounds a consumer-groups backend's LPOP batch (Upstash's 10 MB per response).
  const { maxResponseBytes } = resolved;
  for (const [name, config] of Object.entries(backendConfigs(options, env))) {
    backends[name] = createBackend(
      name,
      config.type === "consumer_groups"
        ? instrumented({ maxResponseBytes, ...config, objectId }, instrument)
        : config,
    );
  }
  for (const [action, actionOptions] of resolved.actionTable) {
    const backendName = actionOptions.backend ?? resolved.defaultBackend;
    const backend = Object.hasOwn(backends, backendName) ? backends[backendName] : undefined;
    const answeredInPlace =
      actionOptions.answerLocally ??
      actionOptions.insteadOfForward ??
      actionOptions.instead_of_forward ??
      resolved.insteadOfForward ??
      resolved.instead_of_forward;
    if (!backend && !answeredInPlace) {
      throw new ConfigError(
        `\`actions\`: "${action}" uses backend "${backendName}", which is not in \`backends\` (set \`defaultBackend\`?)`,
      );
    }
    if (!(backend instanceof ConsumerGroupsBackend) || actionOptions.category === undefined) continue;
    try {
      backend.resolveCategory(actionOptions.category);
    } catch (error) {
      throw new ConfigError(`\`actions\`: "${action}": ${(error as Error).message}`);
    }
  }
  return backends;
}
