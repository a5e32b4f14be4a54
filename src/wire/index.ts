/**
 * The wire contract between the gateway and the services behind it, written once and imported by both
 * sides: the request entry on a category stream (write and parse), the reply payload (build and parse),
 * and the client error codes, texts and frames. It imports nothing of the project and nothing
 * platform-specific, only standard JavaScript.
 */
export { ProtocolError } from "./protocol-error.js";
export {
  entryFields,
  fieldsToObject,
  parseRpcEntry,
  type MalformedEntry,
  type RpcEntry,
  type StreamEntry,
} from "./stream-entry.js";
export {
  buildReplyBatch,
  buildReplyPayload,
  parsePublishedReplies,
  parseReply,
  parseSubscriptionEvent,
  ReplyFormatError,
  SUBSCRIPTION_ID_PATTERN,
  type ReplyExtra,
  type ReplyMessage,
  type ReplyResponse,
  type SubscriptionEvent,
} from "./reply.js";
export {
  applicationError,
  CLIENT_ERRORS,
  clientError,
  INTERNAL_ERROR_MESSAGE,
  INTERNAL_ERROR_RESULT,
  type ClientErrorCode,
  type ErrorReply,
} from "./client-errors.js";
