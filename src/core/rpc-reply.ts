/**
 * Turning a backend's `result` into the client's reply (PROTOCOL.md 1.2), after the Perl backends'
 * `success_api_response` / `error_api_response` / `store_response`.
 */
import { applicationError, ProtocolError } from "./errors.js";
import { isJsonObject, setOwn, withoutPrototypeKeys } from "./safe-object.js";
import type { ApiReply, JsonObject } from "./types.js";

/** A success reply and the stash patch the result carried. */
export interface SuccessReply {
  reply: ApiReply;
  /** The result's `stash` object (prototype-changing keys removed), to merge into the connection stash. */
  stash?: JsonObject;
}

/** True when `result` is an application error: an object with an `error` key. */
export function isApplicationError(result: unknown): result is { error: unknown } {
  return isJsonObject(result) && Object.hasOwn(result, "error");
}

/**
 * `{"msg_type": M, M: value}`. A `stash` object is taken out of the result first; then, if the result is an
 * object whose only key is `status`, the value is `result.status`. So `{"status": 1, "stash": {...}}` replies
 * `1`, and a result that held only a `stash` replies `{}`. A `stash` that is not an object stays in the
 * result, untouched (it is the backend's data, not a stash patch).
 */
export function buildSuccessReply(msgType: string, result: unknown): SuccessReply {
  let value = result;
  let stash: JsonObject | undefined;
  if (isJsonObject(result) && isJsonObject(result.stash)) {
    stash = withoutPrototypeKeys(result.stash);
    value = Object.fromEntries(Object.entries(result).filter(([key]) => key !== "stash"));
  }
  if (isJsonObject(value) && Object.keys(value).length === 1 && Object.hasOwn(value, "status")) {
    value = value.status;
  }
  const reply: ApiReply = { msg_type: msgType };
  setOwn(reply, msgType, value);
  return stash ? { reply, stash } : { reply };
}

/**
 * `{"msg_type": M, "error": {"code", "message", "details"?}}` from `{"error": {"code", "message_to_client",
 * "details"?}}`. Without `message_to_client` the error's `message` is used. Throws {@link ProtocolError}
 * when `error` is not an object with a string `code`: the reply is unusable.
 */
export function buildApplicationErrorReply(msgType: string, result: { error: unknown }): ApiReply {
  const { error } = result;
  if (!isJsonObject(error) || typeof error.code !== "string" || error.code === "") {
    throw new ProtocolError(`application error without a code: ${JSON.stringify(error)}`);
  }
  const message = error.message_to_client ?? error.message;
  return applicationError(msgType, error.code, typeof message === "string" ? message : "", error.details);
}
