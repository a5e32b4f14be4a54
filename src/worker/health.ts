/**
 * `GET /health`: is the gateway configured, and can it reach each Redis its backends use?
 */
import { createRedisPort, type RedisPort } from "../backends/index.js";
import type { GatewayEnv } from "./config.js";
import { CONFIG_ERROR_TEXT } from "./config-errors.js";
import { localRedisRefusal } from "./local-redis.js";
import { redact } from "./log.js";
import { gatewayPlan, type CompiledGateway, type GatewayPlan } from "./plan.js";

/** The `/health` body. `ok` is false (HTTP 503) when the configuration is broken or a Redis is unreachable. */
export interface HealthReport {
  ok: boolean;
  /** The configuration is broken: a generic text, the detail is in the Worker's log. */
  error?: string;
  /** One entry per consumer-groups backend. */
  redis: Record<string, { reachable: boolean; latencyMs?: number; error?: string }>;
}

/** The last Redis check of each plan (one per env), reused for `healthCacheMs`. */
const lastChecks = new WeakMap<GatewayPlan, { atMs: number; redis: Promise<HealthReport["redis"]> }>();

/**
 * Checks the configuration and `PING`s every consumer-groups backend's Redis over REST. With `requestUrl`
 * (the URL the gateway was reached on), a local Redis URL is refused unless that URL is loopback, before
 * any `PING` is sent. A configuration error is handed to `onConfigError` (for the log) and reported with a
 * generic text. The Redis result is reused for `healthCacheMs`, so a busy health checker (or anyone
 * calling `/health` in a loop) costs one billed `PING` per Redis per interval and isolate.
 */
export async function checkHealth(
  gateway: CompiledGateway,
  env: GatewayEnv,
  requestUrl?: string,
  onConfigError: (detail: string) => void = () => undefined,
): Promise<HealthReport> {
  let plan;
  try {
    plan = gatewayPlan(gateway, env);
  } catch (error) {
    onConfigError(error instanceof Error ? error.message : String(error));
    return { ok: false, error: CONFIG_ERROR_TEXT, redis: {} };
  }
  const refusal = requestUrl && localRedisRefusal(plan.localRedis, requestUrl);
  if (refusal) {
    onConfigError(refusal);
    return { ok: false, error: CONFIG_ERROR_TEXT, redis: {} };
  }
  const nowMs = Date.now();
  let check = lastChecks.get(plan);
  if (!check || nowMs - check.atMs >= plan.healthCacheMs) {
    check = { atMs: nowMs, redis: pingAll(plan) };
    lastChecks.set(plan, check);
  }
  const redis = await check.redis;
  return { ok: Object.values(redis).every((entry) => entry.reachable), redis };
}

/** `PING`s every consumer-groups backend's Redis; error texts redacted of every configured secret. */
async function pingAll(plan: GatewayPlan): Promise<HealthReport["redis"]> {
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
    return [
      ping(port, timeoutMs).then((result) => {
        if (result.error) result.error = redact(result.error, plan.secrets).slice(0, 200);
        return [name, result] as const;
      }),
    ];
  });
  return Object.fromEntries(await Promise.all(checks));
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
    // Name and message only, shortened (after redaction, by the caller: a cut must not split a secret).
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return { reachable: false, error: message };
  } finally {
    clearTimeout(timer);
  }
}
