/**
 * Redis command counts from `INFO commandstats`, split by who sends them. The phases run one at a time,
 * so the delta over a phase is that phase's traffic; the split is by command name.
 */
import { Redis } from "ioredis";

/** Calls per command name (lower case, e.g. `xadd`, `client|setname`). */
export type CommandCounts = Record<string, number>;

/** Commands only a backend service sends (PROTOCOL.md section 5). */
const SERVICE_COMMANDS = new Set([
  "xreadgroup",
  "xack",
  "rpush",
  "expire",
  "xpending",
  "xclaim",
  "xautoclaim",
  "xgroup|create",
  "publish",
]);
/** Connection set-up and the benchmark's own probes: counted by nobody. */
const HOUSEKEEPING = /^(info|client\|.*|hello|select|command.*|config\|.*)$/;

/** One side's commands in a phase. */
export interface SideCounts {
  total: number;
  byCommand: CommandCounts;
}

/** A phase's commands: the caller's side (gateway, or the baseline's Node client) and the service's. */
export interface CommandSplit {
  caller: SideCounts;
  service: SideCounts;
}

/** Reads `INFO commandstats` over one long-lived connection (INFO itself is left out of every figure). */
export class CommandStats {
  private readonly redis: Redis;

  constructor(redisUrl: string) {
    this.redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, connectionName: "edge-wsproxy-bench" });
  }

  /** Current totals by command name. */
  async snapshot(): Promise<CommandCounts> {
    const info = await this.redis.info("commandstats");
    const counts: CommandCounts = {};
    for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm))
      counts[match[1] ?? "?"] = Number(match[2]);
    return counts;
  }

  close(): void {
    this.redis.disconnect();
  }
}

/** Splits `after - before` into the caller's and the service's commands. */
export function splitDelta(before: CommandCounts, after: CommandCounts): CommandSplit {
  const split: CommandSplit = { caller: { total: 0, byCommand: {} }, service: { total: 0, byCommand: {} } };
  for (const [name, calls] of Object.entries(after)) {
    const delta = calls - (before[name] ?? 0);
    if (delta <= 0 || HOUSEKEEPING.test(name)) continue;
    const side = SERVICE_COMMANDS.has(name) ? split.service : split.caller;
    side.total += delta;
    side.byCommand[name.toUpperCase()] = delta;
  }
  return split;
}

/** Adds `more` to `into`. */
export function mergeSplit(into: CommandSplit, more: CommandSplit): void {
  for (const side of ["caller", "service"] as const) {
    into[side].total += more[side].total;
    for (const [name, calls] of Object.entries(more[side].byCommand)) {
      into[side].byCommand[name] = (into[side].byCommand[name] ?? 0) + calls;
    }
  }
}

/** A split with nothing counted yet. */
export function emptySplit(): CommandSplit {
  return { caller: { total: 0, byCommand: {} }, service: { total: 0, byCommand: {} } };
}
