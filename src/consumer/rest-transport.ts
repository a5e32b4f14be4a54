/**
 * The Upstash REST transport: commands as JSON over HTTP (`POST /` and `POST /pipeline`), for services
 * that reach Redis only over HTTP. There is no blocking read over REST, so the service polls.
 *
 * Written on `node:http` with a keep-alive agent rather than `@upstash/redis`: that client sends through
 * the global `fetch`, which ignores its `agent` option in Node and costs several times the CPU per request.
 * Replies are requested without `Upstash-Encoding: base64`, so strings arrive as plain JSON strings (the
 * proxy writes only JSON text into entries).
 */
import http from "node:http";
import https from "node:https";
import {
  AuthenticationError,
  RedisReplyError,
  redactUrl,
  type ClaimCommand,
  type CreateGroupCommand,
  type PendingCommand,
  type PipelineResult,
  type ReadGroupCommand,
  type ServiceTransport,
  type WriteCommand,
} from "./transport.js";

/** Connection options for {@link createRestTransport}. */
export interface RestTransportOptions {
  /** An HTTP request taking longer fails (and is retried by the service). @default 10000 */
  requestTimeoutMs?: number;
}

/** Talks to the Upstash REST endpoint `url` with the bearer `token`. */
export function createRestTransport(
  url: string,
  token: string,
  options: RestTransportOptions = {},
): ServiceTransport {
  const endpoint = new URL(url);
  const client = endpoint.protocol === "https:" ? https : http;
  const agent = new client.Agent({ keepAlive: true, maxSockets: 16 });
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  const post = (path: string, body: unknown) =>
    postJson(client, agent, endpoint, path, token, body, timeoutMs);
  let closed = false;

  const single = async (command: [string, ...string[]]): Promise<unknown> => {
    const { status, body } = await post("/", command);
    checkAuthorized(status);
    const reply = asAnswer(body);
    if (typeof reply?.error === "string") throw new RedisReplyError(reply.error, command[0]);
    if (status !== 200) throw new Error(`REST ${command[0]} failed with HTTP ${status}`);
    if (!reply) throw new Error(`REST ${command[0]} answered HTTP 200 without a result object`);
    return reply.result;
  };

  return {
    kind: "rest",
    target: redactUrl(url),
    supportsBlockingReads: false,
    read: (command: ReadGroupCommand) => single(command),
    call: (command: CreateGroupCommand | PendingCommand | ClaimCommand) => single(command),
    async pipeline(commands: WriteCommand[]): Promise<PipelineResult[]> {
      const { status, body } = await post("/pipeline", commands);
      checkAuthorized(status);
      if (status !== 200 || !Array.isArray(body)) throw new Error(`REST pipeline failed with HTTP ${status}`);
      if (body.length !== commands.length) {
        throw new Error(`REST pipeline of ${commands.length} commands answered with ${body.length} results`);
      }
      return commands.map((command, index) => {
        const reply = asAnswer(body[index]);
        if (!reply)
          return { error: new Error(`REST pipeline answered ${command[0]} without a result object`) };
        if (typeof reply.error === "string") return { error: new RedisReplyError(reply.error, command[0]) };
        return { result: reply.result };
      });
    },
    stopReading() {
      // Reads never block over REST; the service's poll sleep is what close() interrupts.
    },
    async close() {
      if (closed) return;
      closed = true;
      agent.destroy();
    },
  };
}

/** One command's answer (`{"result": ...}` or `{"error": "..."}`), or undefined when it is not an object. */
function asAnswer(value: unknown): { result?: unknown; error?: unknown } | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? value : undefined;
}

function checkAuthorized(status: number): void {
  if (status === 401 || status === 403)
    throw new AuthenticationError(`REST endpoint refused the token (HTTP ${status})`);
}

function postJson(
  client: typeof http | typeof https,
  agent: http.Agent,
  endpoint: URL,
  path: string,
  token: string,
  body: unknown,
  timeoutMs: number,
): Promise<{ status: number; body: unknown }> {
  const payload = JSON.stringify(body);
  const basePath = endpoint.pathname.replace(/\/$/, "");
  return new Promise((resolve, reject) => {
    const request = client.request(
      {
        agent,
        method: "POST",
        hostname: endpoint.hostname,
        port: endpoint.port,
        path: basePath + path,
        headers: {
          authorization: `Bearer ${token}`,
          "content-type": "application/json",
          "content-length": Buffer.byteLength(payload),
        },
        timeout: timeoutMs,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("error", reject);
        response.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          try {
            resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) });
          } catch (error) {
            reject(
              new Error(`REST ${path} answered HTTP ${response.statusCode} with non-JSON`, { cause: error }),
            );
          }
        });
      },
    );
    request.on("timeout", () => request.destroy(new Error(`REST ${path} timed out after ${timeoutMs} ms`)));
    request.on("error", reject);
    request.end(payload);
  });
}
