/**
 * A reply as ioredis `callBuffer` returns it: bulk and status strings as raw bytes, integers as numbers, nil as
 * null, arrays nested, and (inside an EXEC reply only) an error per failed command.
 */
export type RedisReply = Buffer | string | number | null | Error | RedisReply[];

/** A reply as it goes into the JSON body: what Upstash REST sends. */
export type JsonReply = string | number | null | JsonReply[];

const OK = Buffer.from("OK");

/**
 * Turns a Redis reply into the JSON value of Upstash's `{"result": ...}`.
 *
 * Without base64, bytes are decoded as UTF-8 (invalid sequences become U+FFFD, as with Upstash). With
 * `Upstash-Encoding: base64`, every string is base64 except a top-level `OK`: `@upstash/redis` decodes a
 * top-level string unless it is exactly "OK", but decodes every string inside an array, so an `OK` inside an
 * array must be encoded too. A bulk string "OK" at the top level is therefore also sent as plain "OK"; both
 * read back as "OK". Integers stay numbers and nil stays null.
 *
 * @example encodeReply(Buffer.from("hi"), true) === "aGk="; encodeReply([Buffer.from("OK"), 1], true) → ["T0s=", 1]
 */
export function encodeReply(reply: RedisReply, base64: boolean): JsonReply {
  if (base64 && Buffer.isBuffer(reply) && reply.equals(OK)) return "OK";
  return encodeNested(reply, base64);
}

function encodeNested(reply: RedisReply, base64: boolean): JsonReply {
  if (reply === null || typeof reply === "number") return reply;
  if (Buffer.isBuffer(reply)) return base64 ? reply.toString("base64") : reply.toString("utf8");
  if (typeof reply === "string") return base64 ? Buffer.from(reply).toString("base64") : reply;
  if (Array.isArray(reply)) return reply.map((element) => encodeNested(element, base64));
  // Only EXEC nests errors, and the bridge unpacks EXEC itself; anything else is shown as its message.
  return reply.message;
}
