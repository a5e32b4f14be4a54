#!/usr/bin/env node
/**
 * Runs the Upstash-compatible REST bridge in front of a redis-server, bound to 127.0.0.1:
 *
 *   BRIDGE_TOKEN=dev npm run bridge -- --redis redis://127.0.0.1:6379 --port 8079
 *
 * Each flag can also come from the environment (`REDIS_URL`, `BRIDGE_PORT`, `BRIDGE_TOKEN`,
 * `BRIDGE_SSE_FRAMING`, `BRIDGE_LATENCY_MS`); flags win. `--latency-ms N` simulates an N ms network round
 * trip (a distant Upstash database) on every request and stream event; default 0. Secrets belong in the environment or a file (`--token-file PATH`,
 * `--redis-url-file PATH` for a URL with a password): every user of the machine can read a process's
 * arguments (`ps`), so `--token` or a password in `--redis` works but prints one warning on stderr. Defaults: redis://127.0.0.1:6379, port 8079 (0 picks a free port) and
 * `--sse-framing upstash` (one `data:` line per event, as Upstash; `blank-line` for the standard framing). The token has no default on purpose:
 * the gateway must be configured with the same value, and a silent default would hide a mismatch.
 * When ready it prints one line, `edge-wsproxy bridge listening on http://127.0.0.1:<port> (redis <url>)`.
 * `--help` prints the usage line. Exit codes: 0 after SIGINT/SIGTERM (or `--help`), 1 when it cannot start, 2
 * for bad flags.
 */
import { parseArgs } from "node:util";
import { hasPassword, readSecretFile } from "../cli/secrets.js";
import { SSE_FRAMINGS, type SseFraming } from "./event-stream.js";
import { redactRedisUrl } from "./redis-connections.js";
import { startBridge } from "./server.js";

const USAGE =
  "usage: npm run bridge -- [--redis <redis-url> | --redis-url-file <path>] [--port <port>] " +
  "[--sse-framing upstash|blank-line] [--latency-ms <ms>] [--token-file <path>], the token in BRIDGE_TOKEN or that file";

function fail(message: string, exitCode: number): never {
  process.stderr.write(`edge-wsproxy bridge: ${message}\n`);
  process.exit(exitCode);
}

interface BridgeConfig {
  redisUrl: string;
  port: number;
  token: string;
  sseFraming: SseFraming;
  latencyMs: number;
  /** Flags that carried a secret on the command line, for one warning once the flags are accepted. */
  secretFlags: string[];
}

/** {@link readSecretFile}, failing with the usage line (exit 2). */
function secretFromFile(path: string, flag: string): string {
  try {
    return readSecretFile(path, flag);
  } catch (error) {
    fail(`${(error as Error).message}; ${USAGE}`, 2);
  }
}

function readConfig(): BridgeConfig {
  let values: {
    redis?: string;
    "redis-url-file"?: string;
    port?: string;
    token?: string;
    "token-file"?: string;
    "sse-framing"?: string;
    "latency-ms"?: string;
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      options: {
        redis: { type: "string" },
        "redis-url-file": { type: "string" },
        port: { type: "string" },
        token: { type: "string" },
        "token-file": { type: "string" },
        "sse-framing": { type: "string" },
        "latency-ms": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    fail(`${error instanceof Error ? error.message : String(error)}; ${USAGE}`, 2);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  if (values.token !== undefined && values["token-file"] !== undefined) {
    fail(`give either --token or --token-file, not both; ${USAGE}`, 2);
  }
  if (values.redis !== undefined && values["redis-url-file"] !== undefined) {
    fail(`give either --redis or --redis-url-file, not both; ${USAGE}`, 2);
  }
  // An empty environment variable counts as unset, as in most shells' `VAR= command`.
  const redisUrl =
    values.redis ??
    (values["redis-url-file"] !== undefined
      ? secretFromFile(values["redis-url-file"], "--redis-url-file")
      : process.env.REDIS_URL || "redis://127.0.0.1:6379");
  const portText = values.port ?? (process.env.BRIDGE_PORT || "8079");
  const token =
    values.token ??
    (values["token-file"] !== undefined
      ? secretFromFile(values["token-file"], "--token-file")
      : (process.env.BRIDGE_TOKEN ?? ""));
  const framing = values["sse-framing"] ?? (process.env.BRIDGE_SSE_FRAMING || "upstash");
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) fail(`invalid port "${portText}"; ${USAGE}`, 2);
  if (!/^rediss?:\/\//.test(redisUrl)) fail(`invalid Redis URL (expected redis://...); ${USAGE}`, 2);
  if (!token) fail(`no token: set BRIDGE_TOKEN or pass --token-file <path>; ${USAGE}`, 2);
  const sseFraming = SSE_FRAMINGS.find((known) => known === framing);
  if (!sseFraming) fail(`invalid SSE framing "${framing}"; ${USAGE}`, 2);
  const latencyText = values["latency-ms"] ?? (process.env.BRIDGE_LATENCY_MS || "0");
  if (!/^\d+$/.test(latencyText))
    fail(`invalid --latency-ms "${latencyText}" (whole ms, 0 or more); ${USAGE}`, 2);
  const latencyMs = Number(latencyText);
  const secretFlags = [
    ...(values.token !== undefined ? ["--token"] : []),
    ...(values.redis !== undefined && hasPassword(values.redis) ? ["--redis (its password)"] : []),
  ];
  return { redisUrl, port, token, sseFraming, latencyMs, secretFlags };
}

async function main(): Promise<void> {
  const { redisUrl, port, token, sseFraming, latencyMs, secretFlags } = readConfig();
  if (secretFlags.length > 0) {
    // Once, and never with the secret itself.
    process.stderr.write(
      `edge-wsproxy bridge: warning: ${secretFlags.join(" and ")} can be read by every user of this machine ` +
        "(ps); set BRIDGE_TOKEN / REDIS_URL or use --token-file / --redis-url-file instead\n",
    );
  }
  let bridge;
  try {
    bridge = await startBridge({ redisUrl, port, token, sseFraming, latencyMs, host: "127.0.0.1" });
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error), 1);
  }
  if (latencyMs > 0) {
    process.stderr.write(
      `edge-wsproxy bridge: simulating a ${latencyMs} ms network round trip (--latency-ms)\n`,
    );
  }
  process.stdout.write(
    `edge-wsproxy bridge listening on ${bridge.url} (redis ${redactRedisUrl(redisUrl)})\n`,
  );

  let stopping = false;
  const stop = (): void => {
    if (stopping) process.exit(1); // a second Ctrl-C means "now"
    stopping = true;
    bridge.close().then(
      () => process.exit(0),
      (error: unknown) => fail(`error while stopping: ${String(error)}`, 1),
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

void main();
