/**
 * A handler that hangs cannot take the service down, and dead letters do not keep what they copy forever:
 * a handler still running past its deadline plus `handlerGraceMs` is abandoned (slot freed, entry
 * dead-lettered as `handler_timeout` and acked, late result dropped); `<stream>:dead` is bounded by age and
 * count; sensitive values are masked in it. Every test runs on both transports against a real redis-server.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ServiceHarness, TRANSPORTS, readDeadLetters, startTestRedis, type TestRedis } from "./helpers.js";
import { waitFor } from "../support/wait.js";

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis?.stop();
});

/** Calls of `command` Redis has run so far (`INFO commandstats`). */
async function callsOf(command: string): Promise<number> {
  const info = await redis.client.info("commandstats");
  return Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, "m").exec(info)?.[1] ?? 0);
}

/** Redis's `~` trimming frees whole macro nodes of up to 100 entries (https://redis.io/commands/XTRIM). */
const NODE_ENTRIES = 100;

describe.each(TRANSPORTS)("handler guard on the %s transport", (kind) => {
  let harness: ServiceHarness;
  beforeEach(() => {
    harness = new ServiceHarness(redis, kind);
  });
  afterEach(async () => {
    await harness.closeAll();
  });

  it("a hung handler that ignores ctx.signal frees its slot after deadline + grace, and the entry is dead-lettered as handler_timeout", async () => {
    let hangCalls = 0;
    const service = await harness.start({
      concurrency: 1,
      handlerGraceMs: 300,
      handlers: {
        hang: () => {
          hangCalls++;
          return new Promise(() => {});
        },
        ping: () => "pong",
      },
    });
    const { gateway } = harness;
    const stream = `${harness.streamPrefix}general`;
    const hung = await gateway.send(
      "hang",
      { hang: 1 },
      { deadlineSeconds: Math.ceil(Date.now() / 1000) + 1 },
    );
    await waitFor(() => service.inFlight === 1);
    const pings = [await gateway.send("ping"), await gateway.send("ping")];
    const replies = await gateway.replies(2, 10_000);
    expect(pings.map((id) => replies.get(id)?.response.result)).toEqual(["pong", "pong"]);
    expect(replies.has(hung)).toBe(false);
    const dead = await readDeadLetters(redis.client, stream);
    expect(dead).toEqual([
      expect.objectContaining({
        rpc: "hang",
        message_id: hung,
        reason: "handler_timeout",
        delivery_count: "1",
      }),
    ]);
    const [pending] = (await redis.client.xpending(stream, "processors")) as [number];
    expect(pending).toBe(0);
    expect(hangCalls).toBe(1);
    expect(harness.logs.some((log) => log.msg === "handler outlived its deadline; abandoned")).toBe(true);
  });

  it("drops the late result of an abandoned handler: no reply, ever", async () => {
    let finished = false;
    await harness.start({
      handlerGraceMs: 200,
      handlers: {
        late: async () => {
          await new Promise((resolve) => setTimeout(resolve, 2500));
          finished = true;
          return "too late";
        },
      },
    });
    const { gateway } = harness;
    const stream = `${harness.streamPrefix}general`;
    const id = await gateway.send("late", {}, { deadlineSeconds: Math.ceil(Date.now() / 1000) + 1 });
    await waitFor(async () => (await redis.client.xlen(`${stream}:dead`)) === 1, 5000);
    await waitFor(() => finished, 5000);
    // Give a second reply time to be sent, if one were.
    const replies = await gateway.replies(1, 1000);
    expect(replies.has(id)).toBe(false);
    expect(await redis.client.xlen(`${stream}:dead`)).toBe(1);
  });
});

describe.each(TRANSPORTS)("dead-letter bounds on the %s transport", (kind) => {
  let harness: ServiceHarness;
  beforeEach(() => {
    harness = new ServiceHarness(redis, kind);
  });
  afterEach(async () => {
    await harness.closeAll();
  });

  /** Dead-letters one malformed entry (no `rpc`) and waits until it is in `<stream>:dead`. */
  async function deadLetterOne(stream: string, marker: string): Promise<void> {
    await redis.client.xadd(stream, "*", "who", "wsp:reply:x", "args", "{}", "marker", marker);
    await waitFor(
      async () => (await readDeadLetters(redis.client, stream)).some((dead) => dead.marker === marker),
      5000,
    );
  }

  /** Adds `count` dead letters directly, with ids `<ms>-<n>` (`ms` undefined: now). */
  async function fillDeadLetters(stream: string, count: number, ms?: number): Promise<void> {
    const pipeline = redis.client.pipeline();
    for (let i = 0; i < count; i++) {
      pipeline.xadd(`${stream}:dead`, ms === undefined ? "*" : `${ms}-${i}`, "reason", "earlier");
    }
    await pipeline.exec();
  }

  it("sends the count bound (XTRIM) with a stream's first dead letter and then with every 100th, not with each", async () => {
    const stream = `${harness.streamPrefix}general`;
    await harness.start({ handlers: { ping: () => "pong" } });
    const trimsBefore = await callsOf("xtrim");
    const pipeline = redis.client.pipeline();
    for (let i = 0; i < 101; i++) pipeline.xadd(stream, "*", "who", "wsp:reply:x", "marker", String(i));
    await pipeline.exec();
    await waitFor(async () => (await redis.client.xlen(`${stream}:dead`)) === 101, 10_000);
    // The 1st and the 101st dead letter.
    expect((await callsOf("xtrim")) - trimsBefore).toBe(2);
  });

  it("sends no XTRIM for replies: only dead letters count towards the count bound", async () => {
    await harness.start({ handlers: { ping: () => "pong" } });
    const trimsBefore = await callsOf("xtrim");
    const ids = await Promise.all(Array.from({ length: 5 }, () => harness.gateway.send("ping")));
    const replies = await harness.gateway.replies(5);
    expect(ids.map((id) => replies.get(id)?.response.result)).toEqual(Array(5).fill("pong"));
    expect((await callsOf("xtrim")) - trimsBefore).toBe(0);
  });

  it("drops dead letters older than deadLetterMaxAgeSeconds when a dead letter is written", async () => {
    const stream = `${harness.streamPrefix}general`;
    await harness.start({ handlers: { ping: () => "pong" }, deadLetterMaxAgeSeconds: 3600 });
    // Three full nodes of dead letters written two hours ago.
    await fillDeadLetters(stream, 3 * NODE_ENTRIES, Date.now() - 2 * 3600 * 1000);
    await deadLetterOne(stream, "new");
    const left = await readDeadLetters(redis.client, stream);
    expect(left.length).toBeLessThanOrEqual(NODE_ENTRIES);
    expect(left.at(-1)?.marker).toBe("new");
  });

  it("keeps each dead-letter stream near deadLetterMaxLen", async () => {
    const stream = `${harness.streamPrefix}general`;
    await harness.start({ handlers: { ping: () => "pong" }, deadLetterMaxLen: NODE_ENTRIES });
    await fillDeadLetters(stream, 4 * NODE_ENTRIES);
    await deadLetterOne(stream, "new");
    const length = await redis.client.xlen(`${stream}:dead`);
    expect(length).toBeGreaterThanOrEqual(NODE_ENTRIES);
    expect(length).toBeLessThanOrEqual(2 * NODE_ENTRIES);
  });

  it("keeps dead letters when deadLetterMaxAgeSeconds reaches back before 1970 (a century)", async () => {
    const stream = `${harness.streamPrefix}general`;
    // The age bound would be a negative stream id, which Redis refuses: the oldest possible id is kept instead.
    await harness.start({ handlers: { ping: () => "pong" }, deadLetterMaxAgeSeconds: 100 * 365 * 24 * 3600 });
    await deadLetterOne(stream, "kept");
    expect((await readDeadLetters(redis.client, stream)).map((dead) => dead.marker)).toEqual(["kept"]);
  });

  it("masks an args that is not JSON whole: it cannot be inspected for secrets", async () => {
    const stream = `${harness.streamPrefix}general`;
    await harness.start({ handlers: { ping: () => "pong" } });
    await redis.client.xadd(stream, "*", "rpc", "login", "who", "wsp:reply:x", "args", '{"password":"p",');
    await waitFor(async () => (await redis.client.xlen(`${stream}:dead`)) === 1, 5000);
    const [dead] = await readDeadLetters(redis.client, stream);
    expect(dead).toMatchObject({ rpc: "login", args: "<not shown>" });
  });

  it("copies args unmasked, even when not JSON, when sensitiveFields is empty", async () => {
    const stream = `${harness.streamPrefix}general`;
    await harness.start({ handlers: { ping: () => "pong" }, sensitiveFields: [] });
    await redis.client.xadd(stream, "*", "rpc", "login", "who", "wsp:reply:x", "args", '{"password":"p",');
    await waitFor(async () => (await redis.client.xlen(`${stream}:dead`)) === 1, 5000);
    const [dead] = await readDeadLetters(redis.client, stream);
    expect(dead?.args).toBe('{"password":"p",');
  });

  it("masks sensitiveFields at any depth of args and the stash values in the dead letter", async () => {
    const stream = `${harness.streamPrefix}general`;
    await harness.start({ handlers: { ping: () => "pong" }, sensitiveFields: ["password", "token", "pin"] });
    const args = {
      args: {
        login: "a1",
        Password: "hunter2",
        nested: [{ deeper: { pin: 1234, keep: "me", none: null } }, 7],
      },
      token: "stash-secret",
      loginid: "CR1",
    };
    // No message_id: dead-lettered at once as malformed, with its fields copied.
    await redis.client.xadd(stream, "*", "rpc", "login", "who", "wsp:reply:x", "args", JSON.stringify(args));
    await waitFor(async () => (await redis.client.xlen(`${stream}:dead`)) === 1, 5000);
    const [dead] = await readDeadLetters(redis.client, stream);
    expect(JSON.parse(dead?.args ?? "null")).toEqual({
      args: {
        login: "a1",
        Password: "<not shown>",
        nested: [{ deeper: { pin: "<not shown>", keep: "me", none: null } }, 7],
      },
      token: "<not shown>",
      loginid: "CR1",
    });
    expect(dead).toMatchObject({ rpc: "login", who: "wsp:reply:x" });
  });
});
