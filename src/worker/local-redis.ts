/**
 * The local-Redis rule: a plain-http or loopback Redis REST URL (the local bridge) is accepted only while
 * the gateway itself is reached on a loopback address, that is in local development (`npm start`,
 * `wrangler dev`). A deployed Worker configured with such a URL refuses to serve instead of sending every
 * request to an address that cannot be the production database (or sending the token in clear text).
 */
import type { BackendConfig } from "../backends/index.js";

/** True for `localhost` (and `*.localhost`), 127.0.0.0/8 and `::1` (with or without brackets). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  if (host === "localhost" || host.endsWith(".localhost")) return true;
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) return true;
  // `::1`, and 127.x written as an IPv4-mapped IPv6 address (the URL parser spells it `::ffff:7fxx:xxxx`).
  return host === "::1" || /^::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}$/.test(host);
}

/** True when `url` is plain http or names a loopback host: a local stand-in, not a production Redis. */
export function isLocalRedisUrl(url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Not a URL at all: the Redis client reports that on its first command.
    return false;
  }
  return parsed.protocol === "http:" || isLoopbackHost(parsed.hostname);
}

/**
 * The settings, by the name a user sets, whose Redis URL is local: `UPSTASH_REDIS_REST_URL` (`envUrl`, its
 * value) when the URL comes from the environment, else the backend's `redisUrl` option. Never the URL itself.
 */
export function localRedisSettings(
  configs: Readonly<Record<string, BackendConfig>>,
  envUrl: string | undefined,
): string[] {
  const names = new Set<string>();
  for (const [name, config] of Object.entries(configs)) {
    if (config.type !== "consumer_groups" || !config.redisUrl || !isLocalRedisUrl(config.redisUrl)) continue;
    names.add(
      config.redisUrl === envUrl ? "UPSTASH_REDIS_REST_URL" : `the \`redisUrl\` option of backend "${name}"`,
    );
  }
  return [...names];
}

/**
 * Why a request to `requestUrl` must be refused under these local settings, naming the setting (never
 * its value); undefined when the gateway is reached on a loopback address or no setting is local.
 */
export function localRedisRefusal(settings: readonly string[], requestUrl: string): string | undefined {
  if (settings.length === 0 || isLoopbackHost(new URL(requestUrl).hostname)) return undefined;
  return (
    `${settings.join(" and ")} is a plain-http or loopback address, accepted only while the gateway is ` +
    "reached on a loopback address (local development): set your Upstash database's https REST URL, " +
    "e.g. `wrangler secret put UPSTASH_REDIS_REST_URL`"
  );
}
