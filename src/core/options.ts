/**
 * The gateway's configuration surface (PROTOCOL.md section 2): the TypeScript shape of the Perl plugin's
 * options, with their defaults in one place.
 */
import { ConfigError } from "./errors.js";
import { PUSH_ACTIONS } from "./subscriptions.js";
import type {
  ActionEntry,
  ActionOptions,
  Connection,
  HookResult,
  JsonObject,
  RequestHook,
  RpcHooks,
  RpcRequest,
} from "./types.js";

/** Information handed to `onEncodingError`. */
export interface EncodingErrorInfo {
  /** `INVALID_UTF8` or `INVALID_JSON` (a falsy JSON value counts as invalid JSON). */
  errorCode: "INVALID_UTF8" | "INVALID_JSON";
  /** Size of the offending frame in bytes. */
  bytes: number;
}

/**
 * A hook around sending: `req` is the client message (undefined when the frame could not be decoded),
 * `rpcRequest` the request record the hooks saw (Perl's `$req_storage`), undefined for a reply made
 * before dispatch (BadRequest, RateLimit...) and for a pushed frame.
 */
export type SendHook = (
  conn: Connection,
  req: JsonObject | undefined,
  reply: JsonObject,
  rpcRequest: RpcRequest | undefined,
) => void | Promise<void>;

/** A hook after dispatch: `req` is the client message (undefined when the frame could not be decoded). */
export type DispatchHook = (conn: Connection, req: JsonObject | undefined) => void | Promise<void>;

/**
 * A hook after forwarding: `reply` is what will be sent (undefined when nothing will be); it may change it
 * in place. Its return value is ignored.
 */
export type AfterForwardHook = (
  conn: Connection,
  req: RpcRequest,
  reply: JsonObject | undefined,
) => void | HookResult | Promise<void | HookResult>;

/** Gateway-wide hooks: every {@link RpcHooks} hook (run before the per-action ones) plus the lifecycle ones. */
export interface GatewayHooks extends RpcHooks {
  /** After a request was forwarded (or answered by `insteadOfForward`); skipped when `beforeForward` answered. */
  afterForward?: AfterForwardHook | AfterForwardHook[];
  /** After a frame was dispatched and its reply (if any) sent, whatever its outcome. */
  afterDispatch?: DispatchHook | DispatchHook[];
  /** May change the reply in place before it is sent (before `req_id`/`echo_req` are added). */
  beforeSendApiResponse?: SendHook | SendHook[];
  /** After a reply was sent. */
  afterSentApiResponse?: SendHook | SendHook[];
  /** A connection opened (after the upgrade). */
  onOpen?: (conn: Connection) => void | Promise<void>;
  /** A connection closed. */
  onClose?: (conn: Connection, code: number, reason: string) => void | Promise<void>;
  /** A binary frame arrived; without this hook binary frames are ignored. */
  onBinaryFrame?: (conn: Connection, bytes: Uint8Array) => void | Promise<void>;
  /** A text frame was not valid UTF-8 or JSON; the client still gets BadRequest. */
  onEncodingError?: (conn: Connection, info: EncodingErrorInfo) => void | Promise<void>;
}

/** Everything `createGateway()` and the dispatcher accept, backends aside. */
export interface GatewayOptions extends GatewayHooks {
  /** Actions in priority order: the first registered action among a frame's keys wins. */
  actions: ActionEntry[];
  /** Backend used by actions without a `backend` option. @default "default" */
  defaultBackend?: string;
  /** Path of the WebSocket endpoint. @default "/websockets/v3" */
  basePath?: string;
  /**
   * Larger frames close the connection with 1009. A client request of a trading API is small: a few
   * hundred bytes for a call, a few KiB for the largest forms (settings, an advert's description, a
   * contract's parameters), so 64 KiB leaves them more than ten times the room while keeping what one
   * frame costs the object (parsed, it takes several times its size) small. Replies are bounded by
   * `maxResponseBytes`, not by this. @default 65536 (64 KiB)
   */
  maxMessageBytes?: number;
  /** Larger replies become ResponseTooLarge. @default 600000 */
  maxResponseBytes?: number;
  /** Keys matching it skip the sanity check (e.g. `/password/`). @default undefined */
  skipSanityCheck?: RegExp;
  /** Run the parameter sanity check. @default true */
  sanityCheck?: boolean;
  /** Hooks that take longer get a Timeout error. @default 15000 */
  hookTimeoutMs?: number;
  /** Echo `req_id`, `passthrough` and `echo_req` in every reply. @default true */
  requestData?: boolean;
  /** Fields removed from `echo_req` (e.g. `["password"]`). @default [] */
  sensitiveFields?: string[];
  /**
   * Requests in flight on one connection (dispatched to an action, reply not yet sent); one more gets
   * RateLimit and is not forwarded. Bounds the memory and backend work one socket can hold. 0 turns it off.
   * @default 100
   */
  maxPendingPerConnection?: number;
  /**
   * Bytes of the frames of one connection's requests in flight (the UTF-8 size of each frame); a request
   * that would pass it gets RateLimit and is not forwarded. A request on its own is always admitted, so
   * any frame within `maxMessageBytes` goes through once the earlier ones are answered. Counted in
   * `/metrics` as `wsproxy_byte_budget_rejections_total{scope="connection"}`. 0 turns it off.
   * @default 262144 (256 KiB: 4 frames of the largest size, hundreds of ordinary calls)
   */
  maxPendingBytesPerConnection?: number;
  /**
   * Bytes of the frames of every request in flight on one Durable Object, all its connections together;
   * a request that would pass it gets RateLimit. A Durable Object has 128 MB of memory and a frame takes
   * several times its size once parsed and forwarded, so the default keeps requests in flight to a
   * fraction of it. Counted in `/metrics` as `wsproxy_byte_budget_rejections_total{scope="object"}`.
   * 0 turns it off. @default 16777216 (16 MiB)
   */
  maxPendingBytesPerObject?: number;
  /**
   * Frames per second one connection may send, refilled continuously (a token bucket); every frame within
   * `maxMessageBytes` takes a token, text or binary, valid or not. A text frame over the rate gets only
   * RateLimit; a binary one is dropped. May be fractional (`0.5` = one frame every 2 s). 0 turns it off.
   * @default 2000
   */
  maxMessagesPerSecond?: number;
  /** Frames a connection may send at once after a quiet spell. @default maxMessagesPerSecond */
  messageBurst?: number;
  /**
   * Sustained abuse: this many error replies of the gateway (`RateLimit` from any limit, `BadRequest`,
   * `SanityCheckFailed`, `UnrecognisedRequest`) within one `abuseWindowMs` window, which opens at the
   * first one, close the connection with 1008 "Policy violation". 0 never closes.
   * @default 500
   */
  abuseCloseAfterRejections?: number;
  /** The window of `abuseCloseAfterRejections`. @default 10000 */
  abuseWindowMs?: number;
  /**
   * Server push (docs/push.md): each request entry carries its connection's push URL, replies may open
   * subscriptions, and `forget` / `forget_all` are answered by the gateway (unless registered as actions).
   * @default true
   */
  push?: boolean;
  /** Subscriptions one connection may hold; one more subscribe gets RateLimit (0: none). @default 100 */
  maxSubscriptionsPerConnection?: number;
}

/** The defaults of {@link GatewayOptions}. */
export const DEFAULT_GATEWAY_OPTIONS = {
  defaultBackend: "default",
  basePath: "/websockets/v3",
  maxMessageBytes: 64 * 1024,
  maxResponseBytes: 600_000,
  sanityCheck: true,
  hookTimeoutMs: 15_000,
  requestData: true,
  sensitiveFields: [] as string[],
  // Limits (issue 6). On by default, sized to stop floods without touching real clients: the e2e suite
  // keeps 10 requests in flight per connection, and one closed-loop benchmark client reaches ~800
  // requests/s on loopback with the subscribe transport, so 100 pending and 2000 frames/s never bite
  // them, while a flooding socket is refused within a second and closed after ~500 refusals.
  // Public deployments should tighten the rate to their product (deriv's API allows ~80 calls/s).
  maxPendingPerConnection: 100,
  // Byte budgets: Workers limits apply to Durable Objects ("Durable Objects limits",
  // https://developers.cloudflare.com/durable-objects/platform/limits/), memory 128 MB per isolate
  // ("Workers limits", https://developers.cloudflare.com/workers/platform/limits/), and a parked frame costs about
  // three times its size in the runtime (measured: 240 MB of frames in flight grew workerd by 745 MB).
  // 16 MiB per object keeps requests in flight near 50 MB. Per connection 256 KiB: a parked request costs
  // far more than its frame while frames keep arriving (the memory attack of test/e2e/abuse.test.ts, 6
  // sockets parking 48 KB requests: 1 MiB each, 126 parked, grew workerd by 98-145 MB; 256 KiB, 30 parked,
  // by 46 MB), and 256 KiB still holds hundreds of ordinary requests or 4 of the largest frames.
  maxPendingBytesPerConnection: 256 * 1024,
  maxPendingBytesPerObject: 16 * 1024 * 1024,
  maxMessagesPerSecond: 2000,
  abuseCloseAfterRejections: 500,
  abuseWindowMs: 10_000,
  push: true,
  maxSubscriptionsPerConnection: 100,
} as const;

/** How one action is served, decided once when the options are resolved. */
export interface ActionRoute {
  /** The action's options, custom keys included. */
  options: ActionOptions;
  /** The backend that serves it: its `backend`, else `defaultBackend`. */
  backend: string;
  /** `insteadOfForward` (or `instead_of_forward`): the action's, else the global one. */
  insteadOfForward?: RequestHook;
  /** True when no backend is called: `insteadOfForward` or `answerLocally` answers. */
  answeredInPlace: boolean;
}

/** Marks options that went through {@link resolveGatewayOptions} (kept by a spread that adds hooks). */
const RESOLVED: unique symbol = Symbol("resolved gateway options");

/** {@link GatewayOptions} with every default filled in and the actions in a lookup table. */
export type ResolvedGatewayOptions = GatewayOptions &
  Required<Pick<GatewayOptions, keyof typeof DEFAULT_GATEWAY_OPTIONS>> & {
    /** Action options by name, in registration order. */
    actionTable: Map<string, ActionOptions>;
    /** Each action's backend and `insteadOfForward`, by name. */
    routes: ReadonlyMap<string, ActionRoute>;
    /** `messageBurst`, or `maxMessagesPerSecond` when it was not set. */
    messageBurst: number;
    readonly [RESOLVED]: true;
  };

/** True for options {@link resolveGatewayOptions} returned (possibly spread with more hooks). */
export function isResolvedGatewayOptions(
  options: GatewayOptions | ResolvedGatewayOptions,
): options is ResolvedGatewayOptions {
  return (options as Partial<ResolvedGatewayOptions>)[RESOLVED] === true;
}

/**
 * Fills in defaults and checks the options; throws a {@link ConfigError} that names the bad option.
 * Options that are already resolved are returned as they are.
 */
export function resolveGatewayOptions(options: GatewayOptions): ResolvedGatewayOptions {
  if (isResolvedGatewayOptions(options)) return options;
  refusePerlNames(options, "");
  const merged = { ...DEFAULT_GATEWAY_OPTIONS, ...withoutUndefined(options) };
  const actionTable = buildActionTable(options.actions);
  // Registered last, so a frame's own action wins, and only when not registered by the deployment.
  if (merged.push)
    for (const [name, action] of PUSH_ACTIONS) if (!actionTable.has(name)) actionTable.set(name, action);
  const resolved: ResolvedGatewayOptions = {
    ...merged,
    actions: options.actions,
    actionTable,
    routes: buildRoutes(actionTable, merged),
    messageBurst: merged.messageBurst ?? merged.maxMessagesPerSecond,
    [RESOLVED]: true,
  };
  for (const key of ["maxMessageBytes", "maxResponseBytes", "hookTimeoutMs", "abuseWindowMs"] as const) {
    const value = resolved[key];
    if (!Number.isFinite(value) || value <= 0) throw new ConfigError(`\`${key}\` must be a positive number`);
  }
  assertLimits(resolved);
  if (!resolved.basePath.startsWith("/")) throw new ConfigError("`basePath` must start with /");
  if (resolved.skipSanityCheck !== undefined && !(resolved.skipSanityCheck instanceof RegExp)) {
    throw new ConfigError("`skipSanityCheck` must be a RegExp, e.g. /password/");
  }
  if (
    !Array.isArray(resolved.sensitiveFields) ||
    resolved.sensitiveFields.some((f) => typeof f !== "string")
  ) {
    throw new ConfigError("`sensitiveFields` must be an array of field names");
  }
  if (typeof resolved.defaultBackend !== "string" || resolved.defaultBackend === "") {
    throw new ConfigError("`defaultBackend` must be a backend name");
  }
  return resolved;
}

/** The actions as a lookup table in registration order; throws a ConfigError naming the bad entry. */
function buildActionTable(actions: unknown): Map<string, ActionOptions> {
  if (!Array.isArray(actions)) throw new ConfigError("`actions` must be an array of [name, options?]");
  const actionTable = new Map<string, ActionOptions>();
  for (const entry of actions as unknown[]) {
    const [name, actionOptions] = Array.isArray(entry) ? entry : [];
    if (typeof name !== "string" || name === "") {
      throw new ConfigError(
        `\`actions\`: every entry must be [name, options?], got ${JSON.stringify(entry)}`,
      );
    }
    if (actionTable.has(name)) throw new ConfigError(`\`actions\`: "${name}" is registered twice`);
    if (actionOptions !== undefined && (typeof actionOptions !== "object" || actionOptions === null)) {
      throw new ConfigError(`\`actions\`: the options of "${name}" must be an object`);
    }
    if (actionOptions) refusePerlNames(actionOptions as JsonObject, `\`actions\`: "${name}": `);
    const { stashWrites } = (actionOptions ?? {}) as ActionOptions;
    if (
      stashWrites !== undefined &&
      (!Array.isArray(stashWrites) || stashWrites.some((key) => typeof key !== "string"))
    ) {
      throw new ConfigError(`\`actions\`: the stashWrites of "${name}" must be an array of stash keys`);
    }
    actionTable.set(name, (actionOptions ?? {}) as ActionOptions);
  }
  return actionTable;
}

/** Each action's route: its backend and its `insteadOfForward`, the action's winning over the global one. */
function buildRoutes(
  actionTable: ReadonlyMap<string, ActionOptions>,
  global: RpcHooks & { defaultBackend: string },
): Map<string, ActionRoute> {
  const routes = new Map<string, ActionRoute>();
  for (const [name, options] of actionTable) {
    const insteadOfForward =
      options.insteadOfForward ??
      options.instead_of_forward ??
      global.insteadOfForward ??
      global.instead_of_forward;
    routes.set(name, {
      options,
      backend: options.backend ?? global.defaultBackend,
      ...(insteadOfForward ? { insteadOfForward } : {}),
      answeredInPlace: Boolean(insteadOfForward ?? options.answerLocally),
    });
  }
  return routes;
}

/** The per-connection limits: counts are whole numbers, the rate any finite number, 0 meaning off. */
function assertLimits(options: ResolvedGatewayOptions): void {
  for (const key of [
    "maxPendingPerConnection",
    "maxPendingBytesPerConnection",
    "maxPendingBytesPerObject",
    "abuseCloseAfterRejections",
  ] as const) {
    if (!Number.isInteger(options[key]) || options[key] < 0) {
      throw new ConfigError(`\`${key}\` must be a whole number, 0 to turn it off`);
    }
  }
  const subscriptions = options.maxSubscriptionsPerConnection;
  if (!Number.isInteger(subscriptions) || subscriptions < 0) {
    throw new ConfigError(
      "`maxSubscriptionsPerConnection` must be a whole number (0 refuses every subscription)",
    );
  }
  const rate = options.maxMessagesPerSecond;
  if (!Number.isFinite(rate) || rate < 0) {
    throw new ConfigError("`maxMessagesPerSecond` must be a number, 0 to turn it off");
  }
  // A bucket smaller than one token would refuse every frame: a configuration that locks everyone out.
  if (rate > 0 && (!Number.isFinite(options.messageBurst) || options.messageBurst < 1)) {
    throw new ConfigError("`messageBurst` must be at least 1 (frames a connection may send at once)");
  }
}

/**
 * The Perl plugin's option names (Mojo::WebSocketProxy) and the option each became. A Perl configuration
 * ported as it is would otherwise be ignored without a word (a lost `stash_params` means services never
 * get the token), so these names are refused with the name to use. `instead_of_forward` is the one Perl
 * spelling still accepted.
 */
export const PERL_OPTION_NAMES: Readonly<Record<string, string>> = {
  msg_type: "msgType",
  stash_params: "stashParams",
  before_forward: "beforeForward",
  after_forward: "afterForward",
  after_dispatch: "afterDispatch",
  before_call: "beforeCall",
  before_get_rpc_response: "beforeGetRpcResponse",
  after_got_rpc_response: "afterGotRpcResponse",
  rpc_response_cb: "rpcResponseCb",
  rpc_failure_cb: "rpcFailureCb",
  block_response: "blockResponse",
  before_send_api_response: "beforeSendApiResponse",
  after_sent_api_response: "afterSentApiResponse",
  opened_connection: "onOpen",
  finish_connection: "onClose",
  binary_frame: "onBinaryFrame",
  skip_check_sanity: "skipSanityCheck",
  max_response_size: "maxResponseBytes",
  base_path: "basePath",
  default_backend: "defaultBackend",
};

/** Throws a ConfigError naming the camelCase option when `options` uses a Perl option name. */
function refusePerlNames(options: object, where: string): void {
  for (const key of Object.keys(options)) {
    if (!Object.hasOwn(PERL_OPTION_NAMES, key)) continue;
    throw new ConfigError(
      `${where}\`${key}\` is the Perl plugin's name: write \`${PERL_OPTION_NAMES[key]}\` (see docs/migrating.md)`,
    );
  }
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
