/**
 * The consumer-groups backend, after Perl's Mojo::WebSocketProxy::Backend::ConsumerGroups: each call is
 * an entry on a Redis stream per category (`XADD`), answered by a service on the object's own reply key,
 * which the object's {@link ReplyInbox} receives. The hooks around a call run in the core (`callRpc`);
 * this class only writes requests and awaits the inbox.
 */
import { ConfigError, TransportError } from "../core/errors.js";
import { systemClock, type Clock } from "../core/pending-requests.js";
import { requestSetting } from "../core/request.js";
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
import { createRedisPort, describeError, type RedisPort, type RedisPipeStats } from "./redis-port.js";
import { ReplyInbox, type ReplyInboxStats } from "./reply-inbox.js";
import { entryFields, type ReplyMessage, type StreamEntry } from "../wire/index.js";

/** Everything the backend counts: its inbox's (pending table, receiver, dropped replies) and its port's. */
export interface ConsumerGroupsStats extends ReplyInboxStats, RedisPipeStats {}

/** The consumer-groups backend of one Durable Object incarnation. */
export class ConsumerGroupsBackend implements Backend {
  readonly options: ResolvedConsumerGroupsOptions;
  /** Every command and the subscription stream go through it: the connection limit and the batching. */
  readonly port: RedisPort;
  /** The reply key, the waiting requests and how replies are received. */
  readonly inbox: ReplyInbox;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private closed = false;
  /** Longest local wait over all categories, ms: older stream entries are past every deadline. */
  private readonly longestWaitMs: number;
  /** `XADD`s per stream since its last `XTRIM MAXLEN`. */
  private readonly writesSinceLengthTrim = new Map<string, number>();

  constructor(options: ConsumerGroupsOptions) {
    this.options = resolveConsumerGroupsOptions(options);
    const o = this.options; // resolved: every default filled in
    this.clock = o.clock ?? systemClock;
    this.logger = o.logger ?? console;
    this.port = createRedisPort({
      url: o.redisUrl,
      token: o.redisToken,
      client: o.redis,
      requestTimeoutMs: o.redisRequestTimeoutMs,
      maxConnections: o.maxRedisConnections,
      batchSize: o.writeBatchSize,
      batchBytes: o.writeBatchBytes,
      clock: this.clock,
      fetch: o.fetch,
      observer: o.redisObserver,
    });
    this.longestWaitMs =
      Math.max(...[...o.categories].map((category) => this.localWaitSeconds(category))) * 1000;
    // Only what the inbox schedules by: the URL and token stay inside the port.
    this.inbox = new ReplyInbox(this.port, {
      pollInitialDelayMs: o.pollInitialDelayMs,
      pollMinMs: o.pollMinMs,
      pollMaxMs: o.pollMaxMs,
      pollLateBackoffMs: o.pollLateBackoffMs,
      pollBackoffFactor: o.pollBackoffFactor,
      pollBatchSize: o.pollBatchSize,
      pollMaxInFlight: o.pollMaxInFlight,
      subscribeGraceMs: o.subscribeGraceMs,
      subscribeRetryMaxMs: o.subscribeRetryMaxMs,
      replyListCheckMs: o.replyListCheckMs,
      keyPrefix: `${o.streamPrefix}wsp:reply:${o.objectId}:`,
      transport: o.replyTransport,
      connectTimeoutMs: o.redisRequestTimeoutMs,
      clock: this.clock,
      logger: this.logger,
    });
  }

  /** This incarnation's reply key: `<streamPrefix>wsp:reply:<objectId>:<random>`. */
  get whoami(): string {
    return this.inbox.key;
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

  /**
   * How long the gateway waits: the category timeout, extended by the percentage and the offset; a
   * request's own `rpcTimeoutExtendOffset` / `rpcTimeoutExtendPercentage` (set by a hook) replace the options'.
   */
  localWaitSeconds(category: string, req?: RpcRequest): number {
    const base = this.categoryTimeout(category);
    const percentage =
      extension(req, "rpcTimeoutExtendPercentage") ?? this.options.rpcTimeoutExtendPercentage;
    const offset = extension(req, "rpcTimeoutExtendOffset") ?? this.options.rpcTimeoutExtendOffset;
    return Math.max(0, base + (base * percentage) / 100 + offset);
  }

  /** Sends one call: resolves the category (written back to `req.category`) and returns the response. */
  async call(req: RpcRequest, params: JsonObject, conn: Connection): Promise<RpcResponse> {
    // `req.category` starts as the action's; a hook that deletes it sends the call to `general`, as in Perl.
    const category = this.resolveCategory(req.category);
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
    const reply = await this.request(entry, category, this.localWaitSeconds(category, req), conn.id);
    const { response, subscriptionId } = reply;
    return subscriptionId && "result" in response ? { ...response, subscriptionId } : response;
  }

  /**
   * Writes `entry` (plus its `message_id`) to the category stream and waits up to `timeoutSeconds` for
   * the reply. Rejects with `RpcTimeoutError`, or `TransportError` when Redis failed.
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
    return this.inbox.receive(
      { timeoutMs: timeoutSeconds * 1000, label: entry.method, owner, category },
      (messageId, wanted) => this.writeEntry(stream, entry, messageId, wanted),
    );
  }

  /**
   * `XADD`s one entry, trimmed by age in the same command: an entry older than the longest local wait
   * (plus a minute for clocks that disagree) is past its deadline whatever its category. The length cap
   * is `XTRIM` below. Rejects with a `RedisError` TransportError, which fails the request at once instead
   * of at its timeout.
   */
  private async writeEntry(
    stream: string,
    entry: StreamEntry,
    messageId: string,
    wanted: () => boolean,
  ): Promise<void> {
    const minId = this.clock.now() - this.longestWaitMs - CLOCK_SKEW_MS;
    const command: [string, ...string[]] = ["XADD", stream, "MINID", "~", `${Math.max(0, minId)}-0`, "*"];
    command.push(...entryFields(entry), "message_id", messageId);
    try {
      const written = this.port.exec(command, wanted);
      this.trimLengthNowAndThen(stream);
      await written;
    } catch (error) {
      throw new TransportError(`XADD ${stream} failed: ${describeError(error)}`, `XADD ${stream}`, {
        cause: error,
        failureType: "RedisError",
      });
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
    this.port
      .exec(trim)
      .catch((error: unknown) =>
        this.logger.warn(`[wsproxy] XTRIM ${stream} failed: ${describeError(error)}`),
      );
  }

  /** Fails the pending calls of a closed connection, so the receiver can stop; their replies count as late. */
  connectionClosed(connectionId: string): void {
    this.inbox.connectionClosed(connectionId);
  }

  /** Stops the receiver and fails every pending call. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.inbox.close();
  }

  /** Counters for logs, `/health` and tests. */
  stats(): ConsumerGroupsStats {
    return { ...this.inbox.stats(), ...this.port.stats };
  }
}

/** Margin of the age trim for a Worker clock ahead of Redis's. */
const CLOCK_SKEW_MS = 60_000;

/** Writes per stream between two `XTRIM MAXLEN ~` (the length cap behind the age trim). */
const LENGTH_TRIM_EVERY = 1_000;

/** A finite number a hook set on the request for its local wait, else undefined (the options decide). */
function extension(
  req: RpcRequest | undefined,
  name: "rpcTimeoutExtendOffset" | "rpcTimeoutExtendPercentage",
): number | undefined {
  const value = req ? Number(requestSetting(req, name) ?? Number.NaN) : Number.NaN;
  return Number.isFinite(value) ? value : undefined;
}
