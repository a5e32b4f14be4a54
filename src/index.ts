/**
 * `edge-wsproxy`: the Worker side of the gateway, what a deployment imports.
 *
 * ```ts
 * import { createGateway } from "edge-wsproxy";
 * const gateway = createGateway({ actions: [["ping"], ["time"]] });
 * export default { fetch: gateway.fetch };
 * export const GatewayObject = gateway.GatewayObject;
 * ```
 *
 * Everything here runs on workerd: nothing Node-only (the service SDK is `edge-wsproxy/service`, the local
 * REST bridge `edge-wsproxy/bridge`).
 */
export {
  createGateway,
  randomShard,
  type BackendSetting,
  type CreateGatewayOptions,
  type Gateway,
  type GatewayEnv,
} from "./worker/gateway.js";
export type { GatewayDurableObject } from "./worker/gateway-object.js";
export { DEFAULT_UPGRADE_HEADERS } from "./worker/connection.js";
export { authorizationRequired, requireAuth, type RequireAuthOptions } from "./worker/security.js";
export { createJsonLogger, type GatewayLogger, type LogLevel } from "./worker/log.js";
export type { PlaygroundOptions } from "./worker/playground.js";
export * from "./backends/index.js";
export * from "./core/errors.js";
export {
  DEFAULT_GATEWAY_OPTIONS,
  type GatewayHooks,
  type GatewayOptions,
  type ResolvedGatewayOptions,
} from "./core/options.js";
export type * from "./core/types.js";
