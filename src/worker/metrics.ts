/**
 * The metrics one Durable Object keeps, in memory: requests by action and outcome, a latency histogram,
 * and the Redis commands its backends sent. The recorder plugs into the core through two ordinary hooks
 * (`beforeForward` to note the request, `afterSentApiResponse` to count the reply) and one Redis observer,
 * so the core needs no metrics code. `GET /metrics` asks every object for a {@link MetricsSnapshot},
 * sums them (`prometheus.ts`) and renders the Prometheus text format.
 *
 * The figures live as long as the object's incarnation: an evicted (hibernated) or restarted object starts
 * again from zero.
 */
import type { RedisObserver } from "../backends/index.js";
import type { DispatcherCounters } from "../core/dispatcher.js";
import { CLIENT_ERRORS } from "../core/errors.js";
import { findAction } from "../core/request.js";
import type {
  ActionOptions,
  BackendStats,
  ClientMessage,
  Connection,
  JsonObject,
  RpcRequest,
} from "../core/types.js";

/** One sample: a metric name, its labels and a value. Samples with the same name and labels are summed. */
export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** What one object reports to `GET /metrics`: plain data, so it crosses the Durable Object RPC boundary. */
export interface MetricsSnapshot {
  samples: MetricSample[];
}

/** Upper bounds of the latency histogram, seconds: from a warm Redis round trip to the 30 s default timeout. */
export const LATENCY_BUCKETS_SECONDS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
] as const;

/** The label of frames that matched no action (not JSON, sanity check failed, unrecognised). */
export const NO_ACTION = "none";

/** What the recorder learns about a request when it is dispatched, to finish the record at the reply. */
interface RequestNote {
  action: string;
  correlationId: string;
  receivedAtMs: number;
}

/** One answered request, as the recorder hands it to a listener (the request log). */
export interface AnsweredRequest {
  action: string;
  /** `ok`, `app_error`, or one of the gateway's own error codes. */
  outcome: string;
  /** From dispatch to the reply being sent; undefined for frames that matched no action. */
  durationMs?: number;
  correlationId?: string;
  connectionId: string;
}

/** Counts requests and Redis commands for one Durable Object incarnation. */
export class MetricsRecorder {
  // Keyed by the decoded client frame, which the core hands to both hooks: the request is the frame's.
  private readonly notes = new WeakMap<ClientMessage, RequestNote>();
  private readonly requests = new Map<string, { action: string; outcome: string; count: number }>();
  private readonly latency = new Map<string, Histogram>();
  private readonly redisCommands = new Map<string, number>();
  private readonly redisErrors = new Map<string, number>();
  private connectionsOpened = 0;
  private readonly refused = new Map<string, number>();

  constructor(
    private readonly actionTable: ReadonlyMap<string, ActionOptions>,
    private readonly now: () => number = Date.now,
    private readonly onAnswered?: (request: AnsweredRequest) => void,
  ) {}

  /** A global `beforeForward` hook (runs first): notes the action, correlation id and receive time. */
  readonly noteRequest = (_conn: Connection, req: RpcRequest): undefined => {
    this.notes.set(req.args, {
      action: req.name,
      correlationId: req.correlationId,
      receivedAtMs: req.receivedAtMs ?? this.now(),
    });
    return undefined;
  };

  /** A global `afterSentApiResponse` hook (runs last): counts the reply by action and outcome. */
  readonly countReply = (conn: Connection, message: JsonObject | undefined, reply: JsonObject): void => {
    const note = message ? this.notes.get(message) : undefined;
    const action = note?.action ?? (message && findAction(this.actionTable, message)?.[0]) ?? NO_ACTION;
    const outcome = replyOutcome(reply);
    const key = `${action}\u0000${outcome}`;
    const entry = this.requests.get(key);
    if (entry) entry.count += 1;
    else this.requests.set(key, { action, outcome, count: 1 });
    let durationMs: number | undefined;
    if (note) {
      durationMs = Math.max(0, this.now() - note.receivedAtMs);
      let histogram = this.latency.get(action);
      if (!histogram) this.latency.set(action, (histogram = new Histogram()));
      histogram.observe(durationMs / 1000);
    }
    this.onAnswered?.({
      action,
      outcome,
      durationMs,
      correlationId: note?.correlationId,
      connectionId: conn.id,
    });
  };

  /** A new connection was accepted. */
  connectionOpened(): void {
    this.connectionsOpened += 1;
  }

  /**
   * A connection or frame refused by an admission limit: `object_connections` (`maxConnectionsPerObject`),
   * `address_connections` (`maxConnectionsPerAddress`), `address_frames` (`maxFramesPerSecondPerAddress`).
   */
  admissionRefused(reason: "object_connections" | "address_connections" | "address_frames"): void {
    bump(this.refused, reason);
  }

  /** Given to the object's Redis ports: counts each command sent (by name) and each that failed. */
  readonly redisObserver: RedisObserver = {
    sent: (commands) => {
      for (const command of commands) bump(this.redisCommands, command[0].toUpperCase());
    },
    failed: (command) => bump(this.redisErrors, command[0].toUpperCase()),
  };

  /**
   * This object's figures. `gauges` are read at the time of the call: open sockets, frames being handled,
   * and the consumer-groups backends' counters (pending calls, dropped replies, polls).
   */
  snapshot(gauges: {
    openConnections: number;
    framesInFlight: number;
    backends: Record<string, BackendStats>;
    /** The dispatcher's limit and stash counters. */
    dispatcher?: DispatcherCounters;
  }): MetricsSnapshot {
    const samples: MetricSample[] = [];
    const add = (name: string, labels: Record<string, string>, value: number): void => {
      samples.push({ name, labels, value });
    };
    for (const { action, outcome, count } of this.requests.values()) {
      add("wsproxy_requests_total", { action, outcome }, count);
    }
    for (const [action, histogram] of this.latency)
      histogram.samples("wsproxy_request_duration_seconds", action, add);
    for (const [command, count] of this.redisCommands)
      add("wsproxy_redis_commands_total", { command }, count);
    for (const [command, count] of this.redisErrors) add("wsproxy_redis_errors_total", { command }, count);
    add("wsproxy_connections_opened_total", {}, this.connectionsOpened);
    for (const [reason, count] of this.refused) add("wsproxy_admission_refused_total", { reason }, count);
    add("wsproxy_open_connections", {}, gauges.openConnections);
    add("wsproxy_frames_in_flight", {}, gauges.framesInFlight);
    for (const [backend, stats] of Object.entries(gauges.backends)) {
      add("wsproxy_pending_requests", { backend }, stats.pending ?? 0);
      add("wsproxy_backend_timeouts_total", { backend }, stats.timedOut ?? 0);
      add("wsproxy_redis_requests_total", { backend }, stats.redisRequests ?? 0);
      add("wsproxy_redis_queued_commands", { backend }, stats.queuedCommands ?? 0);
      add("wsproxy_reply_polls_total", { backend }, stats.polls ?? 0);
      add("wsproxy_reply_polls_empty_total", { backend }, stats.emptyPolls ?? 0);
      for (const reason of ["late", "duplicate", "unknown", "foreign", "invalid"] as const) {
        add("wsproxy_replies_dropped_total", { backend, reason }, stats[reason] ?? 0);
      }
    }
    if (gauges.dispatcher) {
      const counters = gauges.dispatcher;
      add("wsproxy_pending_request_bytes", {}, counters.pendingBytes);
      add("wsproxy_byte_budget_rejections_total", { scope: "connection" }, counters.connectionByteRejections);
      add("wsproxy_byte_budget_rejections_total", { scope: "object" }, counters.objectByteRejections);
      add("wsproxy_abuse_closes_total", {}, counters.abuseCloses);
      add("wsproxy_stash_writes_dropped_total", {}, counters.stashWritesDropped);
    }
    add("wsproxy_objects_reporting", {}, 1);
    return { samples };
  }
}

function bump(counts: Map<string, number>, command: string): void {
  counts.set(command, (counts.get(command) ?? 0) + 1);
}

/** `ok`, `app_error` (any code a service chose: unbounded, so not a label), or a gateway error code. */
export function replyOutcome(reply: JsonObject): string {
  const error = reply.error;
  if (typeof error !== "object" || error === null) return "ok";
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && Object.hasOwn(CLIENT_ERRORS, code) ? code : "app_error";
}

/** A cumulative histogram over {@link LATENCY_BUCKETS_SECONDS}. */
class Histogram {
  private readonly counts = new Array<number>(LATENCY_BUCKETS_SECONDS.length).fill(0);
  private count = 0;
  private sum = 0;

  observe(seconds: number): void {
    this.count += 1;
    this.sum += seconds;
    const index = LATENCY_BUCKETS_SECONDS.findIndex((bound) => seconds <= bound);
    if (index >= 0) this.counts[index] = (this.counts[index] ?? 0) + 1;
  }

  samples(
    name: string,
    action: string,
    add: (name: string, labels: Record<string, string>, value: number) => void,
  ) {
    let cumulative = 0;
    LATENCY_BUCKETS_SECONDS.forEach((bound, index) => {
      cumulative += this.counts[index] ?? 0;
      add(`${name}_bucket`, { action, le: String(bound) }, cumulative);
    });
    add(`${name}_bucket`, { action, le: "+Inf" }, this.count);
    add(`${name}_sum`, { action }, this.sum);
    add(`${name}_count`, { action }, this.count);
  }
}
