/**
 * The gateway's consumer-groups backend with nothing faked: the core dispatcher, the backend, its Redis
 * port and the real `@upstash/redis` client set up by `createRedisClient` (no retries, a timeout per
 * call, base64 responses) against the bridge and a private redis-server, answered by the service SDK.
 * The backend class is runtime-neutral, so it runs here in Node; the workers-pool tests run the same class
 * in workerd on `FakeRedis` (see test/worker/README.md).
 *
 * Also the first row of the fault table in docs/operations.md: a REST call that never gets an answer
 * ends at `redisRequestTimeoutMs` with `WrongResponse` for the client, and leaves nothing open behind.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ConsumerGroupsBackend, type ConsumerGroupsOptions } from "../../src/backends/index.js";
import { createRpcService, type RpcHandlers, type RpcService } from "../../src/consumer/index.js";
import { createDispatcher, createMemoryConnection, type Backend } from "../../src/core/index.js";
import { startBridgeFixture, TOKEN, type BridgeFixture } from "./helpers.js";
import { waitFor } from "../support/wait.js";
import { quietLogger } from "../core/helpers.js";

/** A dispatcher serving `ping` through `backend`, and one client connection. */
function gatewayOn(backend: Backend) {
  const logger = quietLogger();
  const dispatcher = createDispatcher({ actions: [["ping"]] }, { default: backend }, { logger });
  const conn = createMemoryConnection();
  const send = (frame: unknown) => dispatcher.handleFrame(conn, JSON.stringify(frame));
  return { conn, send, logger };
}

const closers: (() => unknown)[] = [];

/**
 * A service answering `handlers` natively (next to Redis) and a gateway backend on the real REST client
 * against the fixture's bridge, both on a fresh stream prefix; both closed after the test.
 */
async function serviceAndBackend(
  fixture: BridgeFixture,
  handlers: RpcHandlers,
  backendOptions: Partial<ConsumerGroupsOptions> = {},
) {
  const streamPrefix = `gb${randomUUID().slice(0, 8)}:`;
  const service: RpcService = createRpcService({
    redis: fixture.redis.url,
    streamPrefix,
    handlers,
    logger: () => undefined,
  });
  await service.start();
  closers.push(() => service.close());
  const backend = new ConsumerGroupsBackend({
    redisUrl: fixture.bridge.url,
    redisToken: TOKEN,
    streamPrefix,
    objectId: "node",
    timeout: 20,
    logger: quietLogger(),
    ...backendOptions,
  });
  closers.push(() => backend.close());
  return backend;
}
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

describe("the consumer-groups backend on the real Redis client, the bridge and a service", () => {
  let fixture: BridgeFixture;
  beforeAll(async () => {
    fixture = await startBridgeFixture();
  });
  afterAll(async () => {
    await fixture?.stop();
  });

  it("writes the entry with the real client and receives the service's reply, bytes intact", async () => {
    const text = 'héllo ✓ 😀 \u0000 "quoted" \\ end';
    const backend = await serviceAndBackend(fixture, { ping: (args) => ({ text, args }) });
    const { conn, send } = gatewayOn(backend);

    await send({ ping: 1, req_id: 7, note: text });
    await waitFor(() => conn.sent.length === 1, 15_000);
    expect(conn.sent[0]).toMatchObject({
      msg_type: "ping",
      req_id: 7,
      // The handler gets the call's params: the client's frame under `args`.
      ping: { text, args: { args: { ping: 1, req_id: 7, note: text } } },
    });
    // One XADD (with the first XTRIM in the same /pipeline request) and LPOPs, all through the port.
    expect(backend.stats()).toMatchObject({ redisInFlight: 0 });
    expect(backend.stats().redisCommandsSent).toBeGreaterThanOrEqual(3);
  });
});

describe("a distant Redis (the bridge simulating a 200 ms round trip)", () => {
  let fixture: BridgeFixture;
  beforeAll(async () => {
    fixture = await startBridgeFixture({ latencyMs: 200 });
  });
  afterAll(async () => {
    await fixture?.stop();
  });

  it("sends the first LPOP before the XADD's answer is back, and takes the reply with it", async () => {
    // The service reads natively (next to Redis): it answers within milliseconds of the entry's arrival.
    const backend = await serviceAndBackend(
      fixture,
      { ping: () => "pong" },
      // The service gets 50 ms, however busy the machine; still well before the 200 ms acknowledgement.
      { pollInitialDelayMs: 50 },
    );
    const { conn, send } = gatewayOn(backend);

    // The first request teaches the object the round trip: it is polled at its acknowledgement.
    await send({ ping: 1, req_id: 1 });
    await waitFor(() => conn.sent.length === 1, 15_000);
    expect(backend.stats()).toMatchObject({ polls: 1, earlyPolls: 0, emptyPolls: 0 });

    await send({ ping: 1, req_id: 2 });
    await waitFor(() => conn.sent.length === 2, 15_000);
    expect(conn.sent[1]).toMatchObject({ msg_type: "ping", ping: "pong", req_id: 2 });
    // One poll for it, sent before the acknowledgement, and it found the reply: nothing at the ack.
    expect(backend.stats()).toMatchObject({ polls: 2, earlyPolls: 1, emptyPolls: 0 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(backend.stats()).toMatchObject({ polls: 2, redisInFlight: 0 });
  });

  it("drains a backlog of replies with several LPOPs in flight, each a request of its own", async () => {
    const backend = await serviceAndBackend(
      fixture,
      { ping: () => "pong" },
      // Two replies per LPOP: twelve waiting replies are a backlog of six full batches.
      { pollBatchSize: 2, pollMaxInFlight: 3 },
    );
    const { conn, send } = gatewayOn(backend);
    await Promise.all(Array.from({ length: 12 }, (_, index) => send({ ping: 1, req_id: index + 1 })));
    await waitFor(() => conn.sent.length === 12, 15_000);
    expect(
      conn.sent.map((frame) => (frame as { req_id?: number }).req_id).sort((a, b) => (a ?? 0) - (b ?? 0)),
    ).toEqual(Array.from({ length: 12 }, (_, index) => index + 1));
    expect(conn.sent.every((frame) => (frame as { ping?: unknown }).ping === "pong")).toBe(true);
    const stats = backend.stats();
    // The first full batch started two more LPOPs beside the next: three requests to Redis at once, and
    // six full batches with none empty (about three round trips of 200 ms instead of six).
    expect(stats.concurrentPolls).toBe(2);
    expect(stats.maxRedisInFlight).toBe(3);
    expect(stats).toMatchObject({ polls: 6, emptyPolls: 0, redisInFlight: 0 });
  });
});

/**
 * An HTTP server that accepts every request and never answers it (a hung bridge), or with `reset`, drops
 * the connection of every request (a bridge failing mid-request).
 */
async function brokenBridge(
  reset = false,
): Promise<{ url: string; requests: () => number; openSockets: () => number }> {
  let requests = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((request) => {
    requests += 1; // and never a response
    if (reset) request.socket.destroy();
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, requests: () => requests, openSockets: () => sockets.size };
}

describe("a hung REST call (docs/operations.md, fault table)", () => {
  it("ends at redisRequestTimeoutMs: WrongResponse for the client, the connection closed, the slot freed", async () => {
    const hung = await brokenBridge();
    const requestTimeoutMs = 1_500;
    const backend = new ConsumerGroupsBackend({
      redisUrl: hung.url,
      redisToken: TOKEN,
      objectId: "hung",
      // The reply wait is far longer than the Redis timeout: only the latter can end these calls.
      timeout: 120,
      redisRequestTimeoutMs: requestTimeoutMs,
      // One connection: the second call can only be sent once the first hung request gave it back.
      maxRedisConnections: 1,
      logger: quietLogger(),
    });
    closers.push(() => backend.close());
    const { conn, send, logger } = gatewayOn(backend);

    for (const reqId of [1, 2]) {
      const started = Date.now();
      await send({ ping: 1, req_id: reqId });
      await waitFor(() => conn.sent.length === reqId, 20_000);
      const elapsed = Date.now() - started;
      expect(conn.sent[reqId - 1]).toMatchObject({
        msg_type: "ping",
        req_id: reqId,
        error: { code: "WrongResponse" },
      });
      // Not before the timeout, and nowhere near the 120 s reply wait (generous: a busy 2-core machine).
      expect(elapsed).toBeGreaterThanOrEqual(requestTimeoutMs - 100);
      expect(elapsed).toBeLessThan(requestTimeoutMs + 8_000);
      expect(hung.requests()).toBe(reqId);
      // The request was aborted, not abandoned: its connection to the hung server is closed.
      await waitFor(() => hung.openSockets() === 0, 10_000);
      expect(backend.stats()).toMatchObject({ redisInFlight: 0, queuedCommands: 0 });
    }
    // Ended by the client's own per-call timeout signal, not by the port's later backstop.
    expect(logger.warn.mock.calls.map(([line]) => line)).toEqual([
      expect.stringMatching(/RedisError: XADD general failed: TimeoutError/),
      expect.stringMatching(/RedisError: XADD general failed: TimeoutError/),
    ]);
  });
});

describe("no retries", () => {
  it("sends a failed XADD once: the client gets WrongResponse, the bridge saw one request", async () => {
    const broken = await brokenBridge(true);
    const backend = new ConsumerGroupsBackend({
      redisUrl: broken.url,
      redisToken: TOKEN,
      objectId: "reset",
      timeout: 120,
      logger: quietLogger(),
    });
    closers.push(() => backend.close());
    const { conn, send } = gatewayOn(backend);
    await send({ ping: 1, req_id: 1 });
    await waitFor(() => conn.sent.length === 1, 20_000);
    expect(conn.sent[0]).toMatchObject({ req_id: 1, error: { code: "WrongResponse" } });
    // A retry could run the RPC twice when the first attempt did land (see createRedisClient).
    expect(broken.requests()).toBe(1);
  });
});
