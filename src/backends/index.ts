/**
 * The gateway's backends and the `{type, ...options}` configuration that builds them.
 */
import { ConfigError } from "../core/errors.js";
import { isJsonObject } from "../core/safe-object.js";
import type { Backend } from "../core/types.js";
import { ConsumerGroupsBackend } from "./consumer-groups.js";
import type { ConsumerGroupsOptions } from "./consumer-groups-options.js";
import { JsonRpcBackend, type JsonRpcOptions } from "./jsonrpc.js";

export { ConsumerGroupsBackend, type ConsumerGroupsStats } from "./consumer-groups.js";
export {
  DEFAULT_CATEGORY,
  DEFAULT_CONSUMER_GROUPS_OPTIONS,
  resolveConsumerGroupsOptions,
  type ConsumerGroupsOptions,
  type ReplyTransport,
} from "./consumer-groups-options.js";
export {
  DEFAULT_JSONRPC_OPTIONS,
  JsonRpcBackend,
  resolveJsonRpcOptions,
  type JsonRpcOptions,
  type JsonRpcUrl,
} from "./jsonrpc.js";
export {
  createRedisPort,
  type RedisCommands,
  type RedisObserver,
  type RedisPort,
  type RedisPortSettings,
} from "./redis-port.js";
export { ReplyInbox, type ReplyInboxStats } from "./reply-inbox.js";
export { ReplyPoller, type ReplyPollerOptions } from "./reply-poller.js";
export type { ReplyReceiver, ReplyReceiverStats, ReplySubscriptionStats } from "./reply-receiver.js";
export { ReplySubscriber, type ReplySubscriberSettings } from "./reply-subscriber.js";
export { parseReply, entryFields, type ReplyMessage, type StreamEntry } from "../wire/index.js";

/** One entry of `backends`: the backend type and its options. */
export type BackendConfig =
  | ({ type: "consumer_groups" } & ConsumerGroupsOptions)
  | ({ type: "jsonrpc" } & JsonRpcOptions)
  /** No `type` with a `url`: JSON-RPC, the Perl plugin's default backend. */
  | ({ type?: undefined } & JsonRpcOptions)
  /** Any object implementing {@link Backend}, built by you. */
  | { type: "custom"; backend: Backend };

/** Builds a backend from its configuration; throws {@link ConfigError} for an unknown `type`. */
export function createBackend(name: string, config: BackendConfig): Backend {
  if (config.type === undefined && isJsonObject(config) && config.url !== undefined) {
    const { type: _type, ...options } = config;
    return new JsonRpcBackend(options);
  }
  switch (config.type) {
    case "consumer_groups": {
      const { type: _type, ...options } = config;
      return new ConsumerGroupsBackend(options);
    }
    case "jsonrpc": {
      const { type: _type, ...options } = config;
      return new JsonRpcBackend(options);
    }
    case "custom":
      return config.backend;
    default:
      throw new ConfigError(
        `\`backends.${name}.type\` must be "consumer_groups", "jsonrpc" or "custom", got ${JSON.stringify(
          (config as { type?: unknown }).type,
        )}`,
      );
  }
}
