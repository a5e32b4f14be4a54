/**
 * The `npm run service` CLI as the lead's process harness and a user see it: one ready line on stdout,
 * a graceful exit 0 on SIGTERM that still answers in-flight requests, exit 2 on a bad flag, and a killed
 * process whose request another consumer completes after claimIdleMs.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Redis as IORedis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeGateway, ServiceHarness, TRANSPORTS, startTestRedis, type TestRedis } from "./helpers.js";
import { waitFor } from "../support/wait.js";
import { startRedis, type ManagedRedis } from "../../src/devstack/redis.js";

const CLI = new URL("../../src/consumer/cli.ts", import.meta.url).pathname;
const HANG_MODULE = new URL("./fixtures/hang-service.ts", import.meta.url).pathname;

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis?.stop();
});

/** A CLI process with its stdout and stderr lines collected separately. */
interface CliProcess {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  exited: Promise<number | string>;
}

function runCli(args: string[], env: Record<string, string> = {}): CliProcess {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], {
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  createInterface({ input: child.stdout! }).on("line", (line) => stdout.push(line));
  createInterface({ input: child.stderr! }).on("line", (line) => stderr.push(line));
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")),
  );
  return { child, stdout, stderr, exited };
}

/** Signals the CLI's whole process group, as Ctrl-C at a terminal does (npm, its shell and the CLI). */
function signalGroup(cli: CliProcess, signal: NodeJS.Signals): void {
  const running = cli.child.exitCode === null && cli.child.signalCode === null;
  if (cli.child.pid !== undefined && running) process.kill(-cli.child.pid, signal);
}

describe.each(TRANSPORTS)("service CLI on the %s transport", (kind) => {
  const transportArgs = (): string[] => {
    const option = redis.redisOption(kind);
    return typeof option === "string"
      ? ["--redis", option]
      : "restUrl" in option
        ? ["--rest-url", option.restUrl, "--rest-token", option.restToken]
        : [];
  };

  it("prints one ready line, and a killed process's request is completed by another consumer", async () => {
    const harness = new ServiceHarness(redis, kind);
    const cli = runCli([
      ...transportArgs(),
      "--module",
      HANG_MODULE,
      "--claim-idle-ms",
      "300",
      "--stream-prefix",
      harness.streamPrefix,
      "--consumer",
      "cli-a",
    ]);
    try {
      await waitFor(() => cli.stdout.length > 0, 15_000);
      expect(cli.stdout).toEqual([
        expect.stringMatching(
          new RegExp(`^edge-wsproxy service ready: consumer cli-a reading general via ${kind} `),
        ),
      ]);
      const ping = await harness.gateway.send("ping");
      expect(await harness.gateway.resultOf(ping)).toBe("pong from module");
      const work = await harness.gateway.send("work");
      const stream = `${harness.streamPrefix}general`;
      await waitFor(async () => (await redis.client.xpending(stream, "processors"))[0] === 1);
      signalGroup(cli, "SIGKILL");
      await cli.exited;
      await harness.start({ consumerName: "cli-b", handlers: { work: () => "completed by b" } });
      expect(await harness.gateway.resultOf(work, 3000)).toBe("completed by b");
    } finally {
      signalGroup(cli, "SIGKILL");
      await harness.closeAll();
    }
  });
});

describe("service CLI process handling", () => {
  it("answers the in-flight request on SIGTERM and exits 0", async () => {
    const gateway = new FakeGateway(redis.client, "sigterm:");
    const cli = runCli(["--redis", redis.server.url, "--stream-prefix", "sigterm:"]);
    try {
      await waitFor(() => cli.stdout.length > 0, 15_000);
      const id = await gateway.send("slow", { slow: 1, ms: 500 });
      await waitFor(async () => (await redis.client.xpending("sigterm:general", "processors"))[0] === 1);
      signalGroup(cli, "SIGTERM");
      expect(await cli.exited).toBe(0);
      expect(await gateway.resultOf(id, 1000)).toEqual({ slept_ms: 500 });
      expect(cli.stdout).toHaveLength(1);
    } finally {
      signalGroup(cli, "SIGKILL");
    }
  });

  it("exits 2 with one line on a bad flag", async () => {
    const cli = runCli(["--redis", redis.server.url, "--reply-mode", "carrier-pigeon"]);
    expect(await cli.exited).toBe(2);
    expect(cli.stderr).toHaveLength(1);
    expect(cli.stderr[0]).toMatch(
      /--reply-mode must be list, publish or publish-batch\. usage: npm run service/,
    );
    expect(cli.stdout).toEqual([]);
  });
});

describe("service CLI secrets, kept out of the process arguments", () => {
  const dir = mkdtempSync(join(tmpdir(), "service-cli-"));
  const PASSWORD = "svc-redis-pass-91c2";
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

  const warnings = (cli: CliProcess) => cli.stderr.filter((line) => line.includes("warning"));
  const everything = (cli: CliProcess) => [...cli.stdout, ...cli.stderr].join("\n");

  /** Runs the CLI until its ready line, then stops it; the process's output for the test to check. */
  async function readyRun(args: string[], env: Record<string, string> = {}): Promise<CliProcess> {
    const cli = runCli([...args, "--stream-prefix", `secrets-${Math.random()}:`], { REDIS_URL: "", ...env });
    try {
      await waitFor(() => cli.stdout.length > 0 || cli.child.exitCode !== null, 15_000);
      expect(cli.stdout, cli.stderr.join("\n")).toEqual([
        expect.stringMatching(/^edge-wsproxy service ready: /),
      ]);
      return cli;
    } finally {
      signalGroup(cli, "SIGTERM");
      await cli.exited;
    }
  }

  it("reads the REST token from --rest-token-file and a password-bearing URL from --redis-url-file, without a warning", async () => {
    const rest = redis.redisOption("rest") as { restUrl: string; restToken: string };
    writeFileSync(join(dir, "rest-token"), `${rest.restToken}\n`);
    const viaRest = await readyRun([
      "--rest-url",
      rest.restUrl,
      "--rest-token-file",
      join(dir, "rest-token"),
    ]);
    expect(warnings(viaRest)).toEqual([]);
    expect(everything(viaRest)).not.toContain(rest.restToken);

    writeFileSync(join(dir, "redis-url"), `${lockedUrl}\n`);
    const viaFile = await readyRun(["--redis-url-file", join(dir, "redis-url")]);
    expect(warnings(viaFile)).toEqual([]);
    expect(everything(viaFile)).not.toContain(PASSWORD);
  });

  it("reads them from the environment, without a warning", async () => {
    const rest = redis.redisOption("rest") as { restUrl: string; restToken: string };
    const viaEnv = await readyRun([], {
      UPSTASH_REDIS_REST_URL: rest.restUrl,
      UPSTASH_REDIS_REST_TOKEN: rest.restToken,
    });
    expect(warnings(viaEnv)).toEqual([]);
    const viaRedisUrl = await readyRun([], { REDIS_URL: lockedUrl });
    expect(warnings(viaRedisUrl)).toEqual([]);
  });

  it.each([
    ["--rest-token", () => ["--rest-url", restOption().restUrl, "--rest-token", restOption().restToken]],
    ["--redis (its password)", () => ["--redis", lockedUrl]],
  ])(
    "still takes %s on the command line, with one warning on stderr that names it and not the secret",
    async (name, args) => {
      const cli = await readyRun(args());
      expect(warnings(cli)).toEqual([
        `edge-wsproxy service: warning: ${name} can be read by every user of this machine (ps); ` +
          "set REDIS_URL / UPSTASH_REDIS_REST_TOKEN or use --redis-url-file / --rest-token-file instead",
      ]);
      expect(everything(cli)).not.toContain(PASSWORD);
      expect(everything(cli)).not.toContain(restOption().restToken);
    },
  );

  it("exits 2 with one line when a secret file cannot be read", async () => {
    const cli = runCli(["--redis-url-file", join(dir, "missing")]);
    expect(await cli.exited).toBe(2);
    expect(cli.stderr).toEqual([expect.stringMatching(/^cannot read --redis-url-file .*missing: ENOENT/)]);
  });

  const restOption = () => redis.redisOption("rest") as { restUrl: string; restToken: string };
});
