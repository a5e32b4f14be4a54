/**
 * Dispatch (PROTOCOL.md 1.1.3) and the request record hooks see.
 */
import { ConfigError } from "./errors.js";
import type { ResolvedGatewayOptions } from "./options.js";
import type { ActionOptions, Backend, ClientMessage, RpcRequest } from "./types.js";

/**
 * The action that serves `message`: among the message's top-level keys, the action registered first wins,
 * whatever the key order in the frame (`{"subscribe":1,"ticks":"R_50"}` goes to `ticks` if it was
 * registered before `subscribe`).
 */
export function findAction(
  actionTable: ReadonlyMap<string, ActionOptions>,
  message: ClientMessage,
): [name: string, options: ActionOptions] | undefined {
  for (const [name, options] of actionTable) {
    if (Object.hasOwn(message, name)) return [name, options];
  }
  return undefined;
}

/** The request record for a dispatched message (Perl's `$req_storage`), before any hook has run. */
export function buildRequest(
  name: string,
  action: ActionOptions,
  message: ClientMessage,
  defaultBackend: string,
  receivedAtMs: number,
): RpcRequest {
  const req: RpcRequest = {
    name,
    method: name,
    msgType: action.msgType ?? name,
    args: message,
    action,
    backend: action.backend ?? defaultBackend,
    stashParams: [...(action.stashParams ?? [])],
    callParams: {},
    correlationId: crypto.randomUUID(),
    receivedAtMs,
  };
  if (action.category !== undefined) req.category = action.category;
  return req;
}

/**
 * Throws a {@link ConfigError} when an action's backend is not in `backends`: always for an action that
 * names its `backend`; with `everyAction`, also for one that falls back on `defaultBackend` and is not
 * answered in place (`insteadOfForward`, `answerLocally`). The one place this check is made.
 */
export function assertBackendsExist(
  options: ResolvedGatewayOptions,
  backends: Readonly<Record<string, Backend>>,
  everyAction = false,
): void {
  for (const [name, route] of options.routes) {
    if (Object.hasOwn(backends, route.backend)) continue;
    const named = route.options.backend !== undefined;
    if (!named && (!everyAction || route.answeredInPlace)) continue;
    const known = Object.keys(backends).join(", ") || "none";
    throw new ConfigError(
      `\`actions\`: "${name}" uses backend "${route.backend}", which is not in \`backends\` (known: ${known}${
        named ? "" : "; set `defaultBackend`?"
      })`,
    );
  }
}

/** The per-request settings a hook may put on the record, and Perl's spelling of each. */
const PERL_REQUEST_SETTINGS = {
  rpcTimeoutExtendOffset: "rpc_timeout_extend_offset",
  rpcTimeoutExtendPercentage: "rpc_timeout_extend_percentage",
  blockResponse: "block_response",
} as const;

/**
 * A setting a hook put on `req` for this request only: the camelCase field, else Perl's snake_case one
 * (`req.rpc_timeout_extend_offset = 10`, as Perl hooks wrote into `$req_storage`); undefined when neither is set.
 */
export function requestSetting<K extends keyof typeof PERL_REQUEST_SETTINGS>(
  req: RpcRequest,
  name: K,
): RpcRequest[K] | undefined {
  return (req[name] ?? req[PERL_REQUEST_SETTINGS[name]]) as RpcRequest[K] | undefined;
}
