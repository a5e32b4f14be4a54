/**
 * `GET /metrics`: every known Durable Object's {@link MetricsSnapshot} summed into one Prometheus text
 * exposition (format 0.0.4). Counters, gauges and histogram buckets are all summed per name and label set:
 * requests of all objects, connections open on all objects, and so on.
 */
import type { MetricSample, MetricsSnapshot } from "./metrics.js";

/** The type and help text of each metric family, in output order. */
export const METRIC_FAMILIES: Record<string, { type: "counter" | "gauge" | "histogram"; help: string }> = {
  wsproxy_requests_total: {
    type: "counter",
    help: "Replies sent, by action (none: matched no action) and outcome (ok, app_error, or the gateway error code).",
  },
  wsproxy_request_duration_seconds: {
    type: "histogram",
    help: "Time from dispatch to the reply being sent, by action.",
  },
  wsproxy_pending_requests: { type: "gauge", help: "Backend calls waiting for a reply, by backend." },
  wsproxy_frames_in_flight: { type: "gauge", help: "Client frames being handled." },
  wsproxy_open_connections: { type: "gauge", help: "Open client WebSockets." },
  wsproxy_connections_opened_total: { type: "counter", help: "Client WebSockets accepted." },
  wsproxy_admission_refused_total: {
    type: "counter",
    help: "Connections closed at once (object_connections 1013, address_connections 1008) and frames answered RateLimit (address_frames) by an admission limit.",
  },
  wsproxy_redis_commands_total: { type: "counter", help: "Redis commands sent by the objects, by command." },
  wsproxy_redis_errors_total: { type: "counter", help: "Redis commands that failed, by command." },
  wsproxy_backend_timeouts_total: { type: "counter", help: "Backend calls that got no reply in time." },
  wsproxy_replies_dropped_total: {
    type: "counter",
    help: "Replies dropped: late (after the timeout), duplicate, unknown message_id, foreign reply key, invalid.",
  },
  wsproxy_redis_requests_total: {
    type: "counter",
    help: "REST requests the objects sent to Redis (a pipeline of several commands counts once).",
  },
  wsproxy_redis_queued_commands: {
    type: "gauge",
    help: "Redis commands waiting in the objects for one of their maxRedisConnections.",
  },
  wsproxy_reply_polls_total: { type: "counter", help: "LPOPs of the reply key." },
  wsproxy_reply_polls_empty_total: { type: "counter", help: "LPOPs of the reply key that found nothing." },
  wsproxy_pending_request_bytes: {
    type: "gauge",
    help: "Bytes of the client frames of requests in flight (maxPendingBytesPerObject bounds each object).",
  },
  wsproxy_byte_budget_rejections_total: {
    type: "counter",
    help: "Requests refused with RateLimit by a byte budget, by scope (connection, object).",
  },
  wsproxy_abuse_closes_total: {
    type: "counter",
    help: "Connections closed with 1008 after abuseCloseAfterRejections error replies.",
  },
  wsproxy_stash_writes_dropped_total: {
    type: "counter",
    help: "Stash keys a reply tried to write that its action's stashWrites does not list (dropped).",
  },
  wsproxy_objects_reporting: { type: "gauge", help: "Durable Objects that answered this scrape." },
  wsproxy_objects_failed: {
    type: "gauge",
    help: "Durable Objects asked by this scrape that did not answer.",
  },
};

/** Sums samples with the same name and labels across snapshots, keeping first-seen order. */
export function mergeSnapshots(snapshots: readonly MetricsSnapshot[]): MetricSample[] {
  const merged = new Map<string, MetricSample>();
  for (const snapshot of snapshots) {
    for (const sample of snapshot.samples) {
      const key = `${sample.name}${formatLabels(sample.labels)}`;
      const seen = merged.get(key);
      if (seen) seen.value += sample.value;
      else merged.set(key, { name: sample.name, labels: { ...sample.labels }, value: sample.value });
    }
  }
  return [...merged.values()];
}

/** The Prometheus text format of `samples`, grouped by family with `# HELP` and `# TYPE` lines. */
export function renderPrometheus(samples: readonly MetricSample[]): string {
  const byFamily = new Map<string, MetricSample[]>();
  for (const sample of samples) {
    const family = familyOf(sample.name);
    const list = byFamily.get(family);
    if (list) list.push(sample);
    else byFamily.set(family, [sample]);
  }
  const lines: string[] = [];
  for (const [family, meta] of Object.entries(METRIC_FAMILIES)) {
    const list = byFamily.get(family);
    if (!list) continue;
    lines.push(`# HELP ${family} ${meta.help}`, `# TYPE ${family} ${meta.type}`);
    for (const sample of list)
      lines.push(`${sample.name}${formatLabels(sample.labels)} ${formatValue(sample.value)}`);
  }
  return `${lines.join("\n")}\n`;
}

/** A histogram's `_bucket`, `_sum` and `_count` series belong to its family. */
function familyOf(name: string): string {
  const base = name.replace(/_(bucket|sum|count)$/, "");
  return base !== name && METRIC_FAMILIES[base]?.type === "histogram" ? base : name;
}

function formatLabels(labels: Record<string, string>): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return "";
  return `{${entries.map(([key, value]) => `${key}="${escapeLabel(value)}"`).join(",")}}`;
}

/** Label values escape backslash, double quote and newline (the exposition format's rule). */
function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}
