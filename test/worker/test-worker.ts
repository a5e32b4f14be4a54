/**
 * The Worker under test in the workers pool: the real gateway (Hono app + Durable Object) with a
 * consumer-groups backend on the in-memory {@link FakeRedis}, and a JSON-RPC backend answered by a local
 * function. Each test picks its own object with `?object=<name>`.
 */
import { buildReplyPayload } from "../../src/wire/index.js";
import { createGateway } from "../../src/worker/gateway.js";
import { FakeRedis, serveFake } from "./fake-redis.js";

/** The fake Redis every object of this Worker uses; tests inspect and reset it. */
export const fakeRedis = new FakeRedis();

serveFake(fakeRedis, {
  ping: () => "pong",
  // `{"login": ..., "loginid": "CR9", "profileBytes": 3000}` logs in as CR9 with a stash that large.
  login: (params) => {
    const { loginid = "CR1", profileBytes } = params.args as { loginid?: string; profileBytes?: number };
    const profile = profileBytes ? { profile: "x".repeat(profileBytes) } : {};
    return { login: { loginid }, stash: { loginid, scopes: ["read"], ...profile } };
  },
  whoami: (params) => ({ loginid: params.loginid ?? null, scopes: params.scopes ?? null }),
  slow: () => ({ done: true }),
});

// push.test.ts: `ticks` answers with a first tick and, with `"subscribe": 1`, opens a subscription (the
// reply carries `subscription.id`, as the service SDK writes it); `{"id": "<id>"}` in args picks the id.
const serveListed = fakeRedis.onEntry;
fakeRedis.onEntry = (entry) => {
  if (entry.fields.rpc !== "ticks") return serveListed?.(entry);
  const { args } = JSON.parse(entry.fields.args ?? "{}") as { args: Record<string, unknown> };
  const id = typeof args.id === "string" ? args.id : crypto.randomUUID().replaceAll("-", "");
  const tick = { symbol: args.ticks, quote: 100, epoch: 1_764_170_000, id };
  const extra = args.subscribe ? { subscriptionId: id } : {};
  setTimeout(() => {
    const payload = buildReplyPayload(entry.fields.message_id ?? "", tick, Date.now(), extra);
    fakeRedis.push(entry.fields.who ?? "", payload);
  }, 1);
};

/** A JSON-RPC service as a plain function: `POST /rpc/<method>`. */
async function jsonRpcService(request: Request): Promise<Response> {
  const body = (await request.json()) as {
    id: string;
    method: string;
    params: { args: Record<string, unknown> };
  };
  const method = new URL(request.url).pathname.replace("/rpc/", "");
  if (method === "rpc_broken") return new Response("oops", { status: 500 });
  if (method === "rpc_error") {
    return Response.json({ jsonrpc: "2.0", id: body.id, error: { code: -32000, message: "it failed" } });
  }
  return Response.json({
    jsonrpc: "2.0",
    id: body.id,
    result: { method: body.method, echo: body.params.args },
  });
}

const gateway = createGateway({
  actions: [
    ["ping"],
    ["login", { stashWrites: ["loginid", "scopes", "profile"] }],
    ["whoami", { stashParams: ["loginid", "scopes"] }],
    ["slow"],
    ["never"],
    ["local", { insteadOfForward: () => ({ msg_type: "local", local: "answered in the object" }) }],
    ["heartbeat", { answerLocally: async () => "pong" }],
    ["rpc_echo", { backend: "http" }],
    ["rpc_error", { backend: "http" }],
    ["rpc_broken", { backend: "http" }],
    ["ticks", { msgType: "tick" }],
  ],
  maxSubscriptionsPerConnection: 3,
  maxPushBodyBytes: 700_000,
  maxMessageBytes: 1024,
  backends: {
    default: { type: "consumer_groups", redis: fakeRedis, timeout: 0.5 },
    http: { type: "jsonrpc", url: "http://rpc.internal/rpc/", fetch: jsonRpcService },
  },
  objectName: (request) => new URL(request.url).searchParams.get("object") ?? "default",
  // observability.test.ts: `/metrics` sums these two objects; the playground page with one example.
  metricsObjects: ["metrics-a", "metrics-b"],
  playground: { examples: { ping: { ping: 1, passthrough: { from: "example" } } } },
  // admission.test.ts: per-address caps small enough to reach (upgrades without cf-connecting-ip: no cap).
  maxConnectionsPerAddress: 3,
  maxFramesPerSecondPerAddress: 20,
  // worker.test.ts counts the PINGs of each `/health` (the cache has its own test: health-cache.test.ts).
  healthCacheMs: 0,
});

/**
 * push.test.ts (`?gateway=secret`): the same objects behind a Worker that requires a push secret; only its
 * push routes are used.
 */
const secretGateway = createGateway({
  actions: [["ticks", { msgType: "tick" }]],
  backends: { default: { type: "consumer_groups", redis: fakeRedis } },
  pushSecret: "push-secret-for-tests",
});

/** local-redis.test.ts (`?gateway=env`): the Redis URL and token from the Worker's vars, as deployed. */
const envGateway = createGateway({ actions: [["ping"]], binding: "ENV_GATEWAY" });

export default {
  fetch: (request: Request, env: Record<string, unknown>, ctx: ExecutionContext) => {
    const which = new URL(request.url).searchParams.get("gateway");
    if (which === "env") return envGateway.fetch(request, env, ctx);
    return (which === "secret" ? secretGateway : gateway).fetch(request, env, ctx);
  },
};
export const GatewayObject = gateway.GatewayObject;
export const EnvGatewayObject = envGateway.GatewayObject;
