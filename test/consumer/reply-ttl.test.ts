/**
 * The reply key's TTL: set once and refreshed in time rather than with every reply (Upstash bills per
 * command), and set again whenever a reply re-creates a key the gateway popped empty. Both transports.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  ServiceHarness,
  TRANSPORTS,
  interceptedTransport,
  startTestRedis,
  type TestRedis,
} from "./helpers.js";
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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(TRANSPORTS)("reply key TTL on the %s transport", (kind) => {
  let harness: ServiceHarness;
  afterEach(async () => {
    await harness.closeAll();
  });

  it("sets the TTL once for replies pushed one after another to a key still holding replies", async () => {
    harness = new ServiceHarness(redis, kind);
    await harness.start({ handlers: { ping: () => "pong" }, replyTtlSeconds: 60 });
    const { gateway } = harness;
    const expiresBefore = await callsOf("expire");
    for (let sent = 1; sent <= 10; sent++) {
      await gateway.send("ping");
      // One reply per batch: each waits until the previous one is in the list.
      await waitFor(async () => (await redis.client.llen(gateway.who)) === sent);
    }
    expect(await callsOf("expire")).toBe(expiresBefore + 1);
    const ttl = await redis.client.ttl(gateway.who);
    expect(ttl).toBeGreaterThan(50);
    expect(ttl).toBeLessThanOrEqual(60);
    expect((await gateway.replies(10)).size).toBe(10);
  });

  it("sets the TTL again on a key that was popped empty and re-created by the next reply", async () => {
    harness = new ServiceHarness(redis, kind);
    await harness.start({ handlers: { ping: () => "pong" }, replyTtlSeconds: 17 });
    const { gateway } = harness;
    for (let round = 0; round < 3; round++) {
      const messageId = await gateway.send("ping");
      await waitFor(async () => (await redis.client.llen(gateway.who)) === 1);
      // The EXPIRE for a re-created key may follow the RPUSH in the next round trip.
      await waitFor(async () => (await redis.client.ttl(gateway.who)) > 0);
      const ttl = await redis.client.ttl(gateway.who);
      expect(ttl).toBeGreaterThan(10);
      expect(ttl).toBeLessThanOrEqual(17);
      expect(await gateway.resultOf(messageId)).toBe("pong");
      expect(await redis.client.exists(gateway.who)).toBe(0);
    }
  });

  it("refreshes the TTL of a key that keeps holding replies once a third of it has passed", async () => {
    harness = new ServiceHarness(redis, kind);
    await harness.start({ handlers: { ping: () => "pong" }, replyTtlSeconds: 6 });
    const { gateway } = harness;
    await gateway.send("ping");
    await waitFor(async () => (await redis.client.llen(gateway.who)) === 1);
    // Past a third of the TTL (2 s), the next reply carries the EXPIRE; without it about 3 s would remain.
    await sleep(3000);
    await gateway.send("ping");
    await waitFor(async () => (await redis.client.llen(gateway.who)) === 2);
    await waitFor(async () => (await redis.client.pttl(gateway.who)) > 4500, 2000);
    expect((await gateway.replies(2)).size).toBe(2);
  });
});

describe("reply key TTL after a lost round trip", () => {
  it("sets the TTL when a batch ran but its answer was lost, and the retry found the key it had re-created", async () => {
    let loseNextAnswer = false;
    const transport = interceptedTransport(redis.server.url, async (send) => {
      const results = await send();
      if (!loseNextAnswer) return results;
      loseNextAnswer = false;
      throw new Error("connection reset after the batch ran");
    });
    const harness = new ServiceHarness(redis, "native");
    try {
      await harness.start({ redis: transport, handlers: { ping: () => "pong" }, replyTtlSeconds: 60 });
      const { gateway } = harness;
      expect(await gateway.resultOf(await gateway.send("ping"))).toBe("pong");
      expect(await redis.client.exists(gateway.who)).toBe(0);
      // The next reply re-creates the popped key; its EXPIRE is not due (sent moments ago), and the answer
      // that would show the key was re-created is lost: the retry pushes the reply again onto a list of one.
      loseNextAnswer = true;
      await gateway.send("ping");
      await waitFor(async () => (await redis.client.llen(gateway.who)) === 2);
      await waitFor(async () => (await redis.client.ttl(gateway.who)) > 0, 2000);
      expect(await redis.client.ttl(gateway.who)).toBeLessThanOrEqual(60);
    } finally {
      await harness.closeAll();
    }
  });
});
