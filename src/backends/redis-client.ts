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
 * - the SDK's default base64 response encoding kept: each popped reply is decoded on its own, so one
 *   payload with bytes that are not UTF-8 cannot make the whole `LPOP` batch unreadable.
 */
export function createRedisClient(settings: RedisClientSettings): RedisCommands {
  const { url, token, requestTimeoutMs } = settings;
  const redis = new Redis({
    url,
    token,
    retry: { retries: 0 },
    signal: () => AbortSignal.timeout(requestTimeoutMs),
    automaticDeserialization: false,
    enableAutoPipelining: false,
    enableTelemetry: false,
    readYourWrites: false,
  });
  // The SDK's own HTTP client (the one its `pipeline()` uses), so a raw pipeline gets exactly the settings
  // above: no retry, a fresh timeout signal per request, base64 results decoded per command.
  const requester = (redis as unknown as { client: Requester }).client;
  return {
    abortsOwnRequests: true,
    exec: <TResult>(command: RedisCommand): Promise<TResult> => redis.exec<TResult>(command),
    execPipeline: async (commands: RedisCommand[]): Promise<PipelineResult[]> => {
      const body = commands.map((command) => command.map(String));
      const results = (await requester.request({ path: ["pipeline"], body })) as unknown;
      if (!Array.isArray(results) || results.length !== commands.length) {
        throw new Error(`pipeline of ${commands.length} commands returned ${describeShape(results)}`);
      }
      return results as PipelineResult[];
    },
  };
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
