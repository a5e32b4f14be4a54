/**
 * Parsers for the Redis replies that carry stream entries to a service (`XREADGROUP`, `XCLAIM`,
 * `XPENDING`). The entry's own fields are validated by the wire module's `parseRpcEntry`.
 */

/** A stream entry as read: its id and its field/value pairs. */
export interface RawEntry {
  /** e.g. `1700000000000-0`. */
  id: string;
  /** Field/value pairs in stream order; `null` when the entry was deleted while pending. */
  fields: string[] | null;
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
