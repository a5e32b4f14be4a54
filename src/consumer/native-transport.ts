/**
 * The native transport: two ioredis connections, one for blocking reads and one for everything else, so a
 * read blocked for seconds never delays a reply or an ack.
 */
import { Redis } from "ioredis";
import type { RedisOptions } from "ioredis";
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

/** Connection options for {@link createNativeTransport}. */
export interface NativeTransportOptions {
  /** Longest wait between reconnect attempts. @default 2000 */
  reconnectMaxMs?: number;
}

/** Connects to `redis://` or `rediss://` `url` with a read connection and a command connection. */
export function createNativeTransport(url: string, options: NativeTransportOptions = {}): ServiceTransport {
  const reconnectMaxMs = options.reconnectMaxMs ?? 2000;
  const connectionOptions: RedisOptions = {
    // One retry, then the command fails and the service's own loop backs off and logs the outage once.
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(reconnectMaxMs, 50 * 2 ** attempt) * (0.5 + Math.random() / 2),
  };
  const reader = new Redis(url, {
    ...connectionOptions,
    connectionName: "edge-wsproxy-service-reader",
    // A blocked reader has nothing to flush; without this, disconnect() keeps the socket open for 2 s.
    disconnectTimeout: 0,
  });
  const commander = new Redis(url, {
    ...connectionOptions,
    connectionName: "edge-wsproxy-service",
    // Commands in flight when the connection drops are failed below rather than kept for the next login.
    autoResendUnfulfilledCommands: false,
  });
  // Connection failures reach the service through rejected commands, logged once per outage there;
  // without a listener ioredis would print every reconnect attempt.
  reader.on("error", () => {});
  commander.on("error", () => {});
  let closed = false;
  // A command in flight when its connection drops is kept by ioredis to be sent again after the next
  // login, outside the queues that disconnect() and maxRetriesPerRequest reject. While Redis refuses the
  // login (credentials revoked and the connection killed) that keeps a blocked read waiting for ever, and
  // with it the service's close(): stopReading() rejects such reads itself.
  // The same holds for the command connection, and there the held command is a reply batch, which the
  // service's close() waits for: each command is failed when the connection it went out on drops (the
  // outbox sends the batch again, backing off and logging the outage, as for any failed round trip).
  const commandsInFlight = new Set<(reason: Error) => void>();
  commander.on("close", () => {
    for (const reject of commandsInFlight) reject(new Error("connection to Redis lost"));
    commandsInFlight.clear();
  });
  const onCommander = <T>(run: () => Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      commandsInFlight.add(reject);
      run()
        .then(resolve, reject)
        .finally(() => commandsInFlight.delete(reject));
    });
  let readingStopped = false;
  const readsInFlight = new Set<(reason: Error) => void>();
  const stopReading = () => {
    readingStopped = true;
    reader.disconnect();
    for (const reject of readsInFlight) reject(new Error("reading stopped"));
    readsInFlight.clear();
  };

  return {
    kind: "native",
    target: redactUrl(url),
    supportsBlockingReads: true,
    read(command: ReadGroupCommand): Promise<unknown> {
      // After a disconnect() that came while ioredis waited to reconnect, a new command would be queued for
      // ever.
      if (readingStopped) return Promise.reject(new Error("reading stopped"));
      return new Promise((resolve, reject) => {
        readsInFlight.add(reject);
        send(reader, command)
          .then(resolve, reject)
          .finally(() => readsInFlight.delete(reject));
      });
    },
    call: (command: CreateGroupCommand | PendingCommand | ClaimCommand) =>
      onCommander(() => send(commander, command)),
    async pipeline(commands: WriteCommand[]): Promise<PipelineResult[]> {
      const results = await onCommander(() =>
        commander.pipeline(commands.map(([name, ...args]) => [name.toLowerCase(), ...args])).exec(),
      );
      if (!results) throw new Error("pipeline was discarded");
      return results.map(([error, result], index): PipelineResult => {
        if (!error) return { result };
        // A connection failure fails every command of the pipeline: the round trip failed as a whole. So
        // does a refused login (the connection came back but its credentials are refused): nothing ran.
        if (isAuthError(error)) throw new AuthenticationError(error.message, { cause: error });
        if (!isReplyError(error)) throw error;
        return { error: new RedisReplyError(error.message, commands[index]?.[0] ?? "?", { cause: error }) };
      });
    },
    stopReading,
    async close() {
      if (closed) return;
      closed = true;
      stopReading();
      await commander.quit().catch(() => commander.disconnect());
    },
  };
}

async function send(connection: Redis, [name, ...args]: string[]): Promise<unknown> {
  try {
    return await connection.call(name as string, ...args);
  } catch (error) {
    if (isAuthError(error)) throw new AuthenticationError((error as Error).message, { cause: error });
    if (isReplyError(error)) {
      throw new RedisReplyError((error as Error).message, name as string, { cause: error });
    }
    throw error;
  }
}

/** Redis refused the connection's credentials (`NOAUTH`, `WRONGPASS`). */
function isAuthError(error: unknown): boolean {
  return error instanceof Error && /^(NOAUTH|WRONGPASS)/.test(error.message);
}

function isReplyError(error: unknown): boolean {
  return error instanceof Error && error.name === "ReplyError";
}
