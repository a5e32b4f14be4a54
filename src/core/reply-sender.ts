/**
 * The one send step every reply goes through (PROTOCOL.md 1.2):
 *
 * 1. nothing is sent to a closed connection;
 * 2. `beforeSendApiResponse` hooks (global; may change the reply in place);
 * 3. request data, when `requestData` is on: `req_id` and `passthrough` copied when the request had them,
 *    `echo_req` = the request with `sensitiveFields` masked as `"<not shown>"` at any depth;
 * 4. the serialised reply is measured in UTF-8 bytes; above `maxResponseBytes` it becomes ResponseTooLarge
 *    (still with `req_id`, so the client can match it); a pushed frame is not sent then (the push gets 413);
 * 5. `conn.sendText` / `conn.sendJson`;
 * 6. `afterSentApiResponse` hooks.
 */
import { clientError, errorToReply } from "./errors.js";
import { utf8ByteLength } from "./decode.js";
import { hookList, runHook } from "./hooks.js";
import type { ResolvedGatewayOptions } from "./options.js";
import { getOwn, isJsonObject, setOwn } from "./safe-object.js";
import type { ClientMessage, Connection, JsonObject, Logger, RpcRequest } from "./types.js";

/**
 * Sends `reply` to `conn` as the answer to `message` (undefined when the frame could not be decoded);
 * `request` is the request record of a dispatched message, handed to the send hooks.
 */
export type SendReply = (
  conn: Connection,
  message: ClientMessage | undefined,
  reply: JsonObject,
  request?: RpcRequest,
) => Promise<void>;

/** What became of one pushed frame. */
export type PushOutcome = "sent" | "closed" | "too-large";

/**
 * Sends a pushed frame to `conn` through the same send step: `beforeSendApiResponse` (with `message`, the
 * subscribing request's `echo_req`, or undefined for a raw frame), then the subscribing request's
 * `req_id`/`passthrough`/`echo_req` (`requestData`, added when the `requestData` option is on), the
 * `maxResponseBytes` check, the send, `afterSentApiResponse`. Unlike a reply, an oversized push is not
 * replaced by ResponseTooLarge: nothing is sent and the pusher is told ("too-large").
 */
export type SendPush = (
  conn: Connection,
  message: ClientMessage | undefined,
  frame: JsonObject,
  requestData: JsonObject,
) => Promise<PushOutcome>;

/** Builds the send step for one gateway configuration. */
export function createReplySender(options: ResolvedGatewayOptions, logger: Logger): SendReply {
  const sensitive = new Set(options.sensitiveFields);
  const deliver = createDelivery(options, logger);
  return async (conn, message, reply, request) => {
    await deliver(conn, message, reply, {
      request,
      addData: (frame) =>
        options.requestData && message ? addRequestData(frame, message, sensitive) : frame,
      oversize: (replacement) => replacement,
    });
  };
}

/** Builds the send step of pushed frames (see {@link SendPush}). */
export function createPushSender(options: ResolvedGatewayOptions, logger: Logger): SendPush {
  const deliver = createDelivery(options, logger);
  return (conn, message, frame, requestData) =>
    deliver(conn, message, frame, {
      addData: (built) => (options.requestData ? { ...built, ...requestData } : built),
      oversize: () => undefined,
    });
}

interface DeliveryRules {
  /** The request record handed to the send hooks (undefined before dispatch and for pushes). */
  request?: RpcRequest;
  /** Adds the request data to the frame the hooks returned. */
  addData: (frame: JsonObject) => JsonObject;
  /** What replaces an oversized frame, given the ResponseTooLarge error (undefined: send nothing). */
  oversize: (replacement: JsonObject) => JsonObject | undefined;
}

type Deliver = (
  conn: Connection,
  message: ClientMessage | undefined,
  reply: JsonObject,
  rules: DeliveryRules,
) => Promise<PushOutcome>;

function createDelivery(options: ResolvedGatewayOptions, logger: Logger): Deliver {
  return async (conn, message, reply, rules) => {
    if (!conn.isOpen) return "closed";
    // A copy, so a hook that returns a shared constant never has req_id or echo_req written into it.
    let frame: JsonObject = { ...reply };
    try {
      for (const hook of hookList(options.beforeSendApiResponse)) {
        await runHook("beforeSendApiResponse", options.hookTimeoutMs, () =>
          hook(conn, message, frame, rules.request),
        );
      }
    } catch (error) {
      logger.error("beforeSendApiResponse failed; sending an error instead", error);
      frame = errorToReply(error, typeof frame.msg_type === "string" ? frame.msg_type : "error");
    }
    frame = rules.addData(frame);
    let text = serialise(frame, logger);
    const requestOf = options.requestData ? message : undefined;
    if (text === undefined) {
      frame = withRequestId(clientError("WrongResponse"), requestOf);
      text = JSON.stringify(frame);
    } else if (utf8ByteLength(text) > options.maxResponseBytes) {
      const replacement = rules.oversize(withRequestId(clientError("ResponseTooLarge"), requestOf));
      if (!replacement) return "too-large";
      frame = replacement;
      text = JSON.stringify(frame);
    }
    if (!conn.isOpen) return "closed";
    transmit(conn, frame, text, logger);
    for (const hook of hookList(options.afterSentApiResponse)) {
      await runHook("afterSentApiResponse", options.hookTimeoutMs, () =>
        hook(conn, message, frame, rules.request),
      ).catch((error: unknown) => logger.error("afterSentApiResponse failed", error));
    }
    return "sent";
  };
}

/** What a sensitive field's value becomes in `echo_req` (deriv's wording). */
export const NOT_SHOWN = "<not shown>";

/**
 * Adds `req_id`, `passthrough` and `echo_req` to a copy of `frame`. `req_id` and `passthrough` are copied
 * when the request had them (`"req_id": null` counts as absent, as in Perl). In `echo_req`, the value of
 * every field named in `sensitiveFields` is replaced by `"<not shown>"`, at any depth and inside arrays:
 * `{"change_password": {"old_password": "x"}}` echoes `{"change_password": {"old_password": "<not shown>"}}`.
 */
export function addRequestData(
  frame: JsonObject,
  message: ClientMessage,
  sensitiveFields: ReadonlySet<string>,
): JsonObject {
  const out: JsonObject = { ...frame };
  for (const key of ["req_id", "passthrough"]) {
    const value = getOwn(message, key);
    if (value !== undefined && !(key === "req_id" && value === null)) setOwn(out, key, value);
  }
  const echo = sensitiveFields.size === 0 ? { ...message } : (masked(message, sensitiveFields) as JsonObject);
  setOwn(out, "echo_req", echo);
  return out;
}

/** A copy of `value` with the value of every sensitive key replaced by {@link NOT_SHOWN}. */
function masked(value: unknown, sensitiveFields: ReadonlySet<string>): unknown {
  if (Array.isArray(value)) return value.map((item) => masked(item, sensitiveFields));
  if (!isJsonObject(value)) return value;
  const copy: JsonObject = {};
  for (const [key, field] of Object.entries(value)) {
    setOwn(copy, key, sensitiveFields.has(key) ? NOT_SHOWN : masked(field, sensitiveFields));
  }
  return copy;
}

/** `echo_req` is left out here: the request itself may be what made the reply too large. */
function withRequestId(replacement: JsonObject, message: ClientMessage | undefined): JsonObject {
  const frame: JsonObject = { ...replacement };
  if (message && getOwn(message, "req_id") != null) setOwn(frame, "req_id", message.req_id);
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
