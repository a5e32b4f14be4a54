/**
 * `npm run bridge`: flags, environment and secret files, the ready line, clean exit on SIGTERM, usage errors,
 * and one warning when a secret is passed where `ps` shows it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis as IORedis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedis, type ManagedRedis } from "../../src/devstack/redis.js";

const CLI = fileURLToPath(new URL("../../src/bridge/cli.ts", import.meta.url));
const READY_LINE = /^edge-wsproxy bridge listening on (http:\/\/127\.0\.0\.1:(\d+)) \(redis (\S+)\)$/;

let redis: ManagedRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

interface CliRun {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function runCli(args: string[], env: Record<string, string> = {}): CliRun {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], {
    env: { ...process.env, REDIS_URL: "", BRIDGE_PORT: "", BRIDGE_TOKEN: "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, "exit").then(([code]) => code as number | null);
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

async function readyUrl(run: CliRun): Promise<string> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const match = run.stdout().trim().match(READY_LINE);
    if (match) return match[1]!;
    if (run.child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`no ready line; stdout: ${run.stdout()} stderr: ${run.stderr()}`);
}

it("starts from flags, prints one ready line without the token, serves, and exits 0 on SIGTERM", async () => {
  const run = runCli(["--redis", redis.url, "--port", "0", "--token", "cli-secret"]);
  try {
    const url = await readyUrl(run);
    expect(run.stdout()).toBe(`edge-wsproxy bridge listening on ${url} (redis ${redis.url})\n`);
    expect(run.stdout() + run.stderr()).not.toContain("cli-secret");
    expect(run.stderr()).toBe(
      "edge-wsproxy bridge: warning: --token can be read by every user of this machine (ps); " +
        "set BRIDGE_TOKEN / REDIS_URL or use --token-file / --redis-url-file instead\n",
    );
    const response = await fetch(`${url}/ping`, { headers: { authorization: "Bearer cli-secret" } });
    expect(await response.json()).toEqual({ result: "PONG" });
    run.child.kill("SIGTERM");
    expect(await run.exited).toBe(0);
  } finally {
    run.child.kill("SIGKILL");
  }
});

it("reads REDIS_URL, BRIDGE_PORT and BRIDGE_TOKEN from the environment, and exits 0 on SIGINT", async () => {
  const run = runCli([], { REDIS_URL: redis.url, BRIDGE_PORT: "0", BRIDGE_TOKEN: "env-secret" });
  try {
    const url = await readyUrl(run);
    const response = await fetch(`${url}/ping`, { headers: { authorization: "Bearer env-secret" } });
    expect(await response.json()).toEqual({ result: "PONG" });
    expect(run.stderr()).toBe(""); // nothing on the command line, nothing to warn about
    run.child.kill("SIGINT");
    expect(await run.exited).toBe(0);
  } finally {
    run.child.kill("SIGKILL");
  }
});

it("simulates a network round trip with --latency-ms (or BRIDGE_LATENCY_MS), and says so on stderr", async () => {
  const run = runCli(["--redis", redis.url, "--port", "0"], { BRIDGE_TOKEN: "t", BRIDGE_LATENCY_MS: "200" });
  try {
    const url = await readyUrl(run);
    expect(run.stdout()).toBe(`edge-wsproxy bridge listening on ${url} (redis ${redis.url})\n`);
    expect(run.stderr()).toBe("edge-wsproxy bridge: simulating a 200 ms network round trip (--latency-ms)\n");
    const started = performance.now();
    const response = await fetch(`${url}/ping`, { headers: { authorization: "Bearer t" } });
    expect(await response.json()).toEqual({ result: "PONG" });
    // Never sooner than the simulated round trip (a lower bound: a busy machine only adds to it).
    expect(performance.now() - started).toBeGreaterThanOrEqual(199);
    run.child.kill("SIGTERM");
    expect(await run.exited).toBe(0);
  } finally {
    run.child.kill("SIGKILL");
  }
});

it.each([
  [["--bogus"], /Unknown option '--bogus'/],
  [["--port", "http", "--token", "t"], /invalid port "http"/],
  [["--port", "0"], /no token: set BRIDGE_TOKEN or pass --token-file <path>/],
  [["--token-file", "/nonexistent/token"], /cannot read --token-file \/nonexistent\/token: ENOENT/],
  [["--token", "t", "--token-file", "/tmp/t"], /give either --token or --token-file, not both/],
  [["--redis", "localhost:6379", "--token", "t"], /invalid Redis URL/],
  [["--latency-ms", "2ms", "--token", "t"], /invalid --latency-ms "2ms" \(whole ms, 0 or more\)/],
])("%j exits 2 with a one-line usage error", async (args, message) => {
  const run = runCli(args);
  expect(await run.exited).toBe(2);
  expect(run.stdout()).toBe("");
  expect(run.stderr()).toMatch(message);
  expect(run.stderr()).toMatch(/usage: npm run bridge --/);
  expect(run.stderr().trim().split("\n")).toHaveLength(1);
});

it("exits 1 with one line naming the URL when Redis cannot be reached", async () => {
  const run = runCli(["--redis", "redis://127.0.0.1:1", "--port", "0"], { BRIDGE_TOKEN: "t" });
  expect(await run.exited).toBe(1);
  expect(run.stderr().trim()).toMatch(
    /^edge-wsproxy bridge: cannot connect to Redis at redis:\/\/127\.0\.0\.1:1/,
  );
});

describe("secrets kept out of the process arguments", () => {
  const dir = mkdtempSync(join(tmpdir(), "bridge-cli-"));
  const PASSWORD = "redis-pass-7f3a";
  let locked: ManagedRedis;
  let lockedUrl: string;
  beforeAll(async () => {
    locked = await startRedis();
    const admin = new IORedis(locked.url);
    await admin.config("SET", "requirepass", PASSWORD);
    admin.disconnect();
    lockedUrl = locked.url.replace("redis://", `redis://:${PASSWORD}@`);
  });
  afterAll(async () => {
    await locked?.stop();
  });

  it("reads the token and a password-bearing Redis URL from files, and warns about nothing", async () => {
    writeFileSync(join(dir, "token"), "file-secret\n");
    writeFileSync(join(dir, "redis-url"), `${lockedUrl}\n`);
    const run = runCli([
      "--token-file",
      join(dir, "token"),
      "--redis-url-file",
      join(dir, "redis-url"),
      "--port",
      "0",
    ]);
    try {
      const url = await readyUrl(run);
      const response = await fetch(`${url}/ping`, { headers: { authorization: "Bearer file-secret" } });
      expect(await response.json()).toEqual({ result: "PONG" });
      expect(run.stdout() + run.stderr()).not.toContain(PASSWORD);
      expect(run.stdout() + run.stderr()).not.toContain("file-secret");
      expect(run.stderr()).toBe("");
    } finally {
      run.child.kill("SIGKILL");
    }
  });

  it("still takes --token and a password in --redis, with one warning naming both and neither secret", async () => {
    const run = runCli(["--redis", lockedUrl, "--token", "argv-secret", "--port", "0"]);
    try {
      const url = await readyUrl(run);
      const response = await fetch(`${url}/ping`, { headers: { authorization: "Bearer argv-secret" } });
      expect(await response.json()).toEqual({ result: "PONG" });
      expect(run.stderr().trim().split("\n")).toEqual([
        expect.stringMatching(
          /^edge-wsproxy bridge: warning: --token and --redis \(its password\) can be read by every user .*\(ps\); set BRIDGE_TOKEN \/ REDIS_URL or use --token-file \/ --redis-url-file instead$/,
        ),
      ]);
      expect(run.stdout() + run.stderr()).not.toContain(PASSWORD);
      expect(run.stdout() + run.stderr()).not.toContain("argv-secret");
    } finally {
      run.child.kill("SIGKILL");
    }
  });
});
