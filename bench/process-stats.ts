/**
 * CPU time and memory of the processes a run starts, read from `/proc` (Linux): the machine has two
 * cores shared by the bench process, workerd, the bridge, redis-server and the service, so where the CPU
 * goes explains most of the throughput figures.
 */
import { readdirSync, readFileSync } from "node:fs";

/** A process the benchmark watches. */
export interface WatchedProcess {
  role: string;
  pid: number;
}

/** CPU milliseconds used so far by each role (`bench` is this process). */
export type CpuSample = Record<string, number>;

const TICKS_PER_SECOND = 100;

/** utime + stime of `pid` in ms, or undefined once it has exited. */
export function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 once pid and comm are cut off.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** Resident set size of `pid` in bytes, or undefined once it has exited. */
export function processRssBytes(pid: number): number | undefined {
  try {
    const match = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+) kB/m);
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** The role under which {@link cpuDelta} reports what the rest of the machine used meanwhile. */
export const OTHER_PROCESSES = "others";
const MACHINE = "machine";

/** CPU ms of every watched process, of this one, and of the whole machine. */
export function sampleCpu(processes: WatchedProcess[]): CpuSample {
  const usage = process.cpuUsage();
  const sample: CpuSample = { bench: (usage.user + usage.system) / 1000 };
  for (const { role, pid } of processes) sample[role] = processCpuMs(pid) ?? 0;
  sample[MACHINE] = machineBusyMs();
  return sample;
}

/**
 * CPU ms per role between two samples, plus {@link OTHER_PROCESSES}: machine time not spent by a watched
 * process (other people's tests on a shared machine, the kernel), the noise behind a run's figures.
 */
export function cpuDelta(before: CpuSample, after: CpuSample): CpuSample {
  const delta: CpuSample = {};
  let watched = 0;
  for (const [role, ms] of Object.entries(after)) {
    if (role === MACHINE) continue;
    delta[role] = Math.max(0, ms - (before[role] ?? 0));
    watched += delta[role];
  }
  delta[OTHER_PROCESSES] = Math.max(0, (after[MACHINE] ?? 0) - (before[MACHINE] ?? 0) - watched);
  return delta;
}

/** Busy CPU ms of the whole machine since boot (`/proc/stat`: everything but idle and iowait). */
function machineBusyMs(): number {
  try {
    const fields =
      readFileSync("/proc/stat", "utf8").split("\n")[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
    const total = fields.slice(0, 8).reduce((sum, value) => sum + value, 0);
    return ((total - (fields[3] ?? 0) - (fields[4] ?? 0)) * 1000) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** The first direct child of this process whose command line contains `fragment`. */
export function findChild(fragment: string): number | undefined {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (parent !== process.pid) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(fragment)) return Number(entry);
    } catch {
      // Gone between listing and reading: not one of ours any more.
    }
  }
  return undefined;
}
