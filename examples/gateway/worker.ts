/**
 * The example deployment: the gateway wired to the example service's actions
 * (`examples/example-service.ts`). Adding an action is one line in `actions`. The top-level wrangler.toml
 * deploys it; it imports the package by name, as a deployment of your own would.
 *
 * Vars (wrangler.toml `[vars]`, `.dev.vars`, or the dev stack): `UPSTASH_REDIS_REST_URL`,
 * `UPSTASH_REDIS_REST_TOKEN` (a secret), `RPC_QUEUE_RESPONSE_TIMEOUT`, `REPLY_TRANSPORT` (`poll`, the
 * default, or `subscribe` for services that `PUBLISH` their replies; read by the backend itself), and
 * for this example `QUEUE_SEPARATION_ENABLED` ("1" sends `slow` to its own `slow` stream) and `CATEGORY_TIMEOUT_CONFIG`
 * (`general:5,slow:2` or the same as JSON).
 */
import { ConfigError, createGateway, type GatewayEnv } from "edge-wsproxy";

export type { BackendSetting, CreateGatewayOptions, GatewayEnv } from "edge-wsproxy";

const gateway = createGateway({
  actions: [
    ["ping"],
    ["time"],
    ["echo"],
    ["slow", { category: "slow" }],
    ["fail"],
    ["app_error"],
    // The stash keys the service's `login` result may write; no other action writes any.
    ["login", { stashWrites: ["loginid", "token", "scopes"] }],
    // Sends the stash values `login` stored; the service sees them next to `args`.
    ["whoami", { stashParams: ["loginid", "scopes"] }],
    // With "subscribe": 1 the service pushes a tick every 100 ms until the client sends {"forget": id}.
    ["ticks", { msgType: "tick" }],
  ],
  // The playground at `/` (off by default in createGateway): the local stack's page to try each action.
  playground: {
    examples: {
      ping: { ping: 1 },
      time: { time: 1 },
      echo: { echo: 1, text: "hello", passthrough: { note: "comes back with the reply" } },
      slow: { slow: 1, ms: 500 },
      fail: { fail: 1 },
      app_error: { app_error: "bad value" },
      login: { login: "any-token" },
      whoami: { whoami: 1 },
      ticks: { ticks: "R_100", subscribe: 1 },
    },
  },
  backends: {
    default: (env) => ({
      type: "consumer_groups",
      queueSeparationEnabled: env.QUEUE_SEPARATION_ENABLED === "1" || env.QUEUE_SEPARATION_ENABLED === "true",
      categoryTimeoutConfig: categoryTimeouts(env),
      categories: ["general", "slow"],
    }),
  },
});

/** `CATEGORY_TIMEOUT_CONFIG` as JSON (`{"general":5,"slow":2}`) or a list (`general:5,slow:2`). */
function categoryTimeouts(env: GatewayEnv): Record<string, number> {
  const raw = env.CATEGORY_TIMEOUT_CONFIG;
  if (typeof raw !== "string" || raw.trim() === "") return {};
  if (raw.trim().startsWith("{")) {
    try {
      return JSON.parse(raw) as Record<string, number>;
    } catch {
      throw new ConfigError(`CATEGORY_TIMEOUT_CONFIG is not valid JSON: ${raw}`);
    }
  }
  const timeouts: Record<string, number> = {};
  for (const pair of raw.split(",")) {
    const [category, seconds] = pair.split(":").map((part) => part.trim());
    if (!category || !seconds || !Number.isFinite(Number(seconds))) {
      throw new ConfigError(`CATEGORY_TIMEOUT_CONFIG must look like general:5,slow:2, got ${raw}`);
    }
    timeouts[category] = Number(seconds);
  }
  return timeouts;
}

export default { fetch: gateway.fetch };
export const GatewayObject = gateway.GatewayObject;
