/**
 * `createGateway()` options and the Worker's vars and secrets it reads. Their defaults are in
 * `GATEWAY_DEFAULTS` and they are resolved, once, in `plan.ts`.
 */
import type { BackendConfig } from "../backends/index.js";
import type { GatewayOptions } from "../core/options.js";
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
  /** Reply transport of consumer-groups backends without `replyTransport`: `poll` or `subscribe`. */
  REPLY_TRANSPORT?: string;
  /** Log level when the `logLevel` option is not set: `debug`, `info`, `warn` or `error`. */
  LOG_LEVEL?: string;
  /**
   * The push secret when the `pushSecret` option is not set, a secret (`wrangler secret put PUSH_SECRET`):
   * pushes must then send `authorization: Bearer <secret>`.
   */
  PUSH_SECRET?: string;
  /** Bearer token of `GET /metrics` when the `metricsToken` option is not set, a secret. */
  METRICS_TOKEN?: string;
  [binding: string]: unknown;
}

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
   * Bearer token `GET /metrics` requires (`Authorization: Bearer <token>`); 401 without it. Without a token
   * (neither this nor `METRICS_TOKEN`), `/metrics` answers only on a loopback host (local development) and
   * is 404 elsewhere, so a deployment never exposes it, nor wakes its objects, by default.
   * @default env `METRICS_TOKEN`, else none
   */
  metricsToken?: string;
  /** How long `GET /health` reuses its last Redis `PING` result (a billed command). 0 = a `PING` per call. @default 5000 */
  healthCacheMs?: number;
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
   * Connections one client address (`cf-connecting-ip`) holds at most in one Durable Object, counted
   * before authentication. One more is accepted and closed at once with 1008 "Too many connections from
   * this address". Upgrades without the header (local development) are not counted. 0 = no cap.
   * @default 500
   */
  maxConnectionsPerAddress?: number;
  /**
   * Frames per second one client address may send to one Durable Object, over all its connections (a
   * token bucket holding one second's worth). A frame over it gets `RateLimit` and counts toward the
   * abuse close (1008). Frames of connections without `cf-connecting-ip` are not counted. 0 = no cap.
   * @default 1000
   */
  maxFramesPerSecondPerAddress?: number;
  /**
   * Size limit of a socket's attachment (its id, kept upgrade headers and stash), as UTF-8 JSON. A stash
   * change that would exceed it is refused with a log line and the previous stash kept. Cloudflare allows
   * 2,048 bytes (local workerd more), so raise it only for a runtime that allows more.
   * @default 2048
   */
  maxAttachmentBytes?: number;
  /**
   * Where services push (docs/push.md): the origin of each connection's push URL
   * (`<pushOrigin>/connections/<ref>`), e.g. `https://gateway.example.com` when services reach the Worker
   * by another name than clients do. @default the origin of the WebSocket upgrade request, as the client
   * reached the gateway
   */
  pushOrigin?: string;
  /**
   * A shared secret every push must send as `authorization: Bearer <secret>` (401 without it), defence in
   * depth on top of the connection reference. @default env `PUSH_SECRET`, else none
   */
  pushSecret?: string;
  /** Messages one `POST /connections/messages` may carry; more get 413. @default 500 */
  maxPushBatch?: number;
  /** Size limit of a push request's body, in bytes; a larger body gets 413. @default 4194304 (4 MiB) */
  maxPushBodyBytes?: number;
}
