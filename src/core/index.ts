/**
 * The portable core of edge-wsproxy: decoding, the sanity check, dispatch, the hook pipeline, the RPC hook
 * orchestration shared by every backend, reply building and the per-connection limits. Imports nothing
 * platform-specific.
 */
export {
  createDispatcher,
  type Dispatcher,
  type DispatcherCounters,
  type DispatcherDeps,
  type FrameInfo,
} from "./dispatcher.js";
export {
  callRpc,
  buildCallParams,
  splitStashWrites,
  type CallRpcOptions,
  type RpcHookSet,
} from "./rpc-call.js";
export {
  buildApplicationErrorReply,
  buildSuccessReply,
  isApplicationError,
  type SuccessReply,
} from "./rpc-reply.js";
export {
  MAX_JSON_DEPTH,
  decodeFrame,
  decodeUtf8,
  stripBom,
  utf8ByteLength,
  type DecodeErrorCode,
  type DecodeResult,
} from "./decode.js";
export { createSanityCheck, type SanityFailure } from "./sanity.js";
export {
  addRequestData,
  createPushSender,
  createReplySender,
  type PushOutcome,
  type SendPush,
  type SendReply,
} from "./reply-sender.js";
export {
  PUSH_ACTIONS,
  parsePushMessage,
  pushedRequestData,
  registerSubscription,
  subscriptionFrame,
  wantsSubscription,
  type PushMessage,
  type PushStatus,
  type SubscriptionSettings,
} from "./subscriptions.js";
export { buildRequest, findAction } from "./request.js";
export { consoleLogger, hookList, runHook, type HookSetting } from "./hooks.js";
export {
  createMemoryConnection,
  type MemoryConnection,
  type MemoryConnectionInit,
} from "./memory-connection.js";
export { PROTOTYPE_KEYS, isJsonObject, withoutPrototypeKeys } from "./safe-object.js";
export {
  createConnectionLimits,
  POLICY_VIOLATION_CLOSE,
  type ConnectionLimits,
  type ConnectionLimitSettings,
  type LimitUsage,
} from "./limits.js";
export * from "./errors.js";
export * from "./options.js";
export type * from "./types.js";
