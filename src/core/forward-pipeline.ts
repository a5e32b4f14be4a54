/**
 * The forwarding pipeline for one dispatched request (PROTOCOL.md section 2), after Perl's
 * `Dispatcher::on_message`:
 *
 * 1. `beforeForward` hooks, global then action, one after the other. A hook that returns, resolves to or
 *    rejects with a truthy value ends the pipeline: that value is the reply and `afterForward` is skipped.
 *    (A rejection with an `Error` is a failing hook, not a reply.)
 * 2. `insteadOfForward` (or `instead_of_forward`; the action's, else the global one): its truthy result is
 *    the reply, a falsy result sends nothing; it may call other methods with `req.callRpc` (Perl's
 *    `call_rpc`), each through the backend with every RPC hook. Without it, `callRpc` asks the request's backend, or the
 *    action's `answerLocally` (a result made in the gateway, no backend call).
 * 3. `afterForward` hooks (global), with the reply; they may change it in place, their return is ignored.
 *
 * Every hook call is bounded by `hookTimeoutMs`; a hook that runs out of time or throws makes the pipeline
 * reject, and the dispatcher answers Timeout or WrongResponse.
 */
import { clientError } from "./errors.js";
import { hookList, runHook } from "./hooks.js";
import type { ActionRoute, ResolvedGatewayOptions } from "./options.js";
import { buildRequest } from "./request.js";
import { callRpc } from "./rpc-call.js";
import { isJsonObject } from "./safe-object.js";
import type {
  ActionOptions,
  Backend,
  Connection,
  JsonObject,
  Logger,
  NestedRpcCall,
  RpcRequest,
} from "./types.js";

/**
 * Answers one dispatched request (`route`: its action's, from the resolved options): the reply to send,
 * or undefined to send nothing.
 */
export type ForwardPipeline = (conn: Connection, req: RpcRequest, route: ActionRoute) => Promise<unknown>;

/** Builds the pipeline for one gateway configuration; `onStashDropped` counts refused stash writes. */
export function createForwardPipeline(
  options: ResolvedGatewayOptions,
  backends: Readonly<Record<string, Backend>>,
  logger: Logger,
  onStashDropped?: (count: number) => void,
): ForwardPipeline {
  const timeoutMs = options.hookTimeoutMs;

  const forward = (conn: Connection, req: RpcRequest): Promise<JsonObject | undefined> => {
    const { answerLocally } = req.action;
    const backend = answerLocally
      ? localBackend(answerLocally, timeoutMs)
      : Object.hasOwn(backends, req.backend)
        ? backends[req.backend]
        : undefined;
    // The options were checked (`assertBackendsExist`), but a hook may have changed `req.backend`.
    if (!backend) {
      logger.error(
        `configuration error: action "${req.name}" uses backend "${req.backend}", which does not exist`,
      );
      return Promise.resolve(clientError("WrongResponse", req.msgType));
    }
    return callRpc(
      conn,
      req,
      backend,
      { global: options, action: req.action },
      { hookTimeoutMs: timeoutMs, logger, onStashDropped },
    );
  };

  /**
   * The request record of `req.callRpc(call)` (Perl's `call_rpc`): the registered action named
   * `call.method` lends its options (backend, category, stash params, hooks); an unregistered method is
   * sent with the calling request's action.
   */
  const nestedRequest = (parent: RpcRequest, call: NestedRpcCall): RpcRequest => {
    if (!isJsonObject(call) || typeof call.method !== "string" || call.method === "") {
      throw new TypeError("req.callRpc: `method` must be a method name");
    }
    const registered = options.actionTable.get(call.method);
    const name = registered ? call.method : parent.name;
    const args = call.args ?? parent.args;
    const req = buildRequest(name, registered ?? parent.action, args, options.defaultBackend, Date.now());
    req.method = call.method;
    req.msgType = call.msgType ?? (registered ? req.msgType : call.method);
    return req;
  };

  return async (conn, req, route) => {
    for (const hook of hookList(options.beforeForward, req.action.beforeForward)) {
      const early = await shortCircuit(runHook("beforeForward", timeoutMs, () => hook(conn, req)));
      if (early) return early;
    }
    const instead = route.insteadOfForward;
    if (instead) req.callRpc = (call) => forward(conn, nestedRequest(req, call));
    const reply = instead
      ? (await runHook("insteadOfForward", timeoutMs, () => instead(conn, req))) || undefined
      : await forward(conn, req);
    for (const hook of hookList(options.afterForward)) {
      await runHook("afterForward", timeoutMs, () => hook(conn, req, reply));
    }
    return reply;
  };
}

/** A backend whose result is the action's `answerLocally`: the call's hooks and reply building still apply. */
function localBackend(
  answerLocally: NonNullable<ActionOptions["answerLocally"]>,
  timeoutMs: number,
): Backend {
  return {
    call: async (req, _params, conn) => ({
      result: await runHook("answerLocally", timeoutMs, () => answerLocally(req, conn)),
    }),
  };
}

/**
 * A `beforeForward` outcome: a truthy resolution or a truthy non-Error rejection is the reply; a falsy
 * rejection (`Promise.reject()`) lets the pipeline go on, like a falsy return.
 */
async function shortCircuit(outcome: Promise<unknown>): Promise<unknown> {
  try {
    return await outcome;
  } catch (rejection) {
    if (rejection instanceof Error) throw rejection;
    return rejection;
  }
}
