/**
 * What goes into `<stream>:dead`: a copy of the entry's fields with sensitive values masked, and the
 * bounds that keep the dead-letter stream from holding those copies forever.
 *
 * One XADD takes either `MAXLEN` or `MINID`, not both (https://redis.io/commands/XADD, "MAXLEN | MINID";
 * Upstash runs both, https://upstash.com/docs/redis/sdks/ts/commands/stream/xtrim). The age bound rides on
 * every dead-letter XADD (`MINID ~ <now - max age>`), the count bound on an `XTRIM MAXLEN ~` sent now and
 * then: dead letters are rare, and Upstash bills per command.
 */

/** What replaces a sensitive value in a dead letter. */
export const MASKED_VALUE = "<not shown>";

/** A dead-letter stream gets an `XTRIM MAXLEN ~` with its first dead letter and then every this many. */
export const DEAD_LETTERS_PER_COUNT_TRIM = 100;

/**
 * Masks the values of `sensitiveFields` (case-insensitive key names, any depth) in the `args` field of
 * an entry's field/value pairs. An `args` that is not JSON cannot be inspected, so it is masked whole.
 */
export function maskSensitiveFields(fields: string[], sensitiveFields: string[]): string[] {
  if (sensitiveFields.length === 0) return fields;
  const sensitive = new Set(sensitiveFields.map((name) => name.toLowerCase()));
  return fields.map((value, index) => {
    if (index % 2 === 0 || fields[index - 1] !== "args") return value;
    try {
      return JSON.stringify(maskValue(JSON.parse(value), sensitive));
    } catch {
      // Undecodable (a malformed entry): whatever it holds may be a secret.
      return MASKED_VALUE;
    }
  });
}

function maskValue(value: unknown, sensitive: Set<string>): unknown {
  if (Array.isArray(value)) return value.map((item) => maskValue(item, sensitive));
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, inner]) => [
      key,
      sensitive.has(key.toLowerCase()) ? MASKED_VALUE : maskValue(inner, sensitive),
    ]),
  );
}

/** The `MINID` threshold for dead letters written now: entries older than the max age are dropped. */
export function deadLetterMinId(nowMs: number, maxAgeSeconds: number): string {
  return String(Math.max(0, nowMs - maxAgeSeconds * 1000));
}
