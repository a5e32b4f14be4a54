/**
 * The gateway's error family, and the one table that maps each to what a client receives.
 */

/** A backend call got no reply within its wait time. Becomes WrongResponse for the client. */
export class RpcTimeoutError extends Error {
  override readonly name = "RpcTimeoutError";
  constructor(
    readonly method: string,
    readonly waitedMs: number,
  ) {
    super(`no reply to "${method}" within ${waitedMs} ms`);
  }
}

/** A backend call could not be made: Redis or HTTP failed. Becomes WrongResponse for the client. */
export class TransportError extends Error {
  override readonly name = "TransportError";
  /** What `rpcFailureCb` is told failed: `RedisError` for the Redis backend. @default "TransportError" */
  readonly failureType: "RedisError" | "TransportError";
  constructor(
    message: string,
    /** The command or URL that failed, e.g. `XADD general`. */
    readonly operation: string,
    options?: { cause?: unknown; failureType?: "RedisError" | "TransportError" },
  ) {
    super(message, options);
    this.failureType = options?.failureType ?? "TransportError";
  }
}

/** A gateway hook did not settle within `hookTimeoutMs`. Becomes Timeout (`msg_type` "error") for the client. */
export class HookTimeoutError extends Error {
  override readonly name = "HookTimeoutError";
  constructor(
    /** The hook's name, e.g. `beforeForward`. */
    readonly hook: string,
    readonly waitedMs: number,
  ) {
    super(`hook ${hook} did not finish within ${waitedMs} ms`);
  }
}

/** A backend sent something the gateway cannot use (bad JSON, missing fields). */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
}

/** Invalid gateway or backend configuration; the message names the option. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** The client error codes the gateway itself emits, with their exact messages (PROTOCOL.md 1.3). */
export const CLIENT_ERRORS = {
  BadRequest: "The application sent an invalid request.",
  SanityCheckFailed: "Parameters sanity check failed.",
  UnrecognisedRequest: "Unrecognised request",
  Timeout: "Timeout",
  ResponseTooLarge: "Response too large.",
  RateLimit: "You have reached the rate limit for this connection.",
  WrongResponse: "Sorry, an error occurred while processing your request.",
  CallError: "Sorry, an error occurred while processing your request.",
} as const;

/** One of the gateway's own client error codes. */
export type ClientErrorCode = keyof typeof CLIENT_ERRORS;

/**
 * Builds a client error frame: `{"msg_type": msgType, "error": {"code", "message", "details"?}}`.
 * `details` is included only when it is a non-empty object.
 */
export function clientError(
  code: ClientErrorCode,
  msgType = "error",
  details?: Record<string, unknown>,
  message: string = CLIENT_ERRORS[code],
): { msg_type: string; error: { code: string; message: string; details?: Record<string, unknown> } } {
  const error: { code: string; message: string; details?: Record<string, unknown> } = { code, message };
  if (isNonEmptyObject(details)) error.details = details;
  return { msg_type: msgType, error };
}

/** A client error frame as built by {@link clientError} and {@link applicationError}. */
export type ErrorReply = ReturnType<typeof clientError>;

/**
 * Builds an application error frame from a backend's `{"error": {"code", "message_to_client", "details"?}}`:
 * `{"msg_type": msgType, "error": {"code", "message", "details"?}}`, `details` only when a non-empty object.
 */
export function applicationError(
  msgType: string,
  code: string,
  message: string,
  details?: unknown,
): ErrorReply {
  const error: ErrorReply["error"] = { code, message };
  if (isNonEmptyObject(details)) error.details = details;
  return { msg_type: msgType, error };
}

/**
 * The one mapping from a thrown error to what the client receives: a hook that ran out of time is a Timeout
 * (`msg_type` "error"); anything else (backend timeout, transport failure, unusable reply, a failing hook) is
 * WrongResponse with the action's `msg_type`.
 */
export function errorToReply(error: unknown, msgType: string): ErrorReply {
  if (error instanceof HookTimeoutError) return clientError("Timeout");
  return clientError("WrongResponse", msgType);
}

function isNonEmptyObject(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === "object" && value !== null && !Array.isArray(value) && Object.keys(value).length > 0
  );
}
