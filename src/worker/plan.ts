/**
 * The gateway's plan: `createGateway()`'s options and the Worker's env, resolved once.
 *
 * {@link compileGateway} checks and resolves what does not depend on the env, when `createGateway()` runs
 * (a bad option fails at deploy or start-up). {@link gatewayPlan} adds what does, once per env object: the
 * environment variables are read here and nowhere else, and each backend's configuration is completed
 * (Redis URL and token, reply timeout, reply transport). Core and backends then receive plain, env-free
 * options. Every default of `createGateway()` is in {@link GATEWAY_DEFAULTS}.
 */
import {
  createBackend,
  DEFAULT_CONSUMER_GROUPS_OPTIONS,
  type BackendConfig,
  type RedisObserver,
  type ReplyTransport,
} from "../backends/index.js";
import { ConfigError } from "../core/errors.js";
import {
  DEFAULT_GATEWAY_OPTIONS,
  resolveGatewayOptions,
  type ResolvedGatewayOptions,
} from "../core/options.js";
import { assertBackendsExist } from "../core/request.js";
import type { Backend, Logger } from "../core/types.js";
import type { BackendSetting, CreateGatewayOptions, GatewayEnv } from "./config.js";
import {
  DEFAULT_CREDENTIAL_PARAMS,
  DEFAULT_MAX_ATTACHMENT_BYTES,
  DEFAULT_UPGRADE_HEADERS,
} from "./connection.js";
import { localRedisSettings } from "./local-redis.js";
import { isLogLevel, type LogLevel } from "./log.js";
import { assertObservabilityOptions, metricsObjectNames } from "./observability.js";
import type { PlaygroundOptions } from "./playground.js";

/** Every default of `createGateway()`: the core's ({@link DEFAULT_GATEWAY_OPTIONS}) and the platform's. */
export const GATEWAY_DEFAULTS = Object.freeze({
  ...DEFAULT_GATEWAY_OPTIONS,
  /** One consumer-groups backend configured from the environment. */
  backends: Object.freeze({ default: Object.freeze({ type: "consumer_groups" }) }) as Readonly<
    Record<string, BackendSetting>
  >,
  binding: "GATEWAY",
  objectShards: 4,
  upgradeHeaders: DEFAULT_UPGRADE_HEADERS as readonly string[],
  credentialParams: DEFAULT_CREDENTIAL_PARAMS as readonly string[],
  healthTimeoutMs: 1_000,
  playground: false,
  metrics: true,
  /** Used when neither the `logLevel` option nor a valid `LOG_LEVEL` variable is set. */
  logLevel: "warn" as LogLevel,
  maxConnectionsPerObject: 10_000,
  /** A NAT of a few hundred users fits; one source holds at most 1/20 of an object's default cap. */
  maxConnectionsPerAddress: 500,
  /** A third of what one object serves (about 3,000 requests/s): one source cannot use up an object. */
  maxFramesPerSecondPerAddress: 1_000,
  healthCacheMs: 5_000,
  maxAttachmentBytes: DEFAULT_MAX_ATTACHMENT_BYTES,
  /** A consumer-groups backend's reply wait (seconds) without `timeout` or `RPC_QUEUE_RESPONSE_TIMEOUT`. */
  timeout: DEFAULT_CONSUMER_GROUPS_OPTIONS.timeout,
  /** A consumer-groups backend's reply transport without `replyTransport` or `REPLY_TRANSPORT`. */
  replyTransport: DEFAULT_CONSUMER_GROUPS_OPTIONS.replyTransport,
  maxPushBatch: 500,
  maxPushBodyBytes: 4 * 1024 * 1024,
});

/** What `createGateway()` resolves once, before any env is known. Frozen. */
export interface CompiledGateway {
  /** The options as given (hooks, `objectName`, backend settings). */
  readonly options: CreateGatewayOptions;
  /** The core's options, resolved (actions and their routes included). */
  readonly core: ResolvedGatewayOptions;
  readonly binding: string;
  readonly objectShards: number;
  /** Names the object that holds a new connection. */
  readonly objectName: (request: Request, env: GatewayEnv) => string;
  /** The objects `GET /metrics` asks. */
  readonly metricsObjects: readonly string[];
  readonly metrics: boolean;
  /** Off, or the playground's options. */
  readonly playground: false | PlaygroundOptions;
  readonly upgradeHeaders: readonly string[];
  /** Query parameters taken out of the kept upgrade URL as credentials. */
  readonly credentialParams: readonly string[];
  readonly healthTimeoutMs: number;
  /** 0 = no cap. */
  readonly maxConnectionsPerObject: number;
  /** 0 = no cap. */
  readonly maxConnectionsPerAddress: number;
  /** 0 = no cap. */
  readonly maxFramesPerSecondPerAddress: number;
  readonly healthCacheMs: number;
  readonly maxAttachmentBytes: number;
  readonly allowedOrigins?: readonly string[];
  /** Server push: off (`push: false`), or its settings. */
  readonly push: false | PushSettings;
  /** The env plans made so far, one per env object. */
  readonly plans: WeakMap<object, GatewayPlan | { error: unknown }>;
}

/** {@link CompiledGateway} plus what comes from one env. Frozen. */
export interface GatewayPlan extends CompiledGateway {
  /** The `logLevel` option, else `LOG_LEVEL`, else "warn". */
  readonly logLevel: LogLevel;
  /**
   * Values redacted from log lines, `/health` and `/metrics`: the Redis tokens (env and options), JSON-RPC
   * backend header values, the metrics token, the push secret.
   */
  readonly secrets: readonly string[];
  /** The `metricsToken` option, else `METRICS_TOKEN`; undefined = `/metrics` on loopback hosts only. */
  readonly metricsToken?: string;
  /** Each backend's configuration, complete: no backend reads the environment. */
  readonly backends: Readonly<Record<string, BackendConfig>>;
  /** The settings that hold a local Redis URL (see `local-redis.ts`). */
  readonly localRedis: readonly string[];
  /** The `pushSecret` option, else `PUSH_SECRET`; undefined: pushes need no `authorization`. */
  readonly pushSecret?: string;
}

/** How the Worker serves pushes. */
export interface PushSettings {
  /** The `pushOrigin` option, without a trailing slash; undefined: the upgrade request's origin. */
  readonly origin?: string;
  readonly maxBatch: number;
  readonly maxBodyBytes: number;
}

/**
 * The default connection-to-object mapping: a random one of `shards` objects. Connections in one object
 * share its reply poller (fewer `LPOP`s per request under load, fewer awake objects); more shards spread
 * CPU (one object runs on one thread, about 3,000 requests/s) and shrink what one eviction disturbs.
 */
export function randomShard(shards: number): (request: Request) => string {
  return () => `shard-${Math.floor(Math.random() * shards)}`;
}

/** Checks and resolves the options that do not depend on the env. Throws a ConfigError naming the option. */
export function compileGateway(options: CreateGatewayOptions): CompiledGateway {
  const core = resolveGatewayOptions(options);
  const shards = options.objectShards ?? GATEWAY_DEFAULTS.objectShards;
  if (!Number.isInteger(shards) || shards < 1)
    throw new ConfigError("`objectShards` must be a positive integer");
  const cap = options.maxConnectionsPerObject ?? GATEWAY_DEFAULTS.maxConnectionsPerObject;
  if (!Number.isInteger(cap) || cap < 0)
    throw new ConfigError("`maxConnectionsPerObject` must be a non-negative integer (0 = no cap)");
  const attachment = options.maxAttachmentBytes ?? GATEWAY_DEFAULTS.maxAttachmentBytes;
  if (!Number.isInteger(attachment) || attachment <= 0) {
    throw new ConfigError("`maxAttachmentBytes` must be a positive whole number of bytes");
  }
  const perAddress = nonNegativeInteger(options, "maxConnectionsPerAddress");
  const framesPerAddress = nonNegativeNumber(options, "maxFramesPerSecondPerAddress");
  const healthCacheMs = nonNegativeNumber(options, "healthCacheMs");
  assertObservabilityOptions(options);
  const push = core.push ? pushSettings(options) : false;
  const playground = options.playground ?? GATEWAY_DEFAULTS.playground;
  return Object.freeze({
    options,
    core,
    binding: options.binding ?? GATEWAY_DEFAULTS.binding,
    objectShards: shards,
    objectName: options.objectName ?? randomShard(shards),
    metricsObjects: Object.freeze(metricsObjectNames(options, shards)),
    metrics: options.metrics ?? GATEWAY_DEFAULTS.metrics,
    playground: playground === true ? {} : playground,
    upgradeHeaders: options.upgradeHeaders ?? GATEWAY_DEFAULTS.upgradeHeaders,
    credentialParams: options.credentialParams ?? GATEWAY_DEFAULTS.credentialParams,
    healthTimeoutMs: options.healthTimeoutMs ?? GATEWAY_DEFAULTS.healthTimeoutMs,
    maxConnectionsPerObject: cap,
    maxConnectionsPerAddress: perAddress,
    maxFramesPerSecondPerAddress: framesPerAddress,
    healthCacheMs,
    maxAttachmentBytes: attachment,
    ...(options.allowedOrigins ? { allowedOrigins: options.allowedOrigins } : {}),
    push,
    plans: new WeakMap(),
  });
}

/**
 * The plan for this env: the compiled gateway plus the environment variables and the backends'
 * configurations. Made once per env object (the runtime hands the same one to every request of an
 * isolate); a configuration error is kept too, and thrown again to every caller (a ConfigError naming
 * the variable or option).
 */
export function gatewayPlan(gateway: CompiledGateway | CreateGatewayOptions, env: GatewayEnv): GatewayPlan {
  const compiled = "plans" in gateway && "core" in gateway ? gateway : compileGateway(gateway);
  const key: object = typeof env === "object" && env !== null ? env : {};
  let plan = compiled.plans.get(key);
  if (!plan) {
    try {
      plan = makePlan(compiled, key as GatewayEnv);
    } catch (error) {
      plan = { error };
    }
    compiled.plans.set(key, plan);
  }
  if ("error" in plan) throw plan.error;
  return plan;
}

/** The push options, checked. Throws a ConfigError naming the option. */
function pushSettings(options: CreateGatewayOptions): PushSettings {
  const maxBatch = options.maxPushBatch ?? GATEWAY_DEFAULTS.maxPushBatch;
  if (!Number.isInteger(maxBatch) || maxBatch < 1) {
    throw new ConfigError("`maxPushBatch` must be a positive whole number of messages");
  }
  const maxBodyBytes = options.maxPushBodyBytes ?? GATEWAY_DEFAULTS.maxPushBodyBytes;
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 1) {
    throw new ConfigError("`maxPushBodyBytes` must be a positive whole number of bytes");
  }
  if (options.pushOrigin === undefined) return Object.freeze({ maxBatch, maxBodyBytes });
  let origin: string;
  try {
    origin = new URL(options.pushOrigin).origin;
  } catch {
    origin = "null";
  }
  if (origin === "null" || !/^https?:$/.test(new URL(origin).protocol)) {
    throw new ConfigError(
      `\`pushOrigin\` must be an http(s) origin such as https://gateway.example.com, got "${options.pushOrigin}"`,
    );
  }
  return Object.freeze({ origin, maxBatch, maxBodyBytes });
}

/** Reads the environment variables (here only) and completes each backend's configuration. */
function makePlan(compiled: CompiledGateway, env: GatewayEnv): GatewayPlan {
  const redisUrl = nonEmpty(env.UPSTASH_REDIS_REST_URL);
  const redisToken = nonEmpty(env.UPSTASH_REDIS_REST_TOKEN);
  const fromEnv: EnvDefaults = {
    redisUrl,
    redisToken,
    timeout: () => timeoutFromEnv(env.RPC_QUEUE_RESPONSE_TIMEOUT),
    replyTransport: () => transportFromEnv(env.REPLY_TRANSPORT),
  };
  const backends: Record<string, BackendConfig> = {};
  const settings = compiled.options.backends ?? GATEWAY_DEFAULTS.backends;
  for (const [name, setting] of Object.entries(settings)) {
    const config = typeof setting === "function" ? setting(env) : setting;
    backends[name] = Object.freeze(
      config.type === "consumer_groups"
        ? consumerGroupsConfig(config, fromEnv, compiled.core.maxResponseBytes)
        : config,
    );
  }
  const logLevel = compiled.options.logLevel ?? (isLogLevel(env.LOG_LEVEL) ? env.LOG_LEVEL : undefined);
  const pushSecret = compiled.push ? nonEmpty(compiled.options.pushSecret ?? env.PUSH_SECRET) : undefined;
  const metricsToken = nonEmpty(compiled.options.metricsToken) ?? nonEmpty(env.METRICS_TOKEN);
  return Object.freeze({
    ...compiled,
    logLevel: logLevel ?? GATEWAY_DEFAULTS.logLevel,
    secrets: Object.freeze(configuredSecrets(env, backends, metricsToken, pushSecret)),
    ...(metricsToken ? { metricsToken } : {}),
    ...(pushSecret ? { pushSecret } : {}),
    backends: Object.freeze(backends),
    localRedis: Object.freeze(localRedisSettings(backends, redisUrl)),
  });
}

/** Env names that hold a secret. */
const SECRET_NAME = /TOKEN|SECRET|PASSWORD|KEY/i;

/**
 * Every configured secret, to redact wherever text might carry one (an SDK error quoting its request, a
 * misbehaving Redis echoing a header): every env string whose name says it is one (`*TOKEN*`, `*SECRET*`,
 * `*PASSWORD*`, `*KEY*`: the Redis token, `METRICS_TOKEN`, a push secret), every backend's `redisToken`,
 * the values of JSON-RPC backends' `headers`, and the secrets given as options (`metricsToken`,
 * `pushSecret`).
 */
export function configuredSecrets(
  env: GatewayEnv,
  backends: Readonly<Record<string, BackendConfig>>,
  ...optionSecrets: (string | undefined)[]
): string[] {
  const found = new Set<string>();
  const add = (value: unknown): void => {
    // Very short values would redact ordinary words; no real token is that short.
    if (typeof value === "string" && value.length >= 6) found.add(value);
  };
  for (const [name, value] of Object.entries(env)) if (SECRET_NAME.test(name)) add(value);
  for (const secret of optionSecrets) add(secret);
  for (const config of Object.values(backends)) {
    if (config.type === "consumer_groups") add(config.redisToken);
    if (config.type === "jsonrpc") {
      for (const value of Object.values(config.headers ?? {})) {
        add(value);
        add(value.replace(/^(Bearer|Basic|Token)\s+/i, ""));
      }
    }
  }
  return [...found];
}

/** What a consumer-groups backend takes from the environment when its own options do not say. */
interface EnvDefaults {
  redisUrl?: string;
  redisToken?: string;
  /** Read only for a backend without `timeout`: a malformed variable matters only then. */
  timeout: () => number | undefined;
  replyTransport: () => ReplyTransport | undefined;
}

type ConsumerGroupsConfig = BackendConfig & { type: "consumer_groups" };

/**
 * A consumer-groups configuration completed from the environment: Redis URL and token (unless it has a
 * client), `timeout`, `replyTransport`, and the gateway's `maxResponseBytes` (which bounds its `LPOP`).
 */
function consumerGroupsConfig(
  config: ConsumerGroupsConfig,
  env: EnvDefaults,
  maxResponseBytes: number,
): ConsumerGroupsConfig {
  const completed: ConsumerGroupsConfig = {
    maxResponseBytes,
    ...config,
    timeout: config.timeout ?? env.timeout() ?? GATEWAY_DEFAULTS.timeout,
    replyTransport: config.replyTransport ?? env.replyTransport() ?? GATEWAY_DEFAULTS.replyTransport,
  };
  if (config.redis) return completed;
  const redisUrl = config.redisUrl ?? env.redisUrl;
  const redisToken = config.redisToken ?? env.redisToken;
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
  return { ...completed, redisUrl, redisToken };
}

/** A whole number >= 0 option (0 = off), else its default; throws a ConfigError naming it. */
function nonNegativeInteger(options: CreateGatewayOptions, name: "maxConnectionsPerAddress"): number {
  const value = options[name] ?? GATEWAY_DEFAULTS[name];
  if (!Number.isInteger(value) || value < 0)
    throw new ConfigError(`\`${name}\` must be a non-negative integer (0 = no cap)`);
  return value;
}

/** A number >= 0 option, else its default; throws a ConfigError naming it. */
function nonNegativeNumber(
  options: CreateGatewayOptions,
  name: "maxFramesPerSecondPerAddress" | "healthCacheMs",
): number {
  const value = options[name] ?? GATEWAY_DEFAULTS[name];
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0)
    throw new ConfigError(`\`${name}\` must be a non-negative number (0 = off)`);
  return value;
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** `RPC_QUEUE_RESPONSE_TIMEOUT`: seconds, or unset/empty. */
function timeoutFromEnv(raw: unknown): number | undefined {
  if (raw === undefined || raw === "") return undefined;
  const seconds = Number(raw);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new ConfigError(
      `RPC_QUEUE_RESPONSE_TIMEOUT must be a positive number of seconds, got "${String(raw)}"`,
    );
  }
  return seconds;
}

/** `REPLY_TRANSPORT`: `poll`, `subscribe`, or unset/empty. */
function transportFromEnv(raw: unknown): ReplyTransport | undefined {
  if (raw === undefined || raw === "") return undefined;
  if (raw === "poll" || raw === "subscribe") return raw;
  throw new ConfigError(`REPLY_TRANSPORT must be "poll" or "subscribe", got "${String(raw)}"`);
}

/** What the Durable Object adds to its consumer-groups backends: an observer of their Redis ports and its logger. */
export interface BackendInstrumentation {
  redisObserver?: RedisObserver;
  logger?: Logger;
}

/** A consumer-groups config with the object's Redis observer and logger. */
function instrumented(
  config: ConsumerGroupsConfig,
  { redisObserver, logger }: BackendInstrumentation,
): ConsumerGroupsConfig {
  const withLogger = logger && !config.logger ? { ...config, logger } : config;
  return redisObserver ? { ...withLogger, redisObserver } : withLogger;
}

/**
 * Builds one object incarnation's backends from the plan. `objectId` names the reply keys of
 * consumer-groups backends. Checks that every action has its backend and that the backend can serve it
 * (`checkAction`: a configured `category`, say), so a typo fails at start-up.
 */
export function buildBackends(
  plan: GatewayPlan,
  objectId: string,
  instrument: BackendInstrumentation = {},
): Record<string, Backend> {
  const backends: Record<string, Backend> = {};
  for (const [name, config] of Object.entries(plan.backends)) {
    backends[name] = createBackend(
      name,
      config.type === "consumer_groups" ? instrumented({ ...config, objectId }, instrument) : config,
    );
  }
  assertBackendsExist(plan.core, backends, true);
  for (const [action, route] of plan.core.routes) {
    // No backend serves an action answered by `answerLocally` (`forget` and `forget_all` included).
    if (route.options.answerLocally) continue;
    const backend = Object.hasOwn(backends, route.backend) ? backends[route.backend] : undefined;
    try {
      backend?.checkAction?.(route.options);
    } catch (error) {
      throw new ConfigError(`\`actions\`: "${action}": ${(error as Error).message}`);
    }
  }
  return backends;
}
