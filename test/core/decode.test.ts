import { describe, expect, it, vi } from "vitest";
import { decodeFrame, MAX_JSON_DEPTH, utf8ByteLength } from "../../src/core/index.js";
import { gateway } from "./helpers.js";

const BAD_REQUEST = { code: "BadRequest", message: "The application sent an invalid request." };

describe("inbound frame decoding (PROTOCOL 1.1.1)", () => {
  it("answers invalid JSON with BadRequest INVALID_JSON and keeps the connection open", async () => {
    const { conn, send } = gateway();
    await send('{"ping":');
    expect(conn.sent).toEqual([
      { msg_type: "error", error: { ...BAD_REQUEST, details: { error_code: "INVALID_JSON" } } },
    ]);
    expect(conn.isOpen).toBe(true);
    expect(conn.closed).toBeUndefined();
  });

  it("refuses nesting deeper than MAX_JSON_DEPTH with BadRequest, and accepts it at the limit", async () => {
    const { conn, send } = gateway();
    const nested = (depth: number) =>
      `{"ping":1,"req_id":7,"deep":${"[".repeat(depth - 1)}${"]".repeat(depth - 1)}}`;
    await send(nested(MAX_JSON_DEPTH + 1));
    expect(conn.sent).toEqual([{ msg_type: "error", error: BAD_REQUEST }]);
    await send(nested(MAX_JSON_DEPTH));
    expect(conn.sent[1]).toMatchObject({ msg_type: "ping", req_id: 7 });
    // Brackets inside strings (escaped quotes included) are text, not nesting.
    const brackets = "[".repeat(3 * MAX_JSON_DEPTH);
    expect(decodeFrame(`{"s":"\\"${brackets}"}`).ok).toBe(true);
  });

  it.each(["0", "false", "null", '""'])(
    "answers the falsy JSON value %s with INVALID_JSON",
    async (frame) => {
      const { conn, send } = gateway();
      await send(frame);
      expect(conn.sent).toEqual([
        { msg_type: "error", error: { ...BAD_REQUEST, details: { error_code: "INVALID_JSON" } } },
      ]);
    },
  );

  it("answers bytes that are not UTF-8 with BadRequest INVALID_UTF8", async () => {
    const { conn, dispatcher } = gateway();
    await dispatcher.handleFrame(conn, new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    expect(conn.sent).toEqual([
      { msg_type: "error", error: { ...BAD_REQUEST, details: { error_code: "INVALID_UTF8" } } },
    ]);
  });

  it.each(["[1,2]", '"ping"', "42", "true"])(
    "answers the non-object JSON %s with BadRequest, no details",
    async (frame) => {
      const { conn, send } = gateway();
      await send(frame);
      expect(conn.sent).toEqual([{ msg_type: "error", error: BAD_REQUEST }]);
    },
  );

  it("calls onEncodingError with the error code and the frame size", async () => {
    const onEncodingError = vi.fn();
    const { conn, send } = gateway({ onEncodingError });
    await send("{nope");
    expect(onEncodingError).toHaveBeenCalledWith(conn, { errorCode: "INVALID_JSON", bytes: 5 });
    expect(conn.sent).toHaveLength(1);
  });

  it("strips exactly one leading BOM, from strings and from bytes", async () => {
    const { conn, send, dispatcher } = gateway();
    await send('\uFEFF{"ping":1,"req_id":1}');
    const bytes = new TextEncoder().encode('\uFEFF{"ping":1,"req_id":2}');
    await dispatcher.handleFrame(conn, bytes, { binary: false });
    await send('\uFEFF\uFEFF{"ping":1,"req_id":3}');
    expect(conn.sent.map((reply) => [reply.req_id, reply.msg_type])).toEqual([
      [1, "ping"],
      [2, "ping"],
      [undefined, "error"],
    ]);
    expect(conn.sent[2]).toMatchObject({ error: { details: { error_code: "INVALID_JSON" } } });
  });

  it("decodes UTF-8 bytes of any script", () => {
    const result = decodeFrame(new TextEncoder().encode('{"name":"Zoë 日本 😀"}'));
    expect(result).toEqual({ ok: true, message: { name: "Zoë 日本 😀" } });
  });

  it("measures UTF-8 length like TextEncoder does", () => {
    for (const text of ["", "abc", "é", "日本", "😀x", "\uD800 lone", "a\uDC00"]) {
      expect(utf8ByteLength(text)).toBe(new TextEncoder().encode(text).byteLength);
    }
  });

  it.each([
    ["the 1-, 2- and 3-byte boundaries", "\u007F\u0080\u07FF\u0800\uFFFF"],
    ["the first and last surrogate pairs", "\uD800\uDC00\uDBFF\uDFFF"],
    ["a pair ending in the last low surrogate", "\uD800\uDFFF"],
    ["a high surrogate before the range of low ones", "\uD7FF\uDC00"],
    ["a high surrogate followed by another high one", "\uD800\uDBFF\uDC00"],
    ["a high surrogate followed by a character just past the low ones", "\uD800\uE000"],
    ["a 3-byte character followed by a low surrogate", "\u4E2D\uDC00"],
    ["two low surrogates", "\uDC00\uDC00"],
    ["a high surrogate followed by 2- and 3-byte characters", "\uD800é\uD800中"],
  ])("measures UTF-8 length like TextEncoder at %s", (_, text) => {
    expect(utf8ByteLength(text)).toBe(new TextEncoder().encode(text).byteLength);
  });

  it("accepts a long frame of many shallow objects (only nesting counts toward MAX_JSON_DEPTH)", () => {
    const many = Array.from({ length: 2 * MAX_JSON_DEPTH }, () => "{}").join(",");
    const both = Array.from({ length: MAX_JSON_DEPTH }, () => "[],{}").join(",");
    expect(decodeFrame(`{"ping":1,"list":[${many}]}`).ok).toBe(true);
    expect(decodeFrame(`{"ping":1,"list":[${both}]}`).ok).toBe(true);
  });
});
