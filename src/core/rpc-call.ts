/**
 * The hook orchestration around one backend call, shared by every backend (Perl's `call_rpc` of
 * Backend::ConsumerGroups and Backend::JSONRPC). A backend only moves bytes (`Backend.call`); everything a
 * hook or a client can observe happens here.
 *
 * | step | hooks (global, then action)   | when                                                        |
 * |------|-------------------------------|-------------------------------------------------------------|
 * | 1    | `beforeCall`                  | before the call params are built; may add to `callParams`   |
 * | 2    | —                             | `backend.call(req, {args, ...stash values, ...callParams})` |
 * | 3    | `beforeGetRpcResponse`        | the response arrived (not on failure)                       |
 * | 4    | `afterGotRpcResponse`         | the response arrived, before the reply is built             |
 * | 5a   | `rpcResponseCb`               | `{result}`: replaces 5b-5d and the stash merge (action's, else global) |
 * | 5b   | `success`                     | `{result}` that is not an application error; stash merged first (only the action's `stashWrites` keys) |
 * | 5c   | `error`                       | `{result: {error: {code, message_to_client}}}`              |
 * | 5d   | `response`                    | after 5b or 5c; its return replaces the reply (`null`/`false`: nothing is sent; `undefined`: kept) |
 * | 6    | `rpcFailureCb` (action's, else global) | the call threw, the response was unusable, or it was `{error}` (CallError); not for a closed connection |
 *
 * The call failing gives WrongResponse, a `{error}` response gives CallError, both with the action's
 * `msg_type` and both suppressed by `blockResponse` (the request's own, set by a hook, first). Nothing is built for a connection that closed meanwhile.
 */
import { clientError, ProtocolError, RpcTimeoutError, TransportError } from "./errors.js";
import { consoleLogger, hookList, runHook, type HookSetting } from "./hooks.js";
import { buildApplicationErrorReply, buildSuccessReply, isApplicationError } from "./rpc-reply.js";
import { requestSetting } from "./request.js";
import { getOwn, isJsonObject, setOwn } from "./safe-object.js";
import type {
  ApiReply,
  Backend,
  Connection,
  JsonObject,
  Logger,
  RpcFailure,
  RpcHooks,
  RpcRequest,
  RpcResponse,
} from "./types.js";

/** The hooks that apply to one request: the gateway-wide ones and the matched action's. */
export interface RpcHookSet {
  global: RpcHooks;
  action: RpcHooks;
}

/** Limits and logging for {@link callRpc}. */
export interface CallRpcOptions {
  /** Each hook must settle within this time, else the request fails with Timeout. @default 15000 */
  hookTimeoutMs?: number;
  /** @default the console */
  logger?: Logger;
  /** Told how many keys of a result's `stash` were dropped because the action may not write them. */
  onStashDropped?: (count: number) => void;
}

/** Runs the global then the action hooks of one kind, each bounded by the hook timeout. */
type Run = <F>(
  name: string,
  global: HookSetting<F>,
  action: HookSetting<F>,
  call: (hook: F) => unknown,
) => Promise<void>;

/**
 * Calls `backend` for `req` with every RPC hook, and returns the reply to send (undefined: send nothing).
 * Backend failures become WrongResponse; a hook that throws or times out rejects (the dispatcher turns
 * that into WrongResponse or Timeout).
 */
export async function callRpc(
  conn: Connection,
  req: RpcRequest,
  backend: Backend,
  hooks: RpcHookSet,
  options: CallRpcOptions = {},
): Promise<JsonObject | undefined> {
  const timeoutMs = options.hookTimeoutMs ?? 15_000;
  const logger = options.logger ?? consoleLogger;
  const run: Run = async (name, global, action, call) => {
    for (const hook of hookList(global, action)) await runHook(name, timeoutMs, () => call(hook));
  };
  const { global, action } = hooks;
  await run("beforeCall", global.beforeCall, action.beforeCall, (hook) => hook(conn, req));
  let response: RpcResponse;
  try {
    response = await backend.call(req, buildCallParams(conn, req), conn);
  } catch (error) {
    return fail(conn, req, hooks, run, logger, failureOf(error));
  }
  if (!conn.isOpen) return undefined;
  // The dispatcher registers it once the reply is built (`registerSubscription`).
  if (isJsonObject(response) && "subscriptionId" in response && response.subscriptionId) {
    req.subscriptionId = response.subscriptionId;
  }
  await run("beforeGetRpcResponse", global.beforeGetRpcResponse, action.beforeGetRpcResponse, (hook) =>
    hook(conn, req),
  );
  await run("afterGotRpcResponse", global.afterGotRpcResponse, action.afterGotRpcResponse, (hook) =>
    hook(conn, req, response),
  );
  try {
    return await replyFor(conn, req, response, hooks, run, {
      timeoutMs,
      logger,
      onStashDropped: options.onStashDropped,
    });
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    return fail(conn, req, hooks, run, logger, failureOf(error), response);
  }
}

/**
 * The params sent to the backend: `{args: <client message>, ...stash values named in stashParams,
 * ...callParams}`. Stash values come only from `conn.stash` (a client field of the same name stays inside
 * `args`); a name missing from the stash is sent as `null`, as the Perl proxy did.
 */
export function buildCallParams(conn: Connection, req: RpcRequest): JsonObject {
  const params: JsonObject = { args: req.args };
  for (const name of req.stashParams) setOwn(params, name, getOwn(conn.stash, name) ?? null);
  for (const [key, value] of Object.entries(req.callParams)) setOwn(params, key, value);
  return params;
}

async function replyFor(
  conn: Connection,
  req: RpcRequest,
  response: RpcResponse,
  hooks: RpcHookSet,
  run: Run,
  {
    timeoutMs,
    logger,
    onStashDropped,
  }: { timeoutMs: number; logger: Logger; onStashDropped?: (count: number) => void },
): Promise<JsonObject | undefined> {
  if (!isJsonObject(response)) throw new ProtocolError("the backend response is not an object");
  if (Object.hasOwn(response, "error")) return callError(conn, req, response, hooks, run, logger);
  if (!Object.hasOwn(response, "result")) throw new ProtocolError("the backend response has no result");
  const { result } = response as { result: unknown };
  const responseCb = hooks.action.rpcResponseCb ?? hooks.global.rpcResponseCb;
  if (responseCb) {
    return (await runHook("rpcResponseCb", timeoutMs, () => responseCb(conn, req, response))) || undefined;
  }
  const { global, action } = hooks;
  let reply: ApiReply;
  if (isApplicationError(result)) {
    reply = buildApplicationErrorReply(req.msgType, result);
    await run("error", global.error, action.error, (hook) => hook(conn, req, reply, result));
  } else {
    const success = buildSuccessReply(req.msgType, result);
    if (success.stash) {
      const { allowed, dropped } = splitStashWrites(success.stash, req.action.stashWrites);
      if (dropped.length > 0) {
        logger.warn(
          `"${req.name}" (${req.correlationId}) tried to write stash keys its stashWrites does not list; dropped: ${dropped.join(", ")}`,
        );
        onStashDropped?.(dropped.length);
      }
      if (Object.keys(allowed).length > 0) conn.updateStash(allowed);
    }
    reply = success.reply;
    await run("success", global.success, action.success, (hook) => hook(conn, req, reply, result));
  }
  // Perl: the return value is the reply, a false one sends nothing. `undefined` (no return at all) keeps
  // the reply, so a hook that only changes it in place goes on working.
  let final: JsonObject | undefined = reply;
  for (const hook of hookList(global.response, action.response)) {
    const current = final as ApiReply;
    const returned = await runHook("response", timeoutMs, () => hook(conn, req, current));
    if (returned === undefined) continue;
    final = returned || undefined;
    if (!final) return undefined;
  }
  return final;
}

async function callError(
  conn: Connection,
  req: RpcRequest,
  response: RpcResponse,
  hooks: RpcHookSet,
  run: Run,
  logger: Logger,
): Promise<JsonObject | undefined> {
  const error = (response as { error: unknown }).error;
  const failure: RpcFailure = {
    code: isJsonObject(error) && typeof error.code === "string" ? error.code : "CallError",
    message: isJsonObject(error) && typeof error.message === "string" ? error.message : "",
    type: "CallError",
  };
  await notifyFailure(conn, req, hooks, run, logger, failure, response);
  return isBlocked(req, hooks) ? undefined : clientError("CallError", req.msgType);
}

async function fail(
  conn: Connection,
  req: RpcRequest,
  hooks: RpcHookSet,
  run: Run,
  logger: Logger,
  failure: RpcFailure,
  response?: RpcResponse,
): Promise<JsonObject | undefined> {
  logger.warn(`${req.method} (${req.correlationId}) failed: ${failure.type}: ${failure.message}`);
  await notifyFailure(conn, req, hooks, run, logger, failure, response);
  return isBlocked(req, hooks) || !conn.isOpen ? undefined : clientError("WrongResponse", req.msgType);
}

/**
 * Runs `rpcFailureCb` as Perl did: the action's callback if it has one, else the global one, and none
 * for a connection that is already gone (there is no one to answer; Perl checked `$c->tx`).
 */
async function notifyFailure(
  conn: Connection,
  req: RpcRequest,
  hooks: RpcHookSet,
  run: Run,
  logger: Logger,
  failure: RpcFailure,
  response: RpcResponse | undefined,
): Promise<void> {
  if (!conn.isOpen) return;
  const callback = hooks.action.rpcFailureCb ?? hooks.global.rpcFailureCb;
  await run("rpcFailureCb", callback, undefined, (hook) => hook(conn, response, req, failure)).catch(
    (error: unknown) =>
      // The client still gets its error reply; the broken callback is reported, not propagated.
      logger.error("rpcFailureCb failed", error),
  );
}

/**
 * The keys of a result's `stash` the action may write (its `stashWrites`), and the names of the others.
 * Nothing is allowed by default: the stash decides who a connection is, and a result is only as
 * trustworthy as the service's handling of the client's input.
 */
export function splitStashWrites(
  stash: Readonly<JsonObject>,
  stashWrites: readonly string[] | undefined,
): { allowed: JsonObject; dropped: string[] } {
  const writable = new Set(Array.isArray(stashWrites) ? stashWrites : []);
  const allowed: JsonObject = {};
  const dropped: string[] = [];
  for (const [key, value] of Object.entries(stash)) {
    if (writable.has(key)) setOwn(allowed, key, value);
    else dropped.push(key);
  }
  return { allowed, dropped };
}

function failureOf(error: unknown): RpcFailure {
  const message = error instanceof Error ? error.message : String(error);
  let type: RpcFailure["type"] = "WrongResponse";
  if (error instanceof RpcTimeoutError) type = "Timeout";
  else if (error instanceof TransportError) type = error.failureType;
  return { code: "WrongResponse", message, type };
}

/** `blockResponse`: the request's own (set by a hook), else the action's, else the global one. */
function isBlocked(req: RpcRequest, hooks: RpcHookSet): boolean {
  return Boolean(
    requestSetting(req, "blockResponse") ?? hooks.action.blockResponse ?? hooks.global.blockResponse,
  );
}
