/**
 * The Redis seam of the consumer-groups backend: the one place an `@upstash/redis` client is made, and
 * the one REST request the SDK does not make for us (the reply subscription's event stream).
 */
import { Redis } from "@upstash/redis/cloudflare";
import type { Requester } from "@upstash/redis/cloudflare";

/** One raw Redis command: name, then arguments. */
export type RedisCommand = [string, ...(string | number)[]];

/** One command's outcome in a pipeline: its raw result, or the error Redis gave for it alone. */
export interface PipelineResult {
  result?: unknown;
  error?: string;
}

/**
 * The only Redis calls the gateway makes: one raw command (`XADD`, `LPOP`, `PING`), raw reply back, and
 * optionally several commands in one `/pipeline` request. An `@upstash/redis` `Redis` instance satisfies
 * `exec` (a client without `execPipeline` gets one command per request); tests pass a fake.
 */
export interface RedisCommands {
  exec<TResult>(command: RedisCommand): Promise<TResult>;
  /**
   * Sends `commands` in one REST request (`POST <url>/pipeline`, in order, not atomic) and returns one
   * result per command; rejects only when the request itself failed (network, HTTP error, timeout).
   */
  execPipeline?(commands: RedisCommand[]): Promise<PipelineResult[]>;
  /**
   * True when every request of this client is aborted after the timeout it was made with (the
   * `@upstash/redis` client below): the port then keeps no timer of its own per request.
   */
  readonly abortsOwnRequests?: boolean;
}

/** Connection settings of {@link createRedisClient}. */
export interface RedisClientSettings {
  /** `UPSTASH_REDIS_REST_URL`. */
  url: string;
  /** `UPSTASH_REDIS_REST_TOKEN`. */
  token: string;
  /** Each REST call is aborted after this long and fails. */
  requestTimeoutMs: number;
}

/**
 * An `@upstash/redis` client set up for a gateway:
 * - no retries: a failed `XADD` must become WrongResponse at once, not after a back-off longer than the
 *   client would wait, and retrying a write whose first attempt may have landed could run an RPC twice;
 * - a per-call timeout (a fresh `AbortSignal` per request; the SDK turns a *static* aborted signal into a
 *   fake success, a signal factory into an error);
 * - raw replies (`automaticDeserialization: false`): reply payloads are parsed and validated by
 *   `wire.ts`, stream ids stay strings;
 * - no auto-pipelining by the SDK: the backend batches on its own terms (`execPipeline`, one seam through
 *   the same HTTP client, so one timeout per request and one result or error per command); Upstash bills
 *   per command either way;
 * - no telemetry headers and no read-your-writes token (the gateway reads only keys it does not write);
 * - base64 responses (`Upstash-Encoding: base64`, as the SDK asks by default): each popped reply is decoded
 *   on its own, so one payload with bytes that are not UTF-8 cannot make the whole `LPOP` batch
 *   unreadable. The decoding is ours ({@link decodeBase64Results}), with the SDK's rules but without its
 *   per-string byte copy and `TextDecoder` for ASCII, which every reply the service SDK writes is;
 * - one timeout signal shared by the requests started within {@link timeoutSignals}' short window,
 *   instead of a timer per request.
 */
export function createRedisClient(settings: RedisClientSettings): RedisCommands {
  const { url, token, requestTimeoutMs } = settings;
  const redis = new Redis({
    url,
    token,
    retry: { retries: 0 },
    signal: timeoutSignals(requestTimeoutMs),
    automaticDeserialization: false,
    // Asked for per request below and decoded here, so the SDK does not decode it again.
    responseEncoding: false,
    enableAutoPipelining: false,
    enableTelemetry: false,
    readYourWrites: false,
  });
  // The SDK's own HTTP client (the one its `pipeline()` uses), so a raw request gets exactly the settings
  // above: no retry, a timeout signal per request, no telemetry.
  const requester = (redis as unknown as { client: Requester }).client;
  return {
    abortsOwnRequests: true,
    exec: async <TResult>(command: RedisCommand): Promise<TResult> => {
      const body = command.map(String);
      const { result, error } = (await requester.request({ body, headers: BASE64 })) as PipelineResult;
      if (error !== undefined && error !== null)
        throw new Error(`${error}, command was: ${JSON.stringify(body)}`);
      return decodeBase64Result(result) as TResult;
    },
    execPipeline: async (commands: RedisCommand[]): Promise<PipelineResult[]> => {
      const body = commands.map((command) => command.map(String));
      const results = (await requester.request({ path: ["pipeline"], body, headers: BASE64 })) as unknown;
      if (!Array.isArray(results) || results.length !== commands.length) {
        throw new Error(`pipeline of ${commands.length} commands returned ${describeShape(results)}`);
      }
      return decodeBase64Results(results as PipelineResult[]);
    },
  };
}

/** Asks Upstash (and the bridge) for base64 strings in the response: "Upstash-Encoding" in Upstash's REST API docs. */
const BASE64 = { "Upstash-Encoding": "base64" };

/**
 * A signal factory for the SDK's `signal` option: requests started within one window of
 * `max(1, min(100, timeoutMs / 10))` ms share a signal that aborts `timeoutMs + window` after the window
 * opened, so each request is aborted between `timeoutMs` and `timeoutMs + window` after it started, and
 * a busy object makes one timer per window instead of one per request.
 */
export function timeoutSignals(timeoutMs: number, now: () => number = Date.now): () => AbortSignal {
  const windowMs = Math.max(1, Math.min(100, Math.floor(timeoutMs / 10)));
  let signal: AbortSignal | undefined;
  let closesAt = -Infinity;
  return () => {
    const at = now();
    if (signal === undefined || at >= closesAt) {
      signal = AbortSignal.timeout(timeoutMs + windowMs);
      closesAt = at + windowMs;
    }
    return signal;
  };
}

/** Each command's result decoded from base64 (see {@link decodeBase64Result}); errors are left as sent. */
export function decodeBase64Results(results: PipelineResult[]): PipelineResult[] {
  return results.map(({ result, error }) => ({ result: decodeBase64Result(result), error }));
}

/**
 * One result of a base64-encoded response, decoded by `@upstash/redis`'s rules: numbers as they are, `"OK"`
 * as it is, strings from base64 (one that is not base64 stays as it came), arrays element by element
 * (nested arrays too), any other object as null.
 */
export function decodeBase64Result(raw: unknown): unknown {
  if (raw === undefined || typeof raw === "number") return raw;
  if (typeof raw === "string") return raw === "OK" ? raw : base64Text(raw);
  if (Array.isArray(raw)) {
    return raw.map((item: unknown) =>
      typeof item === "string" ? base64Text(item) : Array.isArray(item) ? item.map(decodeBase64Result) : item,
    );
  }
  return typeof raw === "object" ? null : undefined;
}

const utf8 = new TextDecoder();
/** A character of a binary string (one per byte, as `atob` returns) that is a byte of 0x80 or more. */
const NOT_ASCII = /[\u0080-\u00ff]/;

/** `b64`'s bytes as UTF-8 text (invalid sequences become U+FFFD); a string that is not base64 as it came. */
function base64Text(b64: string): string {
  let binary: string;
  try {
    binary = atob(b64);
  } catch {
    return b64;
  }
  // ASCII bytes are their own UTF-8: no byte copy, no decoder.
  if (!NOT_ASCII.test(binary)) return binary;
  const bytes = new Uint8Array(binary.length);
  for (let index = 0; index < binary.length; index += 1) bytes[index] = binary.charCodeAt(index);
  return utf8.decode(bytes);
}

function describeShape(value: unknown): string {
  return Array.isArray(value) ? `${value.length} results` : typeof value;
}

/** Where {@link openSubscription} connects. */
export interface SubscriptionSettings {
  /** `UPSTASH_REDIS_REST_URL`. */
  url: string;
  /** `UPSTASH_REDIS_REST_TOKEN`. */
  token: string;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
}

/**
 * `POST <url>/subscribe/<channel>`, answered with server-sent events: the request `@upstash/redis` itself
 * sends (its `[]` body included), so what works against the bridge works against Upstash. The channel goes
 * in the path as the SDK puts it there (`[url, "subscribe", channel].join("/")`, no percent-encoding, so
 * `wsp:reply:...` keeps its colons): whether Upstash decodes `%3A` is not documented. Only the characters
 * that would end or split the path (`/ ? # % \`) are encoded; reply channels never hold them. The token goes
 * in a header, never in the URL, so it cannot surface in an error message that quotes the URL.
 */
export function openSubscription(
  settings: SubscriptionSettings,
  channel: string,
  signal: AbortSignal,
): Promise<Response> {
  const base = settings.url.replace(/\/+$/, "");
  // Called as a plain function: the global fetch refuses to run with another object as `this`.
  const fetcher = settings.fetch ?? globalThis.fetch;
  return fetcher(`${base}/subscribe/${channelPathSegment(channel)}`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${settings.token}`,
      accept: "text/event-stream",
      "content-type": "application/json",
    },
    body: "[]",
    signal,
  });
}

/** `channel` as one path segment, raw but for the characters that would change what the URL means. */
function channelPathSegment(channel: string): string {
  return channel.replace(/[/?#%\\]/g, (char) => encodeURIComponent(char));
}
