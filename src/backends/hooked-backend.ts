/**
 * What every gateway backend shares: Perl's `call_rpc`, the backend's own `call` wrapped in every RPC hook
 * by the core's `callRpc`. Backends extend it and write only `call`.
 */
import { callRpc, type CallRpcOptions, type RpcHookSet } from "../core/rpc-call.js";
import type { Backend, Connection, JsonObject, RpcRequest, RpcResponse } from "../core/types.js";

/** A {@link Backend} that can also be driven directly, hooks included. */
export abstract class HookedBackend implements Backend {
  /** Sends one call; see {@link Backend.call}. */
  abstract call(req: RpcRequest, params: JsonObject, conn: Connection): Promise<RpcResponse>;

  /**
   * Perl's `call_rpc`: {@link call} wrapped in every RPC hook (the dispatcher does this itself; this is for
   * callers that drive a backend directly). Resolves with the reply to send, or undefined for none.
   */
  callRpc(
    conn: Connection,
    req: RpcRequest,
    hooks?: RpcHookSet,
    options?: CallRpcOptions,
  ): Promise<JsonObject | undefined> {
    return callRpc(conn, req, this, hooks ?? { global: {}, action: req.action }, options);
  }
}
