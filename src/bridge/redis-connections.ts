import { Redis, type RedisOptions } from "ioredis";
import { BridgeHttpError, errorMessage } from "./errors.js";

/**
 * The Redis connections behind the bridge: one shared by plain commands and pipelines, a pool for
 * transactions, and one subscriber connection shared by every SSE stream.
 */
export interface BridgeRedis {
  /** Shared by every plain command and pipeline; never used for MULTI. */
  readonly shared: Redis;
  /** Holds every SUBSCRIBE/PSUBSCRIBE of the SSE streams; does not resubscribe after a reconnect. */
  readonly subscriber: Redis;
  /**
   * Runs `transaction` on a connection nobody else uses until it returns, so a MULTI ... EXEC never has another
   * request's commands queued inside it. Waits for a free connection when all are busy.
   */
  withTransactionConnection<T>(transaction: (connection: Redis) => Promise<T>): Promise<T>;
  /** The error to answer with when a command failed for a reason other than a Redis error reply. */
  unavailableError(cause: unknown): BridgeHttpError;
  /** Closes every connection. Idempotent. */
  close(): Promise<void>;
}

/** How many transactions may run at the same time; more wait for a free connection. */
const MAX_TRANSACTION_CONNECTIONS = 4;

/**
 * Connection options chosen so that a dead Redis gives a fast error instead of a hanging request:
 * no offline queue (commands fail at once while disconnected), in-flight commands are failed on the first
 * disconnect instead of being re-sent (re-sending could run an INCR twice), and reconnection keeps trying
 * every second at most, so the bridge recovers by itself when redis-server comes back.
 */
const CONNECTION_OPTIONS: RedisOptions = {
  lazyConnect: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  connectTimeout: 2_000,
  retryStrategy: (attempt) => Math.min(attempt * 100, 1_000),
  connectionName: "edge-wsproxy-bridge",
};

/**
 * Connects the shared connection and returns the bridge's connections.
 * Rejects with a message naming the URL when Redis cannot be reached, so a misconfigured bridge fails at start.
 */
export async function connectBridgeRedis(redisUrl: string): Promise<BridgeRedis> {
  const safeUrl = redactRedisUrl(redisUrl);
  let lastConnectionError = "";
  const connect = async (extraOptions: RedisOptions = {}): Promise<Redis> => {
    const connection = new Redis(redisUrl, { ...CONNECTION_OPTIONS, ...extraOptions });
    // ioredis emits connection errors as events and prints them when nobody listens; the bridge reports the
    // latest one in its 503 answers instead.
    connection.on("error", (error: unknown) => {
      lastConnectionError = errorMessage(error);
    });
    try {
      await connection.connect();
      return connection;
    } catch (error) {
      connection.disconnect();
      throw error;
    }
  };

  let shared: Redis;
  let subscriber: Redis;
  try {
    shared = await connect();
    // The pub/sub hub tells its streams when this connection drops instead of resubscribing silently.
    subscriber = await connect({ autoResubscribe: false }).catch((error: unknown) => {
      shared.disconnect();
      throw error;
    });
  } catch (error) {
    throw new Error(`cannot connect to Redis at ${safeUrl}: ${errorMessage(error)}`, { cause: error });
  }

  const idle: Redis[] = [];
  const waiting: ((connection: Redis | undefined) => void)[] = [];
  let created = 0;
  let closed = false;
  const all = new Set<Redis>([shared, subscriber]);

  const acquire = async (): Promise<Redis | undefined> => {
    const ready = idle.pop();
    if (ready) return ready;
    if (created < MAX_TRANSACTION_CONNECTIONS) {
      created++;
      try {
        const connection = await connect();
        if (closed) {
          connection.disconnect();
          return undefined;
        }
        all.add(connection);
        return connection;
      } catch (error) {
        created--;
        throw error;
      }
    }
    return new Promise((resolve) => waiting.push(resolve));
  };
  const release = (connection: Redis): void => {
    const next = waiting.shift();
    if (next) next(connection);
    else idle.push(connection);
  };

  return {
    shared,
    subscriber,
    async withTransactionConnection(transaction) {
      if (closed) throw new BridgeHttpError(503, "ERR the bridge is shutting down");
      const connection = await acquire();
      if (!connection) throw new BridgeHttpError(503, "ERR the bridge is shutting down");
      try {
        return await transaction(connection);
      } finally {
        release(connection);
      }
    },
    unavailableError(cause) {
      const last = lastConnectionError ? ` (last connection error: ${lastConnectionError})` : "";
      return new BridgeHttpError(
        503,
        `ERR Redis at ${safeUrl} is unavailable: ${errorMessage(cause)}${last}`,
      );
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const resolve of waiting.splice(0)) resolve(undefined);
      await Promise.all(
        [...all].map(async (connection) => {
          // QUIT lets Redis finish replies already on the wire; a connection that is down is just dropped.
          if (connection.status === "ready") await connection.quit().catch(() => connection.disconnect());
          else connection.disconnect();
        }),
      );
    },
  };
}

/** The URL without its password, for messages and logs. */
export function redactRedisUrl(redisUrl: string): string {
  try {
    const url = new URL(redisUrl);
    if (url.password) url.password = "***";
    return url.toString();
  } catch {
    return "<invalid redis url>";
  }
}
