/**
 * End-to-end helpers: a `ws` client that queues frames and waits with timeouts, native Redis access to
 * read stream entries and inject replies, and a `wrangler dev` of the e2e Worker (test/e2e/wrangler.toml).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import WebSocket from "ws";
import { freePort, startProcess, type LineSink } from "../../src/devstack/processes.js";
import { PROJECT_ROOT } from "../../src/devstack/stack.js";

/** The e2e service module: the example handlers plus `whoami`, which returns its stash params. */
export const E2E_SERVICE_MODULE = join(PROJECT_ROOT, "test/e2e/e2e-service.ts");

/** Log sink for the stack: quiet unless `E2E_LOG=1`. */
export const stackLog: LineSink | undefined = process.env.E2E_LOG ? (line) => console.log(line) : undefined;

/** A frame as received. */
export type Frame = Record<string, unknown>;

/** A connected client. */
export interface Client {
  ws: WebSocket;
  /** The next frame; rejects after `timeoutMs`. */
  next(timeoutMs?: number): Promise<Frame>;
  /** Sends a frame and returns the next one. */
  call(frame: Frame, timeoutMs?: number): Promise<Frame>;
  /** Sends raw text. */
  sendRaw(text: string): void;
  /** Frames received and not taken yet. */
  queued: Frame[];
  /** The close code, once closed. */
  closed: Promise<number>;
  close(): Promise<void>;
}

/** Opens a WebSocket to `url`. */
export async function connect(url: string): Promise<Client> {
  const ws = new WebSocket(url);
  const queued: Frame[] = [];
  const waiters: Array<(frame: Frame) => void> = [];
  ws.on("message", (data) => {
    const frame = JSON.parse(String(data)) as Frame;
    const waiter = waiters.shift();
    if (waiter) waiter(frame);
    else queued.push(frame);
  });
  const closed = new Promise<number>((resolve) => ws.on("close", (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const next = (timeoutMs = 5000): Promise<Frame> => {
    const frame = queued.shift();
    if (frame) return Promise.resolve(frame);
    return new Promise((resolve, reject) => {
      const waiter = (received: Frame): void => {
        clearTimeout(timer);
        resolve(received);
      };
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(waiter), 1);
        reject(new Error(`no frame within ${timeoutMs} ms`));
      }, timeoutMs);
      waiters.push(waiter);
    });
  };
  return {
    ws,
    next,
    call(frame, timeoutMs) {
      ws.send(JSON.stringify(frame));
      return next(timeoutMs);
    },
    sendRaw: (text) => ws.send(text),
    queued,
    closed,
    async close() {
      if (ws.readyState === WebSocket.OPEN) ws.close(1000, "test done");
      await closed;
    },
  };
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A stream entry read back with `XRANGE`, fields as an object. */
export type StreamFields = Record<string, string>;

/** The entries of `stream` (oldest first). */
export async function readStream(redis: Redis, stream: string): Promise<StreamFields[]> {
  const entries = await redis.xrange(stream, "-", "+");
  return entries.map(([, flat]) => {
    const fields: StreamFields = {};
    for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i] ?? ""] = flat[i + 1] ?? "";
    return fields;
  });
}

/** Waits until `stream` has an entry matching `match`; returns it. */
export async function waitForEntry(
  redis: Redis,
  stream: string,
  match: (fields: StreamFields) => boolean,
  timeoutMs = 5000,
): Promise<StreamFields> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const found = (await readStream(redis, stream)).find(match);
    if (found) return found;
    await sleep(20);
  }
  throw new Error(`no entry on ${stream} matched within ${timeoutMs} ms`);
}

/** A `wrangler dev` of the e2e Worker (test/e2e/wrangler.toml) against a bridge. */
export interface TestWorker {
  httpUrl: string;
  wsUrl: string;
  stop(): Promise<void>;
}

/** Starts the e2e Worker, which adds hook-driven actions to the example ones (see e2e-worker.ts). */
export async function startE2eWorker(
  bridge: { url: string; token: string },
  vars: Record<string, string> = {},
): Promise<TestWorker> {
  const port = await freePort();
  const stateDir = mkdtempSync(join(tmpdir(), "edge-wsproxy-e2e-"));
  const envFile = join(stateDir, "worker.env");
  const allVars = { UPSTASH_REDIS_REST_URL: bridge.url, UPSTASH_REDIS_REST_TOKEN: bridge.token, ...vars };
  writeFileSync(
    envFile,
    Object.entries(allVars)
      .map(([k, v]) => `${k}=${JSON.stringify(v)}\n`)
      .join(""),
    {
      mode: 0o600,
    },
  );
  try {
    const child = await startProcess({
      name: "e2e-worker",
      command: process.execPath,
      args: [
        join(PROJECT_ROOT, "node_modules/wrangler/bin/wrangler.js"),
        "dev",
        "--config",
        join(PROJECT_ROOT, "test/e2e/wrangler.toml"),
        "--ip",
        "127.0.0.1",
        "--port",
        String(port),
        "--inspector-port",
        String(await freePort()),
        "--env-file",
        envFile,
        "--persist-to",
        join(stateDir, "state"),
        "--show-interactive-dev-session=false",
      ],
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0" },
      cwd: PROJECT_ROOT,
      readyLine: /Ready on (http:\/\/\S+)/,
      readyTimeoutMs: 60_000,
      log: stackLog,
    });
    return {
      httpUrl: `http://127.0.0.1:${port}`,
      wsUrl: `ws://127.0.0.1:${port}/websockets/v3`,
      async stop() {
        await child.stop();
        rmSync(stateDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(stateDir, { recursive: true, force: true });
    throw error;
  }
}
