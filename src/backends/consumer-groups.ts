/**
 * The consumer-groups backend, after Perl's Mojo::WebSocketProxy::Backend::ConsumerGroups: each call is
 * an entry on a Redis stream per category (`XADD`), answered by a service on the object's own reply key,
 * which the {@link ReplyPoller} drains (or the {@link ReplySubscriber} listens to). The hooks around a call run in the core (`callRpc`); this class
 * only moves requests and replies.
 */
import { ConfigError, TransportError } from "../core/errors.js";
import { PendingRequests, systemClock, type Clock, type PendingCounters } from "../core/pending-requests.js";
import type {
  ActionOptions,
  Backend,
  Connection,
  JsonObject,
  Logger,
  RpcRequest,
  RpcResponse,
} from "../core/types.js";
import {
  DEFAULT_CATEGORY,
  resolveConsumerGroupsOptions,
  type ConsumerGroupsOptions,
  type ResolvedConsumerGroupsOptions,
} from "./consumer-groups-options.js";
import { createRedisClient, openSubscription, type RedisCommands } from "./redis-client.js";
import { RedisPipe, type RedisPipeStats } from "./redis-pipe.js";
import { ReplyPoller } from "./reply-poller.js";
import type { ReplyReceiver, ReplyReceiverStats } from "./reply-receiver.js";
import { ReplySubscriber } from "./reply-subscriber.js";
import { entryFields, parseReply, ReplyFormatError, type ReplyMessage, type StreamEntry } from "./wire.js";

/** Everything the backend counts: the pending table's counters, the receiver's, and dropped replies. */
export interface ConsumerGroupsStats extends PendingCounters, ReplyReceiverStats, RedisPipeStats {
  whoami: string;
  pending: number;
  /** Replies naming another reply key in `who`. */
  foreign: number;
  /** Replies that could not be parsed (not JSON, no `message_id`, no usable `response`). */
  invalid: number;
}

/** The consumer-groups backend of one Durable Object incarnation. */
export class ConsumerGroupsBackend implements Backend {
  readonly options: ResolvedConsumerGroupsOptions;
  /** This incarnation's reply key: `<streamPrefix>wsp:reply:<objectId>:<random>`. */
  readonly whoami: string;
  readonly pendingRequests: PendingRequests<ReplyMessage>;
  readonly redis: RedisCommands;
  /** Every command and the subscription stream go through it: the connection limit and the batching. */
  readonly pipe: RedisPipe;
  private readonly receiver: ReplyReceiver;
  private readonly dropped = { foreign: 0, invalid: 0 };
  private readonly logger: Logger;
  private closed = false;
  /** Longest local wait over all categories, ms: older stream entries are past every deadline. */
  private readonly longestWaitMs: number;
  /** `XADD`s per stream since its last `XTRIM MAXLEN`. */
  private readonly writesSinceLengthTrim = new Map<string, number>();

  constructor(options: ConsumerGroupsOptions) {
    this.options = resolveConsumerGroupsOptions(options);
    const { streamPrefix, objectId, clock = systemClock } = this.options;
    this.logger = this.options.logger ?? console;
    this.redis =
      this.options.redis ??
      createRedisClient({
        url: this.options.redisUrl ?? "",
        token: this.options.redisToken ?? "",
        requestTimeoutMs: this.options.redisRequestTimeoutMs,
      });
    this.pipe = new RedisPipe(this.redis, {
      maxConnections: this.options.maxRedisConnections,
      batchSize: this.options.writeBatchSize,
      batchBytes: this.options.writeBatchBytes,
      requestTimeoutMs: this.options.redisRequestTimeoutMs,
      clock,
    });
    this.longestWaitMs =
      Math.max(...[...this.options.categories].map((category) => this.localWaitSeconds(category))) * 1000;
    // Random per incarnation: a woken or restarted object must never pop replies meant for its earlier self.
    this.whoami = `${streamPrefix}wsp:reply:${objectId}:${randomHex(8)}`;
    this.pendingRequests = new PendingRequests<ReplyMessage>({ clock });
    this.receiver = this.createReceiver(clock);
  }

  /** The poller, or the subscriber (`replyTransport: "subscribe"`); both feed {@link onReplies}. */
  private createReceiver(clock: Clock): ReplyReceiver {
    const popReplies = (count: number): Promise<string[]> => this.popReplies(count);
    const onReplies = (payloads: string[]): void => this.onReplies(payloads);
    const pollError = (error: unknown): void =>
      this.logger.error(`[wsproxy] LPOP ${this.whoami} failed: ${describe(error)}`);
    if (this.options.replyTransport === "poll") {
      return new ReplyPoller(this.options, { clock, popReplies, onReplies, onError: pollError });
    }
    return new ReplySubscriber(
      { ...this.options, channel: this.whoami, connectTimeoutMs: this.options.redisRequestTimeoutMs },
      {
        clock,
        popReplies,
        onReplies,
        openStream: (signal) => this.openStream(signal),
        onError: (error, operation) =>
          operation === "LPOP"
            ? pollError(error)
            : // A dropped stream is expected now and then (it is reopened); the error never holds the token.
              this.logger.warn(`[wsproxy] SUBSCRIBE ${this.whoami}: ${describe(error)}`),
        onWarning: (message) => this.logger.warn(`[wsproxy] ${message}`),
      },
    );
  }

  /** Opens the subscription stream on one of the object's connections, held until the stream ends. */
  private async openStream(signal: AbortSignal): Promise<Response> {
    const release = await this.pipe.hold();
    try {
      signal.throwIfAborted();
      const settings = {
        url: this.options.redisUrl ?? "",
        token: this.options.redisToken ?? "",
        fetch: this.options.fetch,
      };
      const response = await openSubscription(settings, this.whoami, signal);
      signal.addEventListener("abort", release, { once: true });
      if (!response.body) {
        release();
        return response;
      }
      return new Response(releasedAtEnd(response.body, release), response);
    } catch (error) {
      release();
      throw error;
    }
  }

  /**
   * The stream category of a call: the action's `category` when queue separation is on, else `general`.
   * Throws {@link ConfigError} for a category that is not configured, so no key is ever built from input.
   */
  resolveCategory(category: string | undefined): string {
    if (!this.options.queueSeparationEnabled || !category) return DEFAULT_CATEGORY;
    this.assertCategory(category);
    return category;
  }

  /** {@link Backend.checkAction}: an action's `category` must be configured (when queue separation is on). */
  checkAction(action: ActionOptions): void {
    if (action.category !== undefined) this.resolveCategory(action.category);
  }

  /** Throws {@link ConfigError} unless `category` is one of the configured `categories`. */
  assertCategory(category: string): void {
    if (this.options.categories.has(category)) return;
    throw new ConfigError(
      `category "${category}" is not configured; known categories: ${[...this.options.categories].join(", ")}`,
    );
  }

  /** The stream key of a (resolved) category. */
  categoryStream(category: string): string {
    return `${this.options.streamPrefix}${category}`;
  }

  /** The category's timeout in seconds (what the service sees as the deadline). */
  categoryTimeout(category: string): number {
    return this.options.categoryTimeoutConfig[category] ?? this.options.timeout;
  }

  /** How long the gateway waits: the category timeout, extended by the percentage and the offset. */
  localWaitSeconds(category: string): number {
    const base = this.categoryTimeout(category);
    return (
      base + (base * this.options.rpcTimeoutExtendPercentage) / 100 + this.options.rpcTimeoutExtendOffset
    );
  }

  /** Sends one call: resolves the category (written back to `req.category`) and returns the response. */
  async call(req: RpcRequest, params: JsonObject, conn: Connection): Promise<RpcResponse> {
    const category = this.resolveCategory(req.category ?? req.action.category);
    req.category = category;
    const entry: StreamEntry = {
      method: req.method,
      who: this.whoami,
      // Whole seconds, as the Perl proxy wrote it (`time + timeout`); a fractional timeout rounds up.
      deadline: Math.ceil(Math.floor(Date.now() / 1000) + this.categoryTimeout(category)),
      args: params,
      stashParams: req.stashParams,
      correlationId: req.correlationId,
      connection: conn.pushUrl,
    };
    const reply = await this.request(entry, category, this.localWaitSeconds(category), conn.id);
    const { response, subscriptionId } = reply;
    return subscriptionId && "result" in response ? { ...response, subscriptionId } : response;
  }

  /**
   * Writes `entry` (plus its `message_id`) to the category stream and waits up to `timeoutSeconds` for
   * the reply. Rejects with `RpcTimeoutError`, or `TransportError` when Redis failed; the pending entry is
   * removed either way.
   */
  async request(
    entry: StreamEntry,
    category: string,
    timeoutSeconds: number,
    owner?: string,
  ): Promise<ReplyMessage> {
    this.assertCategory(category);
    const stream = this.categoryStream(category);
    if (this.closed) throw new TransportError("the backend is closed", `XADD ${stream}`);
    const messageId = this.newMessageId();
    const reply = this.pendingRequests.add(messageId, {
      timeoutMs: timeoutSeconds * 1000,
      label: entry.method,
      owner,
    });
    // The rejection is handled by the `await reply` below; this keeps a timeout that fires while the XADD
    // is still in flight from being reported as unhandled in between.
    reply.catch(() => undefined);
    // Trimmed by age in the same command: an entry older than the longest local wait (plus a minute for
    // clocks that disagree) is past its deadline whatever its category. The length cap is `XTRIM` below.
    const minId = (this.options.clock ?? systemClock).now() - this.longestWaitMs - CLOCK_SKEW_MS;
    const command: [string, ...string[]] = ["XADD", stream, "MINID", "~", `${Math.max(0, minId)}-0`, "*"];
    command.push(...entryFields(entry), "message_id", messageId);
    try {
      // The subscriber must be listening before the entry exists, or a fast published reply is lost; a
      // request that times out (or is cancelled) meanwhile must fail then, not when the stream is ready.
      await Promise.race([this.receiver.prepare(messageId), reply.catch(() => undefined)]);
      // Timed out or cancelled while the subscription was being confirmed: nothing is left to send.
      // Not awaited: the request ends with its reply, its XADD failure or its timeout, whichever comes
      // first, so even an XADD that never settles cannot keep the client from its WrongResponse.
      if (this.pendingRequests.has(messageId)) void this.writeEntry(command, stream, messageId);
      return await reply;
    } finally {
      this.receiver.forget(messageId);
    }
  }

  /**
   * `XADD`s one entry; a failure fails its request at once (RedisError) instead of at its timeout. Never
   * rejects.
   */
  private async writeEntry(command: [string, ...string[]], stream: string, messageId: string): Promise<void> {
    try {
      const written = this.pipe.send(command, () => this.pendingRequests.has(messageId));
      this.trimLengthNowAndThen(stream);
      await written;
      if (this.pendingRequests.has(messageId)) this.receiver.sent(messageId);
    } catch (error) {
      const failure = new TransportError(`XADD ${stream} failed: ${describe(error)}`, `XADD ${stream}`, {
        cause: error,
        failureType: "RedisError",
      });
      this.pendingRequests.fail(messageId, failure);
    }
  }

  /** Every {@link LENGTH_TRIM_EVERY}th write to a stream (and the first) also caps its length. */
  private trimLengthNowAndThen(stream: string): void {
    const writes = this.writesSinceLengthTrim.get(stream);
    if (writes !== undefined && writes + 1 < LENGTH_TRIM_EVERY) {
      this.writesSinceLengthTrim.set(stream, writes + 1);
      return;
    }
    this.writesSinceLengthTrim.set(stream, 0);
    const trim = ["XTRIM", stream, "MAXLEN", "~", String(this.options.streamMaxLen)] as [string, ...string[]];
    this.pipe
      .send(trim)
      .catch((error: unknown) => this.logger.warn(`[wsproxy] XTRIM ${stream} failed: ${describe(error)}`));
  }

  /** 64 random bits as 16 hex digits, unique among the pending requests: not guessable from another. */
  private newMessageId(): string {
    for (;;) {
      const id = randomHex(8);
      if (!this.pendingRequests.has(id)) return id;
    }
  }

  /** Fails the pending calls of a closed connection, so the receiver can stop; their replies count as late. */
  connectionClosed(connectionId: string): void {
    this.pendingRequests.failOwner(
      connectionId,
      new TransportError("the connection closed", "wait for reply"),
    );
  }

  /** Stops the receiver and fails every pending call. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.receiver.stop();
    this.pendingRequests.failAll(new TransportError("the backend is closed", "wait for reply"));
  }

  /** Counters for logs, `/health` and tests. */
  stats(): ConsumerGroupsStats {
    return {
      whoami: this.whoami,
      pending: this.pendingRequests.size,
      ...this.pendingRequests.counters,
      ...this.receiver.stats,
      ...this.pipe.stats,
      ...this.dropped,
    };
  }

  private async popReplies(count: number): Promise<string[]> {
    const popped = await this.pipe.send<unknown>(["LPOP", this.whoami, String(count)]);
    if (popped === null || popped === undefined) return [];
    if (!Array.isArray(popped)) {
      throw new TransportError("LPOP returned a non-list", `LPOP ${this.whoami}`, {
        failureType: "RedisError",
      });
    }
    return popped.map((item) => (typeof item === "string" ? item : JSON.stringify(item)));
  }

  private onReplies(payloads: string[]): void {
    for (const payload of payloads) {
      let reply: ReplyMessage;
      try {
        reply = parseReply(payload);
      } catch (error) {
        const messageId = error instanceof ReplyFormatError ? error.messageId : undefined;
        // An unusable reply to a waiting request fails it now (WrongResponse) rather than at its timeout.
        if (messageId === undefined || !this.pendingRequests.fail(messageId, error))
          this.dropped.invalid += 1;
        this.logger.warn(`[wsproxy] unusable reply on ${this.whoami}: ${describe(error)}`);
        continue;
      }
      if (reply.who !== undefined && reply.who !== this.whoami) {
        this.dropped.foreign += 1;
        this.logger.warn(`[wsproxy] dropped a reply addressed to ${reply.who} found on ${this.whoami}`);
        continue;
      }
      const outcome = this.pendingRequests.resolve(reply.messageId, reply);
      if (outcome === "delivered") this.receiver.received(reply.messageId);
      else
        this.logger.warn(
          `[wsproxy] dropped ${outcome} reply message_id=${reply.messageId} on ${this.whoami}`,
        );
    }
  }
}

/** Margin of the age trim for a Worker clock ahead of Redis's. */
const CLOCK_SKEW_MS = 60_000;

/** Writes per stream between two `XTRIM MAXLEN ~` (the length cap behind the age trim). */
const LENGTH_TRIM_EVERY = 1_000;

/** `body`, calling `release` once when it ends, fails or is cancelled. */
function releasedAtEnd(body: ReadableStream<Uint8Array>, release: () => void): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { value, done } = await reader.read();
        if (done) {
          release();
          controller.close();
        } else controller.enqueue(value);
      } catch (error) {
        release();
        controller.error(error);
      }
    },
    async cancel(reason) {
      release();
      await reader.cancel(reason);
    },
  });
}

function randomHex(bytes: number): string {
  return [...crypto.getRandomValues(new Uint8Array(bytes))]
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/** A short, token-free description of an error for logs and TransportError messages. */
function describe(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}
