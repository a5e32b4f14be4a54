/**
 * Per-connection limits (issue 6): requests in flight, frames per second (a token bucket), and the close
 * with 1008 when a client keeps running into them.
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
  maxMessagesPerSecond: number;
  messageBurst: number;
  abuseCloseAfterRejections: number;
  abuseWindowMs: number;
}

/** Counts the dispatcher keeps for each connection; all in-memory, all per connection. */
export interface ConnectionLimits {
  /** Takes a token for one inbound frame; false when the connection is over `maxMessagesPerSecond`. */
  admitFrame(conn: Connection): boolean;
  /** Counts a request as in flight; false (and nothing counted) when `maxPendingPerConnection` is reached. */
  beginRequest(conn: Connection): boolean;
  /** The request admitted by {@link beginRequest} got its reply (or none will come). */
  endRequest(conn: Connection): void;
  /** Records one RateLimit rejection; true when this one makes the abuse sustained (close 1008). */
  recordRejection(conn: Connection): boolean;
  /** Drops everything kept for a connection that is gone. Safe to call more than once. */
  forget(connectionId: string): void;
  /** How many connections have state right now (0 once every connection closed). */
  readonly size: number;
}

interface ConnectionState {
  pending: number;
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

  // A closed connection gets no state: nothing can be sent to it, and an entry created now would only
  // leak if its close has already been handled.
  const stateOf = (conn: Connection): ConnectionState | undefined => {
    if (!conn.isOpen) return undefined;
    let state = states.get(conn.id);
    if (!state) {
      state = {
        pending: 0,
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
    beginRequest(conn) {
      if (settings.maxPendingPerConnection <= 0) return true;
      const state = stateOf(conn);
      if (!state) return true;
      if (state.pending >= settings.maxPendingPerConnection) return false;
      state.pending += 1;
      return true;
    },
    endRequest(conn) {
      // No state means the connection closed (and was forgotten) while the request was in flight.
      const state = states.get(conn.id);
      if (state && state.pending > 0) state.pending -= 1;
    },
    recordRejection(conn) {
      if (settings.abuseCloseAfterRejections <= 0) return false;
      const state = stateOf(conn);
      return state ? countRejection(state, settings, now()) : false;
    },
    forget(connectionId) {
      states.delete(connectionId);
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
