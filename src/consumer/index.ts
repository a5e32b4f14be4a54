/**
 * The backend service SDK: serve the gateway's category streams from Node.
 *
 * ```ts
 * const service = createRpcService({ redis: "redis://127.0.0.1:6379", handlers: { ping: () => "pong" } });
 * await service.start();
 * ```
 */
export { createRpcService, CONSUMER_GROUP, type RpcService } from "./service.js";
export {
  DEFAULT_RPC_SERVICE_OPTIONS,
  resolveRpcServiceOptions,
  defaultConsumerName,
  stderrLogger,
  type RpcServiceOptions,
  type ResolvedRpcServiceOptions,
  type RestConnection,
} from "./options.js";
export {
  createPusher,
  pushTo,
  PushError,
  PushGoneError,
  DEFAULT_PUSHER_OPTIONS,
  MAX_PUSH_BATCH,
  type Pusher,
  type PusherOptions,
  type PushCallOptions,
  type PushMessage,
  type BatchPushMessage,
  type BatchPushResult,
} from "./push.js";
export { SUBSCRIPTION_REGISTRATION_GRACE_MS, type Subscription } from "./subscription.js";
export type { RpcContext, RpcHandler, RpcHandlers, LogEntry, LogLevel, ServiceLogger } from "./types.js";
export {
  INTERNAL_ERROR_RESULT,
  INTERNAL_ERROR_MESSAGE,
  buildReplyPayload,
  parseRpcEntry,
} from "../wire/index.js";
export { createNativeTransport, type NativeTransportOptions } from "./native-transport.js";
export { createRestTransport, type RestTransportOptions } from "./rest-transport.js";
export {
  RedisReplyError,
  type ServiceTransport,
  type ServiceCommand,
  type WriteCommand,
} from "./transport.js";
