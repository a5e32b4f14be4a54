/**
 * The JSON-RPC over HTTP backend, after Perl's Mojo::WebSocketProxy::Backend::JSONRPC (the Perl proxy's
 * default): each call is `POST <url><method>` with `{"id","method","params","jsonrpc":"2.0"}`.
 */
import { ConfigError, RpcTimeoutError, TransportError } from "../core/errors.js";
import type { Backend, Connection, JsonObject, RpcRequest, RpcResponse } from "../core/types.js";

/**
 * Where a call goes: a base URL the method name is appended to, or a function of the request record
 * that returns one (Perl's `url` coderef).
 */
export type JsonRpcUrl = string | ((req: RpcRequest) => string);

/** Options of {@link JsonRpcBackend}. */
export interface JsonRpcOptions {
  /**
   * Base URL; the method name is appended (`https://rpc.example/` + `ping`). Or a function of the request
   * that returns the base URL. An action's own `url` option (a string or such a function), or a hook
   * setting `req.url`, wins over it for that action's calls, as in Perl. Required.
   */
  url: JsonRpcUrl;
  /** A call with no answer after this long fails (WrongResponse). @default 30000 */
  requestTimeoutMs?: number;
  /** Extra request headers (authentication, say). @default {} */
  headers?: Record<string, string>;
  /** The fetch to use: a service binding's `fetch`, or a fake in tests. @default globalThis.fetch */
  fetch?: (request: Request) => Promise<Response>;
}

/** The defaults of {@link JsonRpcOptions}. */
export const DEFAULT_JSONRPC_OPTIONS = {
  requestTimeoutMs: 30_000,
  headers: {} as Record<string, string>,
} as const;

/** {@link JsonRpcOptions} with defaults filled in. */
export type ResolvedJsonRpcOptions = Required<Omit<JsonRpcOptions, "fetch">> & Pick<JsonRpcOptions, "fetch">;

/** Fills in defaults and checks the options; throws a {@link ConfigError} naming the bad one. */
export function resolveJsonRpcOptions(options: JsonRpcOptions): ResolvedJsonRpcOptions {
  if (typeof options.url !== "function" && !isHttpUrl(options.url)) {
    throw new ConfigError(
      `jsonrpc backend: \`url\` must be an http(s) URL or a function returning one, got ${JSON.stringify(options.url)}`,
    );
  }
  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_JSONRPC_OPTIONS.requestTimeoutMs;
  if (!Number.isFinite(requestTimeoutMs) || requestTimeoutMs <= 0) {
    throw new ConfigError("jsonrpc backend: `requestTimeoutMs` must be a positive number");
  }
  return { ...DEFAULT_JSONRPC_OPTIONS, ...options, requestTimeoutMs };
}

/** Calls a JSON-RPC 2.0 service over HTTP. */
export class JsonRpcBackend implements Backend {
  readonly options: ResolvedJsonRpcOptions;

  constructor(options: JsonRpcOptions) {
    this.options = resolveJsonRpcOptions(options);
  }

  /**
   * Posts the call. An HTTP, network or JSON failure throws {@link TransportError}, no answer in time
   * {@link RpcTimeoutError} (both WrongResponse); a JSON-RPC `error` is returned as `{error}` (CallError).
   */
  async call(req: RpcRequest, params: JsonObject, _conn: Connection): Promise<RpcResponse> {
    const url = `${this.baseUrl(req)}${encodeURIComponent(req.method)}`;
    const body = JSON.stringify({ id: crypto.randomUUID(), method: req.method, params, jsonrpc: "2.0" });
    const request = new Request(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...this.options.headers },
      body,
      signal: AbortSignal.timeout(this.options.requestTimeoutMs),
    });
    let response: Response;
    let text: string;
    try {
      response = await (this.options.fetch ?? fetch)(request);
      text = await response.text();
    } catch (error) {
      if (error instanceof Error && error.name === "TimeoutError") {
        throw new RpcTimeoutError(req.method, this.options.requestTimeoutMs);
      }
      throw new TransportError(`POST ${url} failed: ${String(error)}`, `POST ${url}`, { cause: error });
    }
    if (!response.ok) {
      // A 4xx whose body is a JSON-RPC error is the service's answer (Perl's client read it too): CallError.
      const error = response.status < 500 ? jsonRpcError(text) : undefined;
      if (error) return error;
      throw new TransportError(`POST ${url} answered HTTP ${response.status}`, `POST ${url}`);
    }
    return parseJsonRpcResponse(text, url);
  }

  /** The base URL of `req`'s call: `req.url`, else the action's `url`, else the backend's; each may be a function. */
  private baseUrl(req: RpcRequest): string {
    // `action` may be missing when the backend is called directly with a bare record.
    const action = req.action as RpcRequest["action"] | undefined;
    const setting = (req.url ?? action?.url ?? this.options.url) as unknown;
    const url = typeof setting === "function" ? (setting as (req: RpcRequest) => unknown)(req) : setting;
    if (!isHttpUrl(url)) {
      throw new ConfigError(
        `jsonrpc backend: the url of "${req.name}" is not an http(s) URL: ${JSON.stringify(url)}`,
      );
    }
    return url;
  }
}

function isHttpUrl(url: unknown): url is string {
  return typeof url === "string" && /^https?:\/\//.test(url);
}

/** The `{error}` response of a JSON-RPC error body, or undefined when `text` is not one. */
function jsonRpcError(text: string): RpcResponse | undefined {
  try {
    const decoded: unknown = JSON.parse(text);
    const error =
      typeof decoded === "object" && decoded !== null ? (decoded as { error?: unknown }).error : undefined;
    if (typeof error !== "object" || error === null) return undefined;
    const { code, message } = error as { code?: unknown; message?: unknown };
    return { error: { code: String(code ?? "CallError"), message: String(message ?? "") } };
  } catch {
    // Not JSON: the status is all there is to report (TransportError).
    return undefined;
  }
}

function parseJsonRpcResponse(text: string, url: string): RpcResponse {
  let decoded: unknown;
  try {
    decoded = JSON.parse(text);
  } catch (error) {
    throw new TransportError(`POST ${url} answered with invalid JSON`, `POST ${url}`, { cause: error });
  }
  if (typeof decoded !== "object" || decoded === null || Array.isArray(decoded)) {
    throw new TransportError(`POST ${url} answered with a non-object`, `POST ${url}`);
  }
  const reply = decoded as { result?: unknown; error?: unknown };
  if (reply.error !== undefined && reply.error !== null) {
    const error =
      typeof reply.error === "object" ? (reply.error as { code?: unknown; message?: unknown }) : {};
    return {
      error: { code: String(error.code ?? "CallError"), message: String(error.message ?? reply.error) },
    };
  }
  if (!("result" in reply)) throw new TransportError(`POST ${url} answered without result`, `POST ${url}`);
  return { result: reply.result };
}
