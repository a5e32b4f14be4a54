/**
 * The core's {@link Connection} over a hibernatable WebSocket. Everything that must outlive hibernation
 * (the id, the upgrade facts, the stash) lives in the socket's attachment; the object in memory is a cache
 * rebuilt lazily from it when a woken Durable Object sees the socket again.
 */
import type {
  Connection,
  JsonObject,
  StoredSubscription,
  SubscriptionRegistry,
  UpgradeInfo,
} from "../core/types.js";

/** What is stored with each socket (`serializeAttachment`), so it survives hibernation. */
export interface SocketAttachment {
  id: string;
  upgrade: UpgradeInfo;
  stash: JsonObject;
  /** The connection's push URL (its reference inside); absent when push is off. */
  push?: string;
  /** The connection's subscriptions, in registration order (push on). */
  subs?: StoredSubscription[];
}

/** What a new connection is given besides its upgrade request. */
export interface NewConnection {
  /** @default a random UUID */
  id?: string;
  /** The push URL (`<pushOrigin>/connections/<ref>`); undefined turns push off for this connection. */
  pushUrl?: string;
  /** Query parameters taken out of the kept upgrade URL as credentials. @default ["token"] */
  credentialParams?: readonly string[];
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

/** Query parameters taken out of the kept upgrade URL as credentials (`credentialParams`). */
export const DEFAULT_CREDENTIAL_PARAMS = ["token"];

/**
 * Cloudflare limits a socket attachment to 2,048 bytes and `serializeAttachment` throws above it
 * ("Durable Objects: Use WebSockets", https://developers.cloudflare.com/durable-objects/best-practices/websockets/).
 * Local workerd accepts 16 KiB, so the gateway holds the documented limit itself: what works locally then
 * survives hibernation in production.
 */
export const DEFAULT_MAX_ATTACHMENT_BYTES = 2048;

const WEBSOCKET_OPEN = 1;
const cache = new WeakMap<WebSocket, SocketConnection>();

/** A {@link Connection} backed by a hibernatable WebSocket. */
export class SocketConnection implements Connection {
  private closed = false;
  private readonly registry: SubscriptionRegistry;

  private constructor(
    private readonly socket: WebSocket,
    private attachment: SocketAttachment,
    private readonly maxAttachmentBytes: number,
  ) {
    this.registry = this.subscriptionRegistry();
  }

  /**
   * Attaches a new connection's state to a socket just accepted with `ctx.acceptWebSocket`. Upgrade headers
   * that would not fit in `maxAttachmentBytes` are left out (with a log line), so the id always survives.
   */
  static attach(
    socket: WebSocket,
    request: Request,
    keepHeaders: readonly string[],
    maxAttachmentBytes = DEFAULT_MAX_ATTACHMENT_BYTES,
    init: NewConnection = {},
  ): SocketConnection {
    const headers: Record<string, string> = {};
    for (const name of keepHeaders) {
      const value = request.headers.get(name);
      if (value !== null) headers[name] = value;
    }
    const { url, credentials } = withoutCredentials(
      request.url,
      init.credentialParams ?? DEFAULT_CREDENTIAL_PARAMS,
    );
    const upgrade: UpgradeInfo = credentials ? { url, headers, credentials } : { url, headers };
    const attachment: SocketAttachment = {
      id: init.id ?? crypto.randomUUID(),
      upgrade,
      stash: {},
      ...(init.pushUrl ? { push: init.pushUrl, subs: [] } : {}),
    };
    if (attachmentBytes(attachment) > maxAttachmentBytes) {
      console.error(
        `[wsproxy] the upgrade headers of connection ${attachment.id} do not fit in maxAttachmentBytes (${maxAttachmentBytes}): not kept`,
      );
      attachment.upgrade = credentials ? { url, headers: {}, credentials } : { url, headers: {} };
    }
    const conn = new SocketConnection(socket, attachment, maxAttachmentBytes);
    conn.persist();
    cache.set(socket, conn);
    return conn;
  }

  /** The connection of a socket, rebuilt from its attachment after hibernation. */
  static of(socket: WebSocket, maxAttachmentBytes = DEFAULT_MAX_ATTACHMENT_BYTES): SocketConnection {
    const cached = cache.get(socket);
    if (cached) return cached;
    const stored = socket.deserializeAttachment() as Partial<SocketAttachment> | null;
    const attachment: SocketAttachment = {
      id: stored?.id ?? crypto.randomUUID(),
      upgrade: stored?.upgrade ?? { url: "", headers: {} },
      stash: stored?.stash ?? {},
      ...(stored?.push ? { push: stored.push, subs: stored.subs ?? [] } : {}),
    };
    const conn = new SocketConnection(socket, attachment, maxAttachmentBytes);
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

  get pushUrl(): string | undefined {
    return this.attachment.push;
  }

  get subscriptions(): SubscriptionRegistry | undefined {
    return this.attachment.push ? this.registry : undefined;
  }

  get isOpen(): boolean {
    return !this.closed && this.socket.readyState === WEBSOCKET_OPEN;
  }

  /**
   * Merges `patch` into the stash, unless the result would not fit in `maxAttachmentBytes`: then the patch
   * is refused with a log line and the previous stash stays, so nothing is lost later at hibernation.
   */
  updateStash(patch: JsonObject): void {
    const next = { ...this.attachment, stash: { ...this.attachment.stash, ...patch } };
    const bytes = attachmentBytes(next);
    if (bytes > this.maxAttachmentBytes) {
      console.error(
        `[wsproxy] stash of connection ${this.id} not updated: ${bytes} bytes with keys ${Object.keys(patch).join(", ")} exceed maxAttachmentBytes (${this.maxAttachmentBytes}); the previous stash is kept`,
      );
      return;
    }
    this.attachment = next;
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

  /**
   * The subscriptions, kept in the attachment so they survive hibernation. One that would not fit in
   * `maxAttachmentBytes` is stored without its `echo_req` (its frames then carry `req_id` and `passthrough`
   * only), and refused when even that does not fit; each with a log line.
   */
  private subscriptionRegistry(): SubscriptionRegistry {
    const subs = () => this.attachment.subs ?? [];
    const store = (next: StoredSubscription[]): boolean => {
      const candidate = { ...this.attachment, subs: next };
      if (attachmentBytes(candidate) > this.maxAttachmentBytes) return false;
      this.attachment = candidate;
      this.persist();
      return true;
    };
    return {
      get count() {
        return subs().length;
      },
      get: (id) => subs().find((subscription) => subscription.id === id),
      add: (subscription) => {
        const others = subs().filter((existing) => existing.id !== subscription.id);
        if (store([...others, subscription])) return true;
        const { echoReq: _dropped, ...compact } = subscription;
        const limit = `maxAttachmentBytes (${this.maxAttachmentBytes})`;
        if (subscription.echoReq && store([...others, compact])) {
          console.warn(
            `[wsproxy] subscription ${subscription.id} of connection ${this.id} stored without echo_req: it would exceed ${limit}`,
          );
          return true;
        }
        console.error(
          `[wsproxy] subscription ${subscription.id} of connection ${this.id} refused: it would exceed ${limit}`,
        );
        return false;
      },
      remove: (id) => {
        const kept = subs().filter((subscription) => subscription.id !== id);
        if (kept.length === subs().length) return false;
        return store(kept);
      },
      removeMatching: (names) => {
        const gone = subs().filter((sub) => names.has(sub.action) || names.has(sub.msgType));
        if (gone.length > 0) store(subs().filter((sub) => !gone.includes(sub)));
        return gone.map((subscription) => subscription.id);
      },
    };
  }

  private persist(): void {
    // Within the size limit by construction; what can still fail is a value that is not serialisable.
    try {
      this.socket.serializeAttachment(this.attachment);
    } catch (error) {
      // Not serialisable: the stash still works until the object hibernates, then is lost.
      console.error(`[wsproxy] could not store the stash of connection ${this.id}: ${String(error)}`);
    }
  }
}

/** `url` without the query parameters in `names`, and their values (undefined when there were none). */
function withoutCredentials(
  url: string,
  names: readonly string[],
): { url: string; credentials?: Record<string, string> } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { url };
  }
  const credentials: Record<string, string> = {};
  for (const name of names) {
    const value = parsed.searchParams.get(name);
    if (value === null) continue;
    credentials[name] = value;
    parsed.searchParams.delete(name);
  }
  return Object.keys(credentials).length > 0 ? { url: parsed.toString(), credentials } : { url };
}

/**
 * The size of an attachment, measured as UTF-8 JSON. The platform's structured-clone encoding is about as
 * large for strings and objects (smaller for non-ASCII text), a little larger for fractional numbers.
 */
function attachmentBytes(attachment: SocketAttachment): number {
  return new TextEncoder().encode(JSON.stringify(attachment)).byteLength;
}
