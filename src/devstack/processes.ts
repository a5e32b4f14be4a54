/**
 * Child processes of the local stack: started in their own process group, watched for a ready line,
 * their output prefixed, and stopped by PID on every way out (normal exit, Ctrl-C, a failed start, and
 * the starting program killed outright or crashing: see {@link reaper}), so a run never leaves an orphan
 * or a held port behind.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { createInterface } from "node:readline";

/** Where the stack writes its lines: one call per line, already prefixed. */
export type LineSink = (line: string) => void;

/** Options of {@link startProcess}. */
export interface ProcessSpec {
  /** Short name used as the log prefix, e.g. `bridge`. */
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** The process is ready once a line of its output matches... */
  readyLine?: RegExp;
  /** ...or once this probe, polled every 25 ms, resolves true. */
  readyCheck?: () => Promise<boolean>;
  /** Give up waiting for the ready line after this long. @default 30000 */
  readyTimeoutMs?: number;
  /** Receives every output line, prefixed with the name. @default discarded (kept for error messages) */
  log?: LineSink;
}

/** A started process. */
export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  /** The match of `readyLine` on the line that said it was ready (empty with `readyCheck`). */
  readonly ready: RegExpMatchArray | [];
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  /** SIGTERM to the whole process group, SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/** Thrown when a process exits or stays silent before saying it is ready. */
export class StartError extends Error {
  override readonly name = "StartError";
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Kills every process still running when this Node process exits, whatever the reason. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of running) killGroup(child, "SIGKILL");
  });
}

/**
 * A shell that outlives this program by a moment: it reads `+<pid>` (a process group started) and
 * `-<pid>` (it ended) on its standard input, and when that input ends, which the kernel does when this
 * program exits in any way (SIGKILL, a crash, a closed terminal), it sends SIGTERM, then SIGKILL two
 * seconds later, to every group still listed. The `exit` hook cannot run in those cases, and the
 * children, each in a group of its own, would live on holding their ports. In a session of its own, so
 * neither Ctrl-C nor a closing terminal reaches it first. (`kill -SIG -<group>` without `--`: dash, the
 * usual `/bin/sh`, refuses `--` there.)
 */
const REAPER_SCRIPT = `
groups=" "
while read -r line; do
  case "$line" in
    +*) groups="$groups\${line#+} " ;;
    -*) gone="\${line#-}"; rest=" "
        for g in $groups; do [ "$g" = "$gone" ] || rest="$rest$g "; done
        groups="$rest" ;;
  esac
done
[ -z "\${groups# }" ] && exit 0
for g in $groups; do kill -TERM "-$g" 2>/dev/null; done
sleep 2
for g in $groups; do kill -KILL "-$g" 2>/dev/null; done
`;

let reaperInput: NodeJS.WritableStream | undefined;

/** Tells the reaper (started on first use) about a group: `+<pid>` started, `-<pid>` ended. */
function reaper(line: string): void {
  if (!reaperInput) {
    const shell = spawn("/bin/sh", ["-c", REAPER_SCRIPT], {
      detached: true,
      stdio: ["pipe", "ignore", "ignore"],
    });
    // Neither the shell nor the pipe to it keeps this program running.
    shell.unref();
    (shell.stdin as unknown as { unref?: () => void }).unref?.();
    // A reaper that could not start (no /bin/sh) or has gone leaves the exit hook as the only guard.
    shell.stdin.on("error", () => undefined);
    shell.on("error", () => undefined);
    reaperInput = shell.stdin;
  }
  reaperInput.write(`${line}\n`);
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    // Negative PID: the whole group, so wrangler's workerd and tsx's node go too.
    process.kill(-child.pid, signal);
  } catch {
    // The group is already gone; nothing is left to stop.
  }
}

/** Starts a process and resolves once it printed its ready line. On failure it is stopped and StartError thrown. */
export async function startProcess(spec: ProcessSpec): Promise<ManagedProcess> {
  installExitHook();
  const recent: string[] = [];
  const child = spawn(spec.command, spec.args, {
    cwd: spec.cwd,
    env: spec.env ?? process.env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  if (child.pid !== undefined) reaper(`+${child.pid}`);
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => {
      running.delete(child);
      if (child.pid !== undefined) reaper(`-${child.pid}`);
      resolve(code ?? signal ?? "unknown");
    });
  });
  const stop = async (graceMs = 5000): Promise<void> => {
    killGroup(child, "SIGTERM");
    const timer = setTimeout(() => killGroup(child, "SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  };

  let settled = false;
  const ready = new Promise<RegExpMatchArray | []>((resolve, reject) => {
    const onLine = (line: string): void => {
      recent.push(line);
      if (recent.length > 40) recent.shift();
      spec.log?.(`[${spec.name}] ${line}`);
      const match = spec.readyLine && line.match(spec.readyLine);
      if (match) resolve(match);
    };
    if (spec.readyCheck) void pollReady(spec.readyCheck, () => settled).then((ok) => ok && resolve([]));
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) createInterface({ input: stream }).on("line", onLine);
    }
    child.once("error", (error) =>
      reject(new StartError(`${spec.name}: could not start ${spec.command}: ${error.message}`)),
    );
    void exited.then((code) =>
      reject(new StartError(`${spec.name} exited (${code}) before it was ready:\n${recent.join("\n")}`)),
    );
    const timeoutMs = spec.readyTimeoutMs ?? 30_000;
    setTimeout(
      () => reject(new StartError(`${spec.name} was not ready after ${timeoutMs} ms:\n${recent.join("\n")}`)),
      timeoutMs,
    ).unref();
  });

  try {
    const match = await ready.finally(() => (settled = true));
    return { name: spec.name, pid: child.pid ?? -1, ready: match, exited, stop };
  } catch (error) {
    await stop(1000);
    throw error;
  }
}

async function pollReady(check: () => Promise<boolean>, done: () => boolean): Promise<boolean> {
  while (!done()) {
    if (await check().catch(() => false)) return true;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return false;
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
