/**
 * Strict decoding of inbound text frames (PROTOCOL.md 1.1.1): UTF-8, Unicode NFC, one leading BOM stripped,
 * JSON, and the value must be an object. Keys named `__proto__` are dropped at any depth: `JSON.parse` makes them
 * own properties, and a service or hook that copies the frame with a merge helper (`target[key] = value`)
 * would then replace the target's prototype.
 */
import { clientError, type ErrorReply } from "./errors.js";
import { isJsonObject } from "./safe-object.js";
import type { ClientMessage } from "./types.js";

/** Why a frame could not be decoded; sent as `details.error_code` and passed to `onEncodingError`. */
export type DecodeErrorCode = "INVALID_UTF8" | "INVALID_JSON";

/** The outcome of {@link decodeFrame}. */
export type DecodeResult =
  | { ok: true; message: ClientMessage }
  /** `errorCode` is absent when the frame was valid JSON but not an object (array, string, number, `true`). */
  | { ok: false; reply: ErrorReply; errorCode?: DecodeErrorCode };

const BOM = "\uFEFF";

// `fatal` rejects invalid UTF-8 instead of inserting U+FFFD; `ignoreBOM` keeps the BOM in the output so
// that strings and bytes strip it in one place (stripBom) with the same "exactly one" rule.
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Decodes the bytes of a text frame as UTF-8; returns undefined when they are not valid UTF-8.
 * Workers hand text frames over as strings already; this is the path for runtimes that deliver bytes.
 */
export function decodeUtf8(bytes: ArrayBuffer | Uint8Array): string | undefined {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    // TextDecoder throws a TypeError on invalid input; that is the answer, not a failure.
    return undefined;
  }
}

/**
 * Decodes one text frame into a client message, or into the BadRequest reply the client gets:
 * invalid UTF-8 → `INVALID_UTF8`; invalid JSON or a falsy JSON value (`0`, `false`, `null`, `""`) →
 * `INVALID_JSON`; any other non-object value → BadRequest without details.
 * @example decodeFrame('{"ping":1}') // { ok: true, message: { ping: 1 } }
 */
export function decodeFrame(data: string | ArrayBuffer | Uint8Array): DecodeResult {
  const raw = typeof data === "string" ? data : decodeUtf8(data);
  if (raw === undefined) return invalid("INVALID_UTF8");
  // NFC, as the Perl proxy normalised every frame: "e" + U+0301 and "é" reach services as the same string,
  // so a login name or a search term matches whichever way the client's keyboard composed it. Written out
  // characters are normalised; a `\u` escape in the JSON is decoded as written.
  const text = raw.normalize("NFC");
  let value: unknown;
  try {
    const json = stripBom(text);
    value = mayHoldProtoKey(json) ? JSON.parse(json, dropProtoKeys) : JSON.parse(json);
  } catch {
    // A SyntaxError is the expected outcome for a malformed frame; the client is told, nothing is lost.
    return invalid("INVALID_JSON");
  }
  if (!value) return invalid("INVALID_JSON");
  if (!isJsonObject(value) || nestingExceeds(text, MAX_JSON_DEPTH)) {
    return { ok: false, reply: clientError("BadRequest") };
  }
  return { ok: true, message: value };
}

/**
 * The deepest nesting of objects and arrays a frame may have. JSON.parse copes with far more, but
 * everything after it (JSON.stringify of the call params, hooks walking the request) recurses, so a deeper
 * frame is refused up front with BadRequest instead of failing later as WrongResponse.
 */
export const MAX_JSON_DEPTH = 1000;

/** True when the (valid) JSON `text` nests objects and arrays deeper than `max`. */
function nestingExceeds(text: string, max: number): boolean {
  // Each level takes two characters at least, so short frames need no scan.
  if (text.length <= 2 * max) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i);
    if (inString) {
      if (char === 0x5c)
        i++; // backslash: skip the escaped character
      else if (char === 0x22) inString = false;
    } else if (char === 0x22) inString = true;
    else if (char === 0x7b || char === 0x5b) {
      if (++depth > max) return true;
    } else if (char === 0x7d || char === 0x5d) depth--;
  }
  return false;
}

/**
 * True when `json` may have a `__proto__` key: the name written out, or any `\u` escape (which can spell
 * it, `"\u005f_proto__"`). The reviver is only paid for such frames.
 */
function mayHoldProtoKey(json: string): boolean {
  return json.includes("__proto__") || json.includes("\\u");
}

/** A `JSON.parse` reviver: returning undefined deletes the property, so `__proto__` keys never appear. */
function dropProtoKeys(key: string, value: unknown): unknown {
  return key === "__proto__" ? undefined : value;
}

/** Removes exactly one leading byte order mark. */
export function stripBom(text: string): string {
  return text.startsWith(BOM) ? text.slice(BOM.length) : text;
}

/** The UTF-8 length of `text` in bytes, without encoding it (lone surrogates count 3, as TextEncoder's U+FFFD). */
export function utf8ByteLength(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && isLowSurrogate(text.charCodeAt(i + 1))) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

function isLowSurrogate(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}

function invalid(errorCode: DecodeErrorCode): DecodeResult {
  return { ok: false, errorCode, reply: clientError("BadRequest", "error", { error_code: errorCode }) };
}
