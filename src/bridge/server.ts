import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { parseJsonBody, parseJsonCommand, parseJsonCommandList, type RedisCommand } from "./commands.js";
import { executeCommand, executePipeline, executeTransaction } from "./execute.js";
import { BridgeHttpError, errorMessage } from "./errors.js";
import { connectBridgeRedis, type BridgeRedis } from "./redis-connections.js";

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
}

/** A started bridge. */
export interface RunningBridge {
  /** Base URL for `new Redis({ url, token })`, e.g. `http://127.0.0.1:8079`. */
  url: string;
  port: number;
  /** Stops listening, ends open HTTP connections and closes the Redis connections. Idempotent. */
  close(): Promise<void>;
}

/** Defaults of the optional {@link BridgeOptions}. */
export const DEFAULT_BRIDGE_OPTIONS = { port: 0, host: "127.0.0.1", maxBodyBytes: 10 * 1024 * 1024 };

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
  const { redisUrl, token, port, host, maxBodyBytes } = resolveBridgeOptions(options);
  const redis = await connectBridgeRedis(redisUrl);
  const tokenDigest = digest(token);

  const server = createServer((request, response) => {
    handleRequest(request, response, { redis, tokenDigest, maxBodyBytes }).catch((error: unknown) => {
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
}

async function handleRequest(request: IncomingMessage, response: ServerResponse, context: RequestContext) {
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
    const base64 = String(request.headers["upstash-encoding"] ?? "").toLowerCase() === "base64";
    const body = request.method === "POST" ? await readBody(request, context.maxBodyBytes) : Buffer.alloc(0);
    const result = await route(path, request.method, body, base64, context.redis);
    sendJson(response, 200, result);
  } catch (error) {
    const failure =
      error instanceof BridgeHttpError ? error : new BridgeHttpError(500, `ERR ${errorMessage(error)}`);
    sendJson(response, failure.status, { error: failure.message }, failure.headers);
  }
}

async function route(path: string, method: string, body: Buffer, base64: boolean, redis: BridgeRedis) {
  if (path === "/" || path === "/pipeline" || path === "/multi-exec") {
    if (method !== "POST") {
      throw new BridgeHttpError(405, `ERR ${path} takes POST with a JSON body`, { allow: "POST" });
    }
    const json = parseJsonBody(body);
    if (path === "/") {
      return { result: await executeCommand(redis, parseJsonCommand(json, "the command"), base64) };
    }
    const commands = parseJsonCommandList(json, path);
    return path === "/pipeline"
      ? executePipeline(redis, commands, base64)
      : executeTransaction(redis, commands, base64);
  }
  return { result: await executeCommand(redis, parsePathCommand(path, body), base64) };
}

/**
 * Path style, as Upstash: `/set/greeting/hello` is `SET greeting hello`. Segments are URL-decoded; a POST body
 * is appended as the last argument, byte for byte, which is also the only way to send binary values.
 */
function parsePathCommand(path: string, body: Buffer): RedisCommand {
  if (!path.startsWith("/")) throw unknownPath(path);
  const segments = path.slice(1).split("/");
  if (segments.length > 1 && segments[segments.length - 1] === "") segments.pop(); // trailing slash
  let decoded: string[];
  try {
    decoded = segments.map((segment) => decodeURIComponent(segment));
  } catch {
    throw new BridgeHttpError(400, `ERR path ${path} is not valid URL encoding`);
  }
  const [name, ...args] = decoded;
  if (!name) throw unknownPath(path);
  return body.length > 0 ? [name, ...args, body] : [name, ...args];
}

function unknownPath(path: string): BridgeHttpError {
  return new BridgeHttpError(
    404,
    `ERR unknown path ${path}; use POST /, /pipeline, /multi-exec or /<command>/<args>`,
  );
}

/**
 * Splits the request target by hand: `new URL("//get/k", base)` would read "get" as a host name, and a path
 * segment may legitimately be empty.
 */
function splitRequestTarget(target: string): { path: string; query: URLSearchParams } {
  const queryStart = target.indexOf("?");
  if (queryStart < 0) return { path: target, query: new URLSearchParams() };
  return { path: target.slice(0, queryStart), query: new URLSearchParams(target.slice(queryStart + 1)) };
}

/** Accepts the token as a bearer header or `_token` query parameter, compared in constant time. */
function isAuthorized(request: IncomingMessage, query: URLSearchParams, tokenDigest: Buffer): boolean {
  const header = request.headers.authorization;
  // The scheme name is case-insensitive (RFC 9110), the token is not.
  const presented = header && /^bearer /i.test(header) ? header.slice("bearer ".length) : query.get("_token");
  // Comparing digests keeps the comparison constant-time even when the lengths differ.
  return presented !== null && timingSafeEqual(digest(presented), tokenDigest);
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

/**
 * Reads the body up to `maxBodyBytes`. A larger body is refused as soon as that is known (from
 * Content-Length, or while streaming) without reading the rest; the 413 answer then closes the connection,
 * because the unread remainder makes it unusable for keep-alive.
 */
async function readBody(request: IncomingMessage, maxBodyBytes: number): Promise<Buffer> {
  const tooLarge = () =>
    new BridgeHttpError(413, `ERR request body larger than ${maxBodyBytes} bytes`, { connection: "close" });
  if (Number(request.headers["content-length"] ?? 0) > maxBodyBytes) throw tooLarge();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBodyBytes) {
        chunks.push(chunk);
        return;
      }
      // Stop reading without destroying the request: destroying it would also destroy the socket before the
      // 413 could be written.
      request.off("data", onData);
      request.pause();
      reject(tooLarge());
    };
    request.on("data", onData);
    request.once("end", () => resolve(Buffer.concat(chunks, size)));
    request.once("error", reject);
    // A client that disconnects mid-body may not emit "error"; without this the handler would wait forever.
    request.once("close", () => reject(new BridgeHttpError(400, "ERR the client closed the request")));
  });
}

function sendJson(
  response: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
) {
  if (response.headersSent || response.destroyed) return;
  const body = JSON.stringify(value);
  response.writeHead(status, {
    ...headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  response.end(body);
}
