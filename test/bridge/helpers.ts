import { Redis as UpstashRedis } from "@upstash/redis";
import { startBridge, type BridgeOptions, type RunningBridge } from "../../src/bridge/server.js";
import { startRedis, type ManagedRedis } from "../../src/devstack/redis.js";

/** The bridge's token in tests. */
export const TOKEN = "bridge-test-token";

/** A private redis-server with a bridge in front of it. */
export interface BridgeFixture {
  redis: ManagedRedis;
  bridge: RunningBridge;
  /** POSTs or GETs `path` on the bridge with the token (unless `headers.authorization` overrides it). */
  http(path: string, init?: RequestInit): Promise<{ status: number; body: unknown; headers: Headers }>;
  stop(): Promise<void>;
}

/** Starts redis-server on a free port and the bridge in-process on another. */
export async function startBridgeFixture(
  options: Partial<Omit<BridgeOptions, "redisUrl" | "token" | "port">> = {},
): Promise<BridgeFixture> {
  const redis = await startRedis();
  let bridge: RunningBridge;
  try {
    bridge = await startBridge({ redisUrl: redis.url, token: TOKEN, port: 0, ...options });
  } catch (error) {
    await redis.stop();
    throw error;
  }
  return {
    redis,
    bridge,
    async http(path, init = {}) {
      const response = await fetch(`${bridge.url}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${TOKEN}`, ...(init.headers as Record<string, string>) },
      });
      const text = await response.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // Not JSON: the test sees the raw text and its assertion on a JSON shape fails with it.
      }
      return { status: response.status, body, headers: response.headers };
    },
    async stop() {
      await bridge.close();
      await redis.stop();
    },
  };
}

/** The client settings the conformance suite is run with. */
export interface ClientSettings {
  responseEncoding: false | "base64";
  enableAutoPipelining: boolean;
  automaticDeserialization: boolean;
  /** Send back the last `upstash-sync-token` (the client's default is on). */
  readYourWrites?: boolean;
}

/** Every combination of response encoding × auto-pipelining × automatic deserialization. */
export const CLIENT_MATRIX: ClientSettings[] = (["base64", false] as const).flatMap((responseEncoding) =>
  [true, false].flatMap((enableAutoPipelining) =>
    [true, false].map((automaticDeserialization) => ({
      responseEncoding,
      enableAutoPipelining,
      automaticDeserialization,
    })),
  ),
);

/** An `@upstash/redis` client for the bridge; no retries, so a failure shows at once. */
export function upstashClient(bridge: RunningBridge, settings: ClientSettings, token = TOKEN): UpstashRedis {
  return new UpstashRedis({
    url: bridge.url,
    token,
    retry: false,
    enableTelemetry: false,
    ...settings,
  });
}

/** A short description of the settings, for test names and unique key prefixes. */
export function describeSettings(settings: ClientSettings): string {
  return `encoding=${settings.responseEncoding || "none"} autoPipelining=${settings.enableAutoPipelining} deserialize=${settings.automaticDeserialization}`;
}
