/**
 * Category routing end to end: the example deployment with queue separation on
 * (`QUEUE_SEPARATION_ENABLED=1`, `CATEGORY_TIMEOUT_CONFIG=general:5,slow:2`), one service per
 * category stream. The deadline is in whole seconds (as the Perl proxy wrote it), so a 1 s category could
 * leave a request almost no time; 2 s leaves at least one.
 */
import { describe, expect, it } from "vitest";
import { connect, E2E_SERVICE_MODULE, readStream, useE2eStack } from "./helpers.js";

const e2e = useE2eStack({
  service: [
    { args: ["--module", E2E_SERVICE_MODULE, "--category", "general"] },
    { args: ["--module", E2E_SERVICE_MODULE, "--category", "slow"] },
  ],
  worker: "example",
  vars: { QUEUE_SEPARATION_ENABLED: "1", CATEGORY_TIMEOUT_CONFIG: "general:5,slow:2" },
});

describe("category routing", () => {
  it("sends each action to its category's stream, with that category's deadline", async () => {
    const client = await connect(e2e.worker.wsUrl);
    expect(await client.call({ ping: 1 })).toMatchObject({ ping: "pong" });
    const before = Math.floor(Date.now() / 1000);
    expect(await client.call({ slow: 1, ms: 100 })).toMatchObject({ slow: { slept_ms: 100 } });

    const general = await readStream(e2e.redis, "general");
    const slow = await readStream(e2e.redis, "slow");
    expect(general.map((entry) => entry.rpc)).toEqual(["ping"]);
    expect(slow.map((entry) => entry.rpc)).toEqual(["slow"]);
    const deadline = Number(slow[0]?.deadline);
    expect(deadline).toBeGreaterThanOrEqual(before + 2);
    expect(deadline).toBeLessThanOrEqual(before + 3);
    await client.close();
  });

  it("takes the category from the action, never from the frame", async () => {
    const client = await connect(e2e.worker.wsUrl);
    const generalBefore = (await readStream(e2e.redis, "general")).length;
    const slowBefore = (await readStream(e2e.redis, "slow")).length;
    // `ping` is an action of category general; the frame asks for another stream, a known one and an unknown one.
    expect(await client.call({ ping: 1, category: "slow", req_id: 1 })).toMatchObject({
      ping: "pong",
      req_id: 1,
    });
    expect(await client.call({ ping: 1, category: "no-such-category", req_id: 2 })).toMatchObject({
      ping: "pong",
      req_id: 2,
    });

    const general = (await readStream(e2e.redis, "general")).slice(generalBefore);
    expect(general.map((entry) => [entry.rpc, JSON.parse(entry.args ?? "{}").args?.category])).toEqual([
      ["ping", "slow"],
      ["ping", "no-such-category"],
    ]);
    expect(await readStream(e2e.redis, "slow")).toHaveLength(slowBefore);
    expect(await e2e.redis.exists("no-such-category")).toBe(0);
    await client.close();
  });

  it("waits for a reply as long as the category's timeout, not the default one", async () => {
    const client = await connect(e2e.worker.wsUrl);
    // No consumer on `slow` any more: the call waits out the category's 2 s, not general's 5 s.
    await e2e.stack.services[1]?.stop();
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
