import type { Redis } from "ioredis";
import { refusalReason, type RedisCommand } from "./commands.js";
import { encodeReply, type JsonReply, type RedisReply } from "./encoding.js";
import { BridgeHttpError, errorMessage, isRedisReplyError } from "./errors.js";
import type { BridgeRedis } from "./redis-connections.js";

/** One entry of a `/pipeline` or `/multi-exec` answer, in the order of the commands. */
export type PipelineEntry = { result: JsonReply } | { error: string };

/**
 * Runs one command on the shared connection and returns its encoded result.
 * A refused command or a Redis error reply becomes a 400; a transport failure becomes a 503.
 */
export async function executeCommand(
  redis: BridgeRedis,
  command: RedisCommand,
  base64: boolean,
): Promise<JsonReply> {
  const refusal = refusalReason(command);
  if (refusal) throw new BridgeHttpError(400, refusal);
  try {
    const reply = (await redis.shared.callBuffer(...toIoredisArgs(command))) as RedisReply;
    return encodeReply(reply, base64);
  } catch (error) {
    if (isRedisReplyError(error)) throw new BridgeHttpError(400, error.message);
    throw redis.unavailableError(error);
  }
}

/**
 * Runs commands as one ioredis pipeline (one write, in order, not atomic) on the shared connection.
 * Each command gets its own result or error, as Upstash answers; a refused command fails alone.
 * If Redis cannot be reached, the whole request fails with a 503 rather than a list of transport errors.
 */
export async function executePipeline(
  redis: BridgeRedis,
  commands: RedisCommand[],
  base64: boolean,
): Promise<PipelineEntry[]> {
  const refusals = commands.map(refusalReason);
  // A pipeline of one (a gateway's lone request at light load) runs as that one command: the same reply,
  // without building an ioredis pipeline, the costliest part of such a request in the bridge.
  if (commands.length === 1) return [await runAlone(redis, commands[0] as RedisCommand, refusals[0], base64)];
  const pipeline = redis.shared.pipeline();
  commands.forEach((command, index) => {
    if (!refusals[index]) pipeline.callBuffer(...toIoredisArgs(command));
  });
  const replies = pipeline.length > 0 ? await runPipeline(redis, pipeline) : [];
  let next = 0;
  return refusals.map((refusal): PipelineEntry => {
    if (refusal) return { error: refusal };
    const [error, reply] = replies[next++] ?? [new Error("missing pipeline reply"), null];
    return toEntry(error, reply, base64);
  });
}

/**
 * Runs commands as MULTI ... EXEC on a connection of their own, so no other request's commands can be queued
 * inside the transaction. A refused command or a command Redis rejects while queueing (unknown command, wrong
 * arity) aborts the whole transaction with one 400 error; a command that fails while executing (INCR on a
 * non-integer) gets its own `{"error"}` entry while the others take effect, as in Redis and Upstash.
 */
export async function executeTransaction(
  redis: BridgeRedis,
  commands: RedisCommand[],
  base64: boolean,
): Promise<PipelineEntry[]> {
  commands.forEach((command, index) => {
    const refusal = refusalReason(command);
    if (refusal) throw new BridgeHttpError(400, `EXECABORT command ${index + 1} was refused: ${refusal}`);
  });
  const replies = await redis.withTransactionConnection((connection) => {
    const pipeline = connection.pipeline().callBuffer("MULTI");
    for (const command of commands) pipeline.callBuffer(...toIoredisArgs(command));
    return runPipeline(redis, pipeline.callBuffer("EXEC"));
  });
  const [execError, execReply] = replies[replies.length - 1] ?? [new Error("missing EXEC reply"), null];
  if (execError) {
    if (!isRedisReplyError(execError)) throw redis.unavailableError(execError);
    // Redis only says "previous errors"; name the first one so the caller can fix the command.
    const queueError = replies.slice(1, -1).find(([error]) => error)?.[0];
    throw new BridgeHttpError(
      400,
      queueError ? `${execError.message} ${queueError.message}` : execError.message,
    );
  }
  if (!Array.isArray(execReply)) {
    throw new BridgeHttpError(400, "EXECABORT the transaction was aborted");
  }
  return execReply.map((reply) =>
    reply instanceof Error ? { error: reply.message } : { result: encodeReply(reply, base64) },
  );
}

type PipelineReplies = [Error | null, RedisReply][];

/**
 * Executes an ioredis pipeline. When the connection is down, ioredis fails each command with a transport
 * error instead of rejecting, so any non-Redis error here means the request as a whole could not be served.
 */
async function runPipeline(
  redis: BridgeRedis,
  pipeline: ReturnType<Redis["pipeline"]>,
): Promise<PipelineReplies> {
  let replies: PipelineReplies;
  try {
    replies = ((await pipeline.exec()) ?? []) as PipelineReplies;
  } catch (error) {
    throw redis.unavailableError(error);
  }
  const transportError = replies.find(([error]) => error && !isRedisReplyError(error))?.[0];
  if (transportError) throw redis.unavailableError(transportError);
  return replies;
}

async function runAlone(
  redis: BridgeRedis,
  command: RedisCommand,
  refusal: string | undefined,
  base64: boolean,
): Promise<PipelineEntry> {
  if (refusal) return { error: refusal };
  let reply: RedisReply;
  try {
    reply = (await redis.shared.callBuffer(...toIoredisArgs(command))) as RedisReply;
  } catch (error) {
    if (isRedisReplyError(error)) return toEntry(error, null, base64);
    throw redis.unavailableError(error);
  }
  return toEntry(null, reply, base64);
}

function toEntry(error: Error | null, reply: RedisReply, base64: boolean): PipelineEntry {
  return error ? { error: errorMessage(error) } : { result: encodeReply(reply, base64) };
}

/**
 * The command name goes to ioredis in upper case on purpose: ioredis looks up reply transformers by the exact
 * name and would turn a lower-case `hgetall` reply into an object, while Upstash returns the flat array.
 */
function toIoredisArgs(command: RedisCommand): [string, ...(string | Buffer)[]] {
  const [name, ...args] = command;
  return [name.toUpperCase(), ...args];
}
