/**
 * The bridge's caps, so one client cannot take the local stack down: commands per `/pipeline` and
 * `/multi-exec` request, `/subscribe` streams per token, channels per stream, and the unsent bytes a slow
 * reader's stream may hold. Each answer names the option that limits it.
 */
import { randomUUID } from "node:crypto";
import { connect, type Socket } from "node:net";
import { Redis as IORedis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openEventStream } from "./event-stream-reader.js";
import { startBridgeFixture, TOKEN, type BridgeFixture } from "./helpers.js";
import { waitFor } from "../support/wait.js";

let fixture: BridgeFixture;
let publisher: IORedis;
beforeAll(async () => {
  // The default command cap (1,000) with small stream limits, so the stream tests stay quick.
  fixture = await startBridgeFixture({
    maxStreamsPerToken: 2,
    maxChannelsPerStream: 3,
    maxStreamBufferBytes: 256 * 1024,
  });
  publisher = new IORedis(fixture.redis.url);
});
afterAll(async () => {
  publisher?.disconnect();
  await fixture?.stop();
});

const channel = (name: string) => `limits:${randomUUID()}:${name}`;
const numsub = async (name: string) => ((await publisher.pubsub("NUMSUB", name)) as [string, number])[1];

describe("commands per request (maxCommandsPerRequest, default 1,000)", () => {
  it.each(["/pipeline", "/multi-exec"])(
    "%s takes 1,000 commands, and refuses 1,001 with a 400 naming the limit, running none of them",
    async (path) => {
      const key = `limits:${randomUUID()}`;
      const incr = (count: number) => JSON.stringify(Array.from({ length: count }, () => ["INCR", key]));

      const refused = await fixture.http(path, { method: "POST", body: incr(1_001) });
      expect(refused).toMatchObject({
        status: 400,
        body: { error: expect.stringMatching(/1001 commands .*limit of 1000 .*maxCommandsPerRequest/) },
      });
      expect(await publisher.get(key)).toBeNull();

      const served = await fixture.http(path, { method: "POST", body: incr(1_000) });
      expect(served.status).toBe(200);
      expect(await publisher.get(key)).toBe("1000");
      // The shared connection is free for everyone else at once.
      expect(await fixture.http("/ping")).toMatchObject({ status: 200, body: { result: "PONG" } });
    },
  );
});

describe("subscribe streams", () => {
  it("refuses a token's stream past maxStreamsPerToken with a 429, and takes one again once a stream closes", async () => {
    const streams = [
      await openEventStream(fixture.bridge.url, `/subscribe/${channel("one")}`),
      await openEventStream(fixture.bridge.url, `/subscribe/${channel("two")}`),
    ];
    try {
      expect(streams.map((stream) => stream.response.status)).toEqual([200, 200]);
      const third = await refusedStream(`/subscribe/${channel("three")}`);
      expect(third).toMatchObject({
        status: 429,
        body: { error: expect.stringMatching(/holds 2 subscribe streams.*maxStreamsPerToken/) },
      });
      // Plain commands are not limited by it.
      expect(await fixture.http("/ping")).toMatchObject({ status: 200 });

      streams.shift()?.close();
      const ch = channel("after");
      let reopened: Awaited<ReturnType<typeof openEventStream>> | undefined;
      await waitFor(async () => {
        const attempt = await openEventStream(fixture.bridge.url, `/subscribe/${ch}`);
        if (attempt.response.status === 200) reopened = attempt;
        else attempt.close();
        return reopened !== undefined;
      }, 10_000);
      streams.push(reopened!);
      expect(await reopened!.next()).toBe(`subscribe,${ch},1`);
    } finally {
      for (const stream of streams) stream.close();
    }
  });

  it("refuses a path naming more channels than maxChannelsPerStream with a 400 naming the limit", async () => {
    const [a, b, c, d] = ["a", "b", "c", "d"].map(channel);
    const refused = await refusedStream(`/subscribe/${a}/${b}/${c}/${d}`);
    expect(refused).toMatchObject({
      status: 400,
      body: { error: expect.stringMatching(/4 channels .*limit of 3 .*maxChannelsPerStream/) },
    });
    expect(await numsub(a!)).toBe(0);

    const served = await openEventStream(fixture.bridge.url, `/subscribe/${a}/${b}/${c}`);
    try {
      expect(served.response.status).toBe(200);
      expect([await served.next(), await served.next(), await served.next()]).toEqual([
        `subscribe,${a},1`,
        `subscribe,${b},2`,
        `subscribe,${c},3`,
      ]);
    } finally {
      served.close();
    }
  });

  it("ends a stream whose reader stops reading once maxStreamBufferBytes are unsent, with a last comment", async () => {
    const ch = channel("slow");
    // A raw socket that reads nothing after the headers: the bytes pile up in the kernel, then in the bridge.
    const socket = await openRawStream(`/subscribe/${ch}`);
    try {
      await waitFor(async () => (await numsub(ch)) === 1, 5_000);
      socket.pause();
      const message = "x".repeat(64 * 1024);
      // Far below the tens of MB the loopback socket buffers plus a larger bound would take.
      const budget = 24 * 1024 * 1024;
      let published = 0;
      while (published < budget && (await publisher.publish(ch, message)) === 1) published += message.length;
      expect(published, "bytes published before the bridge let the channel go").toBeLessThan(budget);

      // Reading again, the client gets what was buffered, then the comment saying why, then the end.
      const text = await readToEnd(socket);
      expect(text).toMatch(
        /\r\n[0-9a-f]+\r\n: closed: the reader fell behind by \d+ unsent bytes, over the bridge's limit of 262144 \(option maxStreamBufferBytes\); later messages are dropped\n\r\n0\r\n\r\n$/,
      );
      // Still serving, and the channel was released in Redis.
      expect(await numsub(ch)).toBe(0);
      expect(await fixture.http("/ping")).toMatchObject({ status: 200 });
    } finally {
      socket.destroy();
    }
  });
});

/** Opens a stream expected to be refused: its status and JSON body, or its status alone if it was served. */
async function refusedStream(path: string): Promise<{ status: number; body?: unknown }> {
  const stream = await openEventStream(fixture.bridge.url, path);
  if (stream.response.status === 200) {
    stream.close();
    return { status: 200 };
  }
  await stream.ended;
  return { status: stream.response.status, body: JSON.parse(stream.text()) as unknown };
}

/** Opens an event stream over a bare TCP socket, resolving once the response headers arrived. */
async function openRawStream(path: string): Promise<Socket> {
  const { port } = new URL(fixture.bridge.url);
  const socket = connect(Number(port), "127.0.0.1");
  socket.write(
    `GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${TOKEN}\r\n` +
      "accept: text/event-stream\r\n\r\n",
  );
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.once("readable", () => resolve());
  });
  return socket;
}

/** Reads the rest of a paused socket until the server closes or ends the chunked body. */
async function readToEnd(socket: Socket): Promise<string> {
  let text = "";
  socket.setEncoding("utf8");
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no end within 20 s; got ${text.slice(-300)}`)), 20_000);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    socket.on("data", (chunk: string) => {
      text += chunk;
      if (text.endsWith("\r\n0\r\n\r\n")) done();
    });
    socket.once("end", done);
    socket.once("close", done);
    socket.resume();
  });
  return text;
}
