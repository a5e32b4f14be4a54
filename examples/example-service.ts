/**
 * The example backend service: one handler per behaviour a gateway test or a new user wants to see.
 * Run it with `npm run service -- --redis redis://127.0.0.1:6379`.
 *
 * `params.args` is the client's whole frame, e.g. `{"echo": {"hello": 1}, "req_id": 3}`.
 */
import type { RpcContext, RpcHandlers, Subscription } from "edge-wsproxy/service";

/** Gap between two pushed ticks of a subscription. */
const TICK_INTERVAL_MS = 100;

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

  /**
   * A made-up quote for `args.ticks` (`{"ticks": "R_100"}`). With `"subscribe": 1` the reply is the first
   * tick and one more is pushed every 100 ms until the client forgets the subscription or disconnects (a
   * push then fails with `PushGoneError`) or the service closes.
   */
  ticks: (params, ctx) => {
    const args = argsOf(params);
    const symbol = typeof args.ticks === "string" ? args.ticks : "R_100";
    if (!args.subscribe) return tick(symbol);
    const subscription = ctx.subscribe();
    streamTicks(subscription, symbol);
    return tick(symbol, subscription.id);
  },
};

/** One tick: `{symbol, quote, epoch}`, plus the subscription `id` when the client subscribed. */
function tick(symbol: string, id?: string): Record<string, unknown> {
  const quote = Math.round((1000 + Math.random() * 10) * 100) / 100;
  const epoch = Math.floor(Date.now() / 1000);
  return id === undefined ? { symbol, quote, epoch } : { symbol, quote, epoch, id };
}

/**
 * Pushes a tick every {@link TICK_INTERVAL_MS}, each after the previous push settled, until the
 * subscription's signal aborts: a push got `PushGoneError` (the client forgot the subscription or
 * disconnected) or the service is closing.
 */
function streamTicks(subscription: Subscription, symbol: string): void {
  let timer: NodeJS.Timeout | undefined;
  const next = () => {
    timer = setTimeout(async () => {
      // PushGoneError ends the subscription (its signal aborts, which stops the loop); any other failure
      // (the gateway unreachable after the pusher's retries) only skips this tick.
      await subscription.push(tick(symbol, subscription.id)).catch(() => {});
      if (!subscription.signal.aborted) next();
    }, TICK_INTERVAL_MS);
  };
  subscription.signal.addEventListener("abort", () => clearTimeout(timer), { once: true });
  next();
}

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
