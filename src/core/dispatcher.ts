/**
 * The dispatcher: everything that happens to one client frame, from bytes to the single reply
 * (PROTOCOL.md sections 1 and 2). The platform glue (the Durable Object) calls `handleOpen`,
 * `handleFrame` for each message and `handleClose`; it never builds replies itself.
 *
 * A frame: size check (larger than `maxMessageBytes` → close 1009, nothing else) → message rate
 * (`maxMessagesPerSecond`: RateLimit, nothing else) → binary frames to `onBinaryFrame` → decode (BadRequest)
 * → sanity check (SanityCheckFailed) → dispatch (UnrecognisedRequest) → requests in flight
 * (`maxPendingPerConnection`: RateLimit instead of forwarding) → forward pipeline → the send step →
 * `afterDispatch`. Too many RateLimit rejections close the connection with 1008 (see `limits.ts`).
 * Frames are not queued: each is handled as it comes, and replies go out in completion order.
 */
import { clientError, errorToReply } from "./errors.js";
import { decodeFrame, utf8ByteLength, type DecodeResult } from "./decode.js";
import { createForwardPipeline, type ForwardPipeline } from "./forward-pipeline.js";
import { consoleLogger, hookList, runHook } from "./hooks.js";
import {
  createConnectionLimits,
  POLICY_VIOLATION_CLOSE,
  type ConnectionLimits,
  type LimitUsage,
} from "./limits.js";
import { resolveGatewayOptions, type GatewayOptions, type ResolvedGatewayOptions } from "./options.js";
import { createPushSender, createReplySender, type SendPush, type SendReply } from "./reply-sender.js";
import { assertBackendsExist, buildRequest, findAction } from "./request.js";
import { isJsonObject } from "./safe-object.js";
import { createSanityCheck, type SanityFailure } from "./sanity.js";
import {
  pushedRequestData,
  registerSubscription,
  subscriptionFrame,
  type PushMessage,
  type PushStatus,
  type SubscriptionSettings,
} from "./subscriptions.js";
import type { Backend, ClientMessage, Connection, JsonObject, Logger, RpcRequest } from "./types.js";

/** What the platform knows about a frame beyond its payload. */
export interface FrameInfo {
  /** The socket said this is a binary frame. @default true for bytes, false for a string */
  binary?: boolean;
  /**
   * A limit of the platform (per client address, say) already refused this frame: it is answered as
   * over the message rate (RateLimit, counted toward the abuse close). @default false
   */
  overRate?: boolean;
}

/** Handles the life of client connections; one per gateway configuration, shared by all connections. */
export interface Dispatcher {
  /** Handles one inbound frame. Never rejects: failures are logged, the client gets an error reply. */
  handleFrame(conn: Connection, data: string | ArrayBuffer | Uint8Array, frame?: FrameInfo): Promise<void>;
  /** Runs `onOpen` for a new connection. Never rejects. */
  handleOpen(conn: Connection): Promise<void>;
  /** Forgets a closed connection's limit counters, then runs `onClose`. Never rejects. */
  handleClose(conn: Connection, code: number, reason: string): Promise<void>;
  /**
   * Sends one pushed message to `conn` (PROTOCOL.md 7): a frame of one of its subscriptions, or a raw
   * frame. 202 sent, 410 the connection closed or the subscription is unknown or forgotten, 413 the built
   * frame is over `maxResponseBytes` (nothing sent). Never rejects.
   */
  handlePush(conn: Connection, message: PushMessage): Promise<PushStatus>;
  /** Connections the per-connection limits hold counters for (0 once every connection closed). */
  readonly limitedConnections: number;
  /** Counters for `/metrics`: bytes in flight, budget rejections, abuse closes, stash writes dropped. */
  readonly counters: DispatcherCounters;
}

/** What the dispatcher counts for `/metrics`, for one object. */
export interface DispatcherCounters extends LimitUsage {
  /** Stash keys a reply tried to write that its action's `stashWrites` does not list (dropped). */
  stashWritesDropped: number;
}

/** What the dispatcher takes from its environment, swappable in tests. */
export interface DispatcherDeps {
  /** @default the console */
  logger?: Logger;
  /** Clock for `req.receivedAtMs` and the per-connection limits, in epoch milliseconds. @default Date.now */
  now?: () => number;
}

/**
 * Builds a dispatcher. Throws a `ConfigError` naming the option when `options` are invalid or an action
 * names a backend missing from `backends`.
 */
export function createDispatcher(
  options: GatewayOptions | ResolvedGatewayOptions,
  backends: Readonly<Record<string, Backend>>,
  deps: DispatcherDeps = {},
): Dispatcher {
  // Resolved options (the gateway's plan) are used as they are: no second resolution.
  const resolved = resolveGatewayOptions(options);
  assertBackendsExist(resolved, backends);
  return new GatewayDispatcher(resolved, backends, deps.logger ?? consoleLogger, deps.now ?? Date.now);
}

class GatewayDispatcher implements Dispatcher {
  private readonly send: SendReply;
  private readonly sendPush: SendPush;
  private readonly subscriptionSettings: SubscriptionSettings;
  private readonly checkSanity: (message: ClientMessage) => SanityFailure | undefined;
  private readonly pipeline: ForwardPipeline;
  private readonly limits: ConnectionLimits;
  private stashWritesDropped = 0;

  constructor(
    private readonly options: ResolvedGatewayOptions,
    backends: Readonly<Record<string, Backend>>,
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {
    this.send = createReplySender(options, logger);
    this.sendPush = createPushSender(options, logger);
    this.subscriptionSettings = {
      maxPerConnection: options.maxSubscriptionsPerConnection,
      requestData: options.requestData,
      sensitiveFields: new Set(options.sensitiveFields),
    };
    this.checkSanity = options.sanityCheck ? createSanityCheck(options.skipSanityCheck) : () => undefined;
    this.pipeline = createForwardPipeline(options, backends, logger, (count) => {
      this.stashWritesDropped += count;
    });
    this.limits = createConnectionLimits(options, now);
  }

  get limitedConnections(): number {
    return this.limits.size;
  }

  get counters(): DispatcherCounters {
    return { ...this.limits.usage, stashWritesDropped: this.stashWritesDropped };
  }

  handleFrame(conn: Connection, data: string | ArrayBuffer | Uint8Array, frame: FrameInfo = {}) {
    // Not an async function: the raw frame is read here only (its size, its decoding), so it is garbage as
    // soon as the request is dispatched. A suspended async call would keep it, as a parameter, until the
    // reply went out: a slow request parked its frame twice (the text and the parsed message) for as long
    // as the call took.
    let handled: Promise<void>;
    try {
      handled = this.startFrame(conn, data, frame);
    } catch (error) {
      handled = Promise.reject(error);
    }
    return handled
      .catch((error: unknown) => {
        // Only a bug gets here (every step handles its own failures); the socket stays usable.
        this.logger.error(`unexpected failure handling a frame on connection ${conn.id}`, error);
      })
      .finally(() => {
        // The gateway closed it (1009, 1008) or the peer went away: its counters must not outlive it, even
        // if the platform never reports the close.
        if (!conn.isOpen) this.limits.forget(conn.id);
      });
  }

  /** Reads and decodes `data` at once, and returns the handling of what it held. */
  private startFrame(
    conn: Connection,
    data: string | ArrayBuffer | Uint8Array,
    frame: FrameInfo,
  ): Promise<void> {
    const bytes = byteLength(data, this.options.maxMessageBytes);
    if (bytes > this.options.maxMessageBytes) {
      conn.close(1009, "Message too big");
      return Promise.resolve();
    }
    const binary = frame.binary ?? typeof data !== "string";
    if (frame.overRate || !this.limits.admitFrame(conn)) {
      return this.refuseFrame(conn, binary ? undefined : decodeFrame(data));
    }
    if (binary) return this.handleBinary(conn, toBytes(data));
    return this.handleText(conn, decodeFrame(data), bytes);
  }

  async handlePush(conn: Connection, message: PushMessage): Promise<PushStatus> {
    try {
      if (!conn.isOpen) return 410;
      let outcome;
      if ("frame" in message) {
        outcome = await this.sendPush(conn, undefined, message.frame, {});
      } else {
        const subscription = conn.subscriptions?.get(message.subscription);
        if (!subscription) return 410;
        const frame = subscriptionFrame(subscription, message.data);
        outcome = await this.sendPush(conn, subscription.echoReq, frame, pushedRequestData(subscription));
      }
      if (outcome === "too-large") return 413;
      return outcome === "sent" ? 202 : 410;
    } catch (error) {
      // Only a bug gets here (the send step handles its own failures): the frame was not sent.
      this.logger.error(`unexpected failure pushing to connection ${conn.id}`, error);
      return 410;
    }
  }

  handleOpen(conn: Connection): Promise<void> {
    return this.notify("onOpen", hookList(this.options.onOpen), conn);
  }

  handleClose(conn: Connection, code: number, reason: string): Promise<void> {
    this.limits.forget(conn.id);
    return this.notify("onClose", hookList(this.options.onClose), conn, code, reason);
  }

  private async handleText(conn: Connection, decoded: DecodeResult, bytes: number): Promise<void> {
    let message: ClientMessage | undefined;
    if (decoded.ok) {
      message = decoded.message;
      await this.handleMessage(conn, message, bytes);
    } else {
      if (decoded.errorCode) {
        const info = { errorCode: decoded.errorCode, bytes };
        await this.notify("onEncodingError", hookList(this.options.onEncodingError), conn, info);
      }
      await this.reject(conn, undefined, decoded.reply);
    }
    await this.notify("afterDispatch", hookList(this.options.afterDispatch), conn, message);
  }

  private async handleBinary(conn: Connection, bytes: Uint8Array): Promise<void> {
    // As in Perl, an empty binary frame is ignored even when there is a hook.
    if (bytes.byteLength === 0) return;
    await this.notify("onBinaryFrame", hookList(this.options.onBinaryFrame), conn, bytes);
  }

  /** Answers a frame over the message rate: RateLimit (with `req_id` when it decodes), nothing else. */
  private async refuseFrame(conn: Connection, decoded: DecodeResult | undefined) {
    // Binary frames have no reply to carry the error: they are dropped, but still count as abuse.
    if (decoded !== undefined) {
      await this.send(conn, decoded.ok ? decoded.message : undefined, clientError("RateLimit"));
    }
    this.noteRejection(conn);
  }

  /**
   * Sends a gateway error reply (BadRequest, SanityCheckFailed, UnrecognisedRequest, RateLimit), which
   * counts toward the abuse close.
   */
  private async reject(conn: Connection, message: ClientMessage | undefined, reply: JsonObject) {
    await this.send(conn, message, reply);
    this.noteRejection(conn);
  }

  /** Closes the connection with 1008 when this error reply makes the abuse sustained. */
  private noteRejection(conn: Connection): void {
    if (!this.limits.recordRejection(conn)) return;
    this.logger.warn(`connection ${conn.id} closed: sustained error replies`);
    conn.close(POLICY_VIOLATION_CLOSE.code, POLICY_VIOLATION_CLOSE.reason);
  }

  /**
   * Answers a decoded message; a request counts as in flight, with its frame's `bytes`, from dispatch
   * until its reply is sent.
   */
  private async handleMessage(conn: Connection, message: ClientMessage, bytes: number): Promise<void> {
    const failure = this.checkSanity(message);
    if (failure) this.logger.debug?.(`sanity check failed on key "${failure.key}"`);
    const match = failure ? undefined : findAction(this.options.actionTable, message);
    if (!match) {
      await this.reject(conn, message, clientError(failure ? "SanityCheckFailed" : "UnrecognisedRequest"));
      return;
    }
    const endRequest = this.limits.beginRequest(conn, bytes);
    if (!endRequest) {
      await this.reject(conn, message, clientError("RateLimit"));
      return;
    }
    try {
      const req = buildRequest(match[0], match[1], message, this.options.defaultBackend, this.now());
      const reply = await this.answer(conn, req);
      if (reply) await this.send(conn, message, reply, req);
    } finally {
      endRequest();
    }
  }

  /** The reply to a dispatched message: what the forward pipeline produced, or a gateway error. */
  private async answer(conn: Connection, req: RpcRequest): Promise<JsonObject | undefined> {
    try {
      const route = this.options.routes.get(req.name);
      if (!route) throw new Error(`action "${req.name}" has no route`);
      const reply = await this.pipeline(conn, req, route);
      if (!reply) return undefined;
      if (isJsonObject(reply)) {
        return registerSubscription(conn, req, reply, this.subscriptionSettings, this.logger);
      }
      this.logger.error(`a hook of "${req.name}" answered with a non-object reply`, reply);
      return clientError("WrongResponse", req.msgType);
    } catch (error) {
      this.logger.error(`request "${req.name}" (${req.correlationId}) failed`, error);
      return errorToReply(error, req.msgType);
    }
  }

  /** Runs lifecycle hooks whose failure the client cannot be told about: logged only. */
  private async notify<A extends unknown[]>(name: string, hooks: ((...args: A) => unknown)[], ...args: A) {
    for (const hook of hooks) {
      await runHook(name, this.options.hookTimeoutMs, () => hook(...args)).catch((error: unknown) =>
        this.logger.error(`${name} hook failed`, error),
      );
    }
  }
}

/**
 * The frame's size in bytes, exact up to `limit`: a string of more than `limit` UTF-16 code units has more
 * than `limit` UTF-8 bytes, so an oversized frame is not scanned.
 */
function byteLength(data: string | ArrayBuffer | Uint8Array, limit: number): number {
  if (typeof data !== "string") return data.byteLength;
  return data.length > limit ? data.length : utf8ByteLength(data);
}

function toBytes(data: string | ArrayBuffer | Uint8Array): Uint8Array {
  if (typeof data === "string") return new TextEncoder().encode(data);
  return data instanceof Uint8Array ? data : new Uint8Array(data);
}
