/**
 * Category routing end to end: the example deployment with queue separation on
 * (`QUEUE_SEPARATION_ENABLED=1`, `CATEGORY_TIMEOUT_CONFIG=general:5,slow:2`), one service per
 * category stream. The deadline is in whole seconds (as the Perl proxy wrote it), so a 1 s category could
 * leave a request almost no time; 2 s leaves at least one.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, type Stack } from "../../src/devstack/stack.js";
import { connect, E2E_SERVICE_MODULE, readStream, stackLog } from "./helpers.js";

let stack: Stack;
let redis: Redis;

beforeAll(async () => {
  stack = await startStack({
    service: [
      { args: ["--module", E2E_SERVICE_MODULE, "--category", "general"] },
      { args: ["--module", E2E_SERVICE_MODULE, "--category", "slow"] },
    ],
    worker: { vars: { QUEUE_SEPARATION_ENABLED: "1", CATEGORY_TIMEOUT_CONFIG: "general:5,slow:2" } },
    log: stackLog,
  });
  redis = new Redis(stack.redis.url);
}, 120_000);

afterAll(async () => {
  redis?.disconnect();
  await stack?.stop();
});

describe("category routing", () => {
  it("sends each action to its category's stream, with that category's deadline", async () => {
    const client = await connect(stack.worker?.wsUrl ?? "");
    expect(await client.call({ ping: 1 })).toMatchObject({ ping: "pong" });
    const before = Math.floor(Date.now() / 1000);
    expect(await client.call({ slow: 1, ms: 100 })).toMatchObject({ slow: { slept_ms: 100 } });

    const general = await readStream(redis, "general");
    const slow = await readStream(redis, "slow");
    expect(general.map((entry) => entry.rpc)).toEqual(["ping"]);
    expect(slow.map((entry) => entry.rpc)).toEqual(["slow"]);
    const deadline = Number(slow[0]?.deadline);
    expect(deadline).toBeGreaterThanOrEqual(before + 2);
    expect(deadline).toBeLessThanOrEqual(before + 3);
    await client.close();
  });

  it("takes the category from the action, never from the frame", async () => {
    const client = await connect(stack.worker?.wsUrl ?? "");
    const generalBefore = (await readStream(redis, "general")).length;
    const slowBefore = (await readStream(redis, "slow")).length;
    // `ping` is an action of category general; the frame asks for another stream, a known one and an unknown one.
    expect(await client.call({ ping: 1, category: "slow", req_id: 1 })).toMatchObject({
      ping: "pong",
      req_id: 1,
    });
    expect(await client.call({ ping: 1, category: "no-such-category", req_id: 2 })).toMatchObject({
      ping: "pong",
      req_id: 2,
    });

    const general = (await readStream(redis, "general")).slice(generalBefore);
    expect(general.map((entry) => [entry.rpc, JSON.parse(entry.args ?? "{}").args?.category])).toEqual([
      ["ping", "slow"],
      ["ping", "no-such-category"],
    ]);
    expect(await readStream(redis, "slow")).toHaveLength(slowBefore);
    expect(await redis.exists("no-such-category")).toBe(0);
    await client.close();
  });

  it("waits for a reply as long as the category's timeout, not the default one", async () => {
    const client = await connect(stack.worker?.wsUrl ?? "");
    // No consumer on `slow` any more: the call waits out the category's 2 s, not general's 5 s.
    await stack.services[1]?.stop();
    const started = Date.now();
    expect(await client.call({ slow: 1, ms: 10 }, 8000)).toMatchObject({
      msg_type: "slow",
      error: { code: "WrongResponse" },
    });
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(1_900);
    expect(waited).toBeLessThan(4500); // general's wait is 5 s and more; generous for a busy machine
    expect(await client.call({ ping: 1 })).toMatchObject({ ping: "pong" });
    await client.close();
  });
});
