/**
 * Wire shapes of the service side: the stream entry the gateway writes (PROTOCOL.md 3), the reply payload
 * the service sends back (PROTOCOL.md 4), and parsers for the Redis replies that carry entries.
 */

/** A stream entry as read: its id and its field/value pairs. */
export interface RawEntry {
  /** e.g. `1700000000000-0`. */
  id: string;
  /** Field/value pairs in stream order; `null` when the entry was deleted while pending. */
  fields: string[] | null;
}

/**
 * A validated request, from an entry like
 * `rpc ping who wsp:reply:abc:r1 deadline 1700000030 args {"args":{"ping":1}} stash [] req_log_context {"correlation_id":"u-1"} message_id 7`.
 */
export interface RpcEntry {
  method: string;
  who: string;
  messageId: string;
  /** Epoch seconds; `undefined` when the entry had no deadline. */
  deadlineSeconds: number | undefined;
  params: Record<string, unknown>;
  stashNames: string[];
  correlationId: string | undefined;
}

/** An entry that cannot be served; `who`/`messageId` are set when a reply can still be sent. */
export interface MalformedEntry {
  malformed: string;
  who?: string;
  messageId?: string;
  correlationId?: string;
}

/** The message sent to clients for a failed or unknown method; never the handler's own error text. */
export const INTERNAL_ERROR_MESSAGE = "Sorry, an error occurred while processing your request.";

/** The result sent when a handler threw or the method is unknown (PROTOCOL.md 5). */
export const INTERNAL_ERROR_RESULT = {
  error: { code: "InternalServerError", message_to_client: INTERNAL_ERROR_MESSAGE },
} as const;

/** Turns field/value pairs into an object; later duplicates win, as with Redis hashes. */
export function fieldsToObject(fields: string[]): Record<string, string> {
  const object: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) object[String(fields[i])] = String(fields[i + 1]);
  return object;
}

/** Validates an entry's fields: `rpc`, `who` and `message_id` are required, the JSON fields must decode. */
export function parseRpcEntry(fields: string[] | null): RpcEntry | MalformedEntry {
  if (!fields) return { malformed: "entry deleted" };
  const raw = fieldsToObject(fields);
  const who = raw.who || undefined;
  const messageId = raw.message_id || undefined;
  const logContext = decodeJson(raw.req_log_context);
  const correlationId = stringField(logContext, "correlation_id");
  const known = { who, messageId, correlationId };
  const missing = ["rpc", "who", "message_id"].filter((name) => !raw[name]);
  if (missing.length > 0) return { malformed: `malformed entry: missing ${missing.join(", ")}`, ...known };
  const params = raw.args === undefined ? {} : decodeJson(raw.args);
  if (!isObject(params)) return { malformed: "malformed entry: args is not a JSON object", ...known };
  const stash = raw.stash === undefined ? [] : decodeJson(raw.stash);
  if (!Array.isArray(stash)) return { malformed: "malformed entry: stash is not a JSON list", ...known };
  const deadlineSeconds =
    raw.deadline === undefined || raw.deadline === "" ? undefined : Number(raw.deadline);
  if (deadlineSeconds !== undefined && !Number.isFinite(deadlineSeconds)) {
    return { malformed: "malformed entry: deadline is not a number", ...known };
  }
  return {
    method: raw.rpc as string,
    who: who as string,
    messageId: messageId as string,
    deadlineSeconds,
    params,
    stashNames: stash.map(String),
    correlationId,
  };
}

/** Builds `{"message_id":"7","response":{"result":<result>,"timestamp":<epoch float>}}`. */
export function buildReplyPayload(messageId: string, result: unknown, nowMs = Date.now()): string {
  return JSON.stringify({
    message_id: messageId,
    response: { result: result ?? null, timestamp: nowMs / 1000 },
  });
}

/**
 * Parses an XREADGROUP reply: `null` or `[["general", [["1700000000000-0", ["rpc", "ping", ...]]]]]`.
 * Returns entries per stream.
 */
export function parseReadReply(reply: unknown): Array<{ stream: string; entries: RawEntry[] }> {
  if (!Array.isArray(reply)) return [];
  return reply.map((streamReply) => {
    const [stream, entries] = Array.isArray(streamReply) ? streamReply : [];
    return { stream: String(stream), entries: parseEntries(entries) };
  });
}

/** Parses an XCLAIM reply: `[["1700000000000-0", ["rpc", "ping", ...]]]`. */
export function parseClaimReply(reply: unknown): RawEntry[] {
  return parseEntries(reply);
}

/** One row of an extended XPENDING reply. */
export interface PendingRow {
  id: string;
  consumer: string;
  idleMs: number;
  deliveryCount: number;
}

/** Parses an extended XPENDING reply: `[["1700000000000-0", "host-123", 61250, 3]]`. */
export function parsePendingRows(reply: unknown): PendingRow[] {
  if (!Array.isArray(reply)) return [];
  return reply.flatMap((row): PendingRow[] =>
    Array.isArray(row) && typeof row[0] === "string"
      ? [{ id: row[0], consumer: String(row[1]), idleMs: Number(row[2]), deliveryCount: Number(row[3]) }]
      : [],
  );
}

function parseEntries(entries: unknown): RawEntry[] {
  if (!Array.isArray(entries)) return [];
  return entries.flatMap((entry): RawEntry[] => {
    // XCLAIM may list an entry deleted while pending as nil; there is nothing to process.
    if (!Array.isArray(entry) || typeof entry[0] !== "string") return [];
    return [{ id: entry[0], fields: Array.isArray(entry[1]) ? entry[1].map(String) : null }];
  });
}

function decodeJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return Symbol.for("invalid-json");
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stringField(value: unknown, key: string): string | undefined {
  return isObject(value) && typeof value[key] === "string" ? value[key] : undefined;
}
