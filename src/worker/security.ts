/**
 * Security helpers of the gateway: an authentication `beforeForward` hook ({@link requireAuth}) and the
 * origin allow-list check used by `createGateway({ allowedOrigins })`.
 *
 * ```ts
 * createGateway({
 *   actions: [["ping"], ["login"], ["balance", { stashParams: ["loginid"] }]],
 *   allowedOrigins: ["https://app.example.com"],
 *   beforeForward: requireAuth({
 *     verify: async (token) => (await lookUpSession(token))?.loginid, // the identity, or undefined
 *     stashKey: "loginid",
 *     unauthenticatedActions: ["ping", "login"],
 *   }),
 * });
 * ```
 */
import { getOwn } from "../core/safe-object.js";
import type { Connection, HookResult, RequestHook, RpcRequest } from "../core/types.js";

/** Options of {@link requireAuth}. */
export interface RequireAuthOptions {
  /**
   * Checks a token taken from the upgrade request (the `header` or the `queryParam`). Returns the identity
   * to keep in the stash under `stashKey` (any truthy JSON value), or a falsy value for a bad token.
   */
  verify: (token: string, conn: Connection) => unknown;
  /** The stash key that marks a connection as authenticated (set by `verify`, or by a service's `stash`). @default "auth" */
  stashKey?: string;
  /** Actions served without authentication (e.g. `["ping", "login"]`, where `login` authenticates with the first message). @default [] */
  unauthenticatedActions?: string[];
  /**
   * Query parameter of the WebSocket URL that carries a token (`wss://host/websockets/v3?token=...`). The
   * gateway removes the parameters listed in its `credentialParams` (default `["token"]`) from the URL
   * it keeps and hands them over in `conn.upgrade.credentials`; list a custom name there too.
   * @default "token"
   */
  queryParam?: string;
  /**
   * Upgrade header that carries a token (`Authorization: Bearer ...`). It must also be listed in the
   * gateway's `upgradeHeaders` to be kept. @default "authorization"
   */
  header?: string;
  /**
   * Re-verify an identity that came from a token (`verify`) once it is this old, on the next request
   * that needs authentication: a revoked session then stops working within this time instead of living
   * as long as the socket. When `verify` refuses, the identity is dropped and the request gets
   * `AuthorizationRequired` "The token is no longer valid.". An identity a service stored (`login`) has
   * no token to re-verify and is kept. 0 = verify once per connection.
   * @default 0
   */
  reverifyAfterMs?: number;
}

/** The reply to a request that needs authentication. */
export function authorizationRequired(req: RpcRequest, message = "Please log in."): HookResult {
  return { msg_type: req.msgType, error: { code: "AuthorizationRequired", message } };
}

/**
 * A `beforeForward` hook that lets a request through only when the connection is authenticated: its stash
 * holds `stashKey` (an own value: `constructor` or `__proto__` never come from the prototype), or the
 * upgrade request carried a token that `verify` accepts (the identity is then stored). `verify` runs once
 * per connection, whatever its answer: a refused token is remembered, so frames sent with it cost no
 * further checks (once more after the object was evicted; a `verify` that throws is asked again next
 * time; with `reverifyAfterMs`, again once the identity is that old). Actions in `unauthenticatedActions` always pass; any other gets `AuthorizationRequired` and is
 * never forwarded. The stash lives on the server only: a client field named like `stashKey` changes nothing.
 */
export function requireAuth(options: RequireAuthOptions): RequestHook {
  const stashKey = options.stashKey ?? "auth";
  const open = new Set(options.unauthenticatedActions ?? []);
  const queryParam = options.queryParam ?? "token";
  const header = (options.header ?? "authorization").toLowerCase();
  const reverifyAfterMs = options.reverifyAfterMs ?? 0;
  // When the token's identity was verified (ms since the epoch), kept next to it in the stash.
  const verifiedAtKey = `${stashKey}_verified_at`;
  const due = (verifiedAt: unknown): boolean =>
    reverifyAfterMs > 0 && typeof verifiedAt === "number" && Date.now() - verifiedAt >= reverifyAfterMs;
  // One verification per connection (or per `reverifyAfterMs`), shared by the frames that arrive while it runs.
  const verdicts = new WeakMap<Connection, { verdict: Promise<unknown>; startedAt: number }>();
  // `staleUpTo`: a verdict started at or before this time (the identity's verification) is not reused.
  const verifyOnce = (conn: Connection, token: string, staleUpTo?: number): Promise<unknown> => {
    const cached = verdicts.get(conn);
    if (cached && (staleUpTo === undefined || cached.startedAt > staleUpTo)) return cached.verdict;
    const verdict = Promise.resolve()
      .then(() => options.verify(token, conn))
      .catch((error: unknown) => {
        verdicts.delete(conn);
        throw error;
      });
    verdicts.set(conn, { verdict, startedAt: Date.now() });
    return verdict;
  };
  return async (conn, req) => {
    const known = getOwn(conn.stash, stashKey);
    const verifiedAt = getOwn(conn.stash, verifiedAtKey);
    const reverify = Boolean(known) && due(verifiedAt);
    if (known && !reverify) return undefined;
    const token = upgradeToken(conn, header, queryParam);
    if (token !== undefined) {
      const identity = await verifyOnce(conn, token, reverify ? (verifiedAt as number) : undefined);
      if (identity) {
        if (!getOwn(conn.stash, stashKey) || due(getOwn(conn.stash, verifiedAtKey))) {
          const stamp = reverifyAfterMs > 0 ? { [verifiedAtKey]: Date.now() } : {};
          conn.updateStash({ [stashKey]: identity, ...stamp });
        }
        return undefined;
      }
      if (known) {
        // Revoked since it was verified: the connection is no longer authenticated.
        conn.updateStash({ [stashKey]: null, [verifiedAtKey]: null });
        if (!open.has(req.name)) return authorizationRequired(req, "The token is no longer valid.");
      }
      if (!open.has(req.name)) return authorizationRequired(req, "The token is not valid.");
    }
    return open.has(req.name) ? undefined : authorizationRequired(req);
  };
}

/**
 * The token of the upgrade request: `<header>: Bearer <token>` (or the bare value), else `?<queryParam>=`
 * (from `conn.upgrade.credentials`, where the gateway moves it out of the URL, else from the URL).
 */
function upgradeToken(conn: Connection, header: string, queryParam: string): string | undefined {
  const fromHeader = getOwn(conn.upgrade.headers, header);
  const headerToken = typeof fromHeader === "string" ? fromHeader.replace(/^Bearer\s+/i, "").trim() : "";
  if (headerToken) return headerToken;
  const credential = conn.upgrade.credentials && getOwn(conn.upgrade.credentials, queryParam);
  if (typeof credential === "string" && credential !== "") return credential;
  try {
    return new URL(conn.upgrade.url).searchParams.get(queryParam) || undefined;
  } catch {
    // No usable URL (a connection rebuilt from an old attachment): there is no query token to read.
    return undefined;
  }
}

/**
 * True when an upgrade with this `Origin` header may connect: no allow-list, no `Origin` header (not a
 * browser: browsers always send it on WebSocket upgrades), or an exact match of an allowed origin
 * (`https://app.example.com`, scheme and port included; `"*"` allows every origin).
 */
export function originAllowed(allowedOrigins: readonly string[] | undefined, origin: string | null): boolean {
  if (allowedOrigins === undefined || origin === null) return true;
  return allowedOrigins.includes("*") || allowedOrigins.includes(origin);
}
