import { ReplyError } from "ioredis";

/**
 * An error the bridge answers with a fixed HTTP status and an Upstash-shaped body `{"error": message}`.
 * Request handlers throw it; the server turns it into the response in one place.
 *
 * @example throw new BridgeHttpError(405, "ERR method PUT not allowed", { allow: "GET, POST" })
 */
export class BridgeHttpError extends Error {
  override readonly name = "BridgeHttpError";

  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** True for an error reply sent by redis-server itself (`-ERR ...`, `-WRONGTYPE ...`), as opposed to a transport failure. */
export function isRedisReplyError(error: unknown): error is Error {
  return error instanceof (ReplyError as new () => Error);
}

/** The error message of anything thrown, for logs and error bodies. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
