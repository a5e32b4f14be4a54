/**
 * The Durable Object that holds client WebSockets (hibernation API) and the backends with their pending
 * calls. Its platform methods are written once, catch everything, and hand off to the core dispatcher.
 *
 * One instance is one *incarnation*: workerd evicts an idle object (about 10 s locally) and runs the
 * constructor again on the next event, so the backends, and with them the reply key, are built here.
 */
import { DurableObject } from "cloudflare:workers";
import { createDispatcher, type Dispatcher } from "../core/dispatcher.js";
import type { PushMessage, PushStatus } from "../core/subscriptions.js";
import type { Backend, BackendStats } from "../core/types.js";
import { AddressFrameRate, addressFull, addressOfTags, addressTags, clientAddress } from "./admission.js";
import type { GatewayEnv } from "./config.js";
import { SocketConnection } from "./connection.js";
import { localRedisRefusal } from "./local-redis.js";
import { createJsonLogger, type GatewayLogger } from "./log.js";
import type { MetricsSnapshot } from "./metrics.js";
import { createObjectObservability, type ObjectObservability } from "./observability.js";
import { buildBackends, configuredSecrets, gatewayPlan, type CompiledGateway } from "./plan.js";
import {
  connectionSecret,
  formatRef,
  importPushKey,
  PUSH_KEY_STORAGE_KEY,
  secretsEqual,
} from "./push-ref.js";

/** The header in which the Worker tells the object its name (for the connection reference). */
export const OBJECT_NAME_HEADER = "x-wsproxy-object-name";

/** One push for a connection of this object, as the Worker routes it. */
export interface PushDelivery {
  connectionId: string;
  secret: string;
  message: PushMessage;
}

/** Close codes that only describe a close and must not be sent in a close frame. */
const UNSENDABLE_CLOSE_CODES = new Set([1005, 1006, 1015]);

/** The gateway's Durable Object; `createGateway()` binds it to one configuration. */
export class GatewayDurableObject extends DurableObject<GatewayEnv> {
  /** This incarnation's backends by name (empty when the configuration is broken). */
  readonly backends: Record<string, Backend> = {};
  private readonly dispatcher?: Dispatcher;
  private readonly setupError?: string;
  private readonly closeHandled = new WeakSet<SocketConnection>();
  private readonly observability?: ObjectObservability;
  /** Frames being handled now (a gauge of `/metrics`). */
  private framesInFlight = 0;
  /** Each socket's client address (from its tags), see `addressOf`. */
  private readonly socketAddresses = new WeakMap<WebSocket, string | undefined>();
  /** Settings holding a local Redis URL, served only to requests on a loopback address. */
  private readonly localRedis: readonly string[] = [];
  private localRedisLogged = false;
  private readonly maxAttachmentBytes: number;
  /** The key that makes connection secrets, read (or made) once per incarnation. */
  private pushKey?: Promise<CryptoKey>;
  /** Every line goes through a logger that redacts the configured secrets. */
  private readonly log: GatewayLogger;
  private readonly addressFrames: AddressFrameRate;

  constructor(
    ctx: DurableObjectState,
    env: GatewayEnv,
    private readonly gateway: CompiledGateway,
  ) {
    super(ctx, env);
    this.maxAttachmentBytes = gateway.maxAttachmentBytes;
    this.addressFrames = new AddressFrameRate(gateway.maxFramesPerSecondPerAddress);
    let log: GatewayLogger | undefined;
    try {
      const plan = gatewayPlan(gateway, env);
      const objectId = ctx.id.toString();
      this.observability = createObjectObservability(plan, ctx.id.name ?? objectId);
      const { logger, instrumentation } = this.observability;
      log = logger;
      this.backends = buildBackends(plan, objectId, instrumentation);
      this.localRedis = plan.localRedis;
      this.dispatcher = createDispatcher(this.observability.options, this.backends, { logger });
    } catch (error) {
      // Kept, not thrown: every request then gets a 500 instead of an opaque constructor failure; the
      // detail goes to the log only (it may name settings a client has no business seeing).
      this.setupError = error instanceof Error ? error.message : String(error);
      log = createJsonLogger("error", configuredSecrets(env, {}), { object: ctx.id.name ?? "" });
      log.error(`gateway configuration error: ${this.setupError}`);
    }
    this.log = log ?? createJsonLogger("error", configuredSecrets(env, {}));
  }

  /** Accepts a WebSocket upgrade forwarded by the Worker. */
  override async fetch(request: Request): Promise<Response> {
    try {
      if (!this.dispatcher) return misconfigured();
      // The Worker applies the same rule; the object holds it too, whoever forwards the upgrade.
      const refusal = localRedisRefusal(this.localRedis, request.url);
      if (refusal) {
        if (!this.localRedisLogged) this.log.error(`gateway configuration error: ${refusal}`);
        this.localRedisLogged = true;
        return new Response("Service Unavailable", { status: 503 });
      }
      if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
        return new Response("Upgrade Required", { status: 426, headers: { upgrade: "websocket" } });
      }
      const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
      const address = clientAddress(request);
      const full = this.admissionRefusal(address);
      if (full) {
        // Accepted and closed rather than refused with an HTTP status: a browser sees only the close code.
        this.observability?.recorder.admissionRefused(full.reason);
        server.accept();
        server.close(full.code, full.message);
        return new Response(null, { status: 101, webSocket: client });
      }
      const id = crypto.randomUUID();
      const pushUrl = await this.pushUrl(request, id);
      // Tagged with its connection id, so a push finds its socket with `getWebSockets(id)`, and with its
      // client address (`ip:<addr>`), so the per-address cap counts with `getWebSockets("ip:<addr>")`
      // ("WebSockets", https://developers.cloudflare.com/durable-objects/api/websockets/: tags survive
      // hibernation). A connection id is a UUID and never starts with `ip:`.
      this.ctx.acceptWebSocket(server, [id, ...addressTags(address)]);
      this.observability?.recorder.connectionOpened();
      const conn = SocketConnection.attach(
        server,
        request,
        this.gateway.upgradeHeaders,
        this.maxAttachmentBytes,
        { id, pushUrl, credentialParams: this.gateway.credentialParams },
      );
      // Awaited so that `onOpen` has finished before the first frame can arrive.
      await this.dispatcher.handleOpen(conn);
      return new Response(null, { status: 101, webSocket: client });
    } catch (error) {
      this.log.error("upgrade failed", error);
      return new Response("Internal Server Error", { status: 500 });
    }
  }

  /**
   * One client frame; the dispatcher enforces `maxMessageBytes` (close 1009) and answers. Not an async
   * function: a suspended one would hold `message` until the reply went out (see `Dispatcher.handleFrame`).
   */
  override webSocketMessage(socket: WebSocket, message: string | ArrayBuffer): Promise<void> {
    try {
      const conn = SocketConnection.of(socket, this.maxAttachmentBytes);
      if (!this.dispatcher) {
        conn.close(1011, "gateway misconfigured");
        return Promise.resolve();
      }
      const overRate = !this.addressFrames.take(this.addressOf(socket));
      if (overRate) this.observability?.recorder.admissionRefused("address_frames");
      this.framesInFlight += 1;
      return this.dispatcher
        .handleFrame(conn, message, { overRate })
        .catch((error: unknown) => this.log.error("webSocketMessage failed", error))
        .finally(() => (this.framesInFlight -= 1));
    } catch (error) {
      this.log.error("webSocketMessage failed", error);
      return Promise.resolve();
    }
  }

  /** The client address in a socket's tags, read once per socket per incarnation (a frame's hot path). */
  private addressOf(socket: WebSocket): string | undefined {
    if (this.socketAddresses.has(socket)) return this.socketAddresses.get(socket);
    const address = addressOfTags(this.ctx.getTags(socket));
    this.socketAddresses.set(socket, address);
    return address;
  }

  /** The client closed: answer its close frame, drop its pending calls, run `onClose`. */
  override async webSocketClose(socket: WebSocket, code: number, reason: string): Promise<void> {
    try {
      const conn = SocketConnection.of(socket, this.maxAttachmentBytes);
      conn.markClosed();
      try {
        // Always answer the peer's close; 1005/1006/1015 only describe a close and cannot be sent back.
        socket.close(UNSENDABLE_CLOSE_CODES.has(code) ? 1000 : code, reason);
      } catch {
        // The runtime already answered it (auto-reply to close): nothing left to do.
      }
      await this.connectionGone(conn, code, reason);
    } catch (error) {
      this.log.error("webSocketClose failed", error);
    }
  }

  /** The socket failed: treat it as closed (1006) so its pending calls and `onClose` are handled once. */
  override async webSocketError(socket: WebSocket, error: unknown): Promise<void> {
    try {
      this.log.warn(`WebSocket error: ${String(error)}`);
      const conn = SocketConnection.of(socket, this.maxAttachmentBytes);
      conn.markClosed();
      await this.connectionGone(conn, 1006, "WebSocket error");
    } catch (failure) {
      this.log.error("webSocketError failed", failure);
    }
  }

  /**
   * Pushes for connections of this object, called by the Worker over Durable Object RPC: like any event it
   * wakes a hibernated object ("WebSockets", https://developers.cloudflare.com/durable-objects/api/websockets/); one status per delivery, in order. 404: the secret is not the one this object
   * gave that connection id; 410: it was, and the connection closed (or the subscription is gone).
   */
  async pushMessages(deliveries: PushDelivery[]): Promise<PushStatus[]> {
    const dispatcher = this.dispatcher;
    if (!dispatcher || !this.gateway.push) return deliveries.map(() => 404);
    const key = await this.connectionKey();
    return Promise.all(
      deliveries.map(async ({ connectionId, secret, message }): Promise<PushStatus> => {
        if (!secretsEqual(await connectionSecret(key, connectionId), secret)) return 404;
        const [socket] = this.ctx.getWebSockets(connectionId);
        if (!socket) return 410;
        return dispatcher.handlePush(SocketConnection.of(socket, this.maxAttachmentBytes), message);
      }),
    );
  }

  /** A new connection's push URL; undefined when push is off or the object does not know its name. */
  private async pushUrl(request: Request, connectionId: string): Promise<string | undefined> {
    const push = this.gateway.push;
    const objectName = request.headers.get(OBJECT_NAME_HEADER) ?? this.ctx.id.name;
    if (!push || !objectName) return undefined;
    const secret = await connectionSecret(await this.connectionKey(), connectionId);
    const origin = push.origin ?? new URL(request.url).origin;
    return `${origin}/connections/${formatRef({ objectName, connectionId, secret })}`;
  }

  /** The object's reference key: 32 random bytes made once and kept in its storage. */
  private connectionKey(): Promise<CryptoKey> {
    this.pushKey ??= (async () => {
      let raw = await this.ctx.storage.get<Uint8Array>(PUSH_KEY_STORAGE_KEY);
      if (!raw) {
        raw = crypto.getRandomValues(new Uint8Array(32));
        await this.ctx.storage.put(PUSH_KEY_STORAGE_KEY, raw);
      }
      return importPushKey(raw);
    })();
    // A storage failure must not stick: the next push or connection tries again.
    this.pushKey.catch(() => (this.pushKey = undefined));
    return this.pushKey;
  }

  /** Counters of this incarnation's backends that keep them (`stats`), by backend name (for tests and debugging). */
  backendStats(): Record<string, BackendStats> {
    const stats: Record<string, BackendStats> = {};
    for (const [name, backend] of Object.entries(this.backends)) {
      if (backend.stats) stats[name] = backend.stats();
    }
    return stats;
  }

  /** This incarnation's figures, for the Worker's `GET /metrics` (called over Durable Object RPC). */
  metricsSnapshot(): MetricsSnapshot {
    if (!this.observability) return { samples: [] };
    return this.observability.recorder.snapshot({
      openConnections: this.ctx.getWebSockets().length,
      framesInFlight: this.framesInFlight,
      backends: this.backendStats(),
      dispatcher: this.dispatcher?.counters,
    });
  }

  /** Why a new connection from `address` may not be held here now (a close code and reason), if it may not. */
  private admissionRefusal(address: string | undefined) {
    const cap = this.gateway.maxConnectionsPerObject;
    if (cap > 0 && this.ctx.getWebSockets().length >= cap) {
      return { reason: "object_connections", code: 1013, message: "Try again later" } as const;
    }
    if (addressFull(this.ctx, address, this.gateway.maxConnectionsPerAddress)) {
      const message = "Too many connections from this address";
      return { reason: "address_connections", code: 1008, message } as const;
    }
    return undefined;
  }

  private async connectionGone(conn: SocketConnection, code: number, reason: string): Promise<void> {
    if (this.closeHandled.has(conn)) return;
    this.closeHandled.add(conn);
    for (const backend of Object.values(this.backends)) backend.connectionClosed?.(conn.id);
    await this.dispatcher?.handleClose(conn, code, reason);
  }
}

/** The answer to every request of a misconfigured object: generic, the detail is in the Worker's log. */
function misconfigured(): Response {
  return Response.json({ error: "The gateway is misconfigured: see the Worker's log." }, { status: 500 });
}
