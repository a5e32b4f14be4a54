#!/usr/bin/env node
/**
 * Runs the Upstash-compatible REST bridge in front of a redis-server, bound to 127.0.0.1:
 *
 *   npm run bridge -- --redis redis://127.0.0.1:6379 --port 8079 --token dev
 *
 * Each flag can also come from the environment (`REDIS_URL`, `BRIDGE_PORT`, `BRIDGE_TOKEN`,
 * `BRIDGE_SSE_FRAMING`); flags win. Defaults: redis://127.0.0.1:6379, port 8079 (0 picks a free port) and
 * `--sse-framing upstash` (one `data:` line per event, as Upstash; `blank-line` for the standard framing). The token has no default on purpose:
 * the gateway must be configured with the same value, and a silent default would hide a mismatch.
 * When ready it prints one line, `edge-wsproxy bridge listening on http://127.0.0.1:<port> (redis <url>)`.
 * `--help` prints the usage line. Exit codes: 0 after SIGINT/SIGTERM (or `--help`), 1 when it cannot start, 2
 * for bad flags.
 */
import { parseArgs } from "node:util";
import { SSE_FRAMINGS, type SseFraming } from "./event-stream.js";
import { redactRedisUrl } from "./redis-connections.js";
import { startBridge } from "./server.js";

const USAGE =
  "usage: npm run bridge -- [--redis <redis-url>] [--port <port>] [--sse-framing upstash|blank-line] --token <token>";

function fail(message: string, exitCode: number): never {
  process.stderr.write(`edge-wsproxy bridge: ${message}\n`);
  process.exit(exitCode);
}

interface BridgeConfig {
  redisUrl: string;
  port: number;
  token: string;
  sseFraming: SseFraming;
}

function readConfig(): BridgeConfig {
  let values: { redis?: string; port?: string; token?: string; "sse-framing"?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        redis: { type: "string" },
        port: { type: "string" },
        token: { type: "string" },
        "sse-framing": { type: "string" },
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
  // An empty environment variable counts as unset, as in most shells' `VAR= command`.
  const redisUrl = values.redis ?? (process.env.REDIS_URL || "redis://127.0.0.1:6379");
  const portText = values.port ?? (process.env.BRIDGE_PORT || "8079");
  const token = values.token ?? process.env.BRIDGE_TOKEN ?? "";
  const framing = values["sse-framing"] ?? (process.env.BRIDGE_SSE_FRAMING || "upstash");
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) fail(`invalid port "${portText}"; ${USAGE}`, 2);
  if (!/^rediss?:\/\//.test(redisUrl)) fail(`invalid Redis URL (expected redis://...); ${USAGE}`, 2);
  if (!token) fail(`no token: pass --token <token> or set BRIDGE_TOKEN; ${USAGE}`, 2);
  const sseFraming = SSE_FRAMINGS.find((known) => known === framing);
  if (!sseFraming) fail(`invalid SSE framing "${framing}"; ${USAGE}`, 2);
  return { redisUrl, port, token, sseFraming };
}

async function main(): Promise<void> {
  const { redisUrl, port, token, sseFraming } = readConfig();
  let bridge;
  try {
    bridge = await startBridge({ redisUrl, port, token, sseFraming, host: "127.0.0.1" });
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error), 1);
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
