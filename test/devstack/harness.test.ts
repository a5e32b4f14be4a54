import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, symlinkSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { startProcess, StartError } from "../../src/devstack/processes.js";
import { ping, REDIS_INSTALL_HINT, startRedis } from "../../src/devstack/redis.js";
import { PROJECT_ROOT } from "../../src/devstack/stack.js";

const run = promisify(execFile);

/** What a failed `execFile` rejects with. */
interface ExecFailure {
  code: number;
  stdout: string;
  stderr: string;
}

function runStart(env: NodeJS.ProcessEnv): Promise<ExecFailure> {
  return run(process.execPath, ["--import", "tsx", join(PROJECT_ROOT, "scripts/start.ts")], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...env },
    timeout: 20_000,
  }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: ExecFailure) => error,
  );
}

/** True while the process runs (a zombie waiting for a reaper counts as gone). */
function isAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** A PATH with node on it and nothing else. */
function pathWithoutRedis(): string {
  const dir = mkdtempSync(join(tmpdir(), "edge-wsproxy-path-"));
  symlinkSync(process.execPath, join(dir, "node"));
  return dir;
}

describe("private redis-server", () => {
  it("starts on a free loopback port, restarts on the same port, and leaves nothing behind when stopped", async () => {
    const redis = await startRedis();
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    expect(redis.port).not.toBe(6379);
    expect(await ping(redis.port)).toBe(true);
    const firstPid = redis.pid;
    await redis.restart();
    expect(redis.pid).not.toBe(firstPid);
    expect(isAlive(firstPid)).toBe(false);
    expect(await ping(redis.port)).toBe(true);
    const lastPid = redis.pid;
    await redis.stop();
    expect(isAlive(lastPid)).toBe(false);
    expect(await ping(redis.port)).toBe(false);
    await redis.restart();
    expect(await ping(redis.port)).toBe(true);
    await redis.stop();
  });

  it("says how to install redis-server when it is not on PATH", async () => {
    const savedPath = process.env.PATH;
    process.env.PATH = pathWithoutRedis();
    try {
      await expect(startRedis()).rejects.toThrow(REDIS_INSTALL_HINT);
    } finally {
      process.env.PATH = savedPath;
    }
  });
});

describe("managed processes", () => {
  it("reports the output of a process that exits before it is ready", async () => {
    const start = startProcess({
      name: "broken",
      command: process.execPath,
      args: ["-e", "console.error('config file missing'); process.exit(3)"],
      readyLine: /ready/,
    });
    await expect(start).rejects.toThrow(StartError);
    await expect(start).rejects.toThrow(/broken exited \(3\)[\s\S]*config file missing/);
  });

  it("kills a process that never becomes ready, its children included", async () => {
    const script = [
      "const c = require('child_process').spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'inherit' });",
      "console.log('child ' + c.pid);",
      "setInterval(() => {}, 1000);",
    ].join("\n");
    let childPid = 0;
    const start = startProcess({
      name: "silent",
      command: process.execPath,
      args: ["-e", script],
      readyLine: /never printed/,
      readyTimeoutMs: 1500,
      log: (line) => {
        const match = line.match(/child (\d+)/);
        if (match) childPid = Number(match[1]);
      },
    });
    await expect(start).rejects.toThrow(/silent was not ready after 1500 ms/);
    expect(childPid).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(isAlive(childPid)).toBe(false);
  });
});

describe("npm start", () => {
  it("refuses to start when its port is taken, with a message instead of a stack trace", async () => {
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    const port = typeof address === "object" && address ? address.port : 0;
    try {
      const result = await runStart({ PORT: String(port) });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`Port ${port} is already in use`);
      expect(result.stderr).not.toMatch(/at .*\.ts:\d+/);
    } finally {
      server.close();
    }
  });

  it("prints one line on how to install redis-server when it is missing, and exits non-zero", async () => {
    const result = await runStart({ PATH: pathWithoutRedis() });
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe(REDIS_INSTALL_HINT);
  });
});
