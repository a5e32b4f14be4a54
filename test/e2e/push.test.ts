/**
 * Server push on the real stack (docs/push.md): redis-server, the bridge, the example service (its `ticks`
 * pushes a tick every 100 ms, with each push attempt logged by test/e2e/push-service.ts) and the example
 * deployment under `wrangler dev`, driven by `ws` clients and by `npm run call`.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { describe, expect, it } from "vitest";
import { CommandStats, splitDelta } from "../../bench/command-stats.js";
import { PROJECT_ROOT } from "../../src/devstack/stack.js";
import { connect, readStream, useE2eStack, waitForEntry, type Client, type Frame } from "./helpers.js";
import { sleep, waitFor } from "../support/wait.js";

const service = { args: ["--module", join(PROJECT_ROOT, "test/e2e/push-service.ts")] };
/** Longer than SUBSCRIPTION_REGISTRATION_GRACE_MS (3 s), during which the SDK retries a 410. */
const SETTLE_AFTER_GONE_MS = 4500;

/** Per subscription id, the statuses of the service's push attempts, in order. */
const attempts = new Map<string, string[]>();

const e2e = useE2eStack({
  service,
  worker: "example",
  log: (line) => {
    const match = /push-attempt (\S+) (\S+)/.exec(line);
    if (match) attempts.set(match[1]!, [...(attempts.get(match[1]!) ?? []), match[2]!]);
  },
});

/** The next frame that is not a pushed tick of an already known subscription (skips ticks in flight). */
async function nextOtherThanTicks(client: Client, timeoutMs = 10_000): Promise<Frame> {
  for (;;) {
    const frame = await client.next(timeoutMs);
    if (frame.msg_type !== "tick") return frame;
  }
}

/** Waits until the service's attempts for `id` ended with a 410 and stopped; returns how many there were. */
async function servicePushesStopped(id: string): Promise<string[]> {
  await waitFor(() => attempts.get(id)?.at(-1) === "410", 15_000, 50);
  await sleep(SETTLE_AFTER_GONE_MS);
  const settled = [...(attempts.get(id) ?? [])];
  await sleep(1500);
  expect(attempts.get(id)).toEqual(settled);
  expect(settled.at(-1)).toBe("410");
  return settled;
}

/** Subscribes to ticks on `client`; returns the subscription id from the reply. */
async function subscribeTicks(client: Client, reqId: number): Promise<string> {
  const reply = await client.call({ ticks: "R_100", subscribe: 1, req_id: reqId }, 10_000);
  const id = (reply.subscription as { id?: string } | undefined)?.id;
  expect(id).toMatch(/^[0-9a-f]{32}$/);
  return id!;
}

describe("server push on the real stack", () => {
  it("streams a subscription's ticks with its req_id, echo_req and id until forget, and the service stops", async () => {
    const client = await connect(e2e.worker.wsUrl);
    const reply = await client.call({ ticks: "R_100", subscribe: 1, req_id: 7 }, 10_000);
    const id = (reply.subscription as { id: string }).id;
    expect(reply).toEqual({
      msg_type: "tick",
      tick: { symbol: "R_100", quote: expect.any(Number), epoch: expect.any(Number), id },
      subscription: { id },
      echo_req: { ticks: "R_100", subscribe: 1, req_id: 7 },
      req_id: 7,
    });
    expect(id).toMatch(/^[0-9a-f]{32}$/);

    const pushed: Frame[] = [];
    for (let i = 0; i < 5; i++) pushed.push(await client.next(10_000));
    for (const frame of pushed) {
      expect(frame).toEqual({
        msg_type: "tick",
        tick: { symbol: "R_100", quote: expect.any(Number), epoch: expect.any(Number), id },
        subscription: { id },
        echo_req: { ticks: "R_100", subscribe: 1, req_id: 7 },
        req_id: 7,
      });
    }

    client.ws.send(JSON.stringify({ forget: id, req_id: 8 }));
    expect(await nextOtherThanTicks(client)).toEqual({
      msg_type: "forget",
      forget: 1,
      echo_req: { forget: id, req_id: 8 },
      req_id: 8,
    });
    const tried = await servicePushesStopped(id);
    expect(tried.filter((status) => status === "202").length).toBeGreaterThanOrEqual(5);
    // Nothing after the forget reply reached the client.
    expect(client.queued).toEqual([]);
    // Forgetting it again finds nothing.
    expect(await client.call({ forget: id })).toMatchObject({ msg_type: "forget", forget: 0 });
    await client.close();
  }, 60_000);

  it('forget_all: "ticks" ends every ticks subscription of the connection and only those', async () => {
    const client = await connect(e2e.worker.wsUrl);
    const other = await connect(e2e.worker.wsUrl);
    const first = await subscribeTicks(client, 1);
    const second = await subscribeTicks(client, 2);
    const elsewhere = await subscribeTicks(other, 3);
    await waitFor(() => client.queued.length >= 4, 10_000);
    client.ws.send(JSON.stringify({ forget_all: "ticks", req_id: 4 }));
    const answer = await nextOtherThanTicks(client);
    expect(answer).toMatchObject({ msg_type: "forget_all", req_id: 4 });
    expect([...(answer.forget_all as string[])].sort()).toEqual([first, second].sort());
    await Promise.all([servicePushesStopped(first), servicePushesStopped(second)]);
    expect(client.queued).toEqual([]);
    // The other connection's subscription still streams.
    other.queued.length = 0;
    const frame = await other.next(10_000);
    expect(frame).toMatchObject({ subscription: { id: elsewhere }, req_id: 3 });
    await other.close();
    await servicePushesStopped(elsewhere);
    await client.close();
  }, 60_000);

  it("ends the subscription when the client closes: the service gets 410 and stops", async () => {
    const client = await connect(e2e.worker.wsUrl);
    const id = await subscribeTicks(client, 1);
    await client.next(10_000);
    await client.close();
    const tried = await servicePushesStopped(id);
    expect(tried).toContain("202");
  }, 60_000);

  it("without subscribe sends one tick and no subscription", async () => {
    const client = await connect(e2e.worker.wsUrl);
    const reply = await client.call({ ticks: "R_50", req_id: 9 }, 10_000);
    expect(reply).toEqual({
      msg_type: "tick",
      tick: { symbol: "R_50", quote: expect.any(Number), epoch: expect.any(Number) },
      echo_req: { ticks: "R_50", req_id: 9 },
      req_id: 9,
    });
    await sleep(1000);
    expect(client.queued).toEqual([]);
    await client.close();
  }, 30_000);

  it("sends no gateway-side Redis command while only pushes flow", async () => {
    const clients = await Promise.all([
      connect(e2e.worker.wsUrl),
      connect(e2e.worker.wsUrl),
      connect(e2e.worker.wsUrl),
    ]);
    const ids = await Promise.all(clients.map((client, i) => subscribeTicks(client, i + 1)));
    // The requests' own reply polls end with their replies; give them a moment.
    await sleep(2000);
    const stats = new CommandStats(e2e.stack.redis.url);
    try {
      const before = await stats.snapshot();
      for (const client of clients) client.queued.length = 0;
      await sleep(3000);
      const after = await stats.snapshot();
      const split = splitDelta(before, after);
      expect(split.caller).toEqual({ total: 0, byCommand: {} });
      // Pushes did flow: about 30 per subscription over the window; at least 10 each, generously.
      clients.forEach((client, i) => {
        expect(client.queued.length).toBeGreaterThanOrEqual(10);
        for (const frame of client.queued) expect(frame).toMatchObject({ subscription: { id: ids[i] } });
      });
    } finally {
      stats.close();
    }
    await Promise.all(clients.map((client) => client.close()));
  }, 60_000);

  it("streams with npm run call until Ctrl-C, which ends the subscription", async () => {
    // What `npm run call` runs: one process, so Ctrl-C reaches the CLI itself.
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        join(PROJECT_ROOT, "src/call/cli.ts"),
        "--url",
        e2e.worker.wsUrl,
        '{"ticks":"R_100","subscribe":1}',
      ],
      { detached: true, stdio: ["ignore", "pipe", "pipe"] },
    );
    const lines: string[] = [];
    createInterface({ input: child.stdout }).on("line", (line) => lines.push(line));
    const exited = new Promise<number | string>((resolve) =>
      child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")),
    );
    try {
      await waitFor(() => lines.length >= 4, 30_000);
      const frames = lines.map((line) => JSON.parse(line) as Frame);
      const id = (frames[0]?.subscription as { id: string }).id;
      expect(id).toMatch(/^[0-9a-f]{32}$/);
      for (const frame of frames) {
        expect(frame).toMatchObject({ msg_type: "tick", subscription: { id }, req_id: 1, tick: { id } });
      }
      // Ctrl-C at a terminal signals the whole foreground process group.
      process.kill(-child.pid!, "SIGINT");
      expect(await exited).toBe(0);
      await servicePushesStopped(id);
    } finally {
      if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, "SIGKILL");
    }
  }, 60_000);

  it("a push wakes a hibernated object, and the subscription survived in the socket attachment", async () => {
    const client = await connect(e2e.worker.wsUrl);
    const id = await subscribeTicks(client, 11);
    const entry = await waitForEntry(
      e2e.redis,
      "general",
      (fields) => fields.args?.includes('"req_id":11') ?? false,
    );
    const connection = entry.connection ?? "";
    expect(connection).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/connections\/[^/]+$/);
    // Stop the service, so nothing pushes, then leave the object idle past local workerd's ~10 s eviction.
    // A hibernated object keeps its sockets and their serializeAttachment values ("WebSockets", Durable
    // Objects API, https://developers.cloudflare.com/durable-objects/api/websockets/).
    await e2e.stack.services[0]?.stop();
    await sleep(16_000);
    client.queued.length = 0;

    const response = await fetch(`${connection}/messages`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ subscription: id, data: { symbol: "R_100", quote: 1, woke: true } }),
    });
    expect(response.status).toBe(202);
    expect(await client.next(10_000)).toEqual({
      msg_type: "tick",
      tick: { symbol: "R_100", quote: 1, woke: true },
      subscription: { id },
      echo_req: { ticks: "R_100", subscribe: 1, req_id: 11 },
      req_id: 11,
    });

    // It was evicted: the object that answers now is a new incarnation, with a new reply key.
    await e2e.stack.startService(service);
    expect(await client.call({ ping: 1, req_id: 12 }, 10_000)).toMatchObject({ ping: "pong" });
    const entries = await readStream(e2e.redis, "general");
    const ping = entries.find((fields) => fields.rpc === "ping" && fields.args?.includes('"req_id":12'));
    expect(ping?.who).toBeDefined();
    expect(ping?.who).not.toBe(entry.who);
    await client.close();
  }, 90_000);
});
