/** When redis-server goes away the bridge answers fast with an error, and it recovers when Redis is back. */
import { afterAll, beforeAll, expect, it } from "vitest";
import { startBridge } from "../../src/bridge/server.js";
import { ping } from "../../src/devstack/redis.js";
import { freePort } from "../../src/devstack/processes.js";
import { startBridgeFixture, TOKEN, upstashClient, type BridgeFixture } from "./helpers.js";
import { waitFor } from "../support/wait.js";

let fixture: BridgeFixture;
beforeAll(async () => {
  fixture = await startBridgeFixture();
});
afterAll(async () => {
  await fixture?.stop();
});

it("answers 503 quickly while Redis is down, and serves again after it restarts", async () => {
  const redis = upstashClient(fixture.bridge, {
    responseEncoding: "base64",
    enableAutoPipelining: false,
    automaticDeserialization: true,
  });
  expect(await redis.set("outage:before", "1")).toBe("OK");
  // Let a transaction connection exist before the outage too, so its recovery is tested.
  expect(await redis.multi().incr("outage:tx").exec()).toEqual([1]);

  process.kill(fixture.redis.pid, "SIGKILL");
  await waitFor(async () => !(await ping(fixture.redis.port)), 5_000);

  for (const [path, body] of [
    ["/", '["GET","outage:before"]'],
    ["/pipeline", '[["GET","a"],["GET","b"]]'],
    ["/multi-exec", '[["INCR","outage:tx"]]'],
  ] as const) {
    const started = Date.now();
    const response = await fixture.http(path, { method: "POST", body });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(response.status).toBe(503);
    expect(response.body).toEqual({
      error: expect.stringMatching(
        new RegExp(`^ERR Redis at redis://127.0.0.1:${fixture.redis.port}.* is unavailable`),
      ),
    });
  }
  await expect(redis.get("outage:before")).rejects.toThrow(/is unavailable/);

  await fixture.redis.restart();
  // The bridge reconnects by itself (no persistence, so the data is gone but the service is back).
  await waitFor(async () => (await fixture.http("/ping")).status === 200, 5_000);
  expect(await redis.set("outage:after", "2")).toBe("OK");
  expect(await redis.get("outage:after")).toBe(2);
  await waitFor(
    async () => (await fixture.http("/multi-exec", { method: "POST", body: '[["PING"]]' })).status === 200,
    5_000,
  );
  expect(await redis.multi().incr("outage:tx").incr("outage:tx").exec()).toEqual([1, 2]);
});

it("refuses to start, with a message naming the URL, when Redis cannot be reached", async () => {
  const port = await freePort();
  const started = Date.now();
  await expect(startBridge({ redisUrl: `redis://127.0.0.1:${port}`, token: TOKEN })).rejects.toThrow(
    `cannot connect to Redis at redis://127.0.0.1:${port}`,
  );
  expect(Date.now() - started).toBeLessThan(3_000);
});
