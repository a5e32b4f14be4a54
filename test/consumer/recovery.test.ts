/**
 * Recovery: work a stuck consumer left behind is finished by another, poison entries end in the
 * dead-letter stream, a slow handler is not run twice, and a Redis restart loses no request written
 * while the service runs. Every test runs on both transports.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { handlers as exampleHandlers } from "../../examples/example-service.js";
import { createNativeTransport } from "../../src/consumer/native-transport.js";
import { reclaimRound } from "../../src/consumer/reclaimer.js";
import type { RawEntry } from "../../src/consumer/stream-replies.js";
import type { Subscription } from "../../src/consumer/index.js";
import { entryFields } from "../../src/wire/index.js";
import {
  ServiceHarness,
  TRANSPORTS,
  interceptedTransport,
  startTestRedis,
  type TestRedis,
  pendingEntries,
} from "./helpers.js";
import { waitFor } from "../support/wait.js";

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis?.stop();
});

describe.each(TRANSPORTS)("recovery on the %s transport", (kind) => {
  let harness: ServiceHarness;
  beforeEach(() => {
    harness = new ServiceHarness(redis, kind);
  });
  afterEach(async () => {
    await harness.closeAll();
  });

  it("an entry stuck in consumer A is completed by consumer B after claimIdleMs", async () => {
    const stuck = await harness.start({
      consumerName: "consumer-a",
      closeTimeoutMs: 0,
      handlers: { work: () => new Promise(() => {}) },
    });
    const id = await harness.gateway.send("work");
    await waitFor(() => stuck.inFlight === 1);
    let deliveryCount = 0;
    const startedAt = Date.now();
    await harness.start({
      consumerName: "consumer-b",
      handlers: {
        work: (_params, ctx) => {
          deliveryCount = ctx.deliveryCount;
          return "finished by b";
        },
      },
    });
    expect(await harness.gateway.resultOf(id, 3000)).toBe("finished by b");
    expect(deliveryCount).toBe(2);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(150);
    const [pending] = (await redis.client.xpending(`${harness.streamPrefix}general`, "processors")) as [
      number,
    ];
    expect(pending).toBe(0);
  });

  it("a handler slower than claimIdleMs is not run twice by its own service", async () => {
    let calls = 0;
    await harness.start({
      handlers: {
        slow: async () => {
          calls++;
          await new Promise((resolve) => setTimeout(resolve, 1000));
          return "once";
        },
      },
    });
    const id = await harness.gateway.send("slow");
    expect(await harness.gateway.resultOf(id, 3000)).toBe("once");
    expect(calls).toBe(1);
  });

  it("a poison entry reaches <stream>:dead with the reason after maxDeliveries, and is acked", async () => {
    const stream = `${harness.streamPrefix}general`;
    await redis.client.xgroup("CREATE", stream, "processors", "$", "MKSTREAM");
    const id = await harness.gateway.send("crash", { crash: 1 });
    // A consumer that "crashed" three times on this entry: read once, claimed twice more, never acked.
    const read = (await redis.client.xreadgroup(
      "GROUP",
      "processors",
      "crasher",
      "COUNT",
      "1",
      "STREAMS",
      stream,
      ">",
    )) as [[string, [[string, string[]]]]];
    const entryId = read[0][1][0][0];
    for (let i = 0; i < 2; i++) await redis.client.xclaim(stream, "processors", "crasher", 0, entryId);
    let calls = 0;
    await harness.start({ maxDeliveries: 3, handlers: { crash: () => ++calls, ping: () => "pong" } });
    await waitFor(async () => (await redis.client.xlen(`${stream}:dead`)) === 1, 3000);
    const [[, fields]] = (await redis.client.xrange(`${stream}:dead`, "-", "+")) as [[string, string[]]];
    const dead = Object.fromEntries(fields.flatMap((_, i) => (i % 2 ? [] : [[fields[i], fields[i + 1]]])));
    expect(dead).toMatchObject({
      rpc: "crash",
      message_id: id,
      who: harness.gateway.who,
      reason: "exceeded maxDeliveries (3)",
      delivery_count: "3",
      entry_id: entryId,
    });
    expect(JSON.parse(String(dead.args))).toEqual({ args: { crash: 1 } });
    expect(harness.logs).toContainEqual({
      level: "error",
      msg: "poison entry dead-lettered",
      stream,
      entry_id: entryId,
      delivery_count: 3,
    });
    expect(calls).toBe(0);
    const [pending] = (await redis.client.xpending(stream, "processors")) as [number];
    expect(pending).toBe(0);
    expect((await harness.gateway.replies(1, 300)).size).toBe(0);
  });

  it("an entry's last allowed delivery (the maxDeliveries-th) still runs its handler", async () => {
    const stream = `${harness.streamPrefix}general`;
    await redis.client.xgroup("CREATE", stream, "processors", "$", "MKSTREAM");
    const id = await harness.gateway.send("count");
    const read = (await redis.client.xreadgroup(
      "GROUP",
      "processors",
      "crasher",
      "COUNT",
      "1",
      "STREAMS",
      stream,
      ">",
    )) as [[string, [[string, string[]]]]];
    await redis.client.xclaim(stream, "processors", "crasher", 0, read[0][1][0][0]);
    await harness.start({ maxDeliveries: 3, handlers: { count: (_params, ctx) => ctx.deliveryCount } });
    expect(await harness.gateway.resultOf(id, 3000)).toBe(3);
    expect(await redis.client.exists(`${stream}:dead`)).toBe(0);
  });
});

describe("reclaim rounds", () => {
  it("take over every stalled entry page by page, at most 10 pages a round, except those this process still serves", async () => {
    const stream = `r${Date.now()}:general`;
    await redis.client.xgroup("CREATE", stream, "processors", "$", "MKSTREAM");
    const ids: string[] = [];
    for (let i = 0; i < 23; i++)
      ids.push((await redis.client.xadd(stream, "*", "rpc", "ping", "n", String(i))) as string);
    // Read under this consumer's name: two entries this process still serves, and one an earlier process
    // of the same name left behind. Then twenty a crashed consumer left behind.
    await redis.client.xreadgroup("GROUP", "processors", "me", "COUNT", "3", "STREAMS", stream, ">");
    await redis.client.xreadgroup("GROUP", "processors", "crashed", "COUNT", "20", "STREAMS", stream, ">");
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const native = createNativeTransport(redis.server.url);
    const pendingPages: string[] = [];
    const served: Array<[string, number]> = [];
    const context = {
      transport: {
        ...native,
        call: (command: Parameters<typeof native.call>[0]) => {
          if (command[0] === "XPENDING") pendingPages.push(command[5]);
          return native.call(command);
        },
      },
      streams: [stream],
      group: "processors",
      consumerName: "me",
      claimIdleMs: 1000,
      maxDeliveries: 5,
      // Two entries per XPENDING page: 23 pending entries take 12 pages.
      claimCount: 2,
      isHeld: (_stream: string, id: string) => id === ids[0] || id === ids[1],
      dispatch: async (_stream: string, entry: RawEntry, count: number) =>
        void served.push([entry.id, count]),
      deadLetter: () => {},
    };
    try {
      // The first round reads 10 pages (entries 0-19) and takes over 2-19; the next one the rest.
      expect(await reclaimRound(context)).toBe(18);
      expect(pendingPages).toHaveLength(10);
      pendingPages.length = 0;
      expect(await reclaimRound(context)).toBe(3);
      // Entries 0-1 (held), 20-21, then 22 alone: a short page ends the round without another XPENDING.
      expect(pendingPages).toEqual(["-", `(${ids[1]}`, `(${ids[21]}`]);
      expect(served).toEqual(ids.slice(2).map((id) => [id, 2]));
    } finally {
      await native.close();
    }
  });
});

describe("reply batches that fail", () => {
  it("close() gives up on unsent replies and acks, leaving their entries pending, and ends their subscriptions", async () => {
    const transport = interceptedTransport(redis.server.url, async () => {
      throw new Error("connection refused");
    });
    let calls = 0;
    let subscription: Subscription | undefined;
    const harness = new ServiceHarness(redis, "native");
    const service = await harness.start({
      redis: transport,
      closeTimeoutMs: 0,
      handlers: {
        ping: () => (++calls, "pong"),
        watch: (_, ctx) => ((subscription = ctx.subscribe()), "watching"),
      },
    });
    const { gateway } = harness;
    const stream = `${harness.streamPrefix}general`;
    await gateway.send("ping");
    await waitFor(() => harness.logs.some((log) => log.msg === "redis unavailable, retrying"));
    expect(harness.logs).toContainEqual(
      expect.objectContaining({ msg: "redis unavailable, retrying", operation: "reply batch" }),
    );
    // Behind the failing batch: a subscribing request, and one past its deadline (an ack alone).
    const watch = {
      method: "watch",
      who: gateway.who,
      deadline: Math.floor(Date.now() / 1000) + 30,
      args: { args: { watch: 1, subscribe: 1 } },
      connection: "http://127.0.0.1:9/connections/never-contacted",
    };
    await redis.client.xadd(stream, "*", ...entryFields(watch, "m-watch"));
    await gateway.send("ping", {}, { deadlineSeconds: Math.floor(Date.now() / 1000) - 5 });
    await waitFor(
      () => subscription !== undefined && harness.logs.some((log) => log.msg === "deadline passed, dropped"),
    );
    let closed = false;
    const closing = service.close().then(() => (closed = true));
    await waitFor(() => closed, 10_000);
    await closing;
    expect(await pendingEntries(redis.client, stream)).toBe(3);
    expect(await redis.client.exists(gateway.who)).toBe(0);
    expect(harness.logs).toContainEqual({
      level: "error",
      msg: "abandoned unsent replies on close",
      entries: 3,
    });
    expect(calls).toBe(1);
    // Its reply never reached the gateway: its pushes end (they do not wait for a reply that never comes).
    await expect(subscription?.push({ late: 1 })).rejects.toThrow("service closed");
    expect(subscription?.signal.aborted).toBe(true);
  });

  it.each([
    { closeTimeoutMs: 10_000, failures: 3 },
    // Replies get at least a second at close, whatever closeTimeoutMs says.
    { closeTimeoutMs: 0, failures: 1 },
  ])(
    "close() while a reply batch fails for a moment still sends it ($closeTimeoutMs ms, $failures more failures)",
    async ({ closeTimeoutMs, failures }) => {
      let closing = false;
      let failuresAfterClose = 0;
      const transport = interceptedTransport(redis.server.url, async (send) => {
        if (closing && failuresAfterClose >= failures) return send();
        if (closing) failuresAfterClose++;
        throw new Error("connection refused");
      });
      const harness = new ServiceHarness(redis, "native");
      const service = await harness.start({
        redis: transport,
        closeTimeoutMs,
        handlers: { ping: () => "pong" },
      });
      const id = await harness.gateway.send("ping");
      await waitFor(() => harness.logs.some((log) => log.msg === "redis unavailable, retrying"));
      closing = true;
      await service.close();
      expect(failuresAfterClose).toBe(failures);
      expect(await harness.gateway.resultOf(id)).toBe("pong");
      expect(await pendingEntries(redis.client, `${harness.streamPrefix}general`)).toBe(0);
    },
  );

  it("retries a failed round trip that carried a dead letter, and goes on answering", async () => {
    let failNext = true;
    const transport = interceptedTransport(redis.server.url, async (send) => {
      if (!failNext) return send();
      failNext = false;
      throw new Error("connection reset");
    });
    const harness = new ServiceHarness(redis, "native");
    try {
      await harness.start({ redis: transport, handlers: { ping: () => "pong" } });
      const stream = `${harness.streamPrefix}general`;
      // Malformed (no rpc): dead-lettered and acked, with no reply.
      await redis.client.xadd(stream, "*", "who", "wsp:reply:x", "marker", "first");
      await waitFor(async () => (await redis.client.xlen(`${stream}:dead`)) === 1);
      expect(failNext).toBe(false);
      expect(await harness.gateway.resultOf(await harness.gateway.send("ping"))).toBe("pong");
      await waitFor(async () => (await pendingEntries(redis.client, stream)) === 0);
    } finally {
      await harness.closeAll();
    }
  });
});

describe.each(TRANSPORTS)("redis restart on the %s transport", (kind) => {
  it("answers every request written before and after a restart, and logs the outage once", async () => {
    const harness = new ServiceHarness(redis, kind);
    try {
      await harness.start({ handlers: exampleHandlers });
      const before = await Promise.all(Array.from({ length: 5 }, () => harness.gateway.send("ping")));
      const beforeReplies = await harness.gateway.replies(5);
      expect(before.map((id) => beforeReplies.get(id)?.response.result)).toEqual(Array(5).fill("pong"));
      const inFlight = await harness.gateway.send("slow", { slow: 1, ms: 300 });
      await waitFor(
        async () => (await redis.client.xpending(`${harness.streamPrefix}general`, "processors"))[0] === 1,
      );
      await redis.server.restart();
      // Written while the service is still reconnecting: the stream is new and has no group yet.
      const after = await Promise.all(Array.from({ length: 5 }, () => harness.gateway.send("ping")));
      const replies = await harness.gateway.replies(6, 8000);
      expect(after.filter((id) => replies.get(id)?.response.result === "pong")).toHaveLength(5);
      expect(replies.get(inFlight)?.response.result).toEqual({ slept_ms: 300 });
      const later = await harness.gateway.send("echo", { echo: "still here" });
      expect(await harness.gateway.resultOf(later)).toEqual({ echo: "still here" });
      // Everything served after the restart was also acked: nothing is left for a reclaim to serve twice.
      await waitFor(
        async () => (await redis.client.xpending(`${harness.streamPrefix}general`, "processors"))[0] === 0,
      );
      expect(harness.logs.some((log) => log.msg === "consumer group was missing; re-created")).toBe(true);
      const outages = harness.logs.filter((log) => log.msg === "redis unavailable, retrying");
      expect(outages.length).toBeLessThanOrEqual(1);
    } finally {
      await harness.closeAll();
    }
  });
});
