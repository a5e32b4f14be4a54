/**
 * Server push and subscriptions (PROTOCOL.md section 7), deriv.com's shapes:
 *
 * - a request with `"subscribe": 1` whose reply carries a subscription id registers it on the connection
 *   ({@link registerSubscription}); its reply then carries `"subscription": {"id": "<id>"}`;
 * - a service pushes `{"subscription": "<id>", "data": ...}` (a frame of that subscription, built by
 *   {@link subscriptionFrame}) or `{"frame": {...}}` (a raw frame), parsed by {@link parsePushMessage};
 * - `forget` and `forget_all` are answered by the gateway itself ({@link PUSH_ACTIONS}).
 *
 * Portable: the connection keeps the subscriptions ({@link SubscriptionRegistry}); this file decides.
 */
import { SUBSCRIPTION_ID_PATTERN } from "../wire/index.js";
import { clientError } from "./errors.js";
import { addRequestData } from "./reply-sender.js";
import { getOwn, isJsonObject, setOwn } from "./safe-object.js";
import type {
  ActionOptions,
  Connection,
  JsonObject,
  Logger,
  RpcRequest,
  StoredSubscription,
} from "./types.js";

/** One pushed message, as a service posts it. */
export type PushMessage = { subscription: string; data: unknown } | { frame: JsonObject };

/** What a push answers: sent, bad body, unknown connection, gone, too large. */
export type PushStatus = 202 | 400 | 404 | 410 | 413;

/** What registering needs from the gateway's options. */
export interface SubscriptionSettings {
  /** `maxSubscriptionsPerConnection`. */
  maxPerConnection: number;
  /** `requestData`: keep `req_id`, `passthrough` and `echo_req` for the pushed frames. */
  requestData: boolean;
  sensitiveFields: ReadonlySet<string>;
}

/** True when the client asked for a subscription (`"subscribe": 1`, any truthy value). */
export function wantsSubscription(message: JsonObject): boolean {
  return Boolean(getOwn(message, "subscribe"));
}

/**
 * Registers the subscription the service opened for `req` (its reply carried `subscription.id`) and returns
 * the reply to send: `reply` plus `"subscription": {"id"}`. Nothing is registered when the request did not
 * ask to subscribe, the connection keeps no subscriptions or the reply is an error. Beyond
 * `maxSubscriptionsPerConnection`, or when the connection cannot store it, the client gets RateLimit
 * instead of the reply (and the service's next push gets 410).
 */
export function registerSubscription(
  conn: Connection,
  req: RpcRequest,
  reply: JsonObject,
  settings: SubscriptionSettings,
  logger: Logger,
): JsonObject {
  const id = req.subscriptionId;
  const registry = conn.subscriptions;
  if (!id || !registry || !wantsSubscription(req.args) || Object.hasOwn(reply, "error")) return reply;
  const withId = { ...reply, subscription: { id } };
  if (registry.get(id)) return withId;
  if (registry.count >= settings.maxPerConnection) {
    logger.warn(
      `connection ${conn.id}: subscription ${id} refused, maxSubscriptionsPerConnection (${settings.maxPerConnection}) reached`,
    );
    return clientError("RateLimit", req.msgType);
  }
  const subscription: StoredSubscription = { id, msgType: req.msgType, action: req.name };
  if (settings.requestData) {
    const data = addRequestData({}, req.args, settings.sensitiveFields);
    if (data.req_id !== undefined) subscription.reqId = data.req_id;
    if (data.passthrough !== undefined) subscription.passthrough = data.passthrough;
    subscription.echoReq = data.echo_req as JsonObject;
  }
  // The registry logs why it could not store it (the attachment's size limit).
  return registry.add(subscription) ? withId : clientError("RateLimit", req.msgType);
}

/**
 * The frame pushed for one subscription, before the send step:
 * `{"msg_type": M, M: data, "subscription": {"id"}}`; the subscribing request's data is added by the send
 * step from {@link pushedRequestData}.
 */
export function subscriptionFrame(subscription: StoredSubscription, data: unknown): JsonObject {
  const frame: JsonObject = { msg_type: subscription.msgType };
  setOwn(frame, subscription.msgType, data ?? null);
  frame.subscription = { id: subscription.id };
  return frame;
}

/** `req_id`, `passthrough` and `echo_req` of the subscribing request, as each pushed frame carries them. */
export function pushedRequestData(subscription: StoredSubscription): JsonObject {
  const data: JsonObject = {};
  if (subscription.reqId !== undefined) data.req_id = subscription.reqId;
  if (subscription.passthrough !== undefined) data.passthrough = subscription.passthrough;
  if (subscription.echoReq !== undefined) data.echo_req = subscription.echoReq;
  return data;
}

/**
 * Validates one pushed message: `{"subscription": "<id>", "data": <json>}` or `{"frame": {...}}`. Returns
 * the message, or a sentence saying what is wrong (the push then answers 400).
 */
export function parsePushMessage(body: unknown): PushMessage | string {
  if (!isJsonObject(body)) return "the body must be a JSON object";
  const hasFrame = Object.hasOwn(body, "frame");
  const hasSubscription = Object.hasOwn(body, "subscription");
  if (hasFrame === hasSubscription) return 'the body needs exactly one of "subscription" and "frame"';
  if (hasFrame) {
    return isJsonObject(body.frame) ? { frame: body.frame } : '"frame" must be a JSON object';
  }
  const id = body.subscription;
  if (typeof id !== "string" || !SUBSCRIPTION_ID_PATTERN.test(id)) {
    return '"subscription" must be a subscription id (1 to 64 of A-Z a-z 0-9 _ -)';
  }
  if (!Object.hasOwn(body, "data")) return 'a subscription frame needs "data"';
  return { subscription: id, data: body.data };
}

/**
 * The built-in actions answered by the gateway while push is on, with no backend and no Redis command;
 * their replies are built like any other (`req_id`, `passthrough`, `echo_req`):
 *
 * - `{"forget": "<id>"}` → `{"msg_type": "forget", "forget": 1}` (0 when no such subscription);
 * - `{"forget_all": "ticks"}` or `{"forget_all": ["ticks", ...]}` →
 *   `{"msg_type": "forget_all", "forget_all": ["<id>", ...]}`, matching the subscribing action's name or
 *   its `msg_type`.
 */
export const PUSH_ACTIONS: ReadonlyArray<[name: string, options: ActionOptions]> = Object.freeze([
  [
    "forget",
    {
      answerLocally: (req: RpcRequest, conn: Connection) => {
        const id = getOwn(req.args, "forget");
        return typeof id === "string" && conn.subscriptions?.remove(id) ? 1 : 0;
      },
    },
  ],
  [
    "forget_all",
    {
      answerLocally: (req: RpcRequest, conn: Connection) => {
        const requested = getOwn(req.args, "forget_all");
        const names = (Array.isArray(requested) ? requested : [requested]).filter(
          (name): name is string => typeof name === "string",
        );
        return conn.subscriptions?.removeMatching(new Set(names)) ?? [];
      },
    },
  ],
]);
