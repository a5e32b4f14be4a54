import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { freePort, startProcess, StartError } from "../../src/devstack/processes.js";
import { ping, REDIS_INSTALL_HINT, startRedis } from "../../src/devstack/redis.js";
import { PROJECT_ROOT } from "../../src/devstack/stack.js";
import { waitFor } from "../support/wait.js";

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

/** True while something accepts connections on `port` of 127.0.0.1. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
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

  it("stops what it started when the program that started it is killed outright", async () => {
    // SIGKILL (or a crash) runs no exit hook: the children, each in a group of its own, would live on.
    const script = join(mkdtempSync(join(tmpdir(), "edge-wsproxy-starter-")), "starter.mts");
    writeFileSync(
      script,
      `import { startRedis } from ${JSON.stringify(join(PROJECT_ROOT, "src/devstack/redis.ts"))};\n` +
        "const redis = await startRedis();\nconsole.log(`redis ${redis.pid} ${redis.port}`);\n" +
        "setInterval(() => undefined, 1000);\n",
    );
    const starter = spawn(process.execPath, ["--import", "tsx", script], {
      cwd: PROJECT_ROOT,
      stdio: ["ignore", "pipe", "ignore"],
    });
    let output = "";
    starter.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    try {
      await waitFor(() => /redis \d+ \d+/.test(output), 20_000);
      const [, pid, port] = /redis (\d+) (\d+)/.exec(output) ?? [];
      expect(isAlive(Number(pid))).toBe(true);
      starter.kill("SIGKILL");
      await waitFor(() => !isAlive(Number(pid)), 10_000);
      expect(await listening(Number(port))).toBe(false);
    } finally {
      starter.kill("SIGKILL");
    }
  });
});

describe("npm start", () => {
  it("prints an `npm run call` line that reaches it on its port, and stops every part when its terminal goes away (SIGHUP)", async () => {
    const port = await freePort();
    const start = spawn(process.execPath, ["--import", "tsx", join(PROJECT_ROOT, "scripts/start.ts")], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, PORT: String(port), LOG_LEVEL: "warn" },
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    start.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise((resolve) => start.once("exit", resolve));
    try {
      await waitFor(() => output.includes(`ws://127.0.0.1:${port}/`), 90_000, 100);
      const bridgePort = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1]);
      const redisPort = Number(/redis redis:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1]);
      for (const held of [port, bridgePort, redisPort]) expect(await listening(held)).toBe(true);
      // The "Try it" line, typed into a shell as printed, gets the example service's answer.
      const tryIt = /Try it:\s+(npm run call -- .*?)\s{2,}\(/.exec(output)?.[1];
      expect(tryIt).toContain(`--url ws://127.0.0.1:${port}/websockets/v3`);
      const { stdout } = await run("sh", ["-c", tryIt!], { cwd: PROJECT_ROOT, timeout: 20_000 });
      expect(stdout).toContain('"ping":"pong"');
      // A closing terminal sends SIGHUP to its foreground process group.
      process.kill(-start.pid!, "SIGHUP");
      await exited;
      await waitFor(
        async () =>
          !(await listening(port)) && !(await listening(bridgePort)) && !(await listening(redisPort)),
        15_000,
        100,
      );
    } finally {
      if (start.exitCode === null && start.signalCode === null) process.kill(-start.pid!, "SIGKILL");
    }
  }, 120_000);

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
