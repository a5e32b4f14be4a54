/**
 * The request entry on a category stream (PROTOCOL.md 3): the gateway flattens it into `XADD` field/value
 * pairs, a service reads the pairs back with `XREADGROUP` and validates them. Every field name is exact and
 * shared with the Perl system.
 */
import { isJsonObject, type JsonObject } from "./json.js";

/** What the gateway puts into one request entry, before it is flattened into `XADD` field/value pairs. */
export interface StreamEntry {
  /** The RPC method (`rpc`). */
  method: string;
  /** The reply key of the calling object (`who`). */
  who: string;
  /** Epoch seconds after which the service drops the request unanswered (`deadline`). */
  deadline: number;
  /** The call parameters (`args`, JSON): `{args: <client message>, ...stash values, ...callParams}`. */
  args: JsonObject;
  /** Names of the stash values sent along (`stash`, JSON list); left out when empty. */
  stashParams?: string[];
  /** Correlation id for the service's logs (`req_log_context`); left out when absent. */
  correlationId?: string;
  /**
   * The push URL of the calling connection (`connection`), `<origin>/connections/<ref>`: a capability a
   * service uses to send the client more frames later. Left out when push is off; services written for the
   * Perl system ignore it.
   */
  connection?: string;
}

/**
 * Flattens an entry into the field/value list of `XADD`, in the order of PROTOCOL.md section 3:
 *
 * ```text
 * rpc ping who wsp:reply:obj:1f2e3d4c5b6a7980 deadline 1764170030 args {"args":{"ping":1},"loginid":"CR1"} stash ["loginid"] req_log_context {"correlation_id":"6f1c..."} message_id 7
 * ```
 *
 * `message_id <id>` comes last: appended here when `messageId` is given, else by the caller.
 */
export function entryFields(entry: StreamEntry, messageId?: string): string[] {
  const fields = [
    "rpc",
    entry.method,
    "who",
    entry.who,
    "deadline",
    String(entry.deadline),
    "args",
    JSON.stringify(entry.args),
  ];
  if (entry.stashParams && entry.stashParams.length > 0)
    fields.push("stash", JSON.stringify(entry.stashParams));
  if (entry.correlationId) {
    fields.push("req_log_context", JSON.stringify({ correlation_id: entry.correlationId }));
  }
  if (entry.connection) fields.push("connection", entry.connection);
  if (messageId !== undefined) fields.push("message_id", messageId);
  return fields;
}

/** A request as a service reads it from an entry, validated. */
export interface RpcEntry {
  method: string;
  who: string;
  /** Always a string, compared as a string. */
  messageId: string;
  /** Epoch seconds; `undefined` when the entry had no deadline. */
  deadlineSeconds: number | undefined;
  params: Record<string, unknown>;
  stashNames: string[];
  correlationId: string | undefined;
  /** The push URL of the calling connection; undefined when the entry has none. */
  connection: string | undefined;
}

/** An entry that cannot be served; `who`/`messageId` are set when a reply can still be sent. */
export interface MalformedEntry {
  malformed: string;
  who?: string;
  messageId?: string;
  correlationId?: string;
}

/** Turns field/value pairs into an object; later duplicates win, as with Redis hashes. */
export function fieldsToObject(fields: string[]): Record<string, string> {
  const object: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) object[String(fields[i])] = String(fields[i + 1]);
  return object;
}

/**
 * Validates an entry's field/value pairs as {@link entryFields} writes them (`null` for an entry deleted
 * while pending): `rpc`, `who` and `message_id` are required, `args`, `stash` and `req_log_context` must
 * decode as JSON.
 */
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
  if (!isJsonObject(params)) return { malformed: "malformed entry: args is not a JSON object", ...known };
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
    connection: raw.connection || undefined,
  };
}

function decodeJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    // An undecodable field is reported by the caller as a malformed entry, not thrown.
    return Symbol.for("invalid-json");
  }
}

function stringField(value: unknown, key: string): string | undefined {
  return isJsonObject(value) && typeof value[key] === "string" ? value[key] : undefined;
}
