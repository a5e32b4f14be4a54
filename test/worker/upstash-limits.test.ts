/**
 * Upstash's 10 MB per response: one `LPOP` batch of replies must fit in it, whatever `pollBatchSize` says,
 * given the gateway's `maxResponseBytes`.
 */
import { describe, expect, it } from "vitest";
import {
  ConsumerGroupsBackend,
  resolveConsumerGroupsOptions,
  type RedisCommands,
} from "../../src/backends/index.js";
import type { Connection } from "../../src/core/types.js";
import { buildBackends, gatewayPlan } from "../../src/worker/plan.js";
import { FakeRedis, replyPayload } from "./fake-redis.js";
import { pingRequest } from "./helpers.js";

const conn = { id: "conn-1" } as Connection;
const TEN_MB = 10_000_000;

/** A Redis that records the size of every `LPOP` response as it would travel in the REST reply. */
function measuredRedis(redis: FakeRedis): { client: RedisCommands; lpopBytes: number[] } {
  const lpopBytes: number[] = [];
  const client: RedisCommands = {
    async exec<T>(command: [string, ...(string | number)[]]): Promise<T> {
      const result = await redis.exec<T>(command);
      if (command[0] === "LPOP") lpopBytes.push(JSON.stringify({ result }).length);
      return result;
    },
  };
  return { client, lpopBytes };
}

describe("LPOP batches within Upstash's 10 MB response", () => {
  it("never pops more replies than fit in one response, even with a large pollBatchSize", async () => {
    const redis = new FakeRedis();
    const { client, lpopBytes } = measuredRedis(redis);
    const warnings: string[] = [];
    const backend = new ConsumerGroupsBackend({
      redis: client,
      objectId: "batch",
      pollBatchSize: 100,
      maxResponseBytes: 500_000,
      logger: { warn: (message) => warnings.push(message), error: () => undefined },
    });
    // 30 replies of ~450 KB each (13.5 MB in all), all queued before the poll that takes them.
    const calls = Array.from({ length: 30 }, (_, i) =>
      backend.call(pingRequest({ correlationId: `c-${i}` }), { args: { ping: 1 } }, conn),
    );
    while (redis.entries.length < 30) await new Promise((resolve) => setTimeout(resolve, 1));
    const big = "x".repeat(450_000);
    for (const entry of redis.entries) {
      redis.push(entry.fields.who ?? "", replyPayload(entry.fields.message_id ?? "", big));
    }
    const responses = await Promise.all(calls);
    expect(responses).toHaveLength(30);
    expect(Math.max(...lpopBytes)).toBeLessThanOrEqual(TEN_MB);
    expect(warnings.join("\n")).toMatch(/`pollBatchSize` 100 lowered to 16.*`maxResponseBytes` 500000/);
    backend.close();
  });

  it("bounds the default batch by the gateway's maxResponseBytes, passed in by createGateway", () => {
    expect(resolveConsumerGroupsOptions({ redis: new FakeRedis() }).pollBatchSize).toBe(13);
    const backends = (maxResponseBytes?: number) =>
      buildBackends(
        gatewayPlan(
          {
            actions: [["ping"]],
            maxResponseBytes,
            backends: { default: { type: "consumer_groups", redis: new FakeRedis() } },
          },
          {},
        ),
        "object-1",
      ).default as ConsumerGroupsBackend;
    expect(backends().options.pollBatchSize).toBe(13);
    expect(backends(100_000).options.pollBatchSize).toBe(80);
    expect(backends(20_000_000).options.pollBatchSize).toBe(1);
  });
});
