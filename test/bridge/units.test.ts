/** The bridge's pure rules: which commands are refused, and how replies are encoded. */
import { describe, expect, it } from "vitest";
import { parseJsonCommand, refusalReason, type RedisCommand } from "../../src/bridge/commands.js";
import { encodeReply } from "../../src/bridge/encoding.js";
import { resolveBridgeOptions } from "../../src/bridge/server.js";
import { SyncTokenClock } from "../../src/bridge/sync-token.js";

describe("refusalReason", () => {
  it.each<RedisCommand>([
    ["blpop", "q", "0"],
    ["BZMPOP", "1", "1", "z", "MIN"],
    ["xreadgroup", "GROUP", "g", "c", "Block", "0", "STREAMS", "s", ">"],
    ["psubscribe", "news.*"],
    ["hello", "3"],
    ["Exec"],
  ])("refuses %j", (...command) => {
    expect(refusalReason(command)).toMatch(new RegExp(`^ERR .*${command[0].toUpperCase()}`));
  });

  it.each<RedisCommand>([
    ["GET", "k"],
    ["XREADGROUP", "GROUP", "g", "c", "COUNT", "10", "STREAMS", "block", ">"],
    ["XADD", "s", "MAXLEN", "~", "100", "*", "f", "v"],
    ["EVAL", "return 1", "0"],
    ["PUBLISH", "ch", "m"],
  ])("allows %j", (...command) => {
    expect(refusalReason(command)).toBeUndefined();
  });
});

describe("parseJsonCommand", () => {
  it("turns numbers and booleans into their text, as @upstash/redis expects", () => {
    expect(parseJsonCommand(["SET", "k", 1.5, true], "the command")).toEqual(["SET", "k", "1.5", "true"]);
  });
});

describe("encodeReply", () => {
  const ok = Buffer.from("OK");
  it("decodes bytes as UTF-8 without base64", () => {
    expect(encodeReply([Buffer.from("é"), 3, null, [ok]], false)).toEqual(["é", 3, null, ["OK"]]);
  });
  it("base64-encodes every string except a top-level OK", () => {
    expect(encodeReply(ok, true)).toBe("OK");
    expect(encodeReply(Buffer.from("PONG"), true)).toBe("UE9ORw==");
    expect(encodeReply([ok, 7, null, [Buffer.from([0xff])]], true)).toEqual(["T0s=", 7, null, ["/w=="]]);
  });
});

describe("resolveBridgeOptions", () => {
  const valid = { redisUrl: "redis://127.0.0.1:6379", token: "t" };
  it("applies the documented defaults", () => {
    expect(resolveBridgeOptions(valid)).toEqual({
      ...valid,
      port: 0,
      host: "127.0.0.1",
      maxBodyBytes: 10 * 1024 * 1024,
      sseKeepAliveMs: 15_000,
      sseFraming: "upstash",
      maxCommandsPerRequest: 1_000,
      maxStreamsPerToken: 1_000,
      maxChannelsPerStream: 100,
      maxStreamBufferBytes: 1024 * 1024,
      latencyMs: 0,
    });
  });
  it.each([
    [{ token: "" }, /option `token` must be a non-empty string/],
    [{ redisUrl: "127.0.0.1:6379" }, /option `redisUrl` must be a redis:\/\/ or rediss:\/\/ URL/],
    [{ port: 70000 }, /option `port` must be an integer from 0 to 65535/],
    [{ maxBodyBytes: 0 }, /option `maxBodyBytes` must be a positive integer/],
    [{ sseKeepAliveMs: -1 }, /option `sseKeepAliveMs` must be a non-negative integer/],
    [{ maxCommandsPerRequest: 0 }, /option `maxCommandsPerRequest` must be a positive integer/],
    [{ maxStreamBufferBytes: 1.5 }, /option `maxStreamBufferBytes` must be a positive integer/],
    [{ sseFraming: "crlf" as "upstash" }, /option `sseFraming` must be one of upstash, blank-line/],
    [{ latencyMs: -1 }, /option `latencyMs` must be a non-negative integer/],
    [{ latencyMs: 2.5 }, /option `latencyMs` must be a non-negative integer/],
  ])("rejects %j, naming the option", (override, message) => {
    expect(() => resolveBridgeOptions({ ...valid, ...override })).toThrow(message);
  });
});

describe("SyncTokenClock", () => {
  it("starts from the clock in microseconds, so a restarted bridge stays above its predecessor", () => {
    const clock = new SyncTokenClock(() => 1_000);
    expect(clock.current).toBe("1000000");
    expect([clock.issue(), clock.issue()]).toEqual(["1000001", "1000002"]);
    expect(clock.current).toBe("1000002");
    expect(new SyncTokenClock(() => 1_001).current).toBe("1001000");
  });

  it("answers at once for a missing, foreign or reached token", async () => {
    const clock = new SyncTokenClock(() => 1_000);
    const started = Date.now();
    for (const token of [undefined, "", "not-a-number", "AZ9=", "999", clock.current]) {
      await clock.waitFor(token, 5_000);
    }
    // Six waits of up to 5 s each: at once means far below one of them (generous for a busy machine).
    expect(Date.now() - started).toBeLessThan(2_500);
  });

  it("holds a request whose token is ahead until the clock reaches it, or until the wait runs out", async () => {
    const clock = new SyncTokenClock(() => 1_000);
    let done = false;
    const waiting = clock.waitFor("1000002", 5_000).then(() => (done = true));
    clock.issue();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(done).toBe(false);
    clock.issue();
    await waiting;
    const started = Date.now();
    await clock.waitFor("9000000000", 50);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
  });
});
