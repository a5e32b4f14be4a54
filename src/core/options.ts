/**
 * The gateway's configuration surface (PROTOCOL.md section 2): the TypeScript shape of the Perl plugin's
 * options, with their defaults in one place.
 */
import { ConfigError } from "./errors.js";
import type {
  ActionEntry,
  ActionOptions,
  Connection,
  HookResult,
  JsonObject,
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

/** A hook around sending: `req` is the client message (undefined when the frame could not be decoded). */
export type SendHook = (
  conn: Connection,
  req: JsonObject | undefined,
  reply: JsonObject,
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
  /** Larger frames close the connection with 1009. @default 262144 (256 KiB) */
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
}

/** The defaults of {@link GatewayOptions}. */
export const DEFAULT_GATEWAY_OPTIONS = {
  defaultBackend: "default",
  basePath: "/websockets/v3",
  maxMessageBytes: 256 * 1024,
  maxResponseBytes: 600_000,
  sanityCheck: true,
  hookTimeoutMs: 15_000,
  requestData: true,
  sensitiveFields: [] as string[],
} as const;

/** {@link GatewayOptions} with every default filled in and the actions in a lookup table. */
export type ResolvedGatewayOptions = GatewayOptions &
  Required<Pick<GatewayOptions, keyof typeof DEFAULT_GATEWAY_OPTIONS>> & {
    /** Action options by name, in registration order. */
    actionTable: Map<string, ActionOptions>;
  };

/** Fills in defaults and checks the options; throws a {@link ConfigError} that names the bad option. */
export function resolveGatewayOptions(options: GatewayOptions): ResolvedGatewayOptions {
  if (!Array.isArray(options.actions))
    throw new ConfigError("`actions` must be an array of [name, options?]");
  const actionTable = new Map<string, ActionOptions>();
  for (const entry of options.actions) {
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
    actionTable.set(name, actionOptions ?? {});
  }
  const resolved = {
    ...DEFAULT_GATEWAY_OPTIONS,
    ...withoutUndefined(options),
    actions: options.actions,
    actionTable,
  };
  for (const key of ["maxMessageBytes", "maxResponseBytes", "hookTimeoutMs"] as const) {
    const value = resolved[key];
    if (!Number.isFinite(value) || value <= 0) throw new ConfigError(`\`${key}\` must be a positive number`);
  }
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

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
