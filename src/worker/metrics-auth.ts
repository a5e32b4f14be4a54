/**
 * Who may read `GET /metrics`: with a token configured (`metricsToken`, else `METRICS_TOKEN`), a request
 * carrying it as `Authorization: Bearer <token>`; without one, only a request on a loopback host (local
 * development, as the local-Redis rule decides). Anything else is answered here, before a single object is
 * asked, so an anonymous scrape never wakes the shards.
 */
import type { GatewayEnv } from "./config.js";
import { isLoopbackHost } from "./local-redis.js";
import { gatewayPlan, type CompiledGateway } from "./plan.js";

/** The refusal of a `/metrics` request (401 or 404), or undefined when it may be served. */
export async function metricsRefusal(
  gateway: CompiledGateway,
  env: GatewayEnv,
  request: Request,
): Promise<Response | undefined> {
  let token: string | undefined;
  try {
    token = gatewayPlan(gateway, env).metricsToken;
  } catch {
    // A broken configuration: no token can be known, so only the loopback rule applies (`/health` reports it).
    token = undefined;
  }
  if (token === undefined) {
    return isLoopbackHost(new URL(request.url).hostname)
      ? undefined
      : new Response("Not Found", { status: 404 });
  }
  const given = request.headers.get("authorization")?.replace(/^Bearer\s+/i, "") ?? "";
  if (await sameSecret(given, token)) return undefined;
  return new Response("Unauthorized", {
    status: 401,
    headers: { "www-authenticate": 'Bearer realm="metrics"' },
  });
}

/**
 * Compares two secrets in constant time: their SHA-256 digests (equal lengths, as `timingSafeEqual`
 * requires) with the Workers runtime's `crypto.subtle.timingSafeEqual`
 * ("Web Crypto", https://developers.cloudflare.com/workers/runtime-apis/web-crypto/).
 */
async function sameSecret(given: string, expected: string): Promise<boolean> {
  const encoder = new TextEncoder();
  const [a, b] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(given)),
    crypto.subtle.digest("SHA-256", encoder.encode(expected)),
  ]);
  return crypto.subtle.timingSafeEqual(a, b);
}
