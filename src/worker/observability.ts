/**
 * Observability glue: what each Durable Object wires in (a JSON logger, the metrics recorder's hooks and
 * Redis wrapper), and the Worker's `GET /metrics`, which asks every known object over Durable Object RPC
 * and sums their figures.
 */
import type { Hono } from "hono";
import { ConfigError } from "../core/errors.js";
import { hookList } from "../core/hooks.js";
import type { ResolvedGatewayOptions } from "../core/options.js";
import type { CreateGatewayOptions, GatewayEnv } from "./config.js";
import { createJsonLogger, isLogLevel, type GatewayLogger } from "./log.js";
import { MetricsRecorder, type MetricsSnapshot } from "./metrics.js";
import type { BackendInstrumentation, GatewayPlan } from "./plan.js";
import { mergeSnapshots, renderPrometheus } from "./prometheus.js";

/** What one object incarnation uses to log and count. */
export interface ObjectObservability {
  logger: GatewayLogger;
  recorder: MetricsRecorder;
  /** The plan's core options with the recorder's hooks added (first `beforeForward`, last `afterSentApiResponse`). */
  options: ResolvedGatewayOptions;
  /** For `buildBackends`: count Redis commands, log through the JSON logger. */
  instrumentation: BackendInstrumentation;
}

/** Sets up logging and metrics for one object, from the plan (its log level, the secrets to redact). */
export function createObjectObservability(plan: GatewayPlan, objectId: string): ObjectObservability {
  // Secrets redacted wherever they might surface (an SDK error quoting its request, say).
  const logger = createJsonLogger(plan.logLevel, [...plan.secrets], { object: objectId });
  // Request lines are built only when they will be written: no per-request cost at the default level.
  const onAnswered = logger.enabled("info") ? logger.request : undefined;
  const options = plan.core;
  const recorder = new MetricsRecorder(options.actionTable, Date.now, onAnswered);
  return {
    logger,
    recorder,
    options: {
      ...options,
      beforeForward: [recorder.noteRequest, ...hookList(options.beforeForward)],
      afterSentApiResponse: [...hookList(options.afterSentApiResponse), recorder.countReply],
    },
    instrumentation: { redisObserver: recorder.redisObserver, logger },
  };
}

/** Throws a ConfigError naming `logLevel` or `metricsObjects` when they are malformed. */
export function assertObservabilityOptions(options: CreateGatewayOptions): void {
  if (options.logLevel !== undefined && !isLogLevel(options.logLevel)) {
    throw new ConfigError('`logLevel` must be "debug", "info", "warn" or "error"');
  }
  const names = options.metricsObjects;
  if (names !== undefined && (!Array.isArray(names) || names.some((name) => typeof name !== "string"))) {
    throw new ConfigError("`metricsObjects` must be an array of Durable Object names");
  }
}

/** The object method `GET /metrics` calls over RPC. */
export interface MetricsSource {
  metricsSnapshot(): MetricsSnapshot | Promise<MetricsSnapshot>;
}

/** How long `GET /metrics` waits for each object. */
const OBJECT_SCRAPE_TIMEOUT_MS = 2_000;

/**
 * The names `GET /metrics` asks: `metricsObjects`, else the default mapping's shard names, else none
 * (a custom `objectName` can make any name, which the Worker cannot list).
 */
export function metricsObjectNames(options: CreateGatewayOptions, shards: number): string[] {
  if (options.metricsObjects) return [...options.metricsObjects];
  if (options.objectName) return [];
  return Array.from({ length: shards }, (_, index) => `shard-${index}`);
}

/** Adds `GET /metrics`: every named object's snapshot, summed, in the Prometheus text format. */
export function mountMetrics(
  app: Hono<{ Bindings: GatewayEnv }>,
  names: readonly string[],
  namespaceOf: (env: GatewayEnv) => DurableObjectNamespace | undefined,
): void {
  app.get("/metrics", async (c) => {
    const namespace = namespaceOf(c.env);
    const asked = namespace ? names : [];
    const results = await Promise.allSettled(
      asked.map((name) => {
        const stub = namespace?.get(namespace.idFromName(name)) as unknown as MetricsSource;
        return withTimeout(Promise.resolve(stub.metricsSnapshot()), OBJECT_SCRAPE_TIMEOUT_MS);
      }),
    );
    const snapshots: MetricsSnapshot[] = [];
    let failed = 0;
    results.forEach((result, index) => {
      if (result.status === "fulfilled") snapshots.push(result.value);
      else {
        failed += 1;
        console.warn(
          JSON.stringify({ level: "warn", msg: "metrics: an object did not answer", name: asked[index] }),
        );
      }
    });
    snapshots.push({
      samples: [
        { name: "wsproxy_objects_reporting", labels: {}, value: 0 },
        { name: "wsproxy_objects_failed", labels: {}, value: failed },
      ],
    });
    return c.body(renderPrometheus(mergeSnapshots(snapshots)), 200, {
      "content-type": "text/plain; version=0.0.4; charset=utf-8",
      "cache-control": "no-store",
    });
  });
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
