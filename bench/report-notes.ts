/**
 * The prose parts of the report: the machine and how busy it was, the bare path's bound under the targets,
 * the trace, idle and connections phases.
 */
import { OTHER_PROCESSES } from "./process-stats.js";
import { LABELS, type PhaseResult } from "./load-phase.js";
import type { BenchReport } from "./report.js";
import { fixed, ratio, whole } from "./table.js";

/** The machine, how the Workers were served, and how much of the machine others used meanwhile. */
export function formatMachine(report: BenchReport): string {
  const others = report.phases.map((p) => p.coresBusy[OTHER_PROCESSES] ?? 0);
  const mean = others.reduce((sum, value) => sum + value, 0) / Math.max(1, others.length);
  const most = Math.max(0, ...others);
  const worst = report.phases[others.indexOf(most)];
  const machine = Object.entries(report.machine)
    .map(([key, value]) => `${key} ${value}`)
    .join(", ");
  const note =
    mean > 0.25
      ? `**The machine was shared**: processes outside the benchmark used ${mean.toFixed(2)} of its ` +
        `${report.machine.cpus} cores on average during the load phases (most: ${most.toFixed(2)} in ` +
        `${worst ? `${LABELS[worst.target]} x ${worst.clients}` : "-"}). Absolute figures suffer; ` +
        "ratios of phases run side by side less so."
      : `Processes outside the benchmark used ${mean.toFixed(2)} cores on average during the load phases.`;
  const latency = Number(report.settings.bridgeLatencyMs ?? 0);
  const distant =
    latency > 0
      ? `\n- **Redis ${latency} ms away**: the bridge simulated a ${latency} ms round trip on every REST ` +
        "request and stream event (`--bridge-latency-ms`); every target but (b) direct paid it."
      : "";
  return `- Machine: ${machine}.\n- Workers served by: ${report.servedBy}.\n- ${note}${distant}`;
}

/**
 * Under the targets: the 1-client p50 of (d), the reply transport's path with none of the gateway's code,
 * against the same (a)+(c), so a missed latency target can be told apart from one that no code with that
 * transport meets on the machine at hand.
 */
export function formatBound(report: BenchReport): string {
  const at1 = (target: PhaseResult["target"]) =>
    report.phases.find((phase) => phase.target === target && phase.clients === 1)?.latencyMs.p50;
  const bare = at1("bare");
  if (bare === undefined) return "";
  const limit = (at1("pushed") ?? NaN) + (at1("floor") ?? NaN);
  if (!Number.isFinite(bare) || !Number.isFinite(limit)) return "";
  const subscribe = report.settings.replyMode === "publish";
  const path = subscribe
    ? "the subscribe transport's I/O with none of the gateway's code (the floor object's `?mode=sub`: the " +
      "reply channel's event stream, the gateway's `XADD`, the answer when the published reply arrives)"
    : "the poll transport's I/O with none of the gateway's code (the floor object's `?mode=poll`: the " +
      "gateway's `XADD`, then `LPOP` from its answer on)";
  const code = subscribe ? "code that subscribes" : "polling code";
  const verdict =
    bare > limit
      ? `above the limit with no gateway code at all, so on this machine no ${code} meets the p50 target`
      : `within the limit, so ${code} can meet the p50 target on this machine`;
  return `\n\n(d) bare path, ${path}: p50 ${fixed(bare, 2)} ms at 1 client, ${ratio(bare, limit)} (a)+(c): ${verdict}.`;
}

/** The idle and connections phases, one line each. */
export function formatSockets(report: BenchReport): string {
  const lines = ["### Trace, idle and connections", ""];
  const { idle, connections, trace } = report;
  if (trace) {
    const reply = trace.replyCommand;
    const polled =
      reply === "RPUSH"
        ? `poll wait ${fixed(trace.pollWaitMs, 2)} ms (RPUSH to the LPOP that took the reply), ` +
          `turnaround ${fixed(trace.turnaroundMs, 2)} ms (that LPOP to the next XADD; `
        : `no poll (the reply is pushed), turnaround ${fixed(trace.turnaroundMs, 2)} ms (that PUBLISH to the next XADD; `;
    lines.push(
      `- Trace, 1 client, ${trace.requests} requests under Redis MONITOR (medians, as Redis saw them): ` +
        `service ${fixed(trace.serviceMs, 2)} ms (XADD to ${reply}), ${polled}` +
        `the floor's whole PING-to-PING cycle: ${fixed(trace.floorCycleMs, 2)} ms), ` +
        `cycle ${fixed(trace.cycleMs, 2)} ms` +
        (reply === "RPUSH" ? `, ${fixed(trace.lpopsPerRequest, 2)} LPOP per request.` : "."),
    );
  }
  if (idle) {
    const by = Object.entries({ ...idle.commands.caller.byCommand, ...idle.commands.service.byCommand }).map(
      ([k, v]) => `${k} ${v}`,
    );
    lines.push(
      `- Idle: ${idle.connections} open silent connections, ${(idle.windowMs / 1000).toFixed(0)} s window` +
        `${idle.scaledToMinute ? " (scaled to a minute)" : ""}: gateway ${fixed(idle.callerPerMinute, 1)} commands/min, ` +
        `service ${fixed(idle.servicePerMinute, 1)} commands/min (${by.join(", ") || "none"}); ` +
        `${idle.openingCommands} gateway commands while opening them; workerd CPU ${fixed(idle.workerdCpuMsPerMinute, 0)} ms/min.`,
    );
  }
  for (const [target, result] of Object.entries(connections)) {
    const ratioToFloor =
      target === "gateway"
        ? ratio(result.workerdBytesPerConnection, connections.floor?.workerdBytesPerConnection)
        : "";
    lines.push(
      `- Connections, ${target}: ${whole(result.opened)} of ${whole(result.requested)} opened on one object in ` +
        `${result.openSeconds.toFixed(1)} s, ${whole(result.stillOpen)} still open after 2 s, ` +
        `${result.sampledRequestsOk}/${result.sampledRequests} sampled pings answered; workerd RSS ` +
        `+${fixed(result.workerdRssDeltaBytes / 2 ** 20, 1)} MiB = ${fixed(result.workerdBytesPerConnection / 1024, 1)} KiB ` +
        `per connection${ratioToFloor && ratioToFloor !== "-" ? ` (${ratioToFloor} the floor's)` : ""}; the Node client side: ` +
        `${fixed(result.benchBytesPerConnection / 1024, 1)} KiB per socket${result.limitedBy ? `; limited by ${result.limitedBy}` : ""}${result.failure ? `; opening stopped: ${result.failure}` : ""}.`,
    );
  }
  return lines.join("\n");
}
