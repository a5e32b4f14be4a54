/**
 * The core's {@link Connection} over a hibernatable WebSocket. Everything that must outlive hibernation
 * (the id, the upgrade facts, the stash) lives in the socket's attachment; the object in memory is a cache
 * rebuilt lazily from it when a woken Durable Object sees the socket again.
 */
import type { Connection, JsonObject, UpgradeInfo } from "../core/types.js";

/** What is stored with each socket (`serializeAttachment`), so it survives hibernation. */
export interface SocketAttachment {
  id: string;
  upgrade: UpgradeInfo;
  stash: JsonObject;
}

/**
 * Upgrade headers kept for hooks. Only these: the attachment has a small size limit and is rewritten on
 * every stash change, and cookies or credentials should not sit in it unasked.
 */
export const DEFAULT_UPGRADE_HEADERS = [
  "origin",
  "user-agent",
  "accept-language",
  "cf-connecting-ip",
  "cf-ipcountry",
  "x-forwarded-for",
  "sec-websocket-protocol",
];

const WEBSOCKET_OPEN = 1;
const cache = new WeakMap<WebSocket, SocketConnection>();

/** A {@link Connection} backed by a hibernatable WebSocket. */
export class SocketConnection implements Connection {
  private closed = false;

  private constructor(
    private readonly socket: WebSocket,
    private readonly attachment: SocketAttachment,
  ) {}

  /** Attaches a new connection's state to a socket just accepted with `ctx.acceptWebSocket`. */
  static attach(socket: WebSocket, request: Request, keepHeaders: readonly string[]): SocketConnection {
    const headers: Record<string, string> = {};
    for (const name of keepHeaders) {
      const value = request.headers.get(name);
      if (value !== null) headers[name] = value;
    }
    const conn = new SocketConnection(socket, {
      id: crypto.randomUUID(),
      upgrade: { url: request.url, headers },
      stash: {},
    });
    conn.persist();
    cache.set(socket, conn);
    return conn;
  }

  /** The connection of a socket, rebuilt from its attachment after hibernation. */
  static of(socket: WebSocket): SocketConnection {
    const cached = cache.get(socket);
    if (cached) return cached;
    const stored = socket.deserializeAttachment() as Partial<SocketAttachment> | null;
    const attachment: SocketAttachment = {
      id: stored?.id ?? crypto.randomUUID(),
      upgrade: stored?.upgrade ?? { url: "", headers: {} },
      stash: stored?.stash ?? {},
    };
    const conn = new SocketConnection(socket, attachment);
    cache.set(socket, conn);
    return conn;
  }

  get id(): string {
    return this.attachment.id;
  }

  get upgrade(): UpgradeInfo {
    return this.attachment.upgrade;
  }

  get stash(): Readonly<JsonObject> {
    return this.attachment.stash;
  }

  get isOpen(): boolean {
    return !this.closed && this.socket.readyState === WEBSOCKET_OPEN;
  }

  updateStash(patch: JsonObject): void {
    this.attachment.stash = { ...this.attachment.stash, ...patch };
    this.persist();
  }

  sendJson(frame: JsonObject): void {
    this.sendText(JSON.stringify(frame));
  }

  sendText(text: string): void {
    if (!this.isOpen) return;
    this.socket.send(text);
  }

  close(code: number, reason: string): void {
    this.markClosed();
    try {
      this.socket.close(code, reason);
    } catch {
      // Already closed or closing: the peer is gone either way, which is what the caller wanted.
    }
  }

  /** Records that the socket closed, so nothing more is sent to it. */
  markClosed(): void {
    this.closed = true;
  }

  private persist(): void {
    try {
      this.socket.serializeAttachment(this.attachment);
    } catch (error) {
      // Too large or not serialisable: the stash still works until the object hibernates, then is lost.
      console.error(`[wsproxy] could not store the stash of connection ${this.id}: ${String(error)}`);
    }
  }
}
