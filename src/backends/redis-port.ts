/**
 * The gateway's one door to Redis: a {@link RedisPort} made by {@link createRedisPort} from the REST URL,
 * the token and the settings. Everything the gateway sends goes through a port (a backend's `XADD`,
 * `XTRIM` and `LPOP`, its reply subscription, the `PING` of `/health`), so the `@upstash/redis` client
 * settings (`redis-client.ts`), the outbound-connection limit and the pipelining (`redis-pipe.ts`) are set
 * here once, and no other code holds the URL or the token.
 */
import { ConfigError } from "../core/errors.js";
import { systemClock, type Clock } from "../core/pending-requests.js";
import {
  createRedisClient,
  openSubscription,
  type PipelineResult,
  type RedisCommand,
  type RedisCommands,
} from "./redis-client.js";
import { RedisPipe, type RedisPipeStats } from "./redis-pipe.js";

export type { PipelineResult, RedisCommand, RedisCommands } from "./redis-client.js";
export { RedisCommandError, type RedisPipeStats } from "./redis-pipe.js";

/** Sees every command a port sends (the object's metrics count them by name). */
export interface RedisObserver {
  /** `commands` are about to go out in one REST request. */
  sent(commands: readonly RedisCommand[]): void;
  /** `command` failed: Redis refused it, or its whole request failed. */
  failed(command: RedisCommand): void;
}

/** Everything {@link createRedisPort} needs; the URL and token stay inside the port. */
export interface RedisPortSettings {
  /** `UPSTASH_REDIS_REST_URL`; needed unless `client` is given, and always for {@link RedisPort.subscribe}. */
  url?: string;
  /** `UPSTASH_REDIS_REST_TOKEN`; as `url`. */
  token?: string;
  /** Replaces the `@upstash/redis` client for commands (a test double, an in-memory Redis). */
  client?: RedisCommands;
  /** Each REST request fails after this long. */
  requestTimeoutMs: number;
  /** REST requests (and held subscription streams) open at once. @default 6 */
  maxConnections?: number;
  /** Commands per `/pipeline` request. @default 100 */
  batchSize?: number;
  /** Bytes (JSON) per `/pipeline` request. @default 2097152 */
  batchBytes?: number;
  /** @default systemClock */
  clock?: Clock;
  /** The fetch that opens subscription streams. @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Told about every command sent and every one that failed. */
  observer?: RedisObserver;
}

/** What the gateway asks of Redis. */
export interface RedisPort {
  /**
   * Sends one command: queued behind the connection limit, and sent in this turn's `/pipeline` request
   * with the other commands queued meanwhile. `wanted` is asked once, just as the command leaves (its
   * request starts, which may be long after this call while the connections are busy): false drops the
   * command, and the promise never settles. Rejects with the command's own error or the request's.
   * `largeAnswer`: the answer may fill a REST response by itself (an `LPOP` of a whole reply batch); such
   * commands never share a request, so each response stays within Upstash's size limit.
   */
  exec<T>(command: RedisCommand, wanted?: () => boolean, largeAnswer?: boolean): Promise<T>;
  /** Sends `commands` together (one request while they fit a batch), one result or error each. */
  pipeline(commands: RedisCommand[]): Promise<PipelineResult[]>;
  /**
   * Opens a subscription to `channel` (server-sent events). It takes one of the port's connections while
   * it waits for the response headers and gives it back once they arrive: Cloudflare counts an outgoing
   * connection against an object's six only in that phase, not while its body is read ("Relaxed
   * simultaneous connection limiting for Workers",
   * https://developers.cloudflare.com/changelog/2026-04-09-relaxed-connection-limiting), so an open stream
   * leaves every connection to the commands. `signal` aborts the stream: the caller aborts it when it is
   * done with it, also when it ended or failed by itself.
   */
  subscribe(channel: string, signal: AbortSignal): Promise<Response>;
  /** Requests, commands, queue and connections, for `/metrics`, tests and the benchmark. */
  readonly stats: RedisPipeStats;
}

/** Builds a {@link RedisPort}; see the module comment. */
export function createRedisPort(settings: RedisPortSettings): RedisPort {
  const { url, token, requestTimeoutMs, observer } = settings;
  let client = settings.client;
  if (!client) {
    if (!url || !token) throw new ConfigError("a Redis port needs the REST URL and token");
    client = createRedisClient({ url, token, requestTimeoutMs });
  }
  const pipe = new RedisPipe(observer ? observed(client, observer) : client, {
    maxConnections: settings.maxConnections ?? 6,
    batchSize: settings.batchSize ?? 100,
    batchBytes: settings.batchBytes ?? 2 * 1024 * 1024,
    requestTimeoutMs,
    clock: settings.clock ?? systemClock,
  });
  return {
    stats: pipe.stats,
    exec: <T>(command: RedisCommand, wanted?: () => boolean, largeAnswer?: boolean) =>
      pipe.send<T>(command, wanted, largeAnswer),
    pipeline: (commands) =>
      Promise.all(
        commands.map((command) =>
          pipe.send(command).then(
            (result): PipelineResult => ({ result }),
            (error: unknown): PipelineResult => ({
              error: error instanceof Error ? error.message : String(error),
            }),
          ),
        ),
      ),
    async subscribe(channel, signal) {
      if (!url || !token) throw new ConfigError("a Redis subscription needs the REST URL and token");
      const release = await pipe.hold();
      try {
        signal.throwIfAborted();
        // Resolves when the response headers arrive: the connection counts no longer (see above).
        return await openSubscription({ url, token, fetch: settings.fetch }, channel, signal);
      } finally {
        release();
      }
    },
  };
}

/** `client`, telling `observer` about each command sent and each that failed. */
function observed(client: RedisCommands, observer: RedisObserver): RedisCommands {
  const pipeline = client.execPipeline?.bind(client);
  return {
    abortsOwnRequests: client.abortsOwnRequests,
    async exec<T>(command: RedisCommand): Promise<T> {
      observer.sent([command]);
      try {
        return await client.exec<T>(command);
      } catch (error) {
        observer.failed(command);
        throw error;
      }
    },
    execPipeline: pipeline
      ? async (commands: RedisCommand[]): Promise<PipelineResult[]> => {
          observer.sent(commands);
          let results: PipelineResult[];
          try {
            results = await pipeline(commands);
          } catch (error) {
            for (const command of commands) observer.failed(command);
            throw error;
          }
          results.forEach((result, index) => {
            const command = commands[index];
            if (command && result.error !== undefined && result.error !== null) observer.failed(command);
          });
          return results;
        }
      : undefined,
  };
}

/** A short, token-free description of an error for logs and TransportError messages. */
export function describeError(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}
