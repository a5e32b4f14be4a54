/**
 * End-to-end helpers: a `ws` client (test/support/socket.ts), native Redis access to read stream entries
 * and inject replies, a `wrangler dev` of the e2e Worker (test/e2e/wrangler.toml), and `useE2eStack`, which
 * starts and stops a file's whole stack.
 */
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll } from "vitest";
import WebSocket from "ws";
import type { LineSink } from "../../src/devstack/processes.js";
import {
  PROJECT_ROOT,
  startStack,
  startWorker,
  type RunningWorker,
  type Stack,
  type StackOptions,
} from "../../src/devstack/stack.js";
import { frameSocket, type TestSocket } from "../support/socket.js";
import { sleep } from "../support/wait.js";

/** The example service module (its `whoami` returns the stash params it was sent). */
export const E2E_SERVICE_MODULE = join(PROJECT_ROOT, "examples/example-service.ts");

/** Log sink for the stack: quiet unless `E2E_LOG=1`. */
export const stackLog: LineSink | undefined = process.env.E2E_LOG ? (line) => console.log(line) : undefined;

export type { Frame } from "../support/socket.js";

/** A connected `ws` client (see test/support/socket.ts). */
export type Client = TestSocket<WebSocket>;

/** Opens a WebSocket to `url` (`options.headers` adds upgrade headers, e.g. `authorization`). */
export async function connect(url: string, options?: WebSocket.ClientOptions): Promise<Client> {
  const ws = new WebSocket(url, options);
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  return frameSocket(ws);
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

/**
 * Starts the e2e Worker (test/e2e/wrangler.toml), which adds hook-driven actions to the example ones.
 * `lines` also receives every line the Worker prints.
 */
export function startE2eWorker(
  bridge: { url: string; token: string },
  vars: Record<string, string> = {},
  lines?: LineSink,
): Promise<RunningWorker> {
  const sink: LineSink | undefined = lines
    ? (line) => {
        lines(line);
        stackLog?.(line);
      }
    : stackLog;
  return startWorker(
    { vars, configPath: join(PROJECT_ROOT, "test/e2e/wrangler.toml"), name: "e2e-worker" },
    bridge,
    sink,
  );
}

/** What {@link useE2eStack} starts for a test file. */
export interface E2eStack {
  /** redis-server, the bridge and the services. */
  readonly stack: Stack;
  /** The Worker under `wrangler dev`. */
  readonly worker: RunningWorker;
  /** A native connection to the stack's redis-server, to read streams and inject replies. */
  readonly redis: Redis;
}

/** Options of {@link useE2eStack}. */
export interface E2eStackOptions {
  /** @default one example service (`E2E_SERVICE_MODULE`) */
  service?: StackOptions["service"];
  /** The Worker: the e2e Worker (`test/e2e/wrangler.toml`) or the example deployment. @default "e2e" */
  worker?: "e2e" | "example";
  /** Vars of the Worker. */
  vars?: Record<string, string>;
  /** Receives every line of the stack and the Worker too (`E2E_LOG=1` still prints them). */
  log?: LineSink;
  /** Starts the Worker instead (the e2e Worker only). */
  startWorker?: (stack: Stack) => Promise<RunningWorker>;
}

/**
 * Starts the real stack and a Worker (the e2e one unless `worker: "example"`) before the file's tests
 * (`beforeAll`) and stops them after (`afterAll`). The fields may be read once the tests run.
 */
export function useE2eStack(options: E2eStackOptions = {}): E2eStack {
  // The example deployment is part of the stack (stopped with it); the e2e Worker is started on its own.
  const started: { stack?: Stack; worker?: RunningWorker; ownWorker?: RunningWorker; redis?: Redis } = {};
  beforeAll(async () => {
    const service = options.service ?? { args: ["--module", E2E_SERVICE_MODULE] };
    const extra = options.log;
    const log: LineSink | undefined = extra
      ? (line) => {
          extra(line);
          stackLog?.(line);
        }
      : stackLog;
    if (options.worker === "example") {
      const stack = (started.stack = await startStack({ service, worker: { vars: options.vars }, log }));
      started.worker = stack.worker;
    } else {
      const stack = (started.stack = await startStack({ service, log }));
      started.worker = started.ownWorker = await (options.startWorker?.(stack) ??
        startE2eWorker(stack.bridge, options.vars, extra));
    }
    started.redis = new Redis(started.stack.redis.url);
  }, 120_000);
  afterAll(async () => {
    started.redis?.disconnect();
    await started.ownWorker?.stop();
    await started.stack?.stop();
  });
  const get = <K extends keyof E2eStack>(name: K): E2eStack[K] => {
    const value = started[name];
    if (value === undefined) throw new Error(`the e2e ${name} is not started (read it inside a test)`);
    return value as E2eStack[K];
  };
  return {
    get stack() {
      return get("stack");
    },
    get worker() {
      return get("worker");
    },
    get redis() {
      return get("redis");
    },
  };
}
