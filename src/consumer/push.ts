/**
 * Pushing frames to a client through the gateway (PROTOCOL.md section 7): `POST <connection>/messages`,
 * where `connection` is the push URL the gateway put in the request's entry
 * (`<pushOrigin>/connections/<ref>`, a capability for one connection). A 410 means the connection is
 * closed or the subscription forgotten, so the caller stops; 5xx answers and network errors are retried
 * with jittered back-off; any other non-2xx answer is final.
 */
import { backoffDelayMs, sleep } from "./retry.js";

/** One message for one connection: a frame of a subscription, or a raw frame sent as is. */
export type PushMessage =
  /** The gateway wraps `data` as `{"msg_type": M, M: data, "subscription": {"id": ...}, "req_id": ...}`. */
  | { subscription: string; data: unknown }
  /** Sent to the client unchanged (through the gateway's send hooks and size limit). */
  | { frame: Record<string, unknown> };

/** One message of a batch: the push URL it goes to plus the message. */
export type BatchPushMessage = PushMessage & { connection: string };

/** Options of {@link createPusher} and {@link pushTo}. */
export interface PusherOptions {
  /**
   * The gateway's push secret (its `pushSecret` option or env `PUSH_SECRET`), sent as
   * `authorization: Bearer <secret>`. @default process.env.PUSH_SECRET, else none
   */
  secret?: string;
  /** The fetch used for every push (tests, proxies, instrumentation). @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Retries after a 5xx answer or a network error (so at most `retries + 1` attempts). @default 3 */
  retries?: number;
  /** First back-off before a retry; doubles per retry, times 0.5-1 jitter. @default 100 */
  retryMinMs?: number;
  /** Longest back-off before a retry. @default 2000 */
  retryMaxMs?: number;
  /** One attempt is abandoned (and counts as a network error) after this long. @default 10000 */
  timeoutMs?: number;
}

/** Per-call options. */
export interface PushCallOptions {
  /** Stops waiting and retrying; the push rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** What the gateway answered for one message of a batch: 202 sent, 400, 404, 410 or 413. */
export interface BatchPushResult {
  status: number;
}

/** Sends pushes with one set of options. */
export interface Pusher {
  /** Pushes one message to one connection; resolves once the gateway sent it (202). */
  push(connection: string, message: PushMessage, options?: PushCallOptions): Promise<void>;
  /**
   * Fan-out: pushes many messages in `POST <pushOrigin>/connections/messages` requests (grouped by
   * gateway, at most {@link MAX_PUSH_BATCH} per request). Resolves with one result per message, in order;
   * a message the gateway refused is a result (e.g. 410), not a rejection.
   */
  pushBatch(messages: BatchPushMessage[], options?: PushCallOptions): Promise<BatchPushResult[]>;
}

/** The defaults of {@link PusherOptions} (`secret` and `fetch` come from the environment). */
export const DEFAULT_PUSHER_OPTIONS = { retries: 3, retryMinMs: 100, retryMaxMs: 2000, timeoutMs: 10_000 };

/** Messages per batch request: the gateway's default `maxPushBatch`. */
export const MAX_PUSH_BATCH = 500;

/** Batch requests `pushBatch` keeps in flight at once. */
export const PUSH_BATCH_CONCURRENCY = 4;

/** The gateway refused a push (`status`), or it could not be delivered (`status` undefined: network). */
export class PushError extends Error {
  override name = "PushError";
  constructor(
    message: string,
    readonly status: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** 410 Gone: the connection is closed or the subscription was forgotten. Stop pushing to it. */
export class PushGoneError extends PushError {
  override name = "PushGoneError";
  constructor(message = "the connection is closed or the subscription was forgotten (410)") {
    super(message, 410);
  }
}

/** Creates a pusher; see {@link PusherOptions} for the defaults. */
export function createPusher(options: PusherOptions = {}): Pusher {
  const settings = resolvePusherOptions(options);
  return {
    async push(connection, message, callOptions = {}) {
      const url = `${pushUrl(connection)}/messages`;
      await post(url, message, settings, callOptions.signal);
    },
    async pushBatch(messages, callOptions = {}) {
      const results: BatchPushResult[] = new Array(messages.length);
      const groups = new Map<string, number[]>();
      messages.forEach((message, index) => {
        const url = batchUrl(message.connection);
        groups.set(url, [...(groups.get(url) ?? []), index]);
      });
      const chunks: Array<{ url: string; indexes: number[] }> = [];
      for (const [url, indexes] of groups) {
        for (let start = 0; start < indexes.length; start += MAX_PUSH_BATCH) {
          chunks.push({ url, indexes: indexes.slice(start, start + MAX_PUSH_BATCH) });
        }
      }
      // A fan-out of thousands is several requests: a few in flight at once, not one after another.
      let next = 0;
      const worker = async (): Promise<void> => {
        for (let chunk = chunks[next++]; chunk; chunk = chunks[next++]) {
          const body = { messages: chunk.indexes.map((index) => messages[index]) };
          const answer = await post(chunk.url, body, settings, callOptions.signal);
          const statuses = readBatchResults(answer, chunk.indexes.length);
          chunk.indexes.forEach(
            (index, position) => (results[index] = { status: statuses[position] as number }),
          );
        }
      };
      await Promise.all(Array.from({ length: Math.min(PUSH_BATCH_CONCURRENCY, chunks.length) }, worker));
      return results;
    },
  };
}

/** Pushes one message with a one-off pusher: `await pushTo(ctx.connection, { frame: { msg_type: "notice" } })`. */
export function pushTo(
  connection: string,
  message: PushMessage,
  options: PusherOptions & PushCallOptions = {},
): Promise<void> {
  return createPusher(options).push(connection, message, { signal: options.signal });
}

type ResolvedPusherOptions = typeof DEFAULT_PUSHER_OPTIONS & { secret?: string; fetch: typeof fetch };

function resolvePusherOptions(options: PusherOptions): ResolvedPusherOptions {
  const defined = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
  const resolved = {
    ...DEFAULT_PUSHER_OPTIONS,
    secret: process.env.PUSH_SECRET || undefined,
    ...defined,
    fetch: options.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => globalThis.fetch(input, init)),
  };
  if (!Number.isInteger(resolved.retries) || resolved.retries < 0) {
    throw new TypeError("createPusher: `retries` must be an integer >= 0");
  }
  for (const key of ["retryMinMs", "retryMaxMs", "timeoutMs"] as const) {
    if (!(resolved[key] > 0)) throw new TypeError(`createPusher: \`${key}\` must be a positive number`);
  }
  return resolved;
}

/** Checks a push URL (`http(s)://host/.../connections/<ref>`) and drops a trailing slash. */
function pushUrl(connection: string): string {
  if (
    typeof connection !== "string" ||
    !/^https?:\/\/[^/]+\/(?:.*\/)?connections\/[^/]+\/?$/.test(connection)
  ) {
    throw new TypeError(`not a push URL (<origin>/connections/<ref>): ${String(connection)}`);
  }
  return connection.replace(/\/$/, "");
}

/** The batch endpoint of the gateway a push URL belongs to: `<pushOrigin>/connections/messages`. */
function batchUrl(connection: string): string {
  const url = pushUrl(connection);
  return `${url.slice(0, url.lastIndexOf("/connections/"))}/connections/messages`;
}

/** POSTs `body` as JSON, retrying 5xx and network errors; resolves with the parsed 2xx body (or undefined). */
async function post(
  url: string,
  body: unknown,
  settings: ResolvedPusherOptions,
  signal: AbortSignal | undefined,
): Promise<unknown> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (settings.secret) headers.authorization = `Bearer ${settings.secret}`;
  const payload = JSON.stringify(body);
  const never = new AbortController().signal;
  for (let attempt = 0; ; attempt++) {
    signal?.throwIfAborted();
    let failure: PushError;
    try {
      const timeout = AbortSignal.timeout(settings.timeoutMs);
      const response = await settings.fetch(url, {
        method: "POST",
        headers,
        body: payload,
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      const text = await response.text();
      if (response.ok) return parseJsonOrUndefined(text);
      if (response.status === 410) throw new PushGoneError();
      failure = new PushError(`push refused: ${response.status} ${text.slice(0, 200)}`, response.status);
      if (response.status < 500) throw failure;
    } catch (error) {
      if (error instanceof PushError) throw error;
      signal?.throwIfAborted();
      failure = new PushError(`push failed: ${describe(error)}`, undefined, { cause: error });
    }
    if (attempt >= settings.retries) throw failure;
    await sleep(backoffDelayMs(attempt, settings.retryMinMs, settings.retryMaxMs), signal ?? never);
  }
}

function readBatchResults(answer: unknown, count: number): number[] {
  const results = (answer as { results?: unknown } | undefined)?.results;
  if (!Array.isArray(results) || results.length !== count) {
    throw new PushError(`batch push: expected ${count} results, got ${JSON.stringify(answer)}`, 200);
  }
  return results.map((result) => Number((result as { status?: unknown })?.status));
}

function parseJsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    // A 202 to a single push has no body the caller needs.
    return undefined;
  }
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : "";
  return `${error.name}: ${error.message}${cause}`;
}
