/**
 * `createGateway()`: the library entry. It returns the Worker (a Hono app) and the Durable Object class
 * for one configuration; a deployment exports both:
 *
 * ```ts
 * const gateway = createGateway({ actions: [["ping"], ["ticks", { category: "mt5" }]] });
 * export default gateway;               // { fetch }
 * export const GatewayObject = gateway.GatewayObject;
 * ```
 */
// The pattern router preset: the gateway has a handful of routes, and the default preset's two routers
// cost about 15 KiB more of bundle (4 KiB gzip) for speed it does not need.
import { Hono } from "hono/tiny";
import type { CreateGatewayOptions, GatewayEnv } from "./config.js";
import { CONFIG_ERROR_TEXT, configErrorReporter } from "./config-errors.js";
import { GatewayDurableObject, OBJECT_NAME_HEADER } from "./gateway-object.js";
import { checkHealth } from "./health.js";
import { localRedisRefusal } from "./local-redis.js";
import { metricsRefusal } from "./metrics-auth.js";
import { mountMetrics } from "./observability.js";
import { compileGateway, gatewayPlan } from "./plan.js";
import { listActions, mountPlayground } from "./playground.js";
import { mountPush } from "./push-routes.js";
import { originAllowed } from "./security.js";

export type { BackendSetting, CreateGatewayOptions, GatewayEnv } from "./config.js";
export { GATEWAY_DEFAULTS, randomShard } from "./plan.js";

/** What {@link createGateway} returns. */
export interface Gateway {
  /** The Worker's fetch handler (`export default gateway`). */
  fetch: (request: Request, env: GatewayEnv, ctx: ExecutionContext) => Response | Promise<Response>;
  /** The Hono app, to mount more routes (a playground page, say) before deploying. */
  app: Hono<{ Bindings: GatewayEnv }>;
  /** The Durable Object class; export it under the `class_name` of wrangler.toml. */
  GatewayObject: new (ctx: DurableObjectState, env: GatewayEnv) => GatewayDurableObject;
}

/** Builds the Worker and the Durable Object for `options`. Throws a ConfigError for invalid options. */
export function createGateway(options: CreateGatewayOptions): Gateway {
  // Fail at deploy/start-up for what does not depend on the env; the env's part is resolved once per env.
  const gateway = compileGateway(options);
  const { binding: bindingName, core } = gateway;

  const app = new Hono<{ Bindings: GatewayEnv }>();

  // Configuration errors (a local Redis URL on a gateway reached from outside, a missing variable): one
  // log line per isolate, not one per request, and never their text in a response.
  const reportConfigError = configErrorReporter();
  const refuseLocalRedis = (request: Request, env: GatewayEnv): string | undefined => {
    let refusal;
    try {
      refusal = localRedisRefusal(gatewayPlan(gateway, env).localRedis, request.url);
    } catch {
      return undefined; // a missing variable: reported by the checks below
    }
    if (refusal) reportConfigError(refusal, env);
    return refusal;
  };

  app.get("/health", async (c) => {
    const report = await checkHealth(gateway, c.env, c.req.url, (detail) => reportConfigError(detail, c.env));
    return c.json(report, report.ok ? 200 : 503);
  });
  if (gateway.metrics) {
    const namespaceOf = (env: GatewayEnv) => env[bindingName] as DurableObjectNamespace | undefined;
    app.get("/metrics", async (c, next) => (await metricsRefusal(gateway, c.env, c.req.raw)) ?? next());
    mountMetrics(app, gateway.metricsObjects, namespaceOf);
  }
  if (gateway.playground) {
    mountPlayground(app, listActions(core.actionTable, core.basePath, gateway.playground.examples));
  }

  if (gateway.push) mountPush(app, gateway, gateway.push, reportConfigError);

  // Perl's route took `/websockets/v3/` too; clients written for it keep their URL.
  const socketPaths = core.basePath.endsWith("/") ? [core.basePath] : [core.basePath, `${core.basePath}/`];
  app.on("ALL", socketPaths, async (c) => {
    if (c.req.method !== "GET" || c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      return c.text("Upgrade Required", 426, { upgrade: "websocket" });
    }
    if (!originAllowed(gateway.allowedOrigins, c.req.header("origin") ?? null)) {
      return c.text("Forbidden: this origin may not connect", 403);
    }
    try {
      gatewayPlan(gateway, c.env);
    } catch (error) {
      reportConfigError(error instanceof Error ? error.message : String(error), c.env);
      return c.json({ error: CONFIG_ERROR_TEXT }, 500);
    }
    // The detail is in the log line; a client learns only that the gateway cannot serve.
    if (refuseLocalRedis(c.req.raw, c.env)) return c.text("Service Unavailable", 503);
    const namespace = c.env[bindingName] as DurableObjectNamespace | undefined;
    if (!namespace || typeof namespace.idFromName !== "function") {
      reportConfigError(`Durable Object binding "${bindingName}" is missing: add it to wrangler.toml`, c.env);
      return c.json({ error: CONFIG_ERROR_TEXT }, 500);
    }
    const objectName = gateway.objectName(c.req.raw, c.env);
    const stub = namespace.get(namespace.idFromName(objectName));
    // The object puts its name into each connection's reference, so a push is routed without a lookup.
    const upgrade = new Request(c.req.raw);
    upgrade.headers.set(OBJECT_NAME_HEADER, objectName);
    return stub.fetch(upgrade);
  });

  class GatewayObject extends GatewayDurableObject {
    constructor(ctx: DurableObjectState, env: GatewayEnv) {
      super(ctx, env, gateway);
    }
  }

  return { fetch: (request, env, ctx) => app.fetch(request, env, ctx), app, GatewayObject };
}
