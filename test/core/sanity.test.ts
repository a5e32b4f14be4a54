import { describe, expect, it } from "vitest";
import { createSanityCheck } from "../../src/core/index.js";
import { gateway } from "./helpers.js";

const SANITY_FAILED = {
  msg_type: "error",
  error: { code: "SanityCheckFailed", message: "Parameters sanity check failed." },
};

describe("sanity check (PROTOCOL 1.1.2)", () => {
  it("answers a bad top-level key with SanityCheckFailed and keeps echoing req_id", async () => {
    const { conn, send } = gateway();
    await send({ ping: 1, "bad key": 1, req_id: 9 });
    expect(conn.sent).toEqual([
      { ...SANITY_FAILED, req_id: 9, echo_req: { ping: 1, "bad key": 1, req_id: 9 } },
    ]);
  });

  const check = createSanityCheck();

  it.each([
    ["a key longer than 50 characters", { ["k".repeat(51)]: 1 }],
    ["a key with a dot", { "a.b": 1 }],
    ["a bad key of a nested object", { ping: { "no way": 1 } }],
    ["a bad top-level key holding an object", { "bad!": { a: 1 } }],
    ["a bad top-level key holding an array", { "bad!": [1] }],
    ["a bad top-level key holding an empty array", { "bad!": [] }],
    ["a value over 300 characters", { ping: "x".repeat(301) }],
    ["script-specific punctuation (Armenian full stop)", { ping: "a\u0589b" }],
    ["a Tibetan mark in a nested value", { ping: { note: "\u0F04" } }],
    ["a bad array element", { ticks: ["R_50", "bad\uE000"] }],
    ["an unassigned code point", { ping: "\u0378" }],
    ["a noncharacter", { ping: "\uFFFF" }],
    ["a lone surrogate", { ping: "\uD800" }],
  ])("fails %s", (_name, message) => {
    expect(check(message)).toBeDefined();
  });

  it.each([
    ["key of exactly 50 characters", { ["k".repeat(50)]: 1 }],
    ["value of exactly 300 characters", { ping: "x".repeat(300) }],
    ["300 astral characters (counted as code points)", { ping: "😀".repeat(300) }],
    ["printable ASCII", { ping: "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ azAZ09" }],
    ["letters of other scripts", { name: "Zoë Ωμέγα Кириллица 日本語 한국어 עברית العربية" }],
    ["combining marks (Devanagari, Thai, decomposed accents)", { name: "हिन्दी ภาษาไทย e\u0301" }],
    ["full-width Common-script characters", { address: "１−１−１　東京" }],
    ["whitespace", { text: "tab\tnew\nline" }],
    ["emoji with ZWJ and variation selectors", { text: "👨‍👩‍👧 ❤️ 👍🏽" }],
    ["control characters, which Unicode puts in the Common script (as in Perl)", { text: "a\u0000\u0007b" }],
    ["numbers, booleans and null", { a: 12.5, b: true, c: false, d: null, e: 0, f: "" }],
    ["deeper values, which are not inspected", { a: { b: { c: "\uE000" } }, d: [{ e: "\uE000" }] }],
  ])("passes %s", (_name, message) => {
    expect(check(message)).toBeUndefined();
  });

  it("skips the values of keys matching skipSanityCheck, one level down too, but not bad keys", () => {
    const skipping = createSanityCheck(/password/g);
    expect(skipping({ new_password: "\uE000" })).toBeUndefined();
    expect(skipping({ change: { old_password: "\uE001" } })).toBeUndefined();
    expect(skipping({ passwords: ["\uE001"] })).toBeUndefined();
    // twice, because a /g RegExp would alternate true/false if its state were kept
    expect(skipping({ new_password: "\uE000" })).toBeUndefined();
    expect(skipping({ "bad password": "x" })).toEqual({ key: "bad password", value: "x" });
    expect(skipping({ other: "\uE000" })).toEqual({ key: "other", value: "\uE000" });
  });

  it("can be turned off", async () => {
    const { conn, send } = gateway({ sanityCheck: false });
    await send({ ping: "\uE000" });
    expect(conn.sent[0]).toMatchObject({ msg_type: "ping" });
  });
});
