/**
 * The load generators' clients. Each keeps one request in flight (closed loop) and says whether the
 * answer was a success. The three kinds send the same request, `ping` with `{"ping":1,"req_id":N}`:
 * - `WebSocketClient`: the gateway and the runtime floor (one `ws` socket per client);
 * - `PushedClient` (baseline a): the gateway's stream entry written through the bridge (REST `XADD`,
 *   keep-alive `node:http`), the reply pushed to a native connection (`BLPOP` on the client's own reply
 *   key, or `SUBSCRIBE` to its channel when the service publishes);
 * - `DirectClient` (baseline b): the same entry and reply over native Redis connections.
 */
import { Redis } from "ioredis";
import WebSocket from "ws";
import { gatewayEntry } from "./entry.js";
import { createReplyWaiter, type ReplyMode, type ReplyWaiter } from "./reply-waiters.js";
import type { RestCommand } from "./rest-client.js";

/** `true`, or why a request failed: the answer's error code (`RateLimit`, `WrongResponse`...) or `closed`. */
export type Outcome = true | string;

/** One closed-loop client. */
export interface LoadClient {
  /** Sends request `reqId`; resolves true on a successful answer, else with what went wrong (an error code). */
  request(reqId: number): Promise<Outcome>;
  close(): void;
}

/** Opens a WebSocket (bounded by `timeoutMs`); rejects when the upgrade fails. */
export function openSocket(url: string, timeoutMs = 10_000): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false });
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error(`WebSocket ${url} did not open in ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once("open", () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/**
 * Opens `count` things `size` at a time (so thousands of handshakes do not all time out in one queue).
 * If any fails, the ones opened are closed and the first failure is thrown.
 */
export async function openInBatches<T extends { close(): void }>(
  count: number,
  size: number,
  open: (index: number) => Promise<T>,
): Promise<T[]> {
  const opened: T[] = [];
  for (let start = 0; start < count; start += size) {
    const batch = await Promise.allSettled(
      Array.from({ length: Math.min(size, count - start) }, (_, i) => open(start + i)),
    );
    for (const outcome of batch) if (outcome.status === "fulfilled") opened.push(outcome.value);
    const failed = batch.find((outcome) => outcome.status === "rejected");
    if (failed) {
      for (const item of opened) item.close();
      throw failed.reason;
    }
  }
  return opened;
}

/** A WebSocket client of the gateway or the floor: answers are matched by `req_id`. */
export class WebSocketClient implements LoadClient {
  private readonly waiting = new Map<number, (outcome: Outcome) => void>();

  private constructor(private readonly socket: WebSocket) {
    socket.on("message", (data) => {
      const reply = JSON.parse(String(data)) as { req_id?: number; error?: { code?: unknown } };
      const settle = reply.req_id === undefined ? undefined : this.waiting.get(reply.req_id);
      if (!settle || reply.req_id === undefined) return;
      this.waiting.delete(reply.req_id);
      settle(reply.error === undefined ? true : String(reply.error.code ?? "error"));
    });
    socket.on("close", () => {
      for (const settle of this.waiting.values()) settle("closed");
      this.waiting.clear();
    });
    // A socket error is followed by close, which fails whatever waits.
    socket.on("error", () => undefined);
  }

  static async connect(url: string): Promise<WebSocketClient> {
    return new WebSocketClient(await openSocket(url));
  }

  request(reqId: number): Promise<Outcome> {
    if (this.socket.readyState !== WebSocket.OPEN) return Promise.resolve("closed");
    return new Promise((resolve) => {
      this.waiting.set(reqId, resolve);
      this.socket.send(JSON.stringify({ ping: 1, req_id: reqId }));
    });
  }

  close(): void {
    this.socket.terminate();
  }
}

/** Whether a reply payload answers `messageId` without an error. */
function replyOutcome(payload: string | undefined, messageId: string): Outcome {
  if (payload === undefined) return "no reply";
  const reply = JSON.parse(payload) as { message_id?: unknown; response?: { error?: { code?: unknown } } };
  if (String(reply.message_id) !== messageId) return "wrong message_id";
  return reply.response?.error === undefined ? true : String(reply.response.error.code ?? "error");
}

/** Baseline (a): `XADD` over REST, the reply pushed to a native connection. */
export class PushedClient implements LoadClient {
  private constructor(
    private readonly rest: RestCommand,
    private readonly redis: Redis,
    private readonly waiter: ReplyWaiter,
    private readonly replyKey: string,
  ) {}

  static async connect(
    rest: RestCommand,
    redisUrl: string,
    replyKey: string,
    mode: ReplyMode,
  ): Promise<PushedClient> {
    const redis = await nativeConnection(redisUrl);
    return new PushedClient(rest, redis, await createReplyWaiter(mode, redisUrl, redis, replyKey), replyKey);
  }

  async request(reqId: number): Promise<Outcome> {
    const messageId = String(reqId);
    await this.rest(gatewayEntry(this.replyKey, messageId, reqId));
    return replyOutcome(await this.waiter.next(), messageId);
  }

  close(): void {
    this.waiter.close();
    this.redis.disconnect();
  }
}

/** Baseline (b): the same entry and reply, both over native connections. */
export class DirectClient implements LoadClient {
  private constructor(
    private readonly redis: Redis,
    private readonly waiter: ReplyWaiter,
    private readonly replyKey: string,
  ) {}

  static async connect(redisUrl: string, replyKey: string, mode: ReplyMode): Promise<DirectClient> {
    const redis = await nativeConnection(redisUrl);
    return new DirectClient(redis, await createReplyWaiter(mode, redisUrl, redis, replyKey), replyKey);
  }

  async request(reqId: number): Promise<Outcome> {
    const messageId = String(reqId);
    const [command, ...args] = gatewayEntry(this.replyKey, messageId, reqId);
    await this.redis.call(command ?? "XADD", ...args);
    return replyOutcome(await this.waiter.next(), messageId);
  }

  close(): void {
    this.waiter.close();
    this.redis.disconnect();
  }
}

async function nativeConnection(redisUrl: string): Promise<Redis> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, enableReadyCheck: false });
  // After close() a late reconnect attempt may fail; nobody waits for it any more.
  redis.on("error", () => undefined);
  await redis.ping();
  return redis;
}
