/**
 * The shapes shared by the portable core, the backends and the platform glue.
 *
 * Nothing here imports from `cloudflare:*`, `node:*`, Hono or a Redis client: the Durable Object, a test
 * harness or another runtime each provide a {@link Connection} and the core does the rest.
 */

/** A JSON object as decoded from a client frame or a backend reply. */
export type JsonObject = { [key: string]: unknown };

/** A client request frame after decoding: always a JSON object (`{"ping":1,"req_id":3}`). */
export type ClientMessage = JsonObject;

/** A reply frame as sent to the client (`{"msg_type":"ping","ping":"pong","req_id":3}`). */
export type ApiReply = JsonObject & { msg_type: string };

/**
 * One client WebSocket as the core sees it. The Durable Object implements it on top of a hibernatable
 * socket; tests implement it in memory.
 */
export interface Connection {
  /** Unique per connection; stable across hibernation. */
  readonly id: string;
  /** Facts from the upgrade request, for hooks (authentication, origin checks, logging). */
  readonly upgrade: UpgradeInfo;
  /** Server-side state of this connection; survives hibernation. Read it, change it with {@link updateStash}. */
  readonly stash: Readonly<JsonObject>;
  /** Shallow-merges `patch` into the stash and persists it with the socket. */
  updateStash(patch: JsonObject): void;
  /** True until the socket closes; nothing is sent to a closed connection. */
  readonly isOpen: boolean;
  /** Sends one frame, serialised as JSON. Called only by the dispatcher's send step. */
  sendJson(frame: JsonObject): void;
  /**
   * Optional: sends an already serialised frame. When present the dispatcher uses it instead of
   * {@link sendJson}, since it serialises every reply anyway to check `maxResponseBytes`.
   */
  sendText?(text: string): void;
  /** Closes the socket with a WebSocket close code. */
  close(code: number, reason: string): void;
  /**
   * Optional: the push URL of this connection (`<origin>/connections/<ref>`), sent with each request
   * entry so a service can push frames later. Absent when push is off.
   */
  readonly pushUrl?: string;
  /** Optional: the subscriptions registered on this connection; absent when push is off. */
  readonly subscriptions?: SubscriptionRegistry;
}

/**
 * A subscription as kept with its connection: enough to build each pushed frame like the subscribing
 * request's reply (`msg_type`, `req_id`, `passthrough`, `echo_req`, `subscription.id`).
 */
export interface StoredSubscription {
  /** The id the service gave it (`subscription.id`). */
  id: string;
  /** The `msg_type` of the subscribing action, and the key of each frame's data. */
  msgType: string;
  /** The subscribing action's name (`forget_all` matches it, or `msgType`). */
  action: string;
  /** The subscribing request's `req_id`, when it had one and `requestData` is on. */
  reqId?: unknown;
  /** The subscribing request's `passthrough`, when it had one and `requestData` is on. */
  passthrough?: unknown;
  /** The subscribing request's `echo_req` (sensitive fields removed); left out when it did not fit. */
  echoReq?: JsonObject;
}

/** The subscriptions of one connection (the Durable Object keeps them in the socket attachment). */
export interface SubscriptionRegistry {
  /** How many are registered. */
  readonly count: number;
  get(id: string): StoredSubscription | undefined;
  /** Registers `subscription` (replacing one with its id); false when it cannot be stored. */
  add(subscription: StoredSubscription): boolean;
  /** Removes one subscription; false when there was none with that id. */
  remove(id: string): boolean;
  /** Removes every subscription whose `action` or `msgType` is in `names`; returns their ids. */
  removeMatching(names: ReadonlySet<string>): string[];
}

/** What the gateway kept of the HTTP upgrade request. */
export interface UpgradeInfo {
  /** The upgrade URL, without the query parameters that carry credentials (see `credentials`). */
  url: string;
  /** Lower-case header names. */
  headers: Record<string, string>;
  /**
   * Query parameters that carry credentials (the Worker's `credentialParams`, e.g. `token`), taken out of
   * `url` so that a hook logging the URL does not log a secret. For authentication hooks only.
   */
  credentials?: Record<string, string>;
}

/**
 * One request in flight through the gateway: Perl's `$req_storage`. Hooks receive it and may read or add
 * fields; the dispatcher and the backend fill in the rest.
 */
export interface RpcRequest {
  /** The action name that matched (the first registered action among the frame's keys). */
  name: string;
  /** The RPC method sent to the backend; the action name unless a hook changed it. */
  method: string;
  /** The `msg_type` of the reply. */
  msgType: string;
  /** The client frame. */
  args: ClientMessage;
  /** The matched action's options, custom keys included. */
  action: ActionOptions;
  /** The resolved category (written back by the consumer-groups backend so hooks see it). */
  category?: string;
  /** The name of the backend that serves this action. */
  backend: string;
  /** Names of stash values sent along with the call. */
  stashParams: string[];
  /** Extra call parameters; `beforeCall` hooks add to it. Sent merged into the call params. */
  callParams: JsonObject;
  /** Correlation id of this request (a UUID), sent as `req_log_context` and logged. */
  correlationId: string;
  /** When the dispatcher received the frame, in epoch milliseconds (for timing hooks and logs). */
  receivedAtMs?: number;
  /** The subscription id the service's reply carried (`subscription.id`), when it had one. */
  subscriptionId?: string;
  /**
   * Set by a hook for this request only (Perl read `$req_storage->{rpc_timeout_extend_offset}`; that
   * spelling is read too): seconds added to the consumer-groups backend's local wait, replacing its
   * `rpcTimeoutExtendOffset`. The service's deadline is not changed.
   */
  rpcTimeoutExtendOffset?: number;
  /** Like {@link rpcTimeoutExtendOffset}, for `rpcTimeoutExtendPercentage` (`rpc_timeout_extend_percentage`). */
  rpcTimeoutExtendPercentage?: number;
  /**
   * Set by a hook for this request only (Perl's `$req_storage->{block_response}`; that spelling is read
   * too): failures (WrongResponse, CallError) send nothing. Wins over the action's and global `blockResponse`.
   */
  blockResponse?: boolean;
  /**
   * For `insteadOfForward` hooks (Perl's `$c->call_rpc`): calls another method through the backend with
   * every RPC hook and returns its reply (undefined: nothing to send). Set by the gateway before
   * `insteadOfForward` runs.
   */
  callRpc?: (call: NestedRpcCall) => Promise<JsonObject | undefined>;
  /** Any field a hook wants to carry from one step to the next. */
  [custom: string]: unknown;
}

/** What `req.callRpc` calls: another method, with its own args and `msg_type`. */
export interface NestedRpcCall {
  /** The RPC method; a registered action of that name lends its options (backend, category, hooks). */
  method: string;
  /** The client frame the call carries as `args`. @default the current request's frame */
  args?: ClientMessage;
  /** The reply's `msg_type`. @default the method's action's `msgType`, else `method` */
  msgType?: string;
}

/**
 * The reply of a backend call, as the backend service sent it in `response`
 * (`{"result": <result>}` or `{"error": {"code", "message"}}`).
 */
export type RpcResponse =
  | { result: unknown; timestamp?: number; subscriptionId?: string }
  | { error: { code: string; message: string } };

/**
 * A gateway backend: takes one call, returns the service's response. Throws {@link RpcTimeoutError} when
 * no reply came in time and {@link TransportError} when the call could not be made; both become
 * WrongResponse for the client. The hook orchestration around it lives in the core (`callRpc`).
 */
export interface Backend {
  /** Sends `params` (the call parameters: `{args, ...stash values, ...callParams}`) for `req`. */
  call(req: RpcRequest, params: JsonObject, conn: Connection): Promise<RpcResponse>;
  /** Releases timers and pending state (the object is going away). Pending calls reject. */
  close?(): void;
  /** Optional: a connection closed; its pending calls may be dropped (their replies then count as late). */
  connectionClosed?(connectionId: string): void;
  /** Optional: counters for `/metrics`, logs and tests. */
  stats?(): BackendStats;
  /**
   * Optional: checks, when the backend is built, that it can serve `action` (a configured `category`, say);
   * throws an Error whose message says what is wrong. The gateway names the action around it.
   */
  checkAction?(action: ActionOptions): void;
}

/** Counters a backend reports through {@link Backend.stats}; a counter it does not keep is left out. */
export interface BackendStats {
  /** Calls waiting for their reply. */
  pending?: number;
  /** Calls that got no reply in time. */
  timedOut?: number;
  /** Reply polls, and those that found nothing. */
  polls?: number;
  emptyPolls?: number;
  /** REST requests sent to Redis (a pipeline of several commands counts once). */
  redisRequests?: number;
  /** Commands waiting for a free connection to Redis. */
  queuedCommands?: number;
  /** Replies dropped: after their call ended, twice, for no known call, for another object, unparsable. */
  late?: number;
  duplicate?: number;
  unknown?: number;
  foreign?: number;
  invalid?: number;
}

/** A hook result: a truthy value ends the pipeline (for `beforeForward`) and becomes the reply. */
export type HookResult = JsonObject | undefined | null | false | void;

/** A hook that sees the connection and the request. */
export type RequestHook = (conn: Connection, req: RpcRequest) => HookResult | Promise<HookResult>;

/**
 * Failure details handed to `rpcFailureCb`. `type` says what failed: no reply in time (`Timeout`), Redis or
 * HTTP could not be reached (`RedisError`/`TransportError`), the reply was unusable (`WrongResponse`), or the
 * service signalled a failure in `response.error` (`CallError`, with the service's code and message).
 */
export interface RpcFailure {
  code: string;
  message: string;
  type: "Timeout" | "RedisError" | "TransportError" | "WrongResponse" | "CallError";
}

/** Where the core writes what it cannot tell the client (configuration errors, failing hooks). */
export interface Logger {
  debug?(message: string, details?: unknown): void;
  warn(message: string, details?: unknown): void;
  error(message: string, details?: unknown): void;
}

/** The RPC hooks, global or per action (global ones run first). */
export interface RpcHooks {
  /** Before the request is forwarded; a truthy result is the reply and ends the pipeline. */
  beforeForward?: RequestHook | RequestHook[];
  /** Replaces the backend call; its truthy result is the reply. */
  insteadOfForward?: RequestHook;
  /** Perl spelling of {@link insteadOfForward}. */
  instead_of_forward?: RequestHook;
  /** Before the backend call; may add to `req.callParams`. */
  beforeCall?: RequestHook | RequestHook[];
  /**
   * When the backend's response has arrived, before anything else looks at it (as in the Perl backends:
   * "before the gateway gets the response"). Not called when the call failed.
   */
  beforeGetRpcResponse?: RequestHook | RequestHook[];
  /** After the response arrived and `beforeGetRpcResponse` ran, before the reply frame is built. Not called on failure. */
  afterGotRpcResponse?: (
    conn: Connection,
    req: RpcRequest,
    res: RpcResponse | undefined,
  ) => void | Promise<void>;
  /**
   * Replaces success/error/response (and the stash merge) for `{result}` responses: its return value is the
   * reply; a falsy value sends nothing. The action's callback is used if set, else the global one.
   */
  rpcResponseCb?: (conn: Connection, req: RpcRequest, res: RpcResponse) => HookResult | Promise<HookResult>;
  /**
   * Called when the call failed (timeout, Redis/HTTP error, unusable reply) or the response carried `error`.
   * The action's callback if it has one, else the global one (Perl); not called for a closed connection.
   */
  rpcFailureCb?: (
    conn: Connection,
    res: RpcResponse | undefined,
    req: RpcRequest,
    failure: RpcFailure,
  ) => void | Promise<void>;
  /**
   * When true, failures (WrongResponse, CallError) send nothing to the client. A hook may set
   * `req.blockResponse` for one request, which wins.
   */
  blockResponse?: boolean;
  /** Called with a success reply (the `stash` already removed) before it is sent; may change it in place. */
  success?: (conn: Connection, req: RpcRequest, reply: ApiReply, result: unknown) => void | Promise<void>;
  /** Called with an application error reply before it is sent; may change it in place. */
  error?: (conn: Connection, req: RpcRequest, reply: ApiReply, result: unknown) => void | Promise<void>;
  /**
   * Called with a success or application error reply; its return value is the reply (Perl): `null` or
   * `false` sends nothing, `undefined` (no return) keeps the reply, changed in place or not.
   */
  response?: (conn: Connection, req: RpcRequest, reply: ApiReply) => HookResult | Promise<HookResult>;
}

/** Options of one action, in `actions: [name, options?][]`. */
export interface ActionOptions extends RpcHooks {
  /** @default the action name */
  msgType?: string;
  /** Stream category (consumer-groups backend with `queueSeparationEnabled`). @default "general" */
  category?: string;
  /** Name of the backend in `backends`. @default `defaultBackend` */
  backend?: string;
  /** Stash values sent with each call, by name. @default [] */
  stashParams?: string[];
  /**
   * Stash keys a successful result of this action may write (`result.stash`), e.g.
   * `["loginid", "scopes"]` on `login`. Any other key of `result.stash` is dropped, logged and counted
   * (`wsproxy_stash_writes_dropped_total`), so a service that reflects its input cannot let a client set
   * its own stash. @default [] (the action writes nothing)
   */
  stashWrites?: string[];
  /**
   * Answers the action inside the gateway, with no backend call and no Redis command: the return value
   * (or what its promise resolves to) is the action's `result`, and the reply is built from it as from a
   * service's result (`msg_type`, `req_id`, `echo_req`, `passthrough`, every hook). Made for heartbeats
   * such as `["ping", { answerLocally: () => "pong" }]`. Bounded by `hookTimeoutMs`; a throw gives
   * WrongResponse. @default undefined (the backend answers)
   */
  answerLocally?: (req: RpcRequest, conn: Connection) => unknown;
  /** Any custom key, readable by hooks. */
  [custom: string]: unknown;
}

/** An action registration: `["ping"]` or `["ticks", { category: "mt5" }]`. */
export type ActionEntry = [name: string] | [name: string, options: ActionOptions];
