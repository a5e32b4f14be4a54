/** The JSON helpers the wire shapes share. */

/** A decoded JSON object (`{"ping":1}`). */
export type JsonObject = { [key: string]: unknown };

/** True for a plain JSON object: not `null`, not an array. */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
