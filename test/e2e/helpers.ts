/**
 * End-to-end helpers: a `ws` client that queues frames and waits with timeouts, native Redis access to
 * read stream entries and inject replies, and a `wrangler dev` of the e2e Worker (test/e2e/wrangler.toml).
 */
import { join } from "node:path";
import { Redis } from "ioredis";
import WebSocket from "ws";
import type { LineSink } from "../../src/devstack/processes.js";
import { PROJECT_ROOT, startWorker, type RunningWorker } from "../../src/devstack/stack.js";

/** The example service module (its `whoami` returns the stash params it was sent). */
export const E2E_SERVICE_MODULE = join(PROJECT_ROOT, "examples/example-service.ts");

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

/** Opens a WebSocket to `url` (`options.headers` adds upgrade headers, e.g. `authorization`). */
export async function connect(url: string, options?: WebSocket.ClientOptions): Promise<Client> {
  const ws = new WebSocket(url, options);
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

/** Starts the e2e Worker (test/e2e/wrangler.toml), which adds hook-driven actions to the example ones. */
export function startE2eWorker(
  bridge: { url: string; token: string },
  vars: Record<string, string> = {},
): Promise<RunningWorker> {
  return startWorker(
    { vars, configPath: join(PROJECT_ROOT, "test/e2e/wrangler.toml"), name: "e2e-worker" },
    bridge,
    stackLog,
  );
}
