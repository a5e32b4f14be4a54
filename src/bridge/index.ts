/**
 * `edge-wsproxy/bridge`: the Upstash-compatible REST bridge in front of a redis-server, for local
 * development and tests (Node only).
 *
 * ```ts
 * const bridge = await startBridge({ redisUrl: "redis://127.0.0.1:6379", token: "dev" });
 * // point the gateway's UPSTASH_REDIS_REST_URL at bridge.url, then: await bridge.close();
 * ```
 */
export {
  DEFAULT_BRIDGE_OPTIONS,
  resolveBridgeOptions,
  startBridge,
  type BridgeOptions,
  type RunningBridge,
} from "./server.js";
