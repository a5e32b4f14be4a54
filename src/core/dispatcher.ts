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
import { decodeFrame, utf8ByteLength } from "./decode.js";
import { createForwardPipeline, type ForwardPipeline } from "./forward-pipeline.js";
import { consoleLogger, hookList, runHook } from "./hooks.js";
import { createConnectionLimits, POLICY_VIOLATION_CLOSE, type ConnectionLimits } from "./limits.js";
import { resolveGatewayOptions, type GatewayOptions, type ResolvedGatewayOptions } from "./options.js";
import { createReplySender, type SendReply } from "./reply-sender.js";
import { assertBackendsExist, buildRequest, findAction } from "./request.js";
import { isJsonObject } from "./safe-object.js";
import { createSanityCheck, type SanityFailure } from "./sanity.js";
import type { ActionOptions, Backend, ClientMessage, Connection, JsonObject, Logger } from "./types.js";

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
  /** Connections the per-connection limits hold counters for (0 once every connection closed). */
  readonly limitedConnections: number;
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
  private readonly checkSanity: (message: ClientMessage) => SanityFailure | undefined;
  private readonly pipeline: ForwardPipeline;
  private readonly limits: ConnectionLimits;

  constructor(
    private readonly options: ResolvedGatewayOptions,
    backends: Readonly<Record<string, Backend>>,
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {
    this.send = createReplySender(options, logger);
    this.checkSanity = options.sanityCheck ? createSanityCheck(options.skipSanityCheck) : () => undefined;
    this.pipeline = createForwardPipeline(options, backends, logger);
    this.limits = createConnectionLimits(options, now);
  }

  get limitedConnections(): number {
    return this.limits.size;
  }

  async handleFrame(conn: Connection, data: string | ArrayBuffer | Uint8Array, frame: FrameInfo = {}) {
    try {
      if (byteLength(data) > this.options.maxMessageBytes) {
        conn.close(1009, "Message too big");
        return;
      }
      const binary = frame.binary ?? typeof data !== "string";
      if (frame.overRate || !this.limits.admitFrame(conn))
        await this.refuseFrame(conn, binary ? undefined : data);
      else if (binary) await this.handleBinary(conn, toBytes(data));
      else await this.handleText(conn, data);
    } catch (error) {
      // Only a bug gets here (every step handles its own failures); the socket stays usable.
      this.logger.error(`unexpected failure handling a frame on connection ${conn.id}`, error);
    } finally {
      // The gateway closed it (1009, 1008) or the peer went away: its counters must not outlive it, even
      // if the platform never reports the close.
      if (!conn.isOpen) this.limits.forget(conn.id);
    }
  }

  handleOpen(conn: Connection): Promise<void> {
    return this.notify("onOpen", hookList(this.options.onOpen), conn);
  }

  handleClose(conn: Connection, code: number, reason: string): Promise<void> {
    this.limits.forget(conn.id);
    return this.notify("onClose", hookList(this.options.onClose), conn, code, reason);
  }

  private async handleText(conn: Connection, data: string | ArrayBuffer | Uint8Array): Promise<void> {
    const decoded = decodeFrame(data);
    let message: ClientMessage | undefined;
    if (decoded.ok) {
      message = decoded.message;
      await this.handleMessage(conn, message);
    } else {
      if (decoded.errorCode) {
        const info = { errorCode: decoded.errorCode, bytes: byteLength(data) };
        await this.notify("onEncodingError", hookList(this.options.onEncodingError), conn, info);
      }
      await this.send(conn, undefined, decoded.reply);
    }
    await this.notify("afterDispatch", hookList(this.options.afterDispatch), conn, message);
  }

  private async handleBinary(conn: Connection, bytes: Uint8Array): Promise<void> {
    // As in Perl, an empty binary frame is ignored even when there is a hook.
    if (bytes.byteLength === 0) return;
    await this.notify("onBinaryFrame", hookList(this.options.onBinaryFrame), conn, bytes);
  }

  /** Answers a frame over the message rate: RateLimit (with `req_id` when it decodes), nothing else. */
  private async refuseFrame(conn: Connection, data: string | ArrayBuffer | Uint8Array | undefined) {
    // Binary frames have no reply to carry the error: they are dropped, but still count as abuse.
    if (data !== undefined) {
      const decoded = decodeFrame(data);
      await this.send(conn, decoded.ok ? decoded.message : undefined, clientError("RateLimit"));
    }
    this.noteRejection(conn);
  }

  /** Closes the connection with 1008 when this RateLimit rejection makes the abuse sustained. */
  private noteRejection(conn: Connection): void {
    if (!this.limits.recordRejection(conn)) return;
    this.logger.warn(`connection ${conn.id} closed: sustained RateLimit rejections`);
    conn.close(POLICY_VIOLATION_CLOSE.code, POLICY_VIOLATION_CLOSE.reason);
  }

  /** Answers a decoded message; a request counts as in flight from dispatch until its reply is sent. */
  private async handleMessage(conn: Connection, message: ClientMessage): Promise<void> {
    const failure = this.checkSanity(message);
    if (failure) this.logger.debug?.(`sanity check failed on key "${failure.key}"`);
    const match = failure ? undefined : findAction(this.options.actionTable, message);
    if (!match) {
      await this.send(conn, message, clientError(failure ? "SanityCheckFailed" : "UnrecognisedRequest"));
      return;
    }
    if (!this.limits.beginRequest(conn)) {
      await this.send(conn, message, clientError("RateLimit"));
      this.noteRejection(conn);
      return;
    }
    try {
      const reply = await this.answer(conn, match, message);
      if (reply) await this.send(conn, message, reply);
    } finally {
      this.limits.endRequest(conn);
    }
  }

  /** The reply to a dispatched message: what the forward pipeline produced, or a gateway error. */
  private async answer(
    conn: Connection,
    [name, action]: [string, ActionOptions],
    message: ClientMessage,
  ): Promise<JsonObject | undefined> {
    const req = buildRequest(name, action, message, this.options.defaultBackend, this.now());
    try {
      const route = this.options.routes.get(name);
      if (!route) throw new Error(`action "${name}" has no route`);
      const reply = await this.pipeline(conn, req, route);
      if (!reply) return undefined;
      if (isJsonObject(reply)) return reply;
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

function byteLength(data: string | ArrayBuffer | Uint8Array): number {
  return typeof data === "string" ? utf8ByteLength(data) : data.byteLength;
}

function toBytes(data: string | ArrayBuffer | Uint8Array): Uint8Array {
  if (typeof data === "string") return new TextEncoder().encode(data);
  return data instanceof Uint8Array ? data : new Uint8Array(data);
}
