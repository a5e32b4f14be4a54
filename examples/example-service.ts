/**
 * The example backend service: one handler per behaviour a gateway test or a new user wants to see.
 * Run it with `npm run service -- --redis redis://127.0.0.1:6379`.
 *
 * `params.args` is the client's whole frame, e.g. `{"echo": {"hello": 1}, "req_id": 3}`.
 */
import type { RpcContext, RpcHandlers } from "edge-wsproxy/service";

/** The example handlers, by method name. */
export const handlers: RpcHandlers = {
  ping: () => "pong",

  time: () => Math.floor(Date.now() / 1000),

  /**
   * Returns the request, less any `stash` key: a result's `stash` is merged into the connection's
   * server-side stash, so echoing one from the client would let it forge stash values.
   */
  echo: (params) => withoutKey(params.args, "stash"),

  /** Waits `args.ms` (at most 60 s), stopping early when the request's deadline passes. */
  slow: async (params, ctx) => {
    const ms = Math.min(Math.max(Number(argsOf(params).ms) || 0, 0), 60_000);
    await delay(ms, ctx);
    return { slept_ms: ms };
  },

  fail: () => {
    throw new Error("the fail method always throws");
  },

  app_error: (params) => ({
    error: {
      code: "InvalidValue",
      message_to_client: "The value you sent is not accepted.",
      details: { field: "app_error", received: argsOf(params).app_error ?? null },
    },
  }),

  /** Pretends every token is valid; the stash makes the gateway remember who logged in. */
  login: (params) => {
    const token = String(argsOf(params).login ?? "");
    const loginid = "CR90000";
    return {
      loginid,
      currency: "USD",
      scopes: ["read", "trade"],
      stash: { loginid, token, scopes: ["read", "trade"] },
    };
  },

  /** Answers with the stash values the gateway sent along (the action's `stashParams`). */
  whoami: (params) => ({ loginid: params.loginid ?? null, scopes: params.scopes ?? null }),
};

function withoutKey(value: unknown, key: string): unknown {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).filter(([name]) => name !== key));
}

function argsOf(params: Record<string, unknown>): Record<string, unknown> {
  const args = params.args;
  return typeof args === "object" && args !== null ? (args as Record<string, unknown>) : {};
}

function delay(ms: number, ctx: RpcContext): Promise<void> {
  return new Promise((resolve, reject) => {
    if (ctx.signal.aborted) return reject(ctx.signal.reason);
    const timer = setTimeout(resolve, ms);
    ctx.signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(ctx.signal.reason);
    });
  });
}
