import { BridgeHttpError } from "./errors.js";
import { UPSTASH_COMMANDS, UPSTASH_SUBCOMMANDS } from "./upstash-commands.js";

/**
 * One Redis command as the bridge sends it: the name first, then the arguments. An argument is a Buffer only
 * when it is the raw body of a path-style POST, which may hold any bytes.
 *
 * @example ["SET", "greeting", "hello"]
 */
export type RedisCommand = [name: string, ...args: (string | Buffer)[]];

/**
 * Commands that wait for data on the server. Upstash lists several of them, but its REST API refuses them,
 * so the bridge does too: a test that passes here must not fail in production (and a blocked request would
 * also stall the shared connection).
 */
const BLOCKING_COMMANDS = new Set([
  "BLPOP",
  "BRPOP",
  "BRPOPLPUSH",
  "BLMOVE",
  "BLMPOP",
  "BZPOPMIN",
  "BZPOPMAX",
  "BZMPOP",
  "WAIT",
  "WAITAOF",
]);

/** Commands that turn a connection into a push channel; over REST they would never return. */
const STREAMING_COMMANDS = new Set([
  "SUBSCRIBE",
  "PSUBSCRIBE",
  "SSUBSCRIBE",
  "UNSUBSCRIBE",
  "PUNSUBSCRIBE",
  "SUNSUBSCRIBE",
  "MONITOR",
  "SYNC",
  "PSYNC",
  "REPLCONF",
]);

/**
 * Commands that change the state of the connection they run on. Every request shares one connection, so one
 * client's SELECT or CLIENT REPLY OFF would silently change every other client's results.
 */
const CONNECTION_STATE_COMMANDS = new Set([
  "SELECT",
  "AUTH",
  "HELLO",
  "RESET",
  "QUIT",
  "CLIENT",
  "READONLY",
  "READWRITE",
  "SHUTDOWN",
  "DEBUG",
  "REPLICAOF",
  "SLAVEOF",
]);

/** Transaction control is the bridge's job (`/multi-exec`); a stray MULTI would swallow other requests. */
const TRANSACTION_COMMANDS = new Set(["MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH"]);

/** Every command of {@link UPSTASH_COMMANDS}, upper-case. */
const SERVED_COMMANDS = new Set(Object.values(UPSTASH_COMMANDS).flat());

/**
 * Why the bridge refuses a command, or `undefined` when it may run. The reason is a Redis-style error message
 * (`ERR ...`) that names the command, so a client sees it exactly like a Redis error. Only commands on
 * Upstash's compatibility list (upstash-commands.ts) run, and of those not the ones that block, stream or
 * change the shared connection.
 */
export function refusalReason(command: RedisCommand): string | undefined {
  const name = command[0].toUpperCase();
  if (BLOCKING_COMMANDS.has(name)) {
    return `ERR blocking command '${name}' is not supported over REST (Upstash refuses it too); poll instead`;
  }
  if ((name === "XREAD" || name === "XREADGROUP") && hasBlockOption(command)) {
    return `ERR ${name} with BLOCK is not supported over REST (Upstash refuses it too); poll without BLOCK`;
  }
  if (STREAMING_COMMANDS.has(name)) {
    return `ERR '${name}' is not supported by the REST bridge: it never returns a single reply`;
  }
  if (CONNECTION_STATE_COMMANDS.has(name)) {
    return `ERR '${name}' is not supported by the REST bridge: it would change a connection shared by all requests`;
  }
  if (TRANSACTION_COMMANDS.has(name)) {
    return `ERR '${name}' is not supported as a command; send the transaction's commands to /multi-exec`;
  }
  const subcommands = UPSTASH_SUBCOMMANDS[name];
  if (subcommands) {
    const subcommand = typeof command[1] === "string" ? command[1].toUpperCase() : "";
    if (subcommands.includes(subcommand)) return undefined;
    return notServed(`${name} ${subcommand}`.trim());
  }
  return SERVED_COMMANDS.has(name) ? undefined : notServed(name);
}

function notServed(name: string): string {
  return `ERR '${name}' is not supported: Upstash's REST API does not serve it, so the bridge refuses it too`;
}

/**
 * Whether an XREAD or XREADGROUP asks to block, reading its options by position as Redis does: each option
 * word is followed by its fixed number of values (`GROUP <group> <consumer>`, `COUNT <n>`, `BLOCK <ms>`),
 * and `STREAMS` ends the options. So a group, consumer or stream named "BLOCK" or "STREAMS" is a value, not
 * an option: `XREADGROUP GROUP STREAMS c BLOCK 0 STREAMS s >` blocks. An unknown word stops the reading;
 * Redis answers that command with a syntax error.
 */
function hasBlockOption(command: RedisCommand): boolean {
  const valuesAfter: Record<string, number> = { COUNT: 1, NOACK: 0, CLAIM: 1, MAXCOUNT: 1, MAXSIZE: 1 };
  if (command[0].toUpperCase() === "XREADGROUP") valuesAfter.GROUP = 2;
  for (let i = 1; i < command.length;) {
    const arg = command[i];
    const option = typeof arg === "string" ? arg.toUpperCase() : "";
    if (option === "BLOCK") return true;
    const values = valuesAfter[option];
    if (values === undefined) return false; // STREAMS, or a word Redis will refuse
    i += 1 + values;
  }
  return false;
}

/**
 * Checks one command of a JSON body: a non-empty array of strings, numbers or booleans, which is what
 * `@upstash/redis` serialises (numbers and booleans are sent as their JSON text, as Upstash does).
 *
 * @param where names the command in the error message, e.g. "command 3 of the pipeline".
 */
export function parseJsonCommand(value: unknown, where: string): RedisCommand {
  if (!Array.isArray(value) || value.length === 0) {
    throw new BridgeHttpError(400, `ERR ${where} must be a non-empty JSON array, like ["SET","key","value"]`);
  }
  const parts = value.map((part: unknown, index) => {
    if (typeof part === "string") return part;
    if (typeof part === "number" || typeof part === "boolean") return String(part);
    throw new BridgeHttpError(
      400,
      `ERR ${where}: element ${index} must be a string, number or boolean, got ${part === null ? "null" : typeof part}`,
    );
  });
  return parts as RedisCommand;
}

/**
 * Checks the body of `/pipeline` or `/multi-exec`: a non-empty JSON array of commands.
 *
 * @example [["SET","a","1"],["INCR","a"]]
 */
export function parseJsonCommandList(value: unknown, endpoint: string): RedisCommand[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new BridgeHttpError(
      400,
      `ERR the body of ${endpoint} must be a non-empty JSON array of commands, like [["SET","a","1"],["GET","a"]]`,
    );
  }
  return value.map((entry: unknown, index) => parseJsonCommand(entry, `command ${index + 1} of ${endpoint}`));
}

/** Parses a request body as JSON, with a 400 that says what is wrong instead of a parser stack trace. */
export function parseJsonBody(body: Buffer): unknown {
  if (body.length === 0) {
    throw new BridgeHttpError(400, "ERR empty request body; send a JSON array command");
  }
  try {
    return JSON.parse(body.toString("utf8"));
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new BridgeHttpError(400, `ERR malformed JSON body: ${detail}`);
  }
}

/**
 * Path style, as Upstash: `/set/greeting/hello` is `SET greeting hello`. Segments are URL-decoded; a POST body
 * is appended as the last argument, byte for byte, which is also the only way to send binary values.
 */
export function parsePathCommand(path: string, body: Buffer): RedisCommand {
  if (!path.startsWith("/")) throw unknownPath(path);
  const segments = path.slice(1).split("/");
  if (segments.length > 1 && segments[segments.length - 1] === "") segments.pop(); // trailing slash
  let decoded: string[];
  try {
    decoded = segments.map((segment) => decodeURIComponent(segment));
  } catch {
    throw new BridgeHttpError(400, `ERR path ${path} is not valid URL encoding`);
  }
  const [name, ...args] = decoded;
  if (!name) throw unknownPath(path);
  return body.length > 0 ? [name, ...args, body] : [name, ...args];
}

function unknownPath(path: string): BridgeHttpError {
  return new BridgeHttpError(
    404,
    `ERR unknown path ${path}; use POST /, /pipeline, /multi-exec or /<command>/<args>`,
  );
}
