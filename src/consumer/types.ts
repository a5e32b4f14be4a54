/**
 * What a service author writes against: handlers, their context, and the logger seam.
 */
import type { Subscription } from "./subscription.js";

/** Everything a handler knows about the call besides its params. */
export interface RpcContext {
  /** The RPC method (the entry's `rpc` field), e.g. `ping`. */
  method: string;
  /** When the gateway stops waiting (the entry's `deadline`); `undefined` when the entry had none. */
  deadline: Date | undefined;
  /** Fires at the deadline and when the service is closed after `closeTimeoutMs`; pass it to your I/O. */
  signal: AbortSignal;
  /** The request's correlation id (`req_log_context.correlation_id`), for your logs. */
  correlationId: string | undefined;
  /** Names of the stash values the gateway added to the params (the entry's `stash` field). */
  stashNames: string[];
  /** The gateway's id for this call (the entry's `message_id`), unique per reply key. */
  messageId: string;
  /** The reply key or channel (the entry's `who` field). */
  who: string;
  /** The stream entry id, e.g. `1700000000000-0`. */
  entryId: string;
  /** The category stream the entry came from, e.g. `general`. */
  stream: string;
  /** How many times this entry has been handed to a handler, this time included (1 on first delivery). */
  deliveryCount: number;
  /**
   * The push URL of the request's connection (the entry's `connection` field), to push to it later with
   * `pushTo()`; `undefined` when the gateway sent none (push off, or a Perl-era gateway).
   */
  connection: string | undefined;
  /**
   * Opens a subscription for a request that asked `"subscribe": 1`: the reply then carries
   * `subscription: {id}` and the gateway registers it; push its later frames with `subscription.push(data)`.
   * Call it before the handler returns; a second call returns the same subscription. Throws when the
   * request did not ask to subscribe or has no connection.
   */
  subscribe(): Subscription;
  /** Sends a raw frame to the request's connection (Perl's `$c->send`); rejects like `pushTo()`. */
  push(frame: Record<string, unknown>): Promise<void>;
}

/**
 * A handler: `params` is the decoded `args` field (`{"args": <client frame>, ...stash values}`). The
 * return value is sent as the result; return `{ error: { code, message_to_client, details? } }` for an
 * application error. A thrown error becomes `InternalServerError` for the client.
 */
export type RpcHandler = (params: Record<string, unknown>, ctx: RpcContext) => unknown;

/** Handlers by RPC method name. */
export type RpcHandlers = Record<string, RpcHandler>;

/** Log levels, least to most severe. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** One structured log line: `{"level":"info","msg":"...","correlation_id":"...",...}`. */
export type LogEntry = { level: LogLevel; msg: string } & Record<string, unknown>;

/** Receives every log line at or above the configured level. */
export type ServiceLogger = (entry: LogEntry) => void;
