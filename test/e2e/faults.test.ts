/**
 * The fault matrix (issue 6) on the real stack: redis-server, the REST bridge, two services
 * (test/e2e/fault-service.ts, `--claim-idle-ms 500 --max-deliveries 2`) and the e2e Worker
 * (`RPC_QUEUE_RESPONSE_TIMEOUT=2`; its `patient` backend waits 6 s). One test per fault; each checks what
 * every affected client receives, and that every request got exactly one reply naming its own `req_id`
 * (its result or a clear error), never another request's.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../src/devstack/stack.js";
import { aliveServices, entryOf, holderOf, killConsumer, waitHealthy } from "./fault-helpers.js";
import { connect, useE2eStack, waitForEntry, type Frame } from "./helpers.js";
import { Ledger, type LedgerClient } from "../../bench/ledger.js";
import { sleep } from "../support/wait.js";

const FAULT_SERVICE = {
  args: [
    "--module",
    join(PROJECT_ROOT, "test/e2e/fault-service.ts"),
    "--claim-idle-ms",
    "500",
    "--max-deliveries",
    "2",
  ],
};
const WRONG_RESPONSE = {
  code: "WrongResponse",
  message: "Sorry, an error occurred while processing your request.",
};

const e2e = useE2eStack({
  service: [FAULT_SERVICE, FAULT_SERVICE],
  vars: { RPC_QUEUE_RESPONSE_TIMEOUT: "2" },
});

/** Starts services until two are running (a test may have killed some). */
async function restoreServices(): Promise<void> {
  while (aliveServices(e2e.stack).length < 2) await e2e.stack.startService(FAULT_SERVICE);
}

/**
 * Stops services until one runs. With `--claim-idle-ms 500`, a second consumer would take over (and run
 * again) any entry a handler holds for longer than that; one consumer never reclaims its own.
 */
async function keepOneService(): Promise<void> {
  for (const service of aliveServices(e2e.stack).slice(1)) await service.stop();
}

/** The counters of the object's backend `name` (`default`: 2 s, `patient`: 6 s). */
async function backendStats(name = "default"): Promise<Record<string, number | string>> {
  const client = await connect(e2e.worker.wsUrl);
  const reply = await client.call({ backend_stats: 1 });
  await client.close();
  return (reply.backend_stats as Record<string, Record<string, number | string>>)[name] ?? {};
}

/** Opens `n` ledger clients. */
/**
 * "At once" told by its cause rather than a sub-second clock bound (a loaded 2-core machine is slow): the
 * `n` calls since `before` failed on their Redis write, none waited out its timeout.
 */
async function expectFailedNotTimedOut(before: Record<string, number | string>, n: number): Promise<void> {
  const after = await backendStats();
  expect(Number(after.failed) - Number(before.failed)).toBe(n);
  expect(after.timedOut).toBe(before.timedOut);
}

async function openClients(ledger: Ledger, n: number): Promise<LedgerClient[]> {
  return Promise.all(Array.from({ length: n }, () => ledger.open(e2e.worker.wsUrl)));
}

/** Every client sends one `ping` and must get `pong` for it, within `timeoutMs`. */
async function expectAllServed(clients: LedgerClient[], timeoutMs = 4000): Promise<void> {
  for (const reply of await Promise.all(clients.map((client) => client.call({ ping: 1 }, timeoutMs)))) {
    expect(reply).toMatchObject({ msg_type: "ping", ping: "pong" });
  }
}

describe("fault matrix", () => {
  it("Redis down when requests are written: WrongResponse at once; after recovery all succeed, nothing restarted", async () => {
    const ledger = new Ledger();
    const clients = await openClients(ledger, 3);
    await expectAllServed(clients);
    const before = await backendStats();
    await e2e.stack.redis.stop();
    try {
      const replies = await Promise.all(clients.map((client) => client.call({ ping: 1 }, 3000)));
      for (const reply of replies) expect(reply).toMatchObject({ msg_type: "ping", error: WRONG_RESPONSE });
      await expectFailedNotTimedOut(before, 3);
    } finally {
      await e2e.stack.redis.restart();
    }
    // Redis came back empty: the services re-create their group, the gateway keeps its reply keys.
    await waitHealthy(e2e.worker.httpUrl);
    await expectAllServed(clients);
    await expectAllServed(clients);
    expect(ledger.counts()).toMatchObject({ lost: 0, misrouted: 0, errors: { WrongResponse: 3 } });
    await ledger.closeAll();
  });

  it("the bridge down when requests are written: WrongResponse at once; after it restarts all succeed", async () => {
    const ledger = new Ledger();
    const clients = await openClients(ledger, 3);
    await expectAllServed(clients);
    const before = await backendStats();
    await e2e.stack.bridge.stop();
    try {
      const replies = await Promise.all(clients.map((client) => client.call({ echo: "x" }, 3000)));
      for (const reply of replies) expect(reply).toMatchObject({ msg_type: "echo", error: WRONG_RESPONSE });
      await expectFailedNotTimedOut(before, 3);
    } finally {
      await e2e.stack.bridge.restart();
    }
    await waitHealthy(e2e.worker.httpUrl);
    await expectAllServed(clients);
    expect(ledger.counts()).toMatchObject({ lost: 0, misrouted: 0, errors: { WrongResponse: 3 } });
    await ledger.closeAll();
  });

  it("Redis restarted under steady traffic: each request gets its reply or WrongResponse, then all succeed", async () => {
    const ledger = new Ledger();
    const clients = await openClients(ledger, 8);
    let running = true;
    // Each client keeps two requests in flight, one after another, until told to stop.
    const traffic = clients.map(async (client, c) => {
      let i = 0;
      const loop = async (): Promise<void> => {
        while (running) {
          const reply = await client.call(i++ % 2 ? { ping: 1 } : { echo: { c, i } }, 5000);
          expect(reply.msg_type === "ping" || reply.msg_type === "echo").toBe(true);
        }
      };
      await Promise.all([loop(), loop()]);
    });
    await sleep(1000);
    await e2e.stack.redis.restart();
    await sleep(3000);
    running = false;
    await Promise.all(traffic);
    const during = ledger.counts();
    console.log(`Redis restart under traffic: ${ledger.summaryLine()}`);
    expect(during).toMatchObject({ lost: 0, misrouted: 0 });
    expect(Object.keys(during.errors).filter((code) => code !== "WrongResponse")).toEqual([]);
    expect(during.answered - (during.errors.WrongResponse ?? 0)).toBeGreaterThan(50);
    await waitHealthy(e2e.worker.httpUrl);
    await expectAllServed(clients);
    expect(ledger.counts().errors).toEqual(during.errors);
    await ledger.closeAll();
  }, 20_000);

  it("a service killed mid-request: the other consumer completes it after claimIdleMs, one reply only", async () => {
    await restoreServices();
    const client = await connect(e2e.worker.wsUrl);
    const started = Date.now();
    client.ws.send(JSON.stringify({ hold: 1, ms: 1000, req_id: 1 })); // `patient` backend: 6 s
    const entry = await entryOf(e2e.redis, "hold", 1);
    await killConsumer(e2e.stack, await holderOf(e2e.redis, entry.id));
    expect(await client.next(6000)).toMatchObject({ msg_type: "hold", hold: { slept_ms: 1000 }, req_id: 1 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500); // claimIdleMs 500 + the handler's 1000
    await sleep(1500);
    expect(client.queued).toEqual([]);
    expect(await backendStats("patient")).toMatchObject({ duplicate: 0, late: 0, delivered: 1 });
    await client.close();
    await restoreServices();
  }, 20_000);

  it("a service killed mid-request past the deadline: the client gets its timeout, and nothing after", async () => {
    await restoreServices();
    const client = await connect(e2e.worker.wsUrl);
    const started = Date.now();
    // `stubborn` ignores the deadline: redone by the other consumer, it finishes after the 2 s timeout.
    client.ws.send(JSON.stringify({ stubborn: 1, ms: 1500, req_id: 2 }));
    await killConsumer(e2e.stack, await holderOf(e2e.redis, (await entryOf(e2e.redis, "stubborn", 2)).id));
    expect(await client.next(4000)).toMatchObject({ msg_type: "stubborn", error: WRONG_RESPONSE, req_id: 2 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    await sleep(2000);
    expect(await client.call({ ping: 1, req_id: 3 })).toMatchObject({ ping: "pong", req_id: 3 });
    expect(client.queued).toEqual([]);
    await client.close();
    await restoreServices();
  }, 20_000);

  it("a slow service: the timeout first, then the late reply is dropped and counted", async () => {
    await keepOneService();
    const before = await backendStats();
    const client = await connect(e2e.worker.wsUrl);
    expect(await client.call({ stubborn: 1, ms: 3000, req_id: 1 }, 4000)).toMatchObject({
      msg_type: "stubborn",
      error: WRONG_RESPONSE,
      req_id: 1,
    });
    // The timeout (2 s), not the handler's 3 s: counted as a timeout, the reply still to come.
    expect(Number((await backendStats()).timedOut) - Number(before.timedOut)).toBe(1);
    // The late reply lands on the reply key at 3 s; the poll of a later request takes it and drops it.
    let late = 0;
    for (let reqId = 2; late === 0 && reqId < 20; reqId++) {
      await sleep(300);
      expect(await client.call({ ping: 1, req_id: reqId })).toMatchObject({ ping: "pong", req_id: reqId });
      late = Number((await backendStats()).late) - Number(before.late);
    }
    expect(late).toBe(1);
    expect(client.queued).toEqual([]);
    await client.close();
    await restoreServices();
  });

  // Late and duplicate replies to one connection: gateway.test.ts ("drops a late reply ... and a duplicate").
  it("foreign, unknown and unparsable replies on a reply key are dropped; each request gets its own", async () => {
    const before = await backendStats("patient");
    const [a, b] = [await connect(e2e.worker.wsUrl), await connect(e2e.worker.wsUrl)];
    a.ws.send(JSON.stringify({ hold: 1, ms: 300, req_id: 11 }));
    b.ws.send(JSON.stringify({ hold: 1, ms: 300, req_id: 12 }));
    const entryA = (await entryOf(e2e.redis, "hold", 11)).fields;
    const who = entryA.who ?? "";
    const forged = (body: Frame): string => JSON.stringify(body);
    await e2e.redis.rpush(
      who,
      forged({ message_id: entryA.message_id, who: "wsp:reply:other", response: { result: "foreign" } }),
      forged({ message_id: "999999", response: { result: "unknown" } }),
      "{not json",
    );
    expect(await a.next()).toMatchObject({ hold: { slept_ms: 300 }, req_id: 11 });
    expect(await b.next()).toMatchObject({ hold: { slept_ms: 300 }, req_id: 12 });
    const after = await backendStats("patient");
    for (const counter of ["foreign", "unknown", "invalid"]) {
      expect(Number(after[counter]) - Number(before[counter]), counter).toBe(1);
    }
    await sleep(300);
    expect([...a.queued, ...b.queued]).toEqual([]);
    await Promise.all([a.close(), b.close()]);
  });

  // Hibernation (eviction while idle, woken by a frame, stash intact): gateway.test.ts's 15 s idle window.
  it("a restarted Durable Object gets a new reply key: replies left for its earlier self reach no one", async () => {
    const old = await connect(e2e.worker.wsUrl);
    expect(await old.call({ login: "t" })).toMatchObject({ login: { loginid: "CR90000" } });
    const oldKey = String((await backendStats()).whoami);
    old.ws.send(JSON.stringify({ restart_object: 1 }));
    expect((await old.closed).code).toBe(1006); // the runtime drops the sockets of a reset object
    const ledger = new Ledger();
    const [client] = await openClients(ledger, 1);
    const newKey = String((await backendStats()).whoami);
    expect(newKey).not.toBe(oldKey);
    // The new incarnation numbers its requests from 1 again: stale replies with those ids wait on the old key.
    const stale = Array.from({ length: 5 }, (_, i) =>
      JSON.stringify({ message_id: String(i + 1), response: { result: "stale" } }),
    );
    await e2e.redis.rpush(oldKey, ...stale);
    for (let i = 0; i < 5; i++) expect(await client!.call({ ping: 1 })).toMatchObject({ ping: "pong" });
    expect(await e2e.redis.llen(oldKey)).toBe(5);
    // A new connection starts with an empty stash; the old one's login does not carry over.
    expect(await client!.call({ whoami: 1 })).toMatchObject({ whoami: { loginid: null } });
    expect(ledger.counts()).toMatchObject({ lost: 0, misrouted: 0, errors: {} });
    await ledger.closeAll();
  });

  it("a poison entry is dead-lettered with its reason after maxDeliveries; the stream keeps flowing", async () => {
    await restoreServices();
    const client = await connect(e2e.worker.wsUrl);
    const started = Date.now();
    client.ws.send(JSON.stringify({ crash: 1, req_id: 1 })); // each delivery kills its service
    const entry = await entryOf(e2e.redis, "crash", 1);
    while (aliveServices(e2e.stack).length > 0 && Date.now() - started < 5000) await sleep(50);
    expect(aliveServices(e2e.stack)).toEqual([]); // delivered twice: both services died
    await e2e.stack.startService(FAULT_SERVICE); // its reclaimer finds the entry at its third delivery
    const dead = await waitForEntry(e2e.redis, "general:dead", (f) => f.entry_id === entry.id);
    expect(dead).toMatchObject({ rpc: "crash", reason: "exceeded maxDeliveries (2)", delivery_count: "2" });
    expect(await client.call({ ping: 1, req_id: 2 })).toMatchObject({ ping: "pong", req_id: 2 });
    expect(await client.next(8000)).toMatchObject({ msg_type: "crash", error: WRONG_RESPONSE, req_id: 1 });
    expect(aliveServices(e2e.stack)).toHaveLength(1);
    await client.close();
    await restoreServices();
  }, 20_000);
});
