/**
 * A private redis-server for tests, benchmarks and `npm start`: a free port on 127.0.0.1, no persistence,
 * never the system instance.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, startProcess, StartError, type LineSink, type ManagedProcess } from "./processes.js";

/** The one line printed when redis-server is missing. */
export const REDIS_INSTALL_HINT =
  "redis-server was not found on PATH. Install it: sudo apt-get update && sudo apt-get install -y redis-server (macOS: brew install redis)";

/** A running private redis-server. */
export interface ManagedRedis {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** PID of the current redis-server process (changes on restart). */
  readonly pid: number;
  /** Stops it; {@link restart} starts it again on the same port. */
  stop(): Promise<void>;
  /** Starts it again on the same port (empty: there is no persistence). */
  restart(): Promise<void>;
}

/** True when `redis-server` can be run. */
export function hasRedisServer(): boolean {
  try {
    execFileSync("redis-server", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Starts a private redis-server; throws a StartError carrying {@link REDIS_INSTALL_HINT} when it is missing. */
export async function startRedis(options: { port?: number; log?: LineSink } = {}): Promise<ManagedRedis> {
  if (!hasRedisServer()) throw new StartError(REDIS_INSTALL_HINT);
  const port = options.port ?? (await freePort());
  let current: ManagedProcess | undefined;
  let dir = "";

  const launch = async (): Promise<void> => {
    dir = mkdtempSync(join(tmpdir(), "edge-wsproxy-redis-"));
    current = await startProcess({
      name: "redis",
      command: "redis-server",
      args: [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
        "--loglevel",
        "warning",
        // Stop fast: nothing to flush, and tests restart it under load.
        "--shutdown-on-sigterm",
        "nosave",
      ],
      readyCheck: () => ping(port),
      readyTimeoutMs: 10_000,
      log: options.log,
    });
  };
  await launch();
  const stop = async (): Promise<void> => {
    await current?.stop();
    current = undefined;
    rmSync(dir, { recursive: true, force: true });
  };

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return current?.pid ?? -1;
    },
    stop,
    async restart() {
      await stop();
      await launch();
    },
  };
}

/** True when the server on `port` answers PING with PONG. */
export function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let answer = "";
    socket.setTimeout(500);
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk) => {
      answer += chunk.toString();
      if (answer.includes("\r\n")) {
        socket.destroy();
        resolve(answer.startsWith("+PONG"));
      }
    });
    socket.on("error", () => resolve(false));
    socket.on("timeout", () => {
      socket.destroy();
      resolve(false);
    });
  });
}
