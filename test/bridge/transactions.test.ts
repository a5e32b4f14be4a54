/** Transactions stay atomic while other requests and other Redis clients hammer the same keys. */
import { randomUUID } from "node:crypto";
import { Redis as IORedis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startBridgeFixture, upstashClient, type BridgeFixture } from "./helpers.js";

let fixture: BridgeFixture;
let direct: IORedis;
beforeAll(async () => {
  fixture = await startBridgeFixture();
  direct = new IORedis(fixture.redis.url);
});
afterAll(async () => {
  direct?.disconnect();
  await fixture?.stop();
});

it("MULTI/EXEC never interleaves with concurrent plain commands, pipelines or other clients", async () => {
  const counter = `tx:${randomUUID()}`;
  const increments = 5;
  const transactionBody = JSON.stringify(Array.from({ length: increments }, () => ["INCR", counter]));
  const transaction = async (): Promise<number[]> => {
    const { status, body } = await fixture.http("/multi-exec", { method: "POST", body: transactionBody });
    expect(status).toBe(200);
    return (body as { result: number }[]).map((entry) => entry.result);
  };
  const redis = upstashClient(fixture.bridge, {
    responseEncoding: false,
    enableAutoPipelining: true,
    automaticDeserialization: true,
  });

  const transactions: Promise<number[]>[] = [];
  const noise: Promise<unknown>[] = [];
  for (let round = 0; round < 40; round++) {
    transactions.push(transaction());
    noise.push(redis.incr(counter)); // plain commands, batched into /pipeline by auto-pipelining
    noise.push(fixture.http(`/incr/${counter}`)); // plain commands on / path style
    noise.push(direct.pipeline().incr(counter).incr(counter).incr(counter).exec()); // another Redis client
  }
  const results = await Promise.all(transactions);
  await Promise.all(noise);

  for (const values of results) {
    // Atomic: each transaction saw its own increments back to back, nothing from anybody else in between.
    expect(values).toEqual(Array.from({ length: increments }, (_, i) => values[0]! + i));
  }
  // Every increment happened exactly once: 40 × (5 in the transaction + 1 + 1 + 3).
  expect(Number(await direct.get(counter))).toBe(40 * (increments + 5));
});

it("a transaction's commands do not leak into the shared connection when it aborts", async () => {
  const k = `tx:${randomUUID()}`;
  const aborted = await fixture.http("/multi-exec", {
    method: "POST",
    body: JSON.stringify([["SET", k, "1"], ["GET"]]),
  });
  expect(aborted.status).toBe(400);
  // The next plain command runs normally, and is not queued into a leftover MULTI.
  expect(await fixture.http(`/set/${k}/2`)).toMatchObject({ status: 200, body: { result: "OK" } });
  expect(await direct.get(k)).toBe("2");
});
