/** The HTTP plumbing of the bridge: request target, authentication, body limits and JSON answers. */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { BridgeHttpError } from "./errors.js";

/**
 * Splits the request target by hand: `new URL("//get/k", base)` would read "get" as a host name, and a path
 * segment may legitimately be empty.
 */
export function splitRequestTarget(target: string): { path: string; query: URLSearchParams } {
  const queryStart = target.indexOf("?");
  if (queryStart < 0) return { path: target, query: new URLSearchParams() };
  return { path: target.slice(0, queryStart), query: new URLSearchParams(target.slice(queryStart + 1)) };
}

/** Accepts the token as a bearer header or `_token` query parameter, compared in constant time. */
export function isAuthorized(request: IncomingMessage, query: URLSearchParams, tokenDigest: Buffer): boolean {
  const header = request.headers.authorization;
  // The scheme name is case-insensitive (RFC 9110), the token is not.
  const presented = header && /^bearer /i.test(header) ? header.slice("bearer ".length) : query.get("_token");
  // Comparing digests keeps the comparison constant-time even when the lengths differ.
  return presented !== null && timingSafeEqual(digest(presented), tokenDigest);
}

/** SHA-256 of a token, so tokens of any length compare in constant time. */
export function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

/**
 * Reads the body up to `maxBodyBytes`. A larger body is refused as soon as that is known (from
 * Content-Length, or while streaming) without reading the rest; the 413 answer then closes the connection,
 * because the unread remainder makes it unusable for keep-alive.
 */
export async function readBody(request: IncomingMessage, maxBodyBytes: number): Promise<Buffer> {
  const tooLarge = () =>
    new BridgeHttpError(413, `ERR request body larger than ${maxBodyBytes} bytes`, { connection: "close" });
  if (Number(request.headers["content-length"] ?? 0) > maxBodyBytes) throw tooLarge();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // The first outcome wins; later events do nothing. A request's "close" follows its "end" as well, and
    // must then not build an error (with its stack trace) that nobody reads. The "error" listener stays:
    // an "error" with no listener would end the bridge.
    let settled = false;
    const settle = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      request.off("data", onData);
      outcome();
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= maxBodyBytes) {
        chunks.push(chunk);
        return;
      }
      // Stop reading without destroying the request: destroying it would also destroy the socket before the
      // 413 could be written.
      request.pause();
      settle(() => reject(tooLarge()));
    };
    request.on("data", onData);
    request.once("end", () => settle(() => resolve(Buffer.concat(chunks, size))));
    request.once("error", (error: Error) => settle(() => reject(error)));
    // A client that disconnects mid-body may not emit "error"; without this the handler would wait forever.
    request.once("close", () =>
      settle(() => reject(new BridgeHttpError(400, "ERR the client closed the request"))),
    );
  });
}

/** Answers with a JSON body, unless an answer was already started or the client has gone. */
export function sendJson(
  response: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
) {
  if (response.headersSent || response.destroyed) return;
  const body = JSON.stringify(value);
  response.writeHead(status, {
    ...headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  response.end(body);
}

/** Resolves after `ms` (the simulated network's one way), or undefined at once when there is none. */
export function travel(ms: number): Promise<void> | undefined {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : undefined;
}
