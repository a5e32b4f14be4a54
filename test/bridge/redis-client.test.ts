/**
 * The gateway's REST client helpers (src/backends/redis-client.ts): the base64 decoding of Upstash
 * responses, which must read back exactly what a service wrote (any text, and bytes that are not UTF-8 as
 * U+FFFD, as `@upstash/redis` reads them), and the timeout signals shared by the requests of a short window.
 * The same client against the bridge: test/bridge/gateway-backend.test.ts.
 */
import { describe, expect, it } from "vitest";
import { decodeBase64Result, timeoutSignals } from "../../src/backends/redis-client.js";
import { waitFor } from "../support/wait.js";

const b64 = (text: string | Buffer) => Buffer.from(text).toString("base64");

describe("decodeBase64Result (Upstash-Encoding: base64)", () => {
  it("reads back ASCII and UTF-8 text byte for byte", () => {
    const text = 'héllo ✓ 😀 \u0000 "quoted" \\ end';
    expect(decodeBase64Result(b64('{"message_id":"1f"}'))).toBe('{"message_id":"1f"}');
    expect(decodeBase64Result(b64(text))).toBe(text);
    expect(decodeBase64Result([b64("plain"), b64(text), null])).toEqual(["plain", text, null]);
  });

  it("reads bytes that are not UTF-8 as U+FFFD, alone, leaving the other replies of a batch intact", () => {
    const broken = Buffer.from([0x7b, 0xff, 0xfe, 0x7d]);
    expect(decodeBase64Result([b64(broken), b64("fine")])).toEqual(["{\uFFFD\uFFFD}", "fine"]);
  });

  it("keeps numbers, null, a top-level OK and a string that is not base64 as they came; decodes nested arrays", () => {
    expect(decodeBase64Result(42)).toBe(42);
    expect(decodeBase64Result(null)).toBeNull();
    expect(decodeBase64Result(undefined)).toBeUndefined();
    expect(decodeBase64Result("OK")).toBe("OK");
    expect(decodeBase64Result("not base64!")).toBe("not base64!");
    expect(decodeBase64Result([[b64("1764410000000-0"), [b64("rpc"), b64("ping")]], 7])).toEqual([
      ["1764410000000-0", ["rpc", "ping"]],
      7,
    ]);
  });
});

describe("timeoutSignals", () => {
  it("shares one signal among the requests of a window and starts a new one after it", () => {
    let now = 1_000;
    const next = timeoutSignals(5_000, () => now);
    const first = next();
    now += 99;
    expect(next()).toBe(first);
    now += 1;
    const second = next();
    expect(second).not.toBe(first);
    expect(first.aborted).toBe(false);
  });

  it("aborts a request no sooner than its timeout, with a TimeoutError", async () => {
    const started = Date.now();
    const signal = timeoutSignals(200)();
    await waitFor(() => signal.aborted, 10_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect((signal.reason as Error).name).toBe("TimeoutError");
  });
});
