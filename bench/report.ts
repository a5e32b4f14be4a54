/**
 * The report of a run: the tables printed at the end, and the targets of issue 8 judged met or missed.
 */
import { LABELS, type PhaseResult, type Target } from "./load-phase.js";
import type { ConnectionsResult, IdleResult } from "./socket-phases.js";
import type { TraceResult } from "./trace-phase.js";
import { formatBound, formatMachine, formatSockets } from "./report-notes.js";
import { fixed, formatTable, ratio, whole } from "./table.js";

/** Everything a run produced (the `--json` file). */
export interface BenchReport {
  startedAt: string;
  durationSeconds: number;
  mode: "default" | "quick";
  machine: Record<string, string | number>;
  servedBy: string;
  settings: Record<string, unknown>;
  phases: PhaseResult[];
  /** Where the time of one request goes at 1 client (Redis MONITOR). */
  trace?: TraceResult;
  idle?: IdleResult;
  /** The capacity phase on the gateway's object and on the floor's. */
  connections: { gateway?: ConnectionsResult; floor?: ConnectionsResult };
  targets: TargetCheck[];
  /** Gateway-only load at the same clients over 1, 2, 4... objects (`--objects 1,2,4`). */
  scaling?: ScalingResult[];
}

/** One gateway phase of the scaling measurement. */
export interface ScalingResult {
  objects: number;
  phase: PhaseResult;
}

/** The scaling table: requests/s by number of objects, against one object. */
function formatScaling(scaling: ScalingResult[]): string {
  const one = scaling.find((s) => s.objects === 1)?.phase.requestsPerSecond;
  return (
    "### Scaling: gateway throughput by number of objects (gateway phases only)\n\n" +
    formatTable(
      [
        "objects",
        "clients",
        "req/s",
        "vs 1 object",
        "p50 ms",
        "p99 ms",
        "gateway cmd/req",
        "workerd cores busy",
      ],
      scaling.map(({ objects, phase }) => [
        String(objects),
        String(phase.clients),
        whole(phase.requestsPerSecond),
        ratio(phase.requestsPerSecond, one),
        fixed(phase.latencyMs.p50, 2),
        fixed(phase.latencyMs.p99, 2),
        fixed(phase.perRequest.caller, 3),
        fixed(phase.coresBusy.workerd, 2),
      ]),
    )
  );
}

/** One target, judged from figures measured in the same run (its baselines included). */
export interface TargetCheck {
  name: string;
  measured: string;
  limit: string;
  /**
   * How far from the limit, as `measured / limit` (an "at least" target is met at 1.00 or more, an "at
   * most" one at 1.00 or less); undefined when the limit is 0 or the run could not tell.
   */
  ratio?: number;
  /** Which way the target points. */
  atMost?: boolean;
  met: boolean | "n/a";
}

function find(phases: PhaseResult[], target: Target, clients: number): PhaseResult | undefined {
  return phases.find((phase) => phase.target === target && phase.clients === clients);
}

/** The targets of issue 8 against what was measured ("n/a" when the run skipped what they need). */
export function checkTargets(
  phases: PhaseResult[],
  idle: IdleResult | undefined,
  connections: ConnectionsResult | undefined,
): TargetCheck[] {
  const gw1 = find(phases, "gateway", 1);
  const gw64 = find(phases, "gateway", 64);
  const pushed1 = find(phases, "pushed", 1);
  const floor1 = find(phases, "floor", 1);
  const floor64 = find(phases, "floor", 64);
  const check = (
    name: string,
    value: number | undefined,
    limit: number,
    text: (v: number) => string,
    limitText: string,
    atMost = true,
  ): TargetCheck => {
    if (value === undefined || !Number.isFinite(value) || !Number.isFinite(limit))
      return { name, measured: "-", limit: limitText, atMost, met: "n/a" };
    return {
      name,
      measured: text(value),
      limit: limitText,
      ratio: limit === 0 ? undefined : value / limit,
      atMost,
      met: atMost ? value <= limit : value >= limit,
    };
  };
  const hop = (pushed1?.latencyMs.p50 ?? NaN) + (floor1?.latencyMs.p50 ?? NaN);
  const gw256 = find(phases, "gateway", 256);
  const floor256 = find(phases, "floor", 256);
  const rps = (gw: PhaseResult | undefined, floor: PhaseResult | undefined) =>
    gw && floor ? gw.requestsPerSecond / floor.requestsPerSecond : undefined;
  return [
    check(
      "p50 at 1 client",
      gw1?.latencyMs.p50,
      hop,
      (v) => `${v.toFixed(2)} ms`,
      `<= (a)+(c) = ${fixed(hop, 2)} ms`,
    ),
    check("gateway cmd/req at 1 client", gw1?.perRequest.caller, 2.1, (v) => v.toFixed(3), "<= 2.1"),
    check("gateway cmd/req at 64 clients", gw64?.perRequest.caller, 1.1, (v) => v.toFixed(3), "<= 1.1"),
    check("whole-system cmd/req at 64 clients", gw64?.perRequest.total, 2.0, (v) => v.toFixed(3), "<= 2.0"),
    check("gateway commands while idle", idle?.callerPerMinute, 0, (v) => `${fixed(v, 1)} /min`, "0 /min"),
    check(
      "req/s at 64 clients vs (c)",
      rps(gw64, floor64),
      1.0,
      (v) => `${v.toFixed(2)}x`,
      ">= 1.00x the floor",
      false,
    ),
    check(
      "req/s at 256 clients vs (c)",
      rps(gw256, floor256),
      0.8,
      (v) => `${v.toFixed(2)}x`,
      ">= 0.80x the floor",
      false,
    ),
    heldCheck(connections),
  ];
}

/** 10,000 idle connections held; a run that asked for fewer (`--quick`) cannot tell. */
function heldCheck(connections: ConnectionsResult | undefined): TargetCheck {
  const name = "idle WebSockets held on one object";
  const limit = ">= 10,000, still answering";
  if (!connections) return { name, measured: "-", limit, met: "n/a" };
  const answering = connections.sampledRequestsOk === connections.sampledRequests;
  const measured = `${whole(connections.stillOpen)}${answering ? "" : ", not answering"}`;
  if (connections.requested < 10_000)
    return { name, measured: `${measured} (asked ${whole(connections.requested)})`, limit, met: "n/a" };
  return { name, measured, limit, met: answering && connections.stillOpen >= 10_000 };
}

/** The failed requests by kind, under the load table (latencies and req/s count successes only). */
function formatErrors(phases: PhaseResult[]): string {
  const failing = phases.filter((p) => p.errors > 0);
  if (failing.length === 0) return "";
  const kinds = failing.map(
    (p) =>
      `${LABELS[p.target]} x ${p.clients}: ${Object.entries(p.errorCodes)
        .map(([code, count]) => `${code} ${count}`)
        .join(", ")}`,
  );
  const rateLimited = failing.some((p) => p.errorCodes.RateLimit);
  return (
    `\n\nErrors (not in the latencies or req/s): ${kinds.join("; ")}.` +
    (rateLimited
      ? " RateLimit is the gateway's per-connection frame rate (`maxMessagesPerSecond`, 500 by default): a" +
        " closed-loop client that fast is refused by design."
      : "")
  );
}

/** The printed report. */
export function formatReport(report: BenchReport): string {
  const { phases } = report;
  const clientCounts = [...new Set(phases.map((p) => p.clients))].sort((a, b) => a - b);
  const sections: string[] = [formatMachine(report)];
  sections.push(
    "### Load: closed loop, one request in flight per client\n\n" +
      formatTable(
        [
          "target",
          "clients",
          "req/s",
          "p50 ms",
          "p95 ms",
          "p99 ms",
          "errors",
          "caller cmd/req",
          "service cmd/req",
          "total cmd/req",
          "$/M req",
        ],
        phases.map((p) => [
          LABELS[p.target],
          String(p.clients),
          whole(p.requestsPerSecond),
          fixed(p.latencyMs.p50, 2),
          fixed(p.latencyMs.p95, 2),
          fixed(p.latencyMs.p99, 2),
          String(p.errors),
          fixed(p.perRequest.caller, 3),
          fixed(p.perRequest.service, 3),
          fixed(p.perRequest.total, 3),
          `$${fixed(p.usdPerMillion.total, 2)}`,
        ]),
      ) +
      formatErrors(phases),
  );
  sections.push(
    "### The gateway as a ratio to the baselines\n\n" +
      formatTable(
        [
          "clients",
          "p50 /(a)",
          "p50 /(b)",
          "p50 /(c)",
          "p50 /((a)+(c))",
          "p99 /(a)",
          "p99 /(c)",
          "req/s /(a)",
          "req/s /(b)",
          "req/s /(c)",
          "gw cmd /(a) client",
          "total cmd /(a)",
        ],
        clientCounts.map((n) => {
          const [g, a, b, c] = (["gateway", "pushed", "direct", "floor"] as const).map((t) =>
            find(phases, t, n),
          );
          return [
            String(n),
            ratio(g?.latencyMs.p50, a?.latencyMs.p50),
            ratio(g?.latencyMs.p50, b?.latencyMs.p50),
            ratio(g?.latencyMs.p50, c?.latencyMs.p50),
            ratio(g?.latencyMs.p50, (a?.latencyMs.p50 ?? NaN) + (c?.latencyMs.p50 ?? NaN)),
            ratio(g?.latencyMs.p99, a?.latencyMs.p99),
            ratio(g?.latencyMs.p99, c?.latencyMs.p99),
            ratio(g?.requestsPerSecond, a?.requestsPerSecond),
            ratio(g?.requestsPerSecond, b?.requestsPerSecond),
            ratio(g?.requestsPerSecond, c?.requestsPerSecond),
            ratio(g?.perRequest.caller, a?.perRequest.caller),
            ratio(g?.perRequest.total, a?.perRequest.total),
          ];
        }),
      ),
  );
  const gatewayPhases = phases.filter((p) => p.target === "gateway");
  const names = [
    ...new Set(
      gatewayPhases.flatMap((p) => [
        ...Object.keys(p.commands.caller.byCommand),
        ...Object.keys(p.commands.service.byCommand),
      ]),
    ),
  ];
  sections.push(
    "### Gateway phases: commands per request by name (gateway side, then service side)\n\n" +
      formatTable(
        ["clients", ...names, "empty polls/req", "REST req/req", "poll delay ms"],
        gatewayPhases.map((p) => [
          String(p.clients),
          ...names.map((name) =>
            fixed(
              ((p.commands.caller.byCommand[name] ?? 0) + (p.commands.service.byCommand[name] ?? 0)) /
                p.requests,
              3,
            ),
          ),
          fixed(p.poller?.emptyPollsPerRequest, 3),
          fixed(p.poller?.redisRequestsPerRequest, 3),
          p.poller ? p.poller.expectedLatencyMs.map((ms) => ms.toFixed(2)).join("/") : "-",
        ]),
      ),
  );
  const roles = [...new Set(phases.flatMap((p) => Object.keys(p.cpuMsPerKRequests)))];
  sections.push(
    "### CPU ms per 1,000 requests by process (cores busy in brackets; the machine has " +
      `${report.machine.cpus} cores)\n\n` +
      formatTable(
        ["target", "clients", ...roles],
        phases.map((p) => [
          LABELS[p.target],
          String(p.clients),
          ...roles.map((r) => `${fixed(p.cpuMsPerKRequests[r], 0)} (${fixed(p.coresBusy[r], 2)})`),
        ]),
      ),
  );
  if (report.scaling && report.scaling.length > 0) sections.push(formatScaling(report.scaling));
  sections.push(formatSockets(report));
  sections.push(
    "### Targets (every limit from this run's own baselines)\n\n" +
      formatTable(
        ["target", "measured", "limit", "measured / limit", "met"],
        report.targets.map((t) => [
          t.name,
          t.measured,
          t.limit,
          t.ratio === undefined ? "-" : `${t.ratio.toFixed(2)}x`,
          t.met === "n/a" ? "n/a" : t.met ? "met" : "MISSED",
        ]),
      ) +
      formatBound(report),
  );
  return sections.join("\n\n");
}
