/**
 * The one send step every reply goes through (PROTOCOL.md 1.2):
 *
 * 1. nothing is sent to a closed connection;
 * 2. `beforeSendApiResponse` hooks (global; may change the reply in place);
 * 3. request data, when `requestData` is on: `req_id` and `passthrough` copied when the request had them,
 *    `echo_req` = the request minus `sensitiveFields`;
 * 4. the serialised reply is measured in UTF-8 bytes; above `maxResponseBytes` it becomes ResponseTooLarge
 *    (still with `req_id`, so the client can match it);
 * 5. `conn.sendText` / `conn.sendJson`;
 * 6. `afterSentApiResponse` hooks.
 */
import { clientError, errorToReply } from "./errors.js";
import { utf8ByteLength } from "./decode.js";
import { hookList, runHook } from "./hooks.js";
import type { ResolvedGatewayOptions } from "./options.js";
import { copyWithout, getOwn, isJsonObject, setOwn } from "./safe-object.js";
import type { ClientMessage, Connection, JsonObject, Logger } from "./types.js";

/** Sends `reply` to `conn` as the answer to `message` (undefined when the frame could not be decoded). */
export type SendReply = (
  conn: Connection,
  message: ClientMessage | undefined,
  reply: JsonObject,
) => Promise<void>;

/** Builds the send step for one gateway configuration. */
export function createReplySender(options: ResolvedGatewayOptions, logger: Logger): SendReply {
  const sensitive = new Set(options.sensitiveFields);
  const withRequestData = (frame: JsonObject, message: ClientMessage | undefined): JsonObject =>
    options.requestData && message ? addRequestData(frame, message, sensitive) : frame;

  return async (conn, message, reply) => {
    if (!conn.isOpen) return;
    // A copy, so a hook that returns a shared constant never has req_id or echo_req written into it.
    let frame: JsonObject = { ...reply };
    try {
      for (const hook of hookList(options.beforeSendApiResponse)) {
        await runHook("beforeSendApiResponse", options.hookTimeoutMs, () => hook(conn, message, frame));
      }
    } catch (error) {
      logger.error("beforeSendApiResponse failed; sending an error instead", error);
      frame = errorToReply(error, typeof frame.msg_type === "string" ? frame.msg_type : "error");
    }
    frame = withRequestData(frame, message);
    let text = serialise(frame, logger);
    if (text === undefined || utf8ByteLength(text) > options.maxResponseBytes) {
      const replacement = text === undefined ? clientError("WrongResponse") : clientError("ResponseTooLarge");
      frame = withRequestId(replacement, options.requestData ? message : undefined);
      text = JSON.stringify(frame);
    }
    if (!conn.isOpen) return;
    transmit(conn, frame, text, logger);
    for (const hook of hookList(options.afterSentApiResponse)) {
      await runHook("afterSentApiResponse", options.hookTimeoutMs, () => hook(conn, message, frame)).catch(
        (error: unknown) => logger.error("afterSentApiResponse failed", error),
      );
    }
  };
}

/**
 * Adds `req_id`, `passthrough` and `echo_req` to a copy of `frame`. Sensitive fields are removed from
 * `echo_req` at the top level and one level down (the depth the sanity check inspects), e.g. both
 * `{"password": ...}` and `{"change_password": {"password": ...}}`.
 */
export function addRequestData(
  frame: JsonObject,
  message: ClientMessage,
  sensitiveFields: ReadonlySet<string>,
): JsonObject {
  const out: JsonObject = { ...frame };
  for (const key of ["req_id", "passthrough"]) {
    if (getOwn(message, key) !== undefined) setOwn(out, key, message[key]);
  }
  const echo = copyWithout(message, (key) => sensitiveFields.has(key));
  for (const [key, value] of Object.entries(echo)) {
    if (isJsonObject(value))
      setOwn(
        echo,
        key,
        copyWithout(value, (nested) => sensitiveFields.has(nested)),
      );
  }
  setOwn(out, "echo_req", echo);
  return out;
}

/** `echo_req` is left out here: the request itself may be what made the reply too large. */
function withRequestId(replacement: JsonObject, message: ClientMessage | undefined): JsonObject {
  const frame: JsonObject = { ...replacement };
  if (message && getOwn(message, "req_id") !== undefined) setOwn(frame, "req_id", message.req_id);
  return frame;
}

function serialise(frame: JsonObject, logger: Logger): string | undefined {
  try {
    return JSON.stringify(frame);
  } catch (error) {
    // A hook built a reply JSON cannot carry (a cycle, a BigInt); the client gets WrongResponse instead.
    logger.error("reply could not be serialised", error);
    return undefined;
  }
}

function transmit(conn: Connection, frame: JsonObject, text: string, logger: Logger): void {
  try {
    if (conn.sendText) conn.sendText(text);
    else conn.sendJson(frame);
  } catch (error) {
    // The socket closed between the isOpen check and the send; there is no one left to tell.
    logger.warn(`send to connection ${conn.id} failed`, error);
  }
}
