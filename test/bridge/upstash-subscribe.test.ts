/**
 * Pub/sub as `@upstash/redis` itself uses it (`redis.subscribe`, `redis.psubscribe`), in both response
 * encodings: the client must see exactly what it sees against Upstash.
 */
import { randomUUID } from "node:crypto";
import { Redis as IORedis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startBridgeFixture, upstashClient, type BridgeFixture } from "./helpers.js";
import { waitFor } from "../support/wait.js";

let fixture: BridgeFixture;
let native: IORedis;
beforeAll(async () => {
  fixture = await startBridgeFixture();
  native = new IORedis(fixture.redis.url);
});
afterAll(async () => {
  native?.disconnect();
  await fixture?.stop();
});

const numsub = async (channel: string) => ((await native.pubsub("NUMSUB", channel)) as [string, number])[1];

/** Collects what a subscriber emits for one event type, so a test can wait for the n-th one. */
function collect<T>(on: (listener: (event: T) => void) => void) {
  const received: T[] = [];
  on((event) => received.push(event));
  return {
    received,
    async take(count: number): Promise<T[]> {
      await waitFor(() => received.length >= count);
      return received.slice(0, count);
    },
  };
}

describe.each(["base64", false] as const)(
  "@upstash/redis pub/sub, responseEncoding %s",
  (responseEncoding) => {
    const client = (automaticDeserialization = true) =>
      upstashClient(fixture.bridge, {
        responseEncoding,
        enableAutoPipelining: false,
        automaticDeserialization,
      });
    const channel = (name: string) => `upstash-sse:${responseEncoding}:${randomUUID()}:${name}`;

    it("subscribe() confirms, then delivers native and REST PUBLISH, JSON payloads deserialised", async () => {
      const redis = client();
      const ch = channel("ch");
      const subscriber = redis.subscribe<unknown>([ch]);
      const confirmations = collect<number>((listener) => subscriber.on("subscribe", listener));
      const messages = collect<{ channel: string; message: unknown }>((listener) =>
        subscriber.on("message", listener),
      );
      try {
        expect(await confirmations.take(1)).toEqual([1]);
        await native.publish(ch, "plain text, with a comma ünd 🎉");
        expect(await redis.publish(ch, { rpc: "ping", id: 7 })).toBe(1);
        expect(await messages.take(2)).toEqual([
          { channel: ch, message: "plain text, with a comma ünd 🎉" },
          { channel: ch, message: { rpc: "ping", id: 7 } },
        ]);
      } finally {
        await subscriber.unsubscribe();
      }
      await waitFor(async () => (await numsub(ch)) === 0);
    });

    it("automaticDeserialization: false delivers the payload as sent", async () => {
      const redis = client(false);
      const ch = channel("raw");
      const subscriber = redis.subscribe<string>([ch]);
      const confirmations = collect<number>((listener) => subscriber.on("subscribe", listener));
      const messages = collect<{ message: string }>((listener) => subscriber.on("message", listener));
      try {
        await confirmations.take(1);
        await redis.publish(ch, '{"stays":"text"}');
        expect((await messages.take(1))[0]?.message).toBe('{"stays":"text"}');
      } finally {
        await subscriber.unsubscribe();
      }
    });

    it("psubscribe() delivers pattern messages with the pattern and the channel", async () => {
      const redis = client();
      const prefix = channel("user");
      const subscriber = redis.psubscribe<unknown>([`${prefix}:*`]);
      const confirmations = collect<number>((listener) => subscriber.on("psubscribe", listener));
      const messages = collect<{ pattern: string; channel: string; message: unknown }>((listener) =>
        subscriber.on("pmessage", listener),
      );
      try {
        expect(await confirmations.take(1)).toEqual([1]);
        await redis.publish(`${prefix}:1`, { n: 1 });
        await redis.publish(channel("other"), { n: "not matched" });
        // Unlike "message", the client JSON-parses "pmessage" payloads without a fallback: send JSON.
        await native.publish(`${prefix}:2`, JSON.stringify("two"));
        expect(await messages.take(2)).toEqual([
          { pattern: `${prefix}:*`, channel: `${prefix}:1`, message: { n: 1 } },
          { pattern: `${prefix}:*`, channel: `${prefix}:2`, message: "two" },
        ]);
      } finally {
        await subscriber.unsubscribe();
      }
      await waitFor(async () => (await native.call("PUBSUB", "NUMPAT")) === 0);
    });

    it("two subscribers on one channel share one Redis subscription; one leaving does not break the other", async () => {
      const redis = client();
      const ch = channel("shared");
      const first = redis.subscribe<string>([ch]);
      const second = redis.subscribe<string>([ch]);
      const firstMessages = collect<{ message: string }>((listener) => first.on("message", listener));
      const secondMessages = collect<{ message: string }>((listener) => second.on("message", listener));
      const confirmed = collect<number>((listener) => {
        first.on("subscribe", listener);
        second.on("subscribe", listener);
      });
      try {
        expect(await confirmed.take(2)).toEqual([1, 1]);
        expect(await numsub(ch)).toBe(1);
        expect(await redis.publish(ch, "to both")).toBe(1); // one Redis subscriber: the bridge
        expect((await firstMessages.take(1))[0]?.message).toBe("to both");
        expect((await secondMessages.take(1))[0]?.message).toBe("to both");

        await first.unsubscribe();
        await redis.publish(ch, "to the second");
        expect((await secondMessages.take(2))[1]?.message).toBe("to the second");
        expect(firstMessages.received).toHaveLength(1);
        expect(await numsub(ch)).toBe(1);
      } finally {
        await Promise.all([first.unsubscribe(), second.unsubscribe()]);
      }
      await waitFor(async () => (await numsub(ch)) === 0);
    });

    it("unsubscribe([channel]) releases only that channel", async () => {
      const redis = client();
      const [kept, dropped] = [channel("kept"), channel("dropped")];
      const subscriber = redis.subscribe<string>([kept, dropped]);
      const confirmations = collect<number>((listener) => subscriber.on("subscribe", listener));
      try {
        await confirmations.take(2);
        expect([await numsub(kept), await numsub(dropped)]).toEqual([1, 1]);
        await subscriber.unsubscribe([dropped]);
        await waitFor(async () => (await numsub(dropped)) === 0);
        expect(await numsub(kept)).toBe(1);
      } finally {
        await subscriber.unsubscribe();
      }
      await waitFor(async () => (await numsub(kept)) === 0);
    });
  },
);
