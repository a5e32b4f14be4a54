#!/usr/bin/env node
/**
 * `npm run call -- '{"ping":1}'`: sends requests to a gateway and prints the replies.
 *
 * One-shot: every JSON argument is sent on one connection; each reply is printed as it arrives; the exit
 * code is 1 when any reply is an error, 2 on bad usage, 3 when the gateway cannot be reached or does not
 * answer in time. When a request subscribed (`"subscribe": 1` and a reply without error), the frames pushed
 * after the reply are printed as they come, until Ctrl-C or the gateway closes the connection. Without a request argument (or with `-i`) it is interactive, with line history.
 */
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import WebSocket from "ws";

const DEFAULT_URL = "ws://127.0.0.1:8787/websockets/v3";
const USAGE = `usage: npm run call -- [--url ws://host/websockets/v3] [--timeout-ms 30000] [-i] ['{"ping":1}' ...]
  --url         gateway WebSocket URL (default: $GATEWAY_URL, else ${DEFAULT_URL})
  --timeout-ms  how long to wait for each reply (default 30000)
  -i            interactive mode (the default when no request is given)
A req_id is added to a request that has none, so each reply can be matched to its request.
With "subscribe": 1, pushed frames are printed until Ctrl-C.`;

/** Exit codes. */
const EXIT = { ok: 0, errorReply: 1, usage: 2, unreachable: 3 } as const;

interface CallOptions {
  url: string;
  timeoutMs: number;
  interactive: boolean;
  requests: string[];
}

function parseCommandLine(argv: string[]): CallOptions {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: "string" },
      "timeout-ms": { type: "string" },
      interactive: { type: "boolean", short: "i" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(EXIT.ok);
  }
  const timeoutMs = Number(values["timeout-ms"] ?? 30_000);
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw new UsageError("--timeout-ms must be a positive number");
  return {
    url: values.url ?? process.env.GATEWAY_URL ?? DEFAULT_URL,
    timeoutMs,
    interactive: values.interactive === true || positionals.length === 0,
    requests: positionals,
  };
}

class UsageError extends Error {
  override readonly name = "UsageError";
}

/** Parses one request given on the command line or typed; adds a `req_id` when there is none. */
function toRequest(text: string, nextId: () => number): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UsageError(`not JSON: ${text}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new UsageError(`a request is a JSON object, like {"ping":1}; got: ${text}`);
  }
  const request = value as Record<string, unknown>;
  if (request.req_id === undefined) request.req_id = nextId();
  return request;
}

/** One connection with replies matched to requests by `req_id`. */
class GatewayClient {
  private readonly waiting = new Map<string, (reply: Record<string, unknown>) => void>();
  private constructor(private readonly socket: WebSocket) {
    socket.on("message", (data) => {
      const reply = JSON.parse(String(data)) as Record<string, unknown>;
      const resolve = this.waiting.get(String(reply.req_id));
      if (resolve) {
        this.waiting.delete(String(reply.req_id));
        resolve(reply);
      } else {
        console.log(JSON.stringify(reply));
      }
    });
  }

  static connect(url: string, timeoutMs: number): Promise<GatewayClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { handshakeTimeout: timeoutMs });
      socket.once("open", () => resolve(new GatewayClient(socket)));
      socket.once("error", (error) => reject(new Error(`cannot connect to ${url}: ${error.message}`)));
    });
  }

  /** Sends one request; resolves with its reply. */
  call(request: Record<string, unknown>, timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const key = String(request.req_id);
      const timer = setTimeout(() => {
        this.waiting.delete(key);
        reject(new Error(`no reply to req_id ${key} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(key, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      this.socket.send(JSON.stringify(request));
    });
  }

  onClose(listener: (code: number) => void): void {
    this.socket.once("close", listener);
  }

  close(): void {
    this.socket.close(1000);
  }
}

function isErrorReply(reply: Record<string, unknown>): boolean {
  return reply.msg_type === "error" || reply.error !== undefined;
}

async function oneShot(client: GatewayClient, options: CallOptions, nextId: () => number): Promise<number> {
  const requests = options.requests.map((text) => toRequest(text, nextId));
  const replies = await Promise.all(
    requests.map(async (request) => {
      const reply = await client.call(request, options.timeoutMs);
      console.log(JSON.stringify(reply));
      return reply;
    }),
  );
  const subscribed = requests.some(
    (request, index) => request.subscribe && !isErrorReply(replies[index] ?? {}),
  );
  if (subscribed) await streamUntilStopped(client);
  return replies.some(isErrorReply) ? EXIT.errorReply : EXIT.ok;
}

/** Keeps the connection open (pushed frames are printed as they arrive) until Ctrl-C or the gateway closes it. */
function streamUntilStopped(client: GatewayClient): Promise<void> {
  console.error("subscribed: printing pushed frames, Ctrl-C to stop");
  return new Promise((resolve) => {
    const stop = () => {
      process.off("SIGINT", stop);
      resolve();
    };
    process.once("SIGINT", stop);
    client.onClose((code) => {
      console.error(`the gateway closed the connection (${code})`);
      stop();
    });
  });
}

async function interactive(
  client: GatewayClient,
  options: CallOptions,
  nextId: () => number,
): Promise<number> {
  console.error(`connected to ${options.url}; type a JSON request, Ctrl-D to quit`);
  const rl = createInterface({
    input: process.stdin,
    output: process.stdout,
    prompt: "> ",
    historySize: 1000,
  });
  client.onClose((code) => {
    console.error(`the gateway closed the connection (${code})`);
    rl.close();
  });
  rl.prompt();
  for await (const line of rl) {
    if (line.trim() !== "") {
      try {
        const started = performance.now();
        const reply = await client.call(toRequest(line, nextId), options.timeoutMs);
        console.log(`${JSON.stringify(reply)}  (${(performance.now() - started).toFixed(1)} ms)`);
      } catch (error) {
        console.error(error instanceof Error ? error.message : error);
      }
    }
    rl.prompt();
  }
  return EXIT.ok;
}

async function main(): Promise<number> {
  let options: CallOptions;
  try {
    options = parseCommandLine(process.argv.slice(2));
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : error}\n${USAGE}`);
    return EXIT.usage;
  }
  let counter = 0;
  const nextId = (): number => ++counter;
  let client: GatewayClient;
  try {
    client = await GatewayClient.connect(options.url, options.timeoutMs);
  } catch (error) {
    console.error(
      `${(error as Error).message}\nIs the gateway running? Start the local stack with: npm start ` +
        "(on another port, use the --url it prints)",
    );
    return EXIT.unreachable;
  }
  try {
    return options.interactive
      ? await interactive(client, options, nextId)
      : await oneShot(client, options, nextId);
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    return error instanceof UsageError ? EXIT.usage : EXIT.unreachable;
  } finally {
    client.close();
  }
}

process.exitCode = await main();
