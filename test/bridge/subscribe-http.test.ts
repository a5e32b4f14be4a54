/**
 * `/subscribe` and `/psubscribe` over plain HTTP: the exact server-sent-event framing, one shared Redis
 * subscription per channel, and teardown when clients, Redis or the bridge go away.
 */
import { randomUUID } from "node:crypto";
import { Redis as IORedis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openEventStream } from "./event-stream-reader.js";
import { startBridgeFixture, TOKEN, type BridgeFixture } from "./helpers.js";
import { waitFor } from "../support/wait.js";

let fixture: BridgeFixture;
let publisher: IORedis;
beforeAll(async () => {
  fixture = await startBridgeFixture();
  publisher = new IORedis(fixture.redis.url);
});
afterAll(async () => {
  publisher?.disconnect();
  await fixture?.stop();
});

const channel = (name: string) => `sse:${randomUUID()}:${name}`;
const open = (path: string, init?: Parameters<typeof openEventStream>[2]) =>
  openEventStream(fixture.bridge.url, path, init);
/** Subscribers Redis itself counts for a channel: the bridge's shared connection counts once. */
const numsub = async (name: string) => ((await publisher.pubsub("NUMSUB", name)) as [string, number])[1];
const numpat = async () => (await publisher.call("PUBSUB", "NUMPAT")) as number;

describe("framing", () => {
  it("confirms the channel, then sends each message byte for byte, from native and REST PUBLISH", async () => {
    const ch = channel("a");
    // @upstash/redis sends base64 encoding and a "[]" body; neither changes the stream.
    const stream = await open(`/subscribe/${encodeURIComponent(ch)}`, {
      method: "POST",
      headers: { "upstash-encoding": "base64" },
    });
    try {
      expect(stream.response.status).toBe(200);
      expect(stream.response.headers.get("content-type")).toBe("text/event-stream");
      expect(stream.response.headers.get("cache-control")).toBe("no-cache");
      expect(stream.response.headers.get("upstash-sync-token")).toMatch(/^\d+$/);
      expect(await stream.next()).toBe(`subscribe,${ch},1`);

      expect(await publisher.publish(ch, 'native, with "commas" and 🎉')).toBe(1);
      expect(
        await fixture.http(`/publish/${encodeURIComponent(ch)}/${encodeURIComponent("path style")}`),
      ).toMatchObject({ status: 200, body: { result: 1 } });
      await fixture.http(`/publish/${encodeURIComponent(ch)}`, { method: "POST", body: '{"json":[1,2]}' });
      await fixture.http("/", { method: "POST", body: JSON.stringify(["PUBLISH", ch, ""]) });
      expect([await stream.next(), await stream.next(), await stream.next(), await stream.next()]).toEqual([
        `message,${ch},native, with "commas" and 🎉`,
        `message,${ch},path style`,
        `message,${ch},{"json":[1,2]}`,
        `message,${ch},`,
      ]);
      // Upstash's framing: one `data:` line per event, no blank line between events.
      expect(stream.text()).toBe(
        `data: subscribe,${ch},1\ndata: message,${ch},native, with "commas" and 🎉\n` +
          `data: message,${ch},path style\ndata: message,${ch},{"json":[1,2]}\ndata: message,${ch},\n`,
      );
    } finally {
      stream.close();
    }
  });

  it("ends each event and keep-alive with a blank line with sseFraming blank-line", async () => {
    const standard = await startBridgeFixture({ sseFraming: "blank-line", sseKeepAliveMs: 30 });
    const ch = channel("blank-line");
    const stream = await openEventStream(standard.bridge.url, `/subscribe/${ch}`);
    try {
      expect(await stream.next()).toBe(`subscribe,${ch},1`);
      await standard.http(`/publish/${ch}/hello`);
      expect(await stream.next()).toBe(`message,${ch},hello`);
      await waitFor(() => stream.comments().length >= 1);
      expect(stream.text()).toMatch(
        new RegExp(`^data: subscribe,${ch},1\n\n(: keep-alive\n\n)*data: message,${ch},hello\n\n`),
      );
    } finally {
      stream.close();
      await standard.stop();
    }
  });

  it("takes the channel raw, as @upstash/redis sends it, or percent-encoded: the same channel", async () => {
    const ch = `${channel("spelling")}:with:colons`;
    const raw = await open(`/subscribe/${ch}`, { method: "POST" });
    const encoded = await open(`/subscribe/${encodeURIComponent(ch)}`, { method: "POST" });
    try {
      expect(await raw.next()).toBe(`subscribe,${ch},1`);
      expect(await encoded.next()).toBe(`subscribe,${ch},1`);
      expect(await publisher.publish(ch, "to both")).toBe(1); // one shared Redis subscription
      expect([await raw.next(), await encoded.next()]).toEqual([
        `message,${ch},to both`,
        `message,${ch},to both`,
      ]);
    } finally {
      raw.close();
      encoded.close();
    }
  });

  it("pattern messages carry the pattern and the channel", async () => {
    const prefix = channel("p");
    const stream = await open(`/psubscribe/${encodeURIComponent(`${prefix}:*`)}`);
    try {
      expect(await stream.next()).toBe(`psubscribe,${prefix}:*,1`);
      await publisher.publish(`${prefix}:one`, "1");
      await publisher.publish(`${channel("elsewhere")}`, "not for this pattern");
      await fixture.http(`/publish/${encodeURIComponent(`${prefix}:two`)}/2`);
      expect([await stream.next(), await stream.next()]).toEqual([
        `pmessage,${prefix}:*,${prefix}:one,1`,
        `pmessage,${prefix}:*,${prefix}:two,2`,
      ]);
    } finally {
      stream.close();
    }
  });

  it("several channels in one path are confirmed in order and counted per stream", async () => {
    const [a, b] = [channel("a"), channel("b")];
    const stream = await open(`/SUBSCRIBE/${a}/${b}/${a}`);
    try {
      expect([await stream.next(), await stream.next()]).toEqual([`subscribe,${a},1`, `subscribe,${b},2`]);
      await publisher.publish(b, "to b");
      expect(await stream.next()).toBe(`message,${b},to b`);
    } finally {
      stream.close();
    }
  });

  it("sends keep-alive comments on a quiet stream", async () => {
    const quiet = await startBridgeFixture({ sseKeepAliveMs: 30 });
    const stream = await openEventStream(quiet.bridge.url, `/subscribe/${channel("quiet")}`);
    try {
      await stream.next();
      await waitFor(() => stream.comments().length >= 2);
      expect(stream.comments()[0]).toBe(": keep-alive");
    } finally {
      stream.close();
      await quiet.stop();
    }
  });
});

describe("refusals", () => {
  it.each([
    ["without Accept: text/event-stream", `/subscribe/ch`, { accept: "application/json" }, 400, /Accept/],
    ["without a channel", `/subscribe`, {}, 400, /wrong number of arguments for 'subscribe'/],
    ["without the token", `/subscribe/ch`, { authorization: "Bearer wrong" }, 401, /Unauthorized/],
  ])("%s is refused with a JSON error", async (_, path, headers, status, message) => {
    const response = await fixture.http(path, { headers: { accept: "text/event-stream", ...headers } });
    expect(response).toMatchObject({ status, body: { error: expect.stringMatching(message) } });
  });

  it("accepts the token as a _token query parameter, as a browser EventSource cannot send headers", async () => {
    const ch = channel("query-token");
    const response = await fetch(`${fixture.bridge.url}/subscribe/${ch}?_token=${TOKEN}`, {
      headers: { accept: "text/event-stream" },
    });
    expect(response.status).toBe(200);
    await response.body?.cancel();
    await waitFor(async () => (await numsub(ch)) === 0);
  });

  it("UNSUBSCRIBE as a path or a JSON command stays refused: only the SSE paths subscribe", async () => {
    expect(await fixture.http("/unsubscribe/ch")).toMatchObject({ status: 400 });
    const subscribe = await fixture.http("/", { method: "POST", body: '["SUBSCRIBE","ch"]' });
    expect(subscribe).toMatchObject({ status: 400, body: { error: expect.stringMatching(/'SUBSCRIBE'/) } });
  });
});

describe("one shared Redis subscription, released when the last client leaves", () => {
  it("two streams on one channel share one Redis subscription; a client leaving does not disturb the other", async () => {
    const ch = channel("shared");
    const first = await open(`/subscribe/${ch}`);
    const second = await open(`/subscribe/${ch}`);
    try {
      // Each stream counts its own subscriptions, as production's connection per stream does.
      expect([await first.next(), await second.next()]).toEqual([`subscribe,${ch},1`, `subscribe,${ch},1`]);
      expect(await numsub(ch)).toBe(1);
      const pubsubClients = String(await publisher.call("CLIENT", "LIST", "TYPE", "pubsub"));
      expect(pubsubClients.trim().split("\n")).toHaveLength(1); // one subscriber connection for all streams
      expect(await publisher.publish(ch, "both")).toBe(1);
      expect([await first.next(), await second.next()]).toEqual([`message,${ch},both`, `message,${ch},both`]);

      first.close();
      await first.ended;
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await numsub(ch)).toBe(1);
      await publisher.publish(ch, "second only");
      expect(await second.next()).toBe(`message,${ch},second only`);
    } finally {
      first.close();
      second.close();
    }
    await waitFor(async () => (await numsub(ch)) === 0);
  });

  it("a pattern is unsubscribed when its stream goes away", async () => {
    const before = await numpat();
    const stream = await open(`/psubscribe/${channel("gone")}*`);
    await stream.next();
    expect(await numpat()).toBe(before + 1);
    stream.close();
    await waitFor(async () => (await numpat()) === before);
  });

  it("clients that leave before Redis confirmed leak no subscription", async () => {
    const ch = channel("hasty");
    // Abort at staggered moments so some requests go away before, some during, some after the SUBSCRIBE.
    await Promise.all(
      Array.from({ length: 10 }, async (_, delayMs) => {
        const abort = new AbortController();
        setTimeout(() => abort.abort(), delayMs / 2);
        await fetch(`${fixture.bridge.url}/subscribe/${ch}`, {
          headers: { authorization: `Bearer ${TOKEN}`, accept: "text/event-stream" },
          signal: abort.signal,
        }).catch(() => undefined); // the abort is the point
      }),
    );
    await waitFor(async () => (await numsub(ch)) === 0);
    const late = await open(`/subscribe/${ch}`);
    expect(await late.next()).toBe(`subscribe,${ch},1`);
    expect(await numsub(ch)).toBe(1);
    late.close();
    await waitFor(async () => (await numsub(ch)) === 0);
  });
});

describe("endings", () => {
  it("streams end when Redis drops the subscriber connection, and new ones work after it reconnects", async () => {
    const ch = channel("killed");
    const stream = await open(`/subscribe/${ch}`);
    await stream.next();
    await publisher.client("KILL", "TYPE", "pubsub");
    await stream.ended;
    expect(await numsub(ch)).toBe(0);
    await waitFor(async () => {
      const again = await open(`/subscribe/${ch}`);
      again.close();
      return again.response.status === 200;
    }, 5_000);
  });

  it("close() ends open streams promptly", async () => {
    const own = await startBridgeFixture();
    const stream = await openEventStream(own.bridge.url, `/subscribe/${channel("closing")}`);
    await stream.next();
    const started = Date.now();
    const closing = own.bridge.close();
    await stream.ended;
    // Well below the one-second grace after which close() cuts connections that are still busy.
    expect(Date.now() - started).toBeLessThan(500);
    await closing;
    await own.redis.stop();
  });
});

describe("simulated latency (latencyMs)", () => {
  let slow: BridgeFixture;
  let native: IORedis;
  beforeAll(async () => {
    slow = await startBridgeFixture({ latencyMs: 400 });
    native = new IORedis(slow.redis.url);
  });
  afterAll(async () => {
    native?.disconnect();
    await slow?.stop();
  });

  it("runs a command half a round trip after the request and answers half a round trip later", async () => {
    const key = channel("latency-key");
    const started = performance.now();
    let answered = false;
    const answer = slow.http("/", { method: "POST", body: JSON.stringify(["SET", key, "v"]) });
    void answer.then(() => (answered = true));
    await waitFor(async () => (await native.get(key)) === "v", 5_000, 5);
    // Redis has it while the answer is still on its way back.
    expect(answered).toBe(false);
    expect(performance.now() - started).toBeGreaterThanOrEqual(199);
    expect((await answer).body).toEqual({ result: "OK" });
    expect(performance.now() - started).toBeGreaterThanOrEqual(399);
  });

  it("delivers each event half a round trip after its PUBLISH, in order", async () => {
    const ch = channel("latency-stream");
    const stream = await openEventStream(slow.bridge.url, `/subscribe/${encodeURIComponent(ch)}`);
    try {
      expect(await stream.next()).toBe(`subscribe,${ch},1`);
      const published = performance.now();
      for (const n of [1, 2, 3]) await native.publish(ch, String(n));
      expect([await stream.next(), await stream.next(), await stream.next()]).toEqual([
        `message,${ch},1`,
        `message,${ch},2`,
        `message,${ch},3`,
      ]);
      expect(performance.now() - published).toBeGreaterThanOrEqual(199);
    } finally {
      stream.close();
    }
  });
});
