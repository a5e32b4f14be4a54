/**
 * The example deployment (examples/gateway/worker.ts) end to end: redis-server, the REST bridge, the service
 * (example handlers + `whoami`) and the Worker under `wrangler dev`, driven by `ws` clients.
 * `RPC_QUEUE_RESPONSE_TIMEOUT` is 2 s so timeouts are quick.
 */
import { describe, expect, it } from "vitest";
import {
  connect,
  E2E_SERVICE_MODULE,
  readStream,
  useE2eStack,
  waitForEntry,
  type Client,
} from "./helpers.js";
import { sleep } from "../support/wait.js";

const service = { args: ["--module", E2E_SERVICE_MODULE] };
const e2e = useE2eStack({ service, worker: "example", vars: { RPC_QUEUE_RESPONSE_TIMEOUT: "2" } });

/** `wsproxy_backend_timeouts_total` of the default backend, summed over the objects `/metrics` asks. */
async function backendTimeouts(): Promise<number> {
  const text = await (await fetch(`${e2e.worker.httpUrl}/metrics`)).text();
  const line = /^wsproxy_backend_timeouts_total\{backend="default"\} (\d+)$/m.exec(text);
  return Number(line?.[1] ?? 0);
}

/** Starts the service again after a test stopped it (it is then the last one in `stack.services`). */
async function restartService(): Promise<void> {
  await e2e.stack.startService(service);
}

describe("the example deployment over the real stack", () => {
  it("serves /health and refuses a plain GET on the WebSocket path with 426", async () => {
    const health = await fetch(`${e2e.worker.httpUrl}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ ok: true, redis: { default: { reachable: true } } });
    const plain = await fetch(`${e2e.worker.httpUrl}/websockets/v3`);
    expect(plain.status).toBe(426);
  });

  it("answers every client-visible outcome of PROTOCOL.md 1.3 that the backend path produces", async () => {
    const client = await connect(e2e.worker.wsUrl);
    const invalid = { code: "BadRequest", message: "The application sent an invalid request." };
    client.sendRaw("{not json");
    expect(await client.next()).toEqual({
      msg_type: "error",
      error: { ...invalid, details: { error_code: "INVALID_JSON" } },
    });
    client.sendRaw("[1,2]");
    expect(await client.next()).toEqual({ msg_type: "error", error: invalid });
    expect(await client.call({ ping: 1, "bad key!": 1 })).toMatchObject({
      msg_type: "error",
      error: { code: "SanityCheckFailed", message: "Parameters sanity check failed." },
    });
    expect(await client.call({ nothing_here: 1 })).toMatchObject({
      msg_type: "error",
      error: { code: "UnrecognisedRequest", message: "Unrecognised request" },
    });
    expect(await client.call({ ping: 1, req_id: 5, passthrough: { a: 1 } })).toEqual({
      msg_type: "ping",
      ping: "pong",
      req_id: 5,
      passthrough: { a: 1 },
      echo_req: { ping: 1, req_id: 5, passthrough: { a: 1 } },
    });
    expect(await client.call({ app_error: "x" })).toMatchObject({
      msg_type: "app_error",
      error: {
        code: "InvalidValue",
        message: "The value you sent is not accepted.",
        details: { field: "app_error", received: "x" },
      },
    });
    expect(await client.call({ fail: 1 })).toMatchObject({
      msg_type: "fail",
      error: { code: "InternalServerError" },
    });
    await client.close();
  });

  it("keeps the stash from login and sends its values with stashParams", async () => {
    const client = await connect(e2e.worker.wsUrl);
    expect(await client.call({ login: "a-token" })).toMatchObject({
      msg_type: "login",
      login: { loginid: "CR90000", currency: "USD" },
    });
    expect(await client.call({ whoami: 1 })).toMatchObject({
      msg_type: "whoami",
      whoami: { loginid: "CR90000", scopes: ["read", "trade"] },
    });
    const entry = (await readStream(e2e.redis, "general")).filter((fields) => fields.rpc === "whoami").at(-1);
    expect(entry?.stash).toBe('["loginid","scopes"]');
    expect(JSON.parse(entry?.args ?? "{}")).toMatchObject({ args: { whoami: 1 }, loginid: "CR90000" });
    expect(JSON.parse(entry?.req_log_context ?? "{}").correlation_id).toMatch(/^[0-9a-f-]{36}$/);
    // A client cannot forge stash values: not by sending a field of the same name...
    expect(await client.call({ whoami: 1, loginid: "CR-FORGED" })).toMatchObject({
      whoami: { loginid: "CR90000" },
    });
    // ...nor by having the echo service return a `stash` of its choosing.
    await client.call({ echo: 1, stash: { loginid: "CR-FORGED" } });
    expect(await client.call({ whoami: 1 })).toMatchObject({ whoami: { loginid: "CR90000" } });
    await client.close();
  });

  it("gives each of 200 concurrent requests over 20 connections its own reply", async () => {
    const clients = await Promise.all(Array.from({ length: 20 }, () => connect(e2e.worker.wsUrl)));
    const results = await Promise.all(
      clients.map(async (client, c) => {
        for (let i = 0; i < 10; i++) client.ws.send(JSON.stringify({ echo: { c, i }, req_id: c * 100 + i }));
        const frames = await Promise.all(Array.from({ length: 10 }, () => client.next(15_000)));
        return (
          frames.every((frame) => {
            const reqId = frame.req_id as number;
            const echoed = (frame.echo as { echo: { c: number; i: number } }).echo;
            return echoed.c === c && echoed.c * 100 + echoed.i === reqId && Math.floor(reqId / 100) === c;
          }) && new Set(frames.map((frame) => frame.req_id)).size === 10
        );
      }),
    );
    expect(results.every(Boolean)).toBe(true);
    await Promise.all(clients.map((client) => client.close()));
  }, 30_000);

  it("answers WrongResponse quickly when Redis refuses the XADD, and at the timeout when no service answers", async () => {
    const client = await connect(e2e.worker.wsUrl);
    // A real Redis error, at once: over maxmemory with noeviction, Redis refuses XADD with OOM.
    await e2e.redis.config("SET", "maxmemory-policy", "noeviction");
    await e2e.redis.config("SET", "maxmemory", "1");
    const timeoutsBefore = await backendTimeouts();
    try {
      expect(await client.call({ ping: 1, req_id: 1 })).toEqual({
        msg_type: "ping",
        error: { code: "WrongResponse", message: "Sorry, an error occurred while processing your request." },
        req_id: 1,
        echo_req: { ping: 1, req_id: 1 },
      });
      // Quickly: failed on the write, not waited out (told by /metrics, not by a clock on a busy machine).
      expect(await backendTimeouts()).toBe(timeoutsBefore);
    } finally {
      await e2e.redis.config("SET", "maxmemory", "0");
    }
    await e2e.stack.services.at(-1)?.stop();
    try {
      const started = Date.now();
      expect(await client.call({ ping: 1, req_id: 2 }, 5000)).toMatchObject({
        error: { code: "WrongResponse" },
      });
      expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
      expect(await backendTimeouts()).toBe(timeoutsBefore + 1);
    } finally {
      await restartService();
    }
    await client.close();
  }, 30_000);

  it("drops a late reply after a timeout and a duplicate reply, delivering neither to anyone", async () => {
    const client = await connect(e2e.worker.wsUrl);
    // Late: with the service stopped the request times out (2 s); then its reply is pushed to the reply key.
    await e2e.stack.services.at(-1)?.stop();
    try {
      client.ws.send(JSON.stringify({ ping: 1, req_id: 1 }));
      const timedOut = await waitForEntry(e2e.redis, "general", (f) =>
        (f.args ?? "").includes('"req_id":1}'),
      );
      expect(await client.next(4000)).toMatchObject({ req_id: 1, error: { code: "WrongResponse" } });
      const late = { message_id: timedOut.message_id, response: { result: "late pong" } };
      await e2e.redis.rpush(timedOut.who ?? "", JSON.stringify(late));
    } finally {
      await restartService();
    }

    // Duplicate: a reply (a CallError one) is injected before the service's own reply to the same id.
    client.ws.send(JSON.stringify({ slow: 1, ms: 800, req_id: 2 }));
    const answered = await waitForEntry(
      e2e.redis,
      "general",
      (f) => f.rpc === "slow" && (f.args ?? "").includes('"req_id":2'),
    );
    const first = {
      message_id: answered.message_id,
      response: { error: { code: "Boom", message: "injected" } },
    };
    await e2e.redis.rpush(answered.who ?? "", JSON.stringify(first));
    expect(await client.next()).toEqual({
      msg_type: "slow",
      error: { code: "CallError", message: "Sorry, an error occurred while processing your request." },
      req_id: 2,
      echo_req: { slow: 1, ms: 800, req_id: 2 },
    });
    // The late reply is popped with this call's poll and dropped; the call gets its own reply.
    expect(await client.call({ ping: 1, req_id: 3 })).toMatchObject({ ping: "pong", req_id: 3 });
    // The service's real reply to req 2 (at 800 ms) is the duplicate: dropped too.
    await sleep(1200);
    expect(await client.call({ ping: 1, req_id: 4 })).toMatchObject({ ping: "pong", req_id: 4 });
    expect(client.queued).toEqual([]);
    await client.close();
  }, 30_000);

  it("sends zero Redis commands while idle with connections open (15 s window); the stash survives hibernation", async () => {
    const clients: Client[] = await Promise.all(Array.from({ length: 5 }, () => connect(e2e.worker.wsUrl)));
    for (const client of clients)
      expect(await client.call({ login: "t" })).toMatchObject({ msg_type: "login" });
    const entriesBefore = await readStream(e2e.redis, "general");
    const replyKeysBefore = new Set(entriesBefore.map((entry) => entry.who));
    // The service polls Redis itself; stop it so the count is the gateway's (and the bridge's) alone.
    await e2e.stack.services.at(-1)?.stop();
    await sleep(500);
    const start = await e2e.stack.commandCount();
    await sleep(15_000);
    expect((await e2e.stack.commandCount()) - start).toBe(0);

    await restartService();
    for (const client of clients) {
      expect(await client.call({ whoami: 1 }, 8000)).toMatchObject({ whoami: { loginid: "CR90000" } });
    }
    const whoamiEntries = (await readStream(e2e.redis, "general")).slice(entriesBefore.length);
    expect(whoamiEntries.map((entry) => entry.rpc)).toEqual(clients.map(() => "whoami"));
    // workerd evicts an object idle for ~10 s even with sockets open (hibernation); each woken object is a
    // new incarnation with a new reply key, and the stash above came back from the socket attachments.
    expect(whoamiEntries.filter((entry) => replyKeysBefore.has(entry.who))).toEqual([]);
    await Promise.all(clients.map((client) => client.close()));
  }, 45_000);
});
