/**
 * The rule a client relies on: a request on an open connection always gets its answer (reply or
 * WrongResponse) by its deadline, even when every Redis call hangs; and the object never has more than
 * `maxRedisConnections` (6) calls open, the rest waiting visibly in its queue.
 */
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import type { ConsumerGroupsStats } from "../../src/backends/index.js";
import type { GatewayDurableObject } from "../../src/worker/gateway-object.js";
import { openSocket, uniqueObject } from "./helpers.js";
import { fakeRedis } from "./test-worker.js";

const namespace = (env as unknown as { GATEWAY: DurableObjectNamespace<GatewayDurableObject> }).GATEWAY;

afterEach(() => {
  fakeRedis.hanging = false;
});

describe("an object whose Redis calls all hang", () => {
  it("answers every request with WrongResponse by its deadline and holds 6 calls open at most", async () => {
    const object = uniqueObject("hung");
    const socket = await openSocket(object);
    fakeRedis.hanging = true;
    const started = Date.now();
    for (let i = 1; i <= 30; i++) socket.ws.send(JSON.stringify({ ping: 1, req_id: i }));
    const answers: Array<Record<string, unknown>> = [];
    // The test Worker's backend waits 0.5 s; a generous bound for a busy machine.
    for (let i = 0; i < 30; i++) answers.push(await socket.next(5_000));
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(answers.map((answer) => answer.req_id).sort((a, b) => Number(a) - Number(b))).toEqual(
      Array.from({ length: 30 }, (_, i) => i + 1),
    );
    for (const answer of answers) expect(answer).toMatchObject({ error: { code: "WrongResponse" } });
    const stub = namespace.get(namespace.idFromName(object));
    const stats = await runInDurableObject(
      stub,
      (instance) => instance.backendStats().default as ConsumerGroupsStats,
    );
    expect(stats).toMatchObject({ pending: 0, timedOut: 30, maxRedisInFlight: 6 });
    // The rest waited in the object's queue, and were dropped unsent once their request had ended.
    expect(stats?.maxQueuedCommands).toBeGreaterThanOrEqual(24);
    expect(stats?.redisCommandsSent).toBe(6);
    socket.ws.close(1000, "done");
  });
});
