/**
 * The gateway's error family, and the one mapping from each to what a client receives. The client error
 * codes, texts and frames are part of the wire contract and live in the wire module; they are re-exported
 * here for the core.
 */
import { clientError, type ErrorReply } from "../wire/index.js";

export {
  applicationError,
  CLIENT_ERRORS,
  clientError,
  ProtocolError,
  type ClientErrorCode,
  type ErrorReply,
} from "../wire/index.js";

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

/** Invalid gateway or backend configuration; the message names the option. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
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
