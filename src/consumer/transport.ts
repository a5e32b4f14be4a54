/**
 * The one seam between the service and Redis: the commands a backend service sends, and the two ways of
 * sending them (a native connection, see `native-transport.ts`, or Upstash REST, see `rest-transport.ts`).
 *
 * Commands are typed tuples so the interface declares exactly the Redis commands the service uses and a
 * fake transport in a test needs nothing else.
 */

/** `XGROUP CREATE <stream> <group> <id> MKSTREAM` (`$` at start-up, `0` when the group vanished). */
export type CreateGroupCommand = ["XGROUP", "CREATE", string, string, "$" | "0", "MKSTREAM"];

/**
 * `XREADGROUP GROUP <group> <consumer> COUNT <n> [BLOCK <ms>] STREAMS <stream>... >...`.
 * Reply: `null` or `[["general", [["1700000000000-0", ["rpc", "ping", "who", "..."]]]]]`.
 */
export type ReadGroupCommand = ["XREADGROUP", "GROUP", string, string, "COUNT", string, ...string[]];

/**
 * `XPENDING <stream> <group> IDLE <min-idle-ms> <start> <end> <count>`: entries pending too long.
 * Reply: `[["1700000000000-0", "host-123", 61250, 3]]` (id, consumer, idle ms, delivery count).
 */
export type PendingCommand = ["XPENDING", string, string, "IDLE", string, string, string, string];

/**
 * `XCLAIM <stream> <group> <consumer> <min-idle-ms> <id>...`: takes entries over (only those still idle).
 * Reply: `[["1700000000000-0", ["rpc", "ping", ...]]]`.
 */
export type ClaimCommand = ["XCLAIM", string, string, string, string, ...string[]];

/**
 * The write commands of a reply batch: replies, their TTL, dead letters (`XADD ... MINID ~` for the age
 * bound, `XTRIM ... MAXLEN ~` now and then for the count bound) and acks.
 */
export type WriteCommand =
  | ["RPUSH", string, ...string[]]
  | ["EXPIRE", string, string]
  | ["PUBLISH", string, string]
  | ["XADD", string, "MINID", "~", string, "*", ...string[]]
  | ["XTRIM", string, "MAXLEN", "~", string]
  | ["XACK", string, string, ...string[]];

/** Every command a backend service sends. */
export type ServiceCommand =
  CreateGroupCommand | ReadGroupCommand | PendingCommand | ClaimCommand | WriteCommand;

/** The result of one command of a pipeline: its reply, or the error Redis answered for it. */
export type PipelineResult = { result: unknown } | { error: Error };

/** How a backend service reaches Redis. */
export interface ServiceTransport {
  /** `native` (blocking reads) or `rest` (polled reads); used in logs. */
  readonly kind: "native" | "rest";
  /** Where it connects, without credentials, for logs. */
  readonly target: string;
  /** True when `XREADGROUP ... BLOCK` may be used; REST has no blocking commands. */
  readonly supportsBlockingReads: boolean;
  /** Runs a read. On a native connection it has its own connection, so a blocked read delays nothing else. */
  read(command: ReadGroupCommand): Promise<unknown>;
  /** Runs one command; rejects with the Redis error or a connection error. */
  call(command: CreateGroupCommand | PendingCommand | ClaimCommand): Promise<unknown>;
  /**
   * Runs the commands in order in one round trip. Rejects only when the round trip failed (nothing can be
   * assumed done); a command Redis refused comes back as `{ error }`.
   */
  pipeline(commands: WriteCommand[]): Promise<PipelineResult[]>;
  /** Ends a blocked read now (it rejects); later reads fail. Called first on close. */
  stopReading(): void;
  /** Releases connections. Idempotent. */
  close(): Promise<void>;
}

/** Redis answered with an error reply (`NOGROUP ...`, `BUSYGROUP ...`), as opposed to a connection failure. */
export class RedisReplyError extends Error {
  override readonly name = "RedisReplyError";
  constructor(
    message: string,
    /** The command that failed, e.g. `XREADGROUP`. */
    readonly command: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Redis refused the credentials (HTTP 401/403 over REST, NOAUTH/WRONGPASS natively); retrying cannot help. */
export class AuthenticationError extends Error {
  override readonly name = "AuthenticationError";
}

/** True for Redis's "the consumer group does not exist" error, whatever the transport. */
export function isNoGroupError(error: unknown): boolean {
  return error instanceof Error && error.message.includes("NOGROUP");
}

/** True for Redis's "the consumer group already exists" error. */
export function isBusyGroupError(error: unknown): boolean {
  return error instanceof Error && error.message.includes("BUSYGROUP");
}

/** Removes the password from a URL for logging. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString().replace(/\/$/, "");
  } catch {
    return "(invalid url)";
  }
}
