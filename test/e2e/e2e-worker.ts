/**
 * The Worker of the end-to-end hook, fault and security tests.
 *
 * `/websockets/v3`: the example service's actions with limits small enough to reach every gateway error
 * of PROTOCOL.md 1.3 over the real stack (Timeout, ResponseTooLarge), one object for all connections so
 * the tests can count its Redis commands, a `patient` backend (6 s) for work that must outlive a service
 * crash, and debug actions answered by the object itself (`backend_stats`, `restart_object`).
 *
 * `/secure/websockets/v3`: the security example: `requireAuth` (a `?token=` or `Authorization` header,
 * or `login` as the first message), an origin allow-list, and at most 3 connections per object
 * (`?object=<name>` picks the object).
 */
import { DEFAULT_UPGRADE_HEADERS } from "../../src/worker/connection.js";
import { createGateway, type GatewayEnv } from "../../src/worker/gateway.js";
import type { GatewayDurableObject } from "../../src/worker/gateway-object.js";
import { requireAuth } from "../../src/worker/security.js";

/** The message of the ConfigError a configuration written with Perl's option names gets, if any. */
function perlNamesRefusal(): string | null {
  try {
    createGateway({ actions: [["whoami", { stash_params: ["loginid"] }]], backends: {} });
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/** The current incarnation of the one object of `/websockets/v3`, for the debug actions. */
const current: { object?: GatewayDurableObject & { restart(): void } } = {};

const gateway = createGateway({
  actions: [
    ["ping"],
    ["echo"],
    ["slow"],
    ["login", { stashWrites: ["loginid", "token", "scopes"] }],
    ["whoami", { stashParams: ["loginid"] }],
    // A beforeForward hook slower than hookTimeoutMs: the client gets Timeout.
    ["stall", { beforeForward: () => new Promise((resolve) => setTimeout(() => resolve(undefined), 2_000)) }],
    // Fault actions, served by test/e2e/fault-service.ts.
    ["hold", { backend: "patient" }],
    ["crash", { backend: "patient" }],
    ["stubborn"],
    // Returns the frame, `stash` included (test/e2e/abuse.test.ts): no stashWrites, so it writes nothing.
    ["reflect"],
    // This incarnation's backend counters (late, duplicate, foreign replies...) and reply keys.
    [
      "backend_stats",
      {
        insteadOfForward: () => ({
          msg_type: "backend_stats",
          backend_stats: current.object?.backendStats(),
        }),
      },
    ],
    // Resets the object (`ctx.abort`) as a crash would: its sockets drop (1006), the next upgrade runs a new incarnation.
    ["restart_object", { insteadOfForward: () => current.object?.restart() }],
    // Perl's hook semantics (test/e2e/perl-hooks.test.ts), on the `perl` backend (queue separation on,
    // a 2 s timeout; nothing reads the `unread` stream).
    // deriv's active queues: a hook that deletes the category sends the call to `general`.
    [
      "active_queue",
      {
        backend: "perl",
        category: "unread",
        beforeForward: (_conn, req) => {
          req.method = "ping";
          if (req.args.general) delete req.category;
        },
      },
    ],
    // A hook shortens this request's wait (Perl's rpc_timeout_extend_offset on the request): 2 s - 1.8 s.
    [
      "hurried",
      {
        backend: "perl",
        beforeForward: (_conn, req) => {
          req.method = "slow";
          if (req.args.hurry) req.rpc_timeout_extend_offset = -1.8;
        },
      },
    ],
    // The response hook's return is the reply; null sends nothing.
    [
      "shaped",
      {
        beforeForward: (_conn, req) => void (req.method = "ping"),
        response: (_conn, req, reply) => (req.args.drop ? null : { ...reply, shaped: true }),
      },
    ],
    // Perl's call_rpc: another method with its own args and msg_type.
    [
      "via_call_rpc",
      {
        insteadOfForward: (_conn, req) =>
          req.callRpc?.({ method: "echo", args: { echo: { from: "via_call_rpc" } }, msgType: "called" }),
      },
    ],
    // Whether a Perl-named option made createGateway refuse the configuration (and with what message).
    ["perl_names", { insteadOfForward: () => ({ msg_type: "perl_names", perl_names: perlNamesRefusal() }) }],
  ],
  backends: {
    default: { type: "consumer_groups" },
    patient: { type: "consumer_groups", timeout: 6 },
    perl: {
      type: "consumer_groups",
      timeout: 2,
      queueSeparationEnabled: true,
      categories: ["general", "unread"],
    },
  },
  hookTimeoutMs: 300,
  maxResponseBytes: 4_000,
  objectName: () => "e2e",
  metricsObjects: ["e2e"],
});

const secure = createGateway({
  basePath: "/secure/websockets/v3",
  binding: "SECURE",
  actions: [
    ["ping"],
    ["login", { stashWrites: ["loginid", "token", "scopes"] }],
    ["echo"],
    ["whoami", { stashParams: ["loginid"] }],
  ],
  beforeForward: requireAuth({
    verify: (token) => (token === "good-token" ? "CR-TOKEN" : undefined),
    stashKey: "loginid",
    unauthenticatedActions: ["ping", "login"],
  }),
  upgradeHeaders: [...DEFAULT_UPGRADE_HEADERS, "authorization"],
  allowedOrigins: ["https://app.example.com"],
  maxConnectionsPerObject: 3,
  objectName: (request) => new URL(request.url).searchParams.get("object") ?? "secure",
});

/**
 * `/abuse/websockets/v3`: the abuse suite's gateway (abuse-admission.test.ts): per-address caps small enough to
 * reach with a few sockets, `?object=<name>` picks the object.
 */
const abuse = createGateway({
  basePath: "/abuse/websockets/v3",
  binding: "ABUSE",
  actions: [["ping"], ["echo"], ["local", { insteadOfForward: () => ({ msg_type: "local", local: 1 }) }]],
  maxConnectionsPerObject: 40,
  maxConnectionsPerAddress: 10,
  maxFramesPerSecondPerAddress: 100,
  objectName: (request) => new URL(request.url).searchParams.get("object") ?? "abuse",
  metricsObjects: ["abuse-connections", "abuse-frames"],
});

/**
 * `wrangler dev` does not pass a client's `cf-connecting-ip` through, so the abuse suite names its
 * source in `x-test-client-ip`, set here as Cloudflare's edge sets the real header in production.
 */
function asFromClientAddress(request: Request): Request {
  const address = request.headers.get("x-test-client-ip");
  if (!address) return request;
  const headers = new Headers(request.headers);
  headers.set("cf-connecting-ip", address);
  return new Request(request, { headers });
}

export default {
  fetch: (request: Request, env: GatewayEnv, ctx: ExecutionContext) => {
    const { pathname } = new URL(request.url);
    if (pathname.startsWith("/secure/")) return secure.fetch(request, env, ctx);
    // The abuse gateway's own `/metrics`, at `/abuse/metrics`.
    if (pathname === "/abuse/metrics") {
      return abuse.fetch(new Request(request.url.replace("/abuse/metrics", "/metrics"), request), env, ctx);
    }
    if (pathname.startsWith("/abuse/")) return abuse.fetch(asFromClientAddress(request), env, ctx);
    return gateway.fetch(request, env, ctx);
  },
};

/** The object of `/websockets/v3`; it registers itself for the debug actions. */
export class GatewayObject extends gateway.GatewayObject {
  constructor(ctx: DurableObjectState, env: GatewayEnv) {
    super(ctx, env);
    current.object = this;
  }

  /** Resets this object as a crash would: the next event constructs a new incarnation. */
  restart(): void {
    this.ctx.abort("restart_object: reset requested by a test");
  }
}

export const SecureGatewayObject = secure.GatewayObject;

export const AbuseGatewayObject = abuse.GatewayObject;
