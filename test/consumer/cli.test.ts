/**
 * The `npm run service` CLI as the lead's process harness and a user see it: one ready line on stdout,
 * a graceful exit 0 on SIGTERM that still answers in-flight requests, exit 2 on a bad flag, and a killed
 * process whose request another consumer completes after claimIdleMs.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeGateway, ServiceHarness, TRANSPORTS, startTestRedis, type TestRedis } from "./helpers.js";
import { waitFor } from "../support/wait.js";

const TSX = new URL("../../node_modules/.bin/tsx", import.meta.url).pathname;
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

function runCli(args: string[]): CliProcess {
  const child = spawn(TSX, [CLI, ...args], { detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const stdout: string[] = [];
  const stderr: string[] = [];
  createInterface({ input: child.stdout! }).on("line", (line) => stdout.push(line));
  createInterface({ input: child.stderr! }).on("line", (line) => stderr.push(line));
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")),
  );
  return { child, stdout, stderr, exited };
}

/** Signals the CLI's whole process group (tsx runs the service in a child node process). */
function signalGroup(cli: CliProcess, signal: NodeJS.Signals): void {
  if (cli.child.pid !== undefined && cli.child.exitCode === null) process.kill(-cli.child.pid, signal);
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
    expect(cli.stderr[0]).toMatch(/--reply-mode must be list or publish\. usage: npm run service/);
    expect(cli.stdout).toEqual([]);
  });
});
