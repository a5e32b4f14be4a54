import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  parseJsonBody,
  parseJsonCommand,
  parseJsonCommandList,
  parsePathCommand,
  type RedisCommand,
} from "./commands.js";
import {
  serveEventStream,
  SSE_FRAMINGS,
  subscribeTopics,
  type EventStreamContext,
  type SseFraming,
} from "./event-stream.js";
import { digest, isAuthorized, readBody, sendJson, splitRequestTarget, travel } from "./http-io.js";
import { executeCommand, executePipeline, executeTransaction } from "./execute.js";
import { BridgeHttpError, errorMessage } from "./errors.js";
import { PubSubHub } from "./pubsub-hub.js";
import { connectBridgeRedis, type BridgeRedis } from "./redis-connections.js";
import { SYNC_TOKEN_HEADER, SyncTokenClock } from "./sync-token.js";

/** Options of {@link startBridge}. */
export interface BridgeOptions {
  /** Redis to forward to, e.g. `redis://127.0.0.1:6379`. */
  redisUrl: string;
  /** Bearer token clients must send (`Authorization: Bearer <token>` or `?_token=<token>`). */
  token: string;
  /** Port to listen on; 0 picks a free one. @default 0 */
  port?: number;
  /** Address to bind. @default "127.0.0.1" */
  host?: string;
  /** Largest request body accepted; a larger one gets 413. @default 10 MB, as Upstash */
  maxBodyBytes?: number;
  /** Interval of keep-alive comments on a quiet `/subscribe` stream; 0 sends none. @default 15000 */
  sseKeepAliveMs?: number;
  /**
   * How `/subscribe` streams separate events: `"upstash"` (one `data:` line per event, no blank line, as
   * Upstash documents and sends it) or `"blank-line"` (the standard framing), so a reader can be tested
   * against both. @default "upstash"
   */
  sseFraming?: SseFraming;
  /**
   * Most commands one `/pipeline` or `/multi-exec` request may carry; a longer list gets a 400 naming this
   * limit and nothing of it runs. Upstash documents no such count, only a 10 MB request ("Pricing & Billing",
   * https://upstash.com/docs/redis/overall/billing); here a 10 MB body could hold a million commands that would hold the one shared Redis
   * connection for many seconds. The gateway sends at most `writeBatchSize` (100) per request.
   * @default 1000
   */
  maxCommandsPerRequest?: number;
  /**
   * Most `/subscribe` streams open at once per token; one more gets a 429 naming this limit until one closes.
   * A stream counts until its connection is gone. The gateway holds one per awake object. @default 1000
   */
  maxStreamsPerToken?: number;
  /** Most channels (or patterns) one `/subscribe` or `/psubscribe` path may name; more get a 400. @default 100 */
  maxChannelsPerStream?: number;
  /**
   * Unsent bytes a `/subscribe` stream may hold for a reader that does not keep up. Past it the stream is
   * ended with a last comment line (`: closed: ...` naming this limit) and its messages are dropped, as
   * redis-server disconnects a pub/sub client past its `client-output-buffer-limit` (redis.conf). Each event
   * is written while the stream holds less, so one larger message still goes out. @default 1 MB
   */
  maxStreamBufferBytes?: number;
  /**
   * A network round trip to simulate, ms: each REST request waits half of it before its commands run and
   * half before its answer is written, and each event of a `/subscribe` stream waits half. Locally the
   * round trip is a fraction of a millisecond; a Worker's to an Upstash database is milliseconds (a region
   * away, more), and the gateway's schedule (when to poll) is tuned for that. Node's timers have 1 ms steps,
   * so each half is a whole number of ms, rounded down. @default 0
   */
  latencyMs?: number;
}

/** A started bridge. */
export interface RunningBridge {
  /** Base URL for `new Redis({ url, token })`, e.g. `http://127.0.0.1:8079`. */
  url: string;
  port: number;
  /**
   * Stops listening, ends open SSE streams at once, lets other requests finish (cutting them after a
   * second) and closes the Redis connections. Idempotent.
   */
  close(): Promise<void>;
}

/** Defaults of the optional {@link BridgeOptions}. */
export const DEFAULT_BRIDGE_OPTIONS = {
  port: 0,
  host: "127.0.0.1",
  maxBodyBytes: 10 * 1024 * 1024,
  sseKeepAliveMs: 15_000,
  sseFraming: "upstash" as SseFraming,
  maxCommandsPerRequest: 1_000,
  maxStreamsPerToken: 1_000,
  maxChannelsPerStream: 100,
  maxStreamBufferBytes: 1024 * 1024,
  latencyMs: 0,
};

/** Applies the defaults and checks every option, throwing a message that names the bad one. */
export function resolveBridgeOptions(options: BridgeOptions): Required<BridgeOptions> {
  const resolved = { ...DEFAULT_BRIDGE_OPTIONS, ...options };
  const fail = (name: string, expected: string) => {
    throw new Error(`startBridge: option \`${name}\` must be ${expected}`);
  };
  if (typeof resolved.token !== "string" || !resolved.token) fail("token", "a non-empty string");
  if (!/^rediss?:\/\//.test(resolved.redisUrl)) fail("redisUrl", "a redis:// or rediss:// URL");
  if (!Number.isInteger(resolved.port) || resolved.port < 0 || resolved.port > 65535) {
    fail("port", "an integer from 0 to 65535");
  }
  if (!Number.isInteger(resolved.maxBodyBytes) || resolved.maxBodyBytes <= 0) {
    fail("maxBodyBytes", "a positive integer");
  }
  if (!Number.isInteger(resolved.sseKeepAliveMs) || resolved.sseKeepAliveMs < 0) {
    fail("sseKeepAliveMs", "a non-negative integer (0 turns keep-alive comments off)");
  }
  for (const name of [
    "maxCommandsPerRequest",
    "maxStreamsPerToken",
    "maxChannelsPerStream",
    "maxStreamBufferBytes",
  ] as const) {
    if (!Number.isInteger(resolved[name]) || resolved[name] <= 0) fail(name, "a positive integer");
  }
  if (!Number.isInteger(resolved.latencyMs) || resolved.latencyMs < 0) {
    fail("latencyMs", "a non-negative integer (0: no simulated latency)");
  }
  if (!SSE_FRAMINGS.includes(resolved.sseFraming)) fail("sseFraming", `one of ${SSE_FRAMINGS.join(", ")}`);
  return resolved;
}

/** How long `close()` lets in-flight requests finish before it cuts their connections. */
const CLOSE_GRACE_MS = 1_000;

/**
 * Starts a local HTTP server that speaks the Upstash Redis REST protocol in front of a real redis-server, so
 * `@upstash/redis` (and the gateway) can run against it in development and tests. Rejects when Redis cannot
 * be reached at start; after that, Redis outages give fast 503 answers and the bridge reconnects by itself.
 *
 * @example const bridge = await startBridge({ redisUrl: "redis://127.0.0.1:6379", token: "dev" });
 */
export async function startBridge(options: BridgeOptions): Promise<RunningBridge> {
  const resolved = resolveBridgeOptions(options);
  const { redisUrl, token, port, host, maxBodyBytes, sseKeepAliveMs, sseFraming } = resolved;
  const redis = await connectBridgeRedis(redisUrl);
  const syncTokens = new SyncTokenClock();
  const eventStreams: EventStreamContext = {
    hub: new PubSubHub(redis.subscriber),
    framing: sseFraming,
    keepAliveMs: sseKeepAliveMs,
    unavailableError: (cause) => redis.unavailableError(cause),
    headers: () => ({ [SYNC_TOKEN_HEADER]: syncTokens.issue() }),
    openStreams: new Set(),
    maxStreamsPerToken: resolved.maxStreamsPerToken,
    maxChannelsPerStream: resolved.maxChannelsPerStream,
    maxBufferedBytes: resolved.maxStreamBufferBytes,
    streamsByToken: new Map(),
    oneWayMs: Math.floor(resolved.latencyMs / 2),
  };
  const context: RequestContext = {
    redis,
    tokenDigest: digest(token),
    maxBodyBytes,
    maxCommandsPerRequest: resolved.maxCommandsPerRequest,
    syncTokens,
    eventStreams,
    oneWayMs: Math.floor(resolved.latencyMs / 2),
  };

  const server = createServer((request, response) => {
    handleRequest(request, response, context).catch((error: unknown) => {
      // handleRequest answers every error itself; reaching here means the answer could not be written
      // (the client went away), so there is nobody left to tell.
      response.destroy(error instanceof Error ? error : undefined);
    });
  });
  // Longer than the keep-alive of fetch clients, so the server never closes a socket a client is reusing.
  server.keepAliveTimeout = 65_000;

  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (error) {
    await redis.close();
    throw error;
  }

  const boundPort = (server.address() as AddressInfo).port;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${boundPort}`,
    port: boundPort,
    close() {
      closing ??= (async () => {
        // An SSE stream never finishes by itself, so waiting for it would always take the full grace time.
        for (const stream of [...eventStreams.openStreams]) stream.end();
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const forceTimer = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
        await stopped;
        clearTimeout(forceTimer);
        await redis.close();
      })();
      return closing;
    },
  };
}

interface RequestContext {
  redis: BridgeRedis;
  tokenDigest: Buffer;
  maxBodyBytes: number;
  maxCommandsPerRequest: number;
  syncTokens: SyncTokenClock;
  eventStreams: EventStreamContext;
  /** Half the simulated round trip ({@link BridgeOptions.latencyMs}), ms. */
  oneWayMs: number;
}

/** Paths that take the command as a JSON body; any other path is a path-style command. */
const JSON_ENDPOINTS = new Set(["/", "/pipeline", "/multi-exec"]);

async function handleRequest(request: IncomingMessage, response: ServerResponse, context: RequestContext) {
  await travel(context.oneWayMs);
  try {
    const { path, query } = splitRequestTarget(request.url ?? "/");
    if (!isAuthorized(request, query, context.tokenDigest)) {
      throw new BridgeHttpError(401, "Unauthorized");
    }
    if (request.method !== "POST" && request.method !== "GET") {
      throw new BridgeHttpError(405, `ERR method ${request.method} not allowed; use POST or GET`, {
        allow: "GET, POST",
      });
    }
    await context.syncTokens.waitFor(firstHeader(request.headers[SYNC_TOKEN_HEADER]));
    const base64 = String(request.headers["upstash-encoding"] ?? "").toLowerCase() === "base64";
    const body = request.method === "POST" ? await readBody(request, context.maxBodyBytes) : Buffer.alloc(0);
    const pathCommand = JSON_ENDPOINTS.has(path) ? undefined : parsePathCommand(path, Buffer.alloc(0));
    const topics = pathCommand && subscribeTopics(pathCommand);
    if (topics) {
      // @upstash/redis POSTs "[]" here; like Upstash, the bridge ignores a body rather than subscribe to it.
      await serveEventStream(
        request,
        response,
        topics,
        context.eventStreams,
        context.tokenDigest.toString("hex"),
      );
      return;
    }
    const result = pathCommand
      ? await runOne(body.length > 0 ? [...pathCommand, body] : pathCommand, base64, context)
      : await routeJson(path, request.method, body, base64, context);
    const headers = syncTokenHeader(context);
    await travel(context.oneWayMs);
    sendJson(response, 200, result, headers);
  } catch (error) {
    const failure =
      error instanceof BridgeHttpError ? error : new BridgeHttpError(500, `ERR ${errorMessage(error)}`);
    await travel(context.oneWayMs);
    sendJson(
      response,
      failure.status,
      { error: failure.message },
      { ...failure.headers, ...syncTokenHeader(context) },
    );
  }
}

async function routeJson(
  path: string,
  method: string,
  body: Buffer,
  base64: boolean,
  context: RequestContext,
) {
  if (method !== "POST") {
    throw new BridgeHttpError(405, `ERR ${path} takes POST with a JSON body`, { allow: "POST" });
  }
  const json = parseJsonBody(body);
  if (path === "/") return runOne(parseJsonCommand(json, "the command"), base64, context);
  if (Array.isArray(json) && json.length > context.maxCommandsPerRequest) {
    throw new BridgeHttpError(
      400,
      `ERR ${path} of ${json.length} commands is over the bridge's limit of ${context.maxCommandsPerRequest} ` +
        "commands per request (option maxCommandsPerRequest); nothing ran, send it in smaller parts",
    );
  }
  const commands = parseJsonCommandList(json, path);
  const execute = path === "/pipeline" ? executePipeline : executeTransaction;
  return execute(context.redis, commands, base64);
}

async function runOne(command: RedisCommand, base64: boolean, context: RequestContext) {
  return { result: await executeCommand(context.redis, command, base64) };
}

/** A new token for each response, issued once its commands ran (see {@link SyncTokenClock}). */
function syncTokenHeader(context: RequestContext): Record<string, string> {
  return { [SYNC_TOKEN_HEADER]: context.syncTokens.issue() };
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
