/**
 * An in-memory {@link Connection}, for tests and for trying the core without a socket.
 */
import type { Connection, JsonObject, UpgradeInfo } from "./types.js";

/** A {@link Connection} that records what the gateway did to it. */
export interface MemoryConnection extends Connection {
  /** Every frame sent, as the client would parse it (a JSON round trip of what was sent). */
  readonly sent: JsonObject[];
  /** The close the gateway asked for, if any. */
  readonly closed: { code: number; reason: string } | undefined;
  /** Marks the connection closed, as if the client went away. */
  disconnect(): void;
}

/** Options of {@link createMemoryConnection}. */
export interface MemoryConnectionInit {
  /** @default a random UUID */
  id?: string;
  /** @default {} */
  stash?: JsonObject;
  /** @default `{ url: "http://localhost/websockets/v3", headers: {} }` */
  upgrade?: UpgradeInfo;
}

/**
 * Creates an open in-memory connection. Sending to it after it closed throws, as a real socket does, so a
 * test notices a send the gateway should not have made.
 */
export function createMemoryConnection(init: MemoryConnectionInit = {}): MemoryConnection {
  const sent: JsonObject[] = [];
  let stash: JsonObject = { ...init.stash };
  let open = true;
  let closed: { code: number; reason: string } | undefined;
  return {
    id: init.id ?? crypto.randomUUID(),
    upgrade: init.upgrade ?? { url: "http://localhost/websockets/v3", headers: {} },
    get stash() {
      return stash;
    },
    updateStash(patch) {
      stash = { ...stash, ...patch };
    },
    get isOpen() {
      return open;
    },
    sendJson(frame) {
      if (!open) throw new Error(`connection closed: cannot send ${JSON.stringify(frame)}`);
      sent.push(JSON.parse(JSON.stringify(frame)) as JsonObject);
    },
    close(code, reason) {
      open = false;
      closed ??= { code, reason };
    },
    sent,
    get closed() {
      return closed;
    },
    disconnect() {
      open = false;
    },
  };
}
