/**
 * What a WebSocket client receives when its request fails (PROTOCOL.md 1.2 and 1.3): the one table of error
 * codes and texts, the frames built from it, and the result a service sends for a request it could not
 * serve (PROTOCOL.md 5), which carries the same text.
 */
import { isJsonObject } from "./json.js";

/** The text a client sees for any failure behind the gateway; never a handler's own error text. */
export const INTERNAL_ERROR_MESSAGE = "Sorry, an error occurred while processing your request.";

/** The client error codes the gateway itself emits, with their exact messages (PROTOCOL.md 1.3). */
export const CLIENT_ERRORS = {
  BadRequest: "The application sent an invalid request.",
  SanityCheckFailed: "Parameters sanity check failed.",
  UnrecognisedRequest: "Unrecognised request",
  Timeout: "Timeout",
  ResponseTooLarge: "Response too large.",
  RateLimit: "You have reached the rate limit for this connection.",
  WrongResponse: INTERNAL_ERROR_MESSAGE,
  CallError: INTERNAL_ERROR_MESSAGE,
} as const;

/** One of the gateway's own client error codes. */
export type ClientErrorCode = keyof typeof CLIENT_ERRORS;

/**
 * A client error frame:
 *
 * ```json
 * {"msg_type":"error","error":{"code":"BadRequest","message":"The application sent an invalid request.","details":{"error_code":"INVALID_JSON"}}}
 * ```
 */
export type ErrorReply = {
  msg_type: string;
  error: { code: string; message: string; details?: Record<string, unknown> };
};

/**
 * Builds a client error frame: `{"msg_type": msgType, "error": {"code", "message", "details"?}}`, e.g.
 * `{"msg_type":"ping","error":{"code":"WrongResponse","message":"Sorry, an error occurred while processing your request."}}`.
 * `details` is included only when it is a non-empty object.
 */
export function clientError(
  code: ClientErrorCode,
  msgType = "error",
  details?: Record<string, unknown>,
  message: string = CLIENT_ERRORS[code],
): ErrorReply {
  return applicationError(msgType, code, message, details);
}

/**
 * Builds an application error frame from a service's `{"error": {"code", "message_to_client", "details"?}}`:
 * `{"msg_type": msgType, "error": {"code", "message", "details"?}}`, `details` only when a non-empty object.
 *
 * ```json
 * {"msg_type":"buy","error":{"code":"InsufficientBalance","message":"Your balance is too low.","details":{"needed":10}}}
 * ```
 */
export function applicationError(
  msgType: string,
  code: string,
  message: string,
  details?: unknown,
): ErrorReply {
  const error: ErrorReply["error"] = { code, message };
  if (isJsonObject(details) && Object.keys(details).length > 0) error.details = details;
  return { msg_type: msgType, error };
}

/**
 * The `result` a service replies with when a handler threw or the method is unknown (PROTOCOL.md 5); the
 * gateway turns it into an application error frame with {@link INTERNAL_ERROR_MESSAGE}:
 *
 * ```json
 * {"error":{"code":"InternalServerError","message_to_client":"Sorry, an error occurred while processing your request."}}
 * ```
 */
export const INTERNAL_ERROR_RESULT = {
  error: { code: "InternalServerError", message_to_client: INTERNAL_ERROR_MESSAGE },
} as const;
