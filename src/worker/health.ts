/**
 * `GET /health`: is the gateway configured, and can it reach each Redis its backends use?
 */
import { createRedisPort, type RedisPort } from "../backends/index.js";
import type { GatewayEnv } from "./config.js";
import { localRedisRefusal } from "./local-redis.js";
import { gatewayPlan, type CompiledGateway } from "./plan.js";

/** The `/health` body. `ok` is false (HTTP 503) when the configuration is broken or a Redis is unreachable. */
export interface HealthReport {
  ok: boolean;
  /** The configuration problem, naming the variable or option. */
  error?: string;
  /** One entry per consumer-groups backend. */
  redis: Record<string, { reachable: boolean; latencyMs?: number; error?: string }>;
}

/**
 * Checks the configuration and `PING`s every consumer-groups backend's Redis over REST. With `requestUrl`
 * (the URL the gateway was reached on), a local Redis URL is refused unless that URL is loopback, before
 * any `PING` is sent.
 */
export async function checkHealth(
  gateway: CompiledGateway,
  env: GatewayEnv,
  requestUrl?: string,
): Promise<HealthReport> {
  let plan;
  try {
    plan = gatewayPlan(gateway, env);
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error), redis: {} };
  }
  const refusal = requestUrl && localRedisRefusal(plan.localRedis, requestUrl);
  if (refusal) return { ok: false, error: refusal, redis: {} };
  const timeoutMs = plan.healthTimeoutMs;
  const checks = Object.entries(plan.backends).flatMap(([name, config]) => {
    if (config.type !== "consumer_groups") return [];
    const port = createRedisPort({
      url: config.redisUrl,
      token: config.redisToken,
      client: config.redis,
      requestTimeoutMs: timeoutMs,
      maxConnections: 1,
    });
    return [ping(port, timeoutMs).then((result) => [name, result] as const)];
  });
  const redis = Object.fromEntries(await Promise.all(checks));
  return { ok: Object.values(redis).every((entry) => entry.reachable), redis };
}

async function ping(
  port: RedisPort,
  timeoutMs: number,
): Promise<{ reachable: boolean; latencyMs?: number; error?: string }> {
  const started = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const reply = port.exec(["PING"]);
    // If the timeout wins, the PING may still fail later; that failure is already reported as the timeout.
    reply.catch(() => undefined);
    await Promise.race([reply, timeout]);
    return { reachable: true, latencyMs: Date.now() - started };
  } catch (error) {
    // Name and message only, shortened: SDK errors quote the failed command (never the token).
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return { reachable: false, error: message.slice(0, 200) };
  } finally {
    clearTimeout(timer);
  }
}
