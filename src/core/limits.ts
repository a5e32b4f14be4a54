/**
 * Per-connection limits: requests in flight (by count and by bytes), frames per second (a token bucket),
 * the bytes of requests in flight on the whole object (one dispatcher), and the close with 1008 when a
 * client keeps getting error replies.
 *
 * The state is one small record per connection, kept in memory by `conn.id` and dropped when the
 * connection closes. It deliberately does not survive hibernation: a Durable Object only hibernates when
 * nothing is in flight, so the pending count is 0 anyway, and a bucket that starts full again after an
 * idle period is exactly what a refill would have produced.
 */
import type { Connection } from "./types.js";

/** The close a client gets for sustained abuse of the limits. */
export const POLICY_VIOLATION_CLOSE = { code: 1008, reason: "Policy violation" } as const;

/** The settings the limiter reads; 0 turns a limit off. See `GatewayOptions` for their meaning. */
export interface ConnectionLimitSettings {
  maxPendingPerConnection: number;
  maxPendingBytesPerConnection: number;
  maxPendingBytesPerObject: number;
  maxMessagesPerSecond: number;
  messageBurst: number;
  abuseCloseAfterRejections: number;
  abuseWindowMs: number;
}

/** Counts the dispatcher keeps for each connection; all in-memory, all per connection. */
export interface ConnectionLimits {
  /** Takes a token for one inbound frame; false when the connection is over `maxMessagesPerSecond`. */
  admitFrame(conn: Connection): boolean;
  /**
   * Counts a request of `bytes` (its frame's size) as in flight and returns the function that ends it
   * (call it once the reply went out, or none will come); undefined, and nothing counted, when the
   * connection is at `maxPendingPerConnection`, or the bytes would pass `maxPendingBytesPerConnection` or
   * the object's `maxPendingBytesPerObject`.
   */
  beginRequest(conn: Connection, bytes?: number): (() => void) | undefined;
  /** Records one error reply; true when this one makes the abuse sustained (close 1008). */
  recordRejection(conn: Connection): boolean;
  /** Bytes of requests in flight on this object now, and the rejections each budget caused so far. */
  readonly usage: LimitUsage;
  /** Drops everything kept for a connection that is gone. Safe to call more than once. */
  forget(connectionId: string): void;
  /** How many connections have state right now (0 once every connection closed). */
  readonly size: number;
}

/** What the limiter reports to `/metrics`. */
export interface LimitUsage {
  /** Bytes of the frames of every request in flight on this object. */
  pendingBytes: number;
  /** Requests refused with RateLimit because the connection's bytes in flight were at their budget. */
  connectionByteRejections: number;
  /** Requests refused with RateLimit because the object's bytes in flight were at their budget. */
  objectByteRejections: number;
  /** Connections closed with 1008 for sustained error replies. */
  abuseCloses: number;
}

interface ConnectionState {
  pending: number;
  pendingBytes: number;
  tokens: number;
  refilledAtMs: number;
  rejections: number;
  rejectionWindowStartMs: number;
}

/** Builds the limiter for one dispatcher; `now` is its clock in milliseconds. */
export function createConnectionLimits(
  settings: ConnectionLimitSettings,
  now: () => number,
): ConnectionLimits {
  const states = new Map<string, ConnectionState>();
  const usage: LimitUsage = {
    pendingBytes: 0,
    connectionByteRejections: 0,
    objectByteRejections: 0,
    abuseCloses: 0,
  };

  // A closed connection gets no state: nothing can be sent to it, and an entry created now would only
  // leak if its close has already been handled.
  const stateOf = (conn: Connection): ConnectionState | undefined => {
    if (!conn.isOpen) return undefined;
    let state = states.get(conn.id);
    if (!state) {
      state = {
        pending: 0,
        pendingBytes: 0,
        tokens: settings.messageBurst,
        refilledAtMs: now(),
        rejections: 0,
        rejectionWindowStartMs: 0,
      };
      states.set(conn.id, state);
    }
    return state;
  };

  return {
    admitFrame(conn) {
      if (settings.maxMessagesPerSecond <= 0) return true;
      const state = stateOf(conn);
      return state ? takeToken(state, settings, now()) : true;
    },
    beginRequest(conn, bytes = 0) {
      const { maxPendingPerConnection: maxCount, maxPendingBytesPerConnection: maxBytes } = settings;
      // Per-connection state only when a per-connection limit is on (no counters kept for nothing).
      const state = maxCount > 0 || maxBytes > 0 ? stateOf(conn) : undefined;
      if (!conn.isOpen) return () => undefined;
      if (state && maxCount > 0 && state.pending >= maxCount) return undefined;
      // Each budget admits one request on its own, so a frame within maxMessageBytes always gets through
      // once the earlier requests are answered.
      if (state && maxBytes > 0 && state.pending > 0 && state.pendingBytes + bytes > maxBytes) {
        usage.connectionByteRejections += 1;
        return undefined;
      }
      const maxObjectBytes = settings.maxPendingBytesPerObject;
      if (maxObjectBytes > 0 && usage.pendingBytes > 0 && usage.pendingBytes + bytes > maxObjectBytes) {
        usage.objectByteRejections += 1;
        return undefined;
      }
      if (state) {
        state.pending += 1;
        state.pendingBytes += bytes;
      }
      usage.pendingBytes += bytes;
      let ended = false;
      return () => {
        if (ended) return;
        ended = true;
        // The object's total counts the bytes until the request ends, even if its connection closed first:
        // the call holds the request's frame until then.
        usage.pendingBytes -= bytes;
        if (state) {
          state.pending = Math.max(0, state.pending - 1);
          state.pendingBytes = Math.max(0, state.pendingBytes - bytes);
        }
      };
    },
    recordRejection(conn) {
      if (settings.abuseCloseAfterRejections <= 0) return false;
      const state = stateOf(conn);
      const sustained = state ? countRejection(state, settings, now()) : false;
      if (sustained) usage.abuseCloses += 1;
      return sustained;
    },
    forget(connectionId) {
      states.delete(connectionId);
    },
    get usage() {
      return { ...usage };
    },
    get size() {
      return states.size;
    },
  };
}

/** Refills the bucket for the time since the last frame, then takes one token if there is one. */
function takeToken(state: ConnectionState, settings: ConnectionLimitSettings, nowMs: number): boolean {
  // A clock that steps backwards (a test, a skewed host) must not drain the bucket: elapsed is never < 0.
  const elapsedMs = Math.max(0, nowMs - state.refilledAtMs);
  state.tokens = Math.min(
    settings.messageBurst,
    state.tokens + (elapsedMs * settings.maxMessagesPerSecond) / 1000,
  );
  state.refilledAtMs = nowMs;
  if (state.tokens < 1) return false;
  state.tokens -= 1;
  return true;
}

/**
 * Counts rejections in a window that opens at the first rejection and lasts `abuseWindowMs`; reaching
 * `abuseCloseAfterRejections` inside one window is "sustained". A client that slows down after a
 * RateLimit error lets the window expire and starts again from 0.
 */
function countRejection(state: ConnectionState, settings: ConnectionLimitSettings, nowMs: number): boolean {
  if (state.rejections === 0 || nowMs - state.rejectionWindowStartMs >= settings.abuseWindowMs) {
    state.rejections = 0;
    state.rejectionWindowStartMs = nowMs;
  }
  state.rejections += 1;
  return state.rejections >= settings.abuseCloseAfterRejections;
}
