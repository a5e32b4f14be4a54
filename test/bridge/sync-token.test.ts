/**
 * Read-your-writes: every response carries a new `upstash-sync-token`, larger than every earlier one, also
 * for concurrent requests, and `@upstash/redis` works with `readYourWrites` on and off.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startBridgeFixture, upstashClient, type BridgeFixture } from "./helpers.js";

let fixture: BridgeFixture;
beforeAll(async () => {
  fixture = await startBridgeFixture();
});
afterAll(async () => {
  await fixture?.stop();
});

const key = (name: string) => `sync:${randomUUID()}:${name}`;
/** Sends one request and returns the token it was answered with, as a number. */
async function tokenAfter(
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<number> {
  const init = body === undefined ? { headers } : { method: "POST", body: JSON.stringify(body), headers };
  const response = await fixture.http(path, init);
  const token = response.headers.get("upstash-sync-token");
  expect(token).toMatch(/^\d+$/);
  return Number(token);
}

describe("the upstash-sync-token header", () => {
  it("is new on every response: writes, reads, errors, pipelines and path style", async () => {
    const k = key("w");
    const requests: [string, unknown?][] = [
      ["/", ["SET", k, "text"]],
      ["/", ["GET", k]],
      [`/lrange/${k}/0/-1`],
      ["/", ["INCR", k]], // fails (not an integer)
      [
        "/pipeline",
        [
          ["LLEN", k],
          ["EXISTS", k],
        ],
      ],
      [
        "/multi-exec",
        [
          ["SET", k, "1"],
          ["INCR", k],
        ],
      ],
      ["/", ["PUBLISH", key("ch"), "m"]],
      ["/", ["PING"]],
      ["/", ["BLPOP", k, "0"]], // refused before it ran
      ["/", "not json"],
    ];
    let previous = await tokenAfter("/ping");
    for (const [path, body] of requests) {
      const token = await tokenAfter(path, body);
      expect(token, `${path} ${JSON.stringify(body)}`).toBeGreaterThan(previous);
      previous = token;
    }
  });

  it("differs on every response to concurrent requests from one client", async () => {
    const k = key("concurrent");
    const tokens = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        i % 2 === 0 ? tokenAfter("/", ["INCR", k]) : tokenAfter("/", ["GET", k]),
      ),
    );
    expect(new Set(tokens).size).toBe(tokens.length);
  });

  it("a request with a token ahead of the bridge is answered after a short wait, with the bridge's token", async () => {
    // (A token the bridge has reached is answered at once: see the SyncTokenClock unit tests.)
    const current = await tokenAfter("/ping");
    const started = Date.now();
    const ahead = String(BigInt(current) + 1_000_000_000n);
    const answered = await tokenAfter("/ping", undefined, { "upstash-sync-token": ahead });
    expect(answered).toBeGreaterThan(current);
    expect(answered).toBeLessThan(Number(ahead));
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
  });

  it("is also sent on the SSE response, so a subscribing client keeps its token", async () => {
    const response = await fetch(`${fixture.bridge.url}/subscribe/${key("ch")}`, {
      headers: { authorization: `Bearer bridge-test-token`, accept: "text/event-stream" },
    });
    expect(response.headers.get("upstash-sync-token")).toMatch(/^\d+$/);
    await response.body?.cancel();
  });
});

describe.each([true, false])("@upstash/redis with readYourWrites %s", (readYourWrites) => {
  it.each(["base64", false] as const)("reads its writes (responseEncoding %s)", async (responseEncoding) => {
    const redis = upstashClient(fixture.bridge, {
      responseEncoding,
      enableAutoPipelining: true,
      automaticDeserialization: true,
      readYourWrites,
    });
    const k = key(`ryw-${readYourWrites}`);
    expect(await redis.set(k, { n: 1 })).toBe("OK");
    const afterWrite = redis.readYourWritesSyncToken;
    expect(await redis.get(k)).toEqual({ n: 1 });
    expect(await redis.incr(`${k}:count`)).toBe(1);
    expect(await redis.multi().incr(`${k}:count`).get(`${k}:count`).exec()).toEqual([2, 2]);
    expect(await Promise.all([redis.get(`${k}:count`), redis.exists(k)])).toEqual([2, 1]);
    if (readYourWrites) {
      // The client keeps the last token it was sent and sends it back with the next request.
      expect(afterWrite).toMatch(/^\d+$/);
      expect(Number(redis.readYourWritesSyncToken)).toBeGreaterThan(Number(afterWrite));
    } else {
      expect(redis.readYourWritesSyncToken).toBeFalsy();
    }
  });
});
