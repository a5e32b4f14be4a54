/**
 * The reply payload (PROTOCOL.md 4): a service builds it and pushes it on the caller's reply key (or
 * publishes it on the reply channel); the gateway pops it and validates it.
 */
import { isJsonObject } from "./json.js";
import { ProtocolError } from "./protocol-error.js";

/**
 * Builds a service's reply to one entry:
 *
 * ```json
 * {"message_id":"7","response":{"result":{"ping":"pong"},"timestamp":1764170000.123}}
 * ```
 *
 * A missing result (`undefined`) is sent as `null`; `timestamp` is epoch seconds with milliseconds.
 */
export function buildReplyPayload(
  messageId: string,
  result: unknown,
  nowMs = Date.now(),
  extra: ReplyExtra = {},
): string {
  return JSON.stringify({
    message_id: messageId,
    response: { result: result ?? null, timestamp: nowMs / 1000 },
    ...(extra.subscriptionId === undefined ? {} : { subscription: { id: extra.subscriptionId } }),
  });
}

/**
 * Several replies to one reply channel as one published message (PROTOCOL.md 4, batched publish): a JSON
 * array of reply payloads, `[{"message_id":"7",...},{"message_id":"8",...}]`. A service sends it only to
 * gateways that accept it (`replyMode: "publish-batch"`); a single reply is always published on its own,
 * byte for byte what {@link buildReplyPayload} made, as Perl-era services publish.
 */
export function buildReplyBatch(payloads: readonly string[]): string {
  return payloads.length === 1 ? (payloads[0] as string) : `[${payloads.join(",")}]`;
}

/**
 * Parses one published message: a single reply, or a batch of them ({@link buildReplyBatch}). Each element
 * comes back as its reply or as the {@link ReplyFormatError} it failed with, so one unusable reply in a
 * batch fails only its own request. A message that is not JSON at all is one error.
 */
export function parsePublishedReplies(raw: string): Array<ReplyMessage | ReplyFormatError> {
  let decoded: unknown;
  try {
    decoded = JSON.parse(raw);
  } catch (error) {
    return [new ReplyFormatError("reply is not JSON", undefined, { cause: error })];
  }
  const items = Array.isArray(decoded) ? decoded : [decoded];
  return items.map((item: unknown) => {
    try {
      return parseReplyValue(item);
    } catch (error) {
      if (error instanceof ReplyFormatError) return error;
      throw error;
    }
  });
}

/** What a reply may carry besides its response. */
export interface ReplyExtra {
  /**
   * The subscription the handler opened for a `"subscribe": 1` request: written as
   * `"subscription": {"id": "<id>"}` next to `response`, where gateways that know no push ignore it.
   */
  subscriptionId?: string;
}

/** Subscription ids a gateway accepts from a service. */
export const SUBSCRIPTION_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** A service's response as the gateway hands it to the core. */
export type ReplyResponse =
  { result: unknown; timestamp?: number } | { error: { code: string; message: string } };

/** A reply as read from the reply key, validated. */
export interface ReplyMessage {
  /** Always a string: `7` and `"7"` name the same request. */
  messageId: string;
  /** The service's response, handed to the core unchanged. */
  response: ReplyResponse;
  /** The `who` the service echoed, when it did (a reply that names another key is foreign). */
  who?: string;
  /** The subscription the service opened (`subscription.id`), when it is a valid id. */
  subscriptionId?: string;
}

/**
 * Parses one reply popped from the reply key. Accepted shapes (other fields are ignored):
 *
 * ```json
 * {"message_id":"7","response":{"result":{"ping":"pong"},"timestamp":1764170000.123}}
 * {"message_id":7,"response":{"error":{"code":"InternalServerError","message":"boom"}}}
 * ```
 *
 * Throws {@link ReplyFormatError} (with the `messageId` when one could be read, so the request can fail
 * fast instead of timing out) for anything else.
 */
export function parseReply(raw: string): ReplyMessage {
  let decoded: unknown;
  try {
    decoded = JSON.parse(raw);
  } catch (error) {
    throw new ReplyFormatError("reply is not JSON", undefined, { cause: error });
  }
  return parseReplyValue(decoded);
}

/** {@link parseReply} after `JSON.parse`. */
function parseReplyValue(decoded: unknown): ReplyMessage {
  if (!isJsonObject(decoded)) throw new ReplyFormatError("reply is not a JSON object");
  const rawId = decoded.message_id;
  if (typeof rawId !== "string" && typeof rawId !== "number") {
    throw new ReplyFormatError("reply has no message_id");
  }
  const messageId = String(rawId);
  const who = typeof decoded.who === "string" ? decoded.who : undefined;
  const reply: ReplyMessage = { messageId, response: parseResponse(decoded.response, messageId), who };
  const subscriptionId = isJsonObject(decoded.subscription) ? decoded.subscription.id : undefined;
  if (typeof subscriptionId === "string" && SUBSCRIPTION_ID_PATTERN.test(subscriptionId)) {
    reply.subscriptionId = subscriptionId;
  }
  return reply;
}

function parseResponse(response: unknown, messageId: string): ReplyResponse {
  if (!isJsonObject(response)) throw new ReplyFormatError("reply has no response object", messageId);
  if ("error" in response && response.error !== undefined && response.error !== null) {
    const error = response.error;
    if (!isJsonObject(error)) throw new ReplyFormatError("response.error is not an object", messageId);
    return {
      error: { code: String(error.code ?? "InternalServerError"), message: String(error.message ?? "") },
    };
  }
  if (!("result" in response)) throw new ReplyFormatError("response has neither result nor error", messageId);
  const timestamp = typeof response.timestamp === "number" ? response.timestamp : undefined;
  return timestamp === undefined ? { result: response.result } : { result: response.result, timestamp };
}

/** An unusable reply; carries the `message_id` when it could be read. */
export class ReplyFormatError extends ProtocolError {
  constructor(
    message: string,
    readonly messageId?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** One event of the reply channel's server-sent event stream, as {@link parseSubscriptionEvent} reads it. */
export type SubscriptionEvent =
  | { kind: "subscribed" }
  | { kind: "message"; payload: string }
  /** Anything else (another channel, `unsubscribe`, a type this gateway does not use): ignored. */
  | { kind: "other" };

/**
 * Parses the `data` of one event of Upstash's `/subscribe/<channel>` stream (what `@upstash/redis` reads;
 * the payload is everything after the second comma, byte for byte, so it may itself hold commas):
 *
 * ```text
 * subscribe,wsp:reply:obj:1f2e3d4c5b6a7980,1
 * message,wsp:reply:obj:1f2e3d4c5b6a7980,{"message_id":"7","response":{"result":"pong"}}
 * ```
 *
 * The channel is matched as a whole prefix rather than split at a comma, so a `streamPrefix` with a
 * comma in it cannot shift the payload.
 */
export function parseSubscriptionEvent(data: string, channel: string): SubscriptionEvent {
  if (data.startsWith(`message,${channel},`)) {
    return { kind: "message", payload: data.slice(`message,${channel},`.length) };
  }
  if (data.startsWith(`subscribe,${channel},`)) return { kind: "subscribed" };
  return { kind: "other" };
}
