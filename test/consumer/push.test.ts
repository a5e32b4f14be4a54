/**
 * Server push from a service (PROTOCOL.md section 7): what the gateway's push endpoint receives from
 * `pushTo`, `createPusher`, `ctx.push` and `ctx.subscribe`, and what the service does with its answers
 * (202 sent, 410 gone, 5xx retried, other 4xx final). A real node:http server stands in for the gateway's
 * push endpoint; the service runs against a real redis-server.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { handlers as exampleHandlers } from "../../examples/example-service.js";
import {
  INTERNAL_ERROR_RESULT,
  MAX_PUSH_BATCH,
  PushError,
  PushGoneError,
  createPusher,
  pushTo,
  type RpcContext,
  type Subscription,
} from "../../src/consumer/index.js";
import { entryFields } from "../../src/wire/index.js";
import { ServiceHarness, interceptedTransport, startTestRedis, type TestRedis } from "./helpers.js";
import { waitFor } from "../support/wait.js";

/** One request the stand-in push endpoint received. */
interface ReceivedPush {
  path: string;
  authorization: string | undefined;
  body: Record<string, unknown>;
}

/** A node:http server answering pushes like the gateway: `answer` picks the status of each request. */
class PushEndpoint {
  readonly received: ReceivedPush[] = [];
  /** The content-type header of each request. */
  readonly contentTypes: (string | undefined)[] = [];
  /** The status (and body) of each answer; `"hang"` never answers. */
  answer: (push: ReceivedPush) => number | { status: number; body: unknown } | "hang" = () => 202;
  private constructor(private readonly server: Server) {}

  static async start(): Promise<PushEndpoint> {
    const server = createServer();
    const endpoint = new PushEndpoint(server);
    server.on("request", (request: IncomingMessage, response) => {
      let text = "";
      request.on("data", (chunk) => (text += chunk));
      request.on("end", () => {
        const push = {
          path: request.url ?? "",
          authorization: request.headers.authorization,
          body: JSON.parse(text) as Record<string, unknown>,
        };
        endpoint.received.push(push);
        endpoint.contentTypes.push(request.headers["content-type"]);
        const answer = endpoint.answer(push);
        if (answer === "hang") return;
        const { status, body } = typeof answer === "number" ? { status: answer, body: {} } : answer;
        response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return endpoint;
  }

  get origin(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** A push URL as the gateway writes it into an entry. */
  connection(ref = "b2JqZWN0.1.0123456789abcdef0123456789abcdef"): string {
    return `${this.origin}/connections/${ref}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

let endpoint: PushEndpoint;
beforeEach(async () => {
  endpoint = await PushEndpoint.start();
});
afterEach(async () => {
  await endpoint.close();
});

describe("pushTo and createPusher", () => {
  const fast = { retryMinMs: 5, retryMaxMs: 20 };

  it("posts the message to <connection>/messages with the secret; a 410 rejects with PushGoneError at once", async () => {
    endpoint.answer = () => 410;
    const connection = endpoint.connection();
    const error = await pushTo(connection, { frame: { msg_type: "notice" } }, { secret: "s3", ...fast }).then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(PushGoneError);
    expect(error).toBeInstanceOf(PushError);
    expect(error).toMatchObject({
      name: "PushGoneError",
      status: 410,
      message: "the connection is closed or the subscription was forgotten (410)",
    });
    expect(endpoint.received).toEqual([
      {
        path: new URL(`${connection}/messages`).pathname,
        authorization: "Bearer s3",
        body: { frame: { msg_type: "notice" } },
      },
    ]);
  });

  it("retries 5xx answers: 500 twice then 202 resolves", async () => {
    endpoint.answer = () => (endpoint.received.length <= 2 ? 500 : 202);
    await pushTo(endpoint.connection(), { subscription: "abc", data: { quote: 1 } }, fast);
    expect(endpoint.received).toHaveLength(3);
    for (const push of endpoint.received)
      expect(push.body).toEqual({ subscription: "abc", data: { quote: 1 } });
  });

  it("gives up after `retries` with PushError(500), and never retries another 4xx", async () => {
    endpoint.answer = () => 500;
    await expect(pushTo(endpoint.connection(), { frame: {} }, { ...fast, retries: 2 })).rejects.toMatchObject(
      {
        name: "PushError",
        status: 500,
      },
    );
    expect(endpoint.received).toHaveLength(3);
    endpoint.received.length = 0;
    endpoint.answer = () => 413;
    await expect(pushTo(endpoint.connection(), { frame: {} }, fast)).rejects.toMatchObject({ status: 413 });
    expect(endpoint.received).toHaveLength(1);
  });

  it("retries network errors, then rejects with a PushError without status", async () => {
    const address = endpoint.connection();
    await endpoint.close();
    let attempts = 0;
    const counting: typeof fetch = (input, init) => {
      attempts++;
      return fetch(input, init);
    };
    const error = await pushTo(address, { frame: {} }, { ...fast, retries: 2, fetch: counting }).catch(
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(PushError);
    expect((error as PushError).status).toBeUndefined();
    expect(attempts).toBe(3);
    endpoint = await PushEndpoint.start();
  });

  it("fans out in one batch request per gateway and answers each message's status in order", async () => {
    endpoint.answer = (push) => ({
      status: 200,
      body: { results: (push.body.messages as unknown[]).map((_, i) => ({ status: i === 1 ? 410 : 202 })) },
    });
    const results = await createPusher(fast).pushBatch([
      { connection: endpoint.connection("a.1.00000000000000000000000000000001"), frame: { n: 1 } },
      { connection: endpoint.connection("b.2.00000000000000000000000000000002"), subscription: "s", data: 2 },
      { connection: endpoint.connection("c.3.00000000000000000000000000000003"), frame: { n: 3 } },
    ]);
    expect(results).toEqual([{ status: 202 }, { status: 410 }, { status: 202 }]);
    expect(endpoint.received).toHaveLength(1);
    expect(endpoint.received[0]?.path).toBe("/connections/messages");
    expect((endpoint.received[0]?.body.messages as unknown[])[1]).toEqual({
      connection: endpoint.connection("b.2.00000000000000000000000000000002"),
      subscription: "s",
      data: 2,
    });
  });

  it("sends a large fan-out as several batch requests a few at a time, each message's status in order", async () => {
    endpoint.answer = (push) => ({
      status: 200,
      body: {
        results: (push.body.messages as Array<{ frame: { n: number } }>).map((message) => ({
          status: message.frame.n % 7 === 0 ? 410 : 202,
        })),
      },
    });
    let inFlight = 0;
    let maxInFlight = 0;
    const countingFetch: typeof fetch = async (input, init) => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        // Held a little, so requests sent one after another could never overlap.
        await new Promise((resolve) => setTimeout(resolve, 50));
        return await fetch(input, init);
      } finally {
        inFlight -= 1;
      }
    };
    const messages = Array.from({ length: 3_000 }, (_, n) => ({
      connection: endpoint.connection(`a.${n}.00000000000000000000000000000001`),
      frame: { n },
    }));
    const results = await createPusher({ ...fast, fetch: countingFetch }).pushBatch(messages);
    expect(endpoint.received.map((push) => (push.body.messages as unknown[]).length)).toEqual(
      Array(6).fill(MAX_PUSH_BATCH),
    );
    expect(results.map((result) => result.status)).toEqual(messages.map((_, n) => (n % 7 === 0 ? 410 : 202)));
    expect(maxInFlight).toBeGreaterThan(1);
    expect(maxInFlight).toBeLessThanOrEqual(4);
  });
});

describe("pusher options and push URLs", () => {
  const fast = { retryMinMs: 5, retryMaxMs: 20 };
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it.each([
    [{ retries: -1 }, /`retries`/],
    [{ retries: 1.5 }, /`retries`/],
    [{ retryMinMs: 0 }, /`retryMinMs`/],
    [{ retryMaxMs: Number.NaN }, /`retryMaxMs`/],
    [{ timeoutMs: -5 }, /`timeoutMs`/],
  ])("createPusher(%j) throws a TypeError naming the option", (options, message) => {
    expect(() => createPusher(options)).toThrow(message);
  });

  it("refuses a connection that is not <origin>/connections/<ref>, and drops a trailing slash", async () => {
    await expect(pushTo(`${endpoint.origin}/elsewhere/abc`, { frame: {} }, fast)).rejects.toThrow(TypeError);
    await expect(
      createPusher(fast).pushBatch([{ connection: "connections/abc", frame: {} }]),
    ).rejects.toThrow(TypeError);
    expect(endpoint.received).toEqual([]);
    await pushTo(`${endpoint.connection()}/`, { frame: {} }, fast);
    expect(endpoint.received.map((push) => push.path)).toEqual([
      `${new URL(endpoint.connection()).pathname}/messages`,
    ]);
  });

  it("takes a push URL under a path prefix, batching to that gateway's prefix; refuses a URL with more after the ref", async () => {
    const prefixed = `${endpoint.origin}/gw/v1/connections/a.1.00000000000000000000000000000001`;
    await pushTo(prefixed, { frame: {} }, fast);
    endpoint.answer = () => ({ status: 200, body: { results: [{ status: 202 }] } });
    await createPusher(fast).pushBatch([{ connection: prefixed, frame: {} }]);
    expect(endpoint.received.map((push) => push.path)).toEqual([
      "/gw/v1/connections/a.1.00000000000000000000000000000001/messages",
      "/gw/v1/connections/messages",
    ]);
    for (const connection of [
      `${endpoint.connection()}/extra`,
      `ftp://127.0.0.1/connections/abc`,
      `see ${endpoint.connection()}`,
      `${endpoint.origin}/connections/`,
    ]) {
      await expect(pushTo(connection, { frame: {} }, fast)).rejects.toThrow(
        `not a push URL (<origin>/connections/<ref>): ${connection}`,
      );
    }
    expect(endpoint.received).toHaveLength(2);
  });

  it("says why a push failed: the refusing status and body, or the network error and its cause", async () => {
    endpoint.answer = () => ({ status: 413, body: { error: "too large" } });
    await expect(pushTo(endpoint.connection(), { frame: {} }, fast)).rejects.toThrow(
      'push refused: 413 {"error":"too large"}',
    );
    const address = endpoint.connection();
    await endpoint.close();
    const error = (await pushTo(address, { frame: {} }, { ...fast, retries: 0 }).catch(
      (reason: unknown) => reason,
    )) as PushError;
    expect(error.message).toMatch(/^push failed: TypeError: fetch failed \(.*ECONNREFUSED.*\)$/);
    expect(error.cause).toBeInstanceOf(TypeError);
    endpoint = await PushEndpoint.start();
  });

  it("posts JSON with its content type, and cuts a long refusal's body to 200 characters in the error", async () => {
    const long = "x".repeat(1000);
    endpoint.answer = () => ({ status: 400, body: long });
    const error = (await pushTo(endpoint.connection(), { frame: {} }, fast).catch(
      (reason: unknown) => reason,
    )) as PushError;
    expect(error.message).toBe(`push refused: 400 ${JSON.stringify(long).slice(0, 200)}`);
    expect(endpoint.contentTypes).toEqual(["application/json"]);
  });

  it("a batch answer that is empty or has no results list rejects with a PushError naming it", async () => {
    const messages = [
      { connection: endpoint.connection(), frame: { n: 1 } },
      { connection: endpoint.connection(), frame: { n: 2 } },
    ];
    endpoint.answer = () => ({ status: 200, body: undefined });
    await expect(createPusher(fast).pushBatch(messages)).rejects.toThrow(
      new PushError("batch push: expected 2 results, got undefined", 200),
    );
    endpoint.answer = () => ({ status: 200, body: { sent: 2 } });
    await expect(createPusher(fast).pushBatch(messages)).rejects.toThrow(
      'batch push: expected 2 results, got {"sent":2}',
    );
  });

  it("refuses a push URL that is not a string, even one that prints as a push URL", async () => {
    const url = new URL(endpoint.connection());
    await expect(pushTo(url as unknown as string, { frame: {} }, fast)).rejects.toThrow(
      new TypeError(`not a push URL (<origin>/connections/<ref>): ${url.href}`),
    );
    expect(endpoint.received).toEqual([]);
  });

  it("names what a fetch threw that is not an Error", async () => {
    const throwing: typeof fetch = () => Promise.reject("socket hung up");
    await expect(
      pushTo(endpoint.connection(), { frame: {} }, { ...fast, retries: 0, fetch: throwing }),
    ).rejects.toThrow(new PushError("push failed: socket hung up", undefined));
  });

  it("an option given as undefined keeps its default", async () => {
    endpoint.answer = () => (endpoint.received.length <= 3 ? 500 : 202);
    await createPusher({ ...fast, retries: undefined, timeoutMs: undefined }).push(endpoint.connection(), {
      frame: {},
    });
    // The default 3 retries: the fourth attempt went through.
    expect(endpoint.received).toHaveLength(4);
  });

  it("the caller's signal also cuts short an attempt the gateway has not answered yet", async () => {
    const caller = new AbortController();
    endpoint.answer = () => {
      caller.abort(new Error("caller gave up"));
      return "hang";
    };
    // Without the signal on the request itself this would wait out the minute-long attempt timeout.
    await expect(
      pushTo(endpoint.connection(), { frame: {} }, { ...fast, timeoutMs: 60_000, signal: caller.signal }),
    ).rejects.toThrow("caller gave up");
    expect(endpoint.received).toHaveLength(1);
  });

  it("sends the secret from PUSH_SECRET by default, and no authorization header without a secret", async () => {
    vi.stubEnv("PUSH_SECRET", "from-env");
    await pushTo(endpoint.connection(), { frame: {} }, fast);
    vi.stubEnv("PUSH_SECRET", "");
    await pushTo(endpoint.connection(), { frame: {} }, fast);
    expect(endpoint.received.map((push) => push.authorization)).toEqual(["Bearer from-env", undefined]);
  });

  it("abandons an attempt the gateway does not answer within timeoutMs, retries it, then rejects without status", async () => {
    endpoint.answer = () => "hang";
    const error = await pushTo(
      endpoint.connection(),
      { frame: {} },
      { ...fast, retries: 1, timeoutMs: 200 },
    ).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(PushError);
    expect((error as PushError).status).toBeUndefined();
    expect((error as PushError).message).toMatch(/^push failed: TimeoutError: [^()]*timeout$/);
    expect(endpoint.received).toHaveLength(2);
  });

  it("stops retrying once the caller's signal fires, rejecting with its reason", async () => {
    const caller = new AbortController();
    endpoint.answer = () => {
      caller.abort(new Error("caller gave up"));
      return 500;
    };
    await expect(
      pushTo(endpoint.connection(), { frame: {} }, { ...fast, retries: 5, signal: caller.signal }),
    ).rejects.toThrow("caller gave up");
    expect(endpoint.received).toHaveLength(1);
  });

  it("sends one batch request per gateway, and rejects a batch answer without one result per message", async () => {
    const other = await PushEndpoint.start();
    try {
      const answerAll = (push: ReceivedPush) => ({
        status: 200,
        body: { results: (push.body.messages as unknown[]).map(() => ({ status: 202 })) },
      });
      endpoint.answer = answerAll;
      other.answer = answerAll;
      const results = await createPusher(fast).pushBatch([
        { connection: endpoint.connection("a.1.00000000000000000000000000000001"), frame: { n: 1 } },
        { connection: other.connection("b.2.00000000000000000000000000000002"), frame: { n: 2 } },
        { connection: endpoint.connection("c.3.00000000000000000000000000000003"), frame: { n: 3 } },
      ]);
      expect(results).toEqual([{ status: 202 }, { status: 202 }, { status: 202 }]);
      expect(endpoint.received.map((push) => (push.body.messages as unknown[]).length)).toEqual([2]);
      expect(other.received.map((push) => (push.body.messages as unknown[]).length)).toEqual([1]);
      endpoint.answer = () => ({ status: 200, body: { results: [{ status: 202 }] } });
      await expect(
        createPusher(fast).pushBatch([
          { connection: endpoint.connection(), frame: { n: 1 } },
          { connection: endpoint.connection(), frame: { n: 2 } },
        ]),
      ).rejects.toBeInstanceOf(PushError);
    } finally {
      await other.close();
    }
  });
});

describe("push from handlers", () => {
  let redis: TestRedis;
  let harness: ServiceHarness;
  let nextId = 1;
  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  beforeEach(() => {
    harness = new ServiceHarness(redis, "native");
  });
  afterEach(async () => {
    await harness.closeAll();
  });

  /** Writes an entry as the gateway does, with the connection's push URL when given; returns message_id. */
  async function send(method: string, frame: Record<string, unknown>, connection?: string): Promise<string> {
    const messageId = `m${nextId++}`;
    const entry = {
      method,
      who: harness.gateway.who,
      deadline: Math.floor(Date.now() / 1000) + 30,
      args: { args: frame },
      connection,
    };
    await redis.client.xadd(`${harness.streamPrefix}general`, "*", ...entryFields(entry, messageId));
    return messageId;
  }

  async function replyTo(
    messageId: string,
  ): Promise<{ response: { result?: unknown }; subscription?: unknown }> {
    const reply = (await harness.gateway.replies(1)).get(messageId);
    if (!reply) throw new Error(`no reply to ${messageId}`);
    return reply as { response: { result?: unknown }; subscription?: unknown };
  }

  it("gives ctx.connection from the entry's connection field (undefined without one)", async () => {
    const seen: (string | undefined)[] = [];
    await harness.start({ handlers: { where: (_, ctx) => (seen.push(ctx.connection), "ok") } });
    await replyTo(await send("where", { where: 1 }, endpoint.connection()));
    await replyTo(await send("where", { where: 1 }));
    expect(seen).toEqual([endpoint.connection(), undefined]);
  });

  it("subscribe: the reply carries subscription.id, later pushes carry it, ctx.push sends a raw frame", async () => {
    let subscription: Subscription | undefined;
    let ctxOf: RpcContext | undefined;
    await harness.start({
      handlers: {
        watch: (_, ctx) => {
          subscription = ctx.subscribe();
          expect(ctx.subscribe()).toBe(subscription);
          ctxOf = ctx;
          return { first: true };
        },
      },
    });
    const connection = endpoint.connection();
    const reply = await replyTo(await send("watch", { watch: 1, subscribe: 1 }, connection));
    expect(subscription?.id).toMatch(/^[0-9a-f]{32}$/);
    expect(reply.subscription).toEqual({ id: subscription?.id });
    expect(reply.response.result).toEqual({ first: true });
    await subscription?.push({ second: true });
    await ctxOf?.push({ msg_type: "notice", text: "hi" });
    expect(endpoint.received.map((push) => [push.path, push.body])).toEqual([
      [
        `${new URL(connection).pathname}/messages`,
        { subscription: subscription?.id, data: { second: true } },
      ],
      [`${new URL(connection).pathname}/messages`, { frame: { msg_type: "notice", text: "hi" } }],
    ]);
  });

  it("no subscription without subscribe: 1, and none when the reply is an error (its pushes are gone at once)", async () => {
    let refused: Subscription | undefined;
    await harness.start({
      handlers: {
        watch: (_, ctx) => (ctx.subscribe(), "never"),
        refuse: (_, ctx) => {
          refused = ctx.subscribe();
          return { error: { code: "InvalidSymbol", message_to_client: "no such symbol" } };
        },
      },
    });
    const plain = await replyTo(await send("watch", { watch: 1 }, endpoint.connection()));
    expect(plain.response.result).toEqual(INTERNAL_ERROR_RESULT);
    expect(plain.subscription).toBeUndefined();
    // The developer learns why from the log line of the failed handler.
    expect(harness.logs).toContainEqual(
      expect.objectContaining({
        msg: "handler threw",
        error: 'Error: ctx.subscribe(): the request did not ask for "subscribe": 1',
      }),
    );
    const errorReply = await replyTo(
      await send("refuse", { refuse: 1, subscribe: 1 }, endpoint.connection()),
    );
    expect(errorReply.subscription).toBeUndefined();
    const late = refused?.push({ late: 1 });
    await expect(late).rejects.toBeInstanceOf(PushGoneError);
    await expect(late).rejects.toThrow("the subscription was never registered");
    expect(refused?.signal.aborted).toBe(true);
    expect(endpoint.received).toEqual([]);
  });

  it("no subscription when the handler returns nothing: the reply's result is null and its pushes are gone", async () => {
    let subscription: Subscription | undefined;
    await harness.start({
      handlers: {
        quiet: (_, ctx) => {
          subscription = ctx.subscribe();
          return undefined;
        },
      },
    });
    const reply = await replyTo(await send("quiet", { quiet: 1, subscribe: 1 }, endpoint.connection()));
    expect(reply.response.result).toBeNull();
    expect(reply.subscription).toBeUndefined();
    await expect(subscription?.push({ late: 1 })).rejects.toBeInstanceOf(PushGoneError);
    expect(subscription?.signal.aborted).toBe(true);
    expect(endpoint.received).toEqual([]);
  });

  it("ctx.subscribe() throws as soon as the handler returned, before its reply is written", async () => {
    let returned: RpcContext | undefined;
    let lateSubscribe: string | undefined;
    // Held at the reply batch: the handler has returned, its reply is not in Redis yet.
    const transport = interceptedTransport(redis.server.url, (sendBatch, commands) => {
      if (returned && lateSubscribe === undefined && commands.some(([name]) => name === "RPUSH")) {
        try {
          returned.subscribe();
          lateSubscribe = "no error";
        } catch (error) {
          lateSubscribe = (error as Error).message;
        }
      }
      return sendBatch();
    });
    await harness.start({ redis: transport, handlers: { done: (_, ctx) => ((returned = ctx), "ok") } });
    const reply = await replyTo(await send("done", { done: 1, subscribe: 1 }, endpoint.connection()));
    expect(lateSubscribe).toBe("ctx.subscribe(): the handler already returned");
    expect(reply.subscription).toBeUndefined();
  });

  it("close() stops a ctx.push() and a subscription push that the gateway keeps answering 5xx", async () => {
    let subscription: Subscription | undefined;
    let rawPush: Promise<unknown> | undefined;
    const service = await harness.start({
      // Enough retries that, unless close() cuts them short, the pushes would outlive the test.
      push: { retries: 1_000, retryMinMs: 20, retryMaxMs: 50 },
      handlers: {
        watch: (_, ctx) => ((subscription = ctx.subscribe()), 1),
        notify: (_, ctx) => {
          rawPush = ctx.push({ msg_type: "notice" }).then(
            () => "sent",
            (error: unknown) => error,
          );
          return "ok";
        },
      },
    });
    await replyTo(await send("watch", { watch: 1, subscribe: 1 }, endpoint.connection()));
    endpoint.answer = () => 500;
    const subscriptionPush = subscription?.push({ n: 1 }).then(
      () => "sent",
      (error: unknown) => error,
    );
    await replyTo(await send("notify", { notify: 1 }, endpoint.connection()));
    // Both pushes are being retried.
    await waitFor(() => endpoint.received.length >= 4, 10_000);
    await service.close();
    for (const outcome of [await rawPush, await subscriptionPush]) {
      expect(outcome).toBeInstanceOf(Error);
      expect((outcome as Error).message).toBe("service closed");
    }
    expect(subscription?.signal.aborted).toBe(true);
  });

  it("a 410 within the registration grace is retried with a growing back-off, then ends the subscription", async () => {
    let subscription: Subscription | undefined;
    await harness.start({ handlers: { watch: (_, ctx) => ((subscription = ctx.subscribe()), 1) } });
    await replyTo(await send("watch", { watch: 1, subscribe: 1 }, endpoint.connection()));
    endpoint.answer = () => 410;
    await expect(subscription?.push({ n: 1 })).rejects.toBeInstanceOf(PushGoneError);
    expect(subscription?.signal.aborted).toBe(true);
    // Back-off from 50 ms doubling to 500 ms (times 0.5-1) over the 3 s grace: about ten attempts at most;
    // a back-off that shrank instead would hammer the gateway with hundreds.
    expect(endpoint.received.length).toBeGreaterThan(2);
    expect(endpoint.received.length).toBeLessThanOrEqual(20);
  });

  it("example ticks: first tick in the reply, one push every 100 ms until a push gets 410", async () => {
    await harness.start({ handlers: exampleHandlers });
    const reply = await replyTo(await send("ticks", { ticks: "R_100", subscribe: 1 }, endpoint.connection()));
    const id = (reply.subscription as { id: string }).id;
    expect(reply.response.result).toEqual({
      symbol: "R_100",
      quote: expect.any(Number),
      epoch: expect.any(Number),
      id,
    });
    await waitFor(() => endpoint.received.length >= 3, 10_000);
    expect(endpoint.received[0]?.body).toEqual({
      subscription: id,
      data: { symbol: "R_100", quote: expect.any(Number), epoch: expect.any(Number), id },
    });
    endpoint.answer = () => 410;
    // Within the registration grace a 410 is retried; after it the subscription ends and pushes stop.
    await waitFor(async () => {
      const before = endpoint.received.length;
      await delay(700);
      return endpoint.received.length === before;
    }, 15_000);
    const pushed = endpoint.received.length;
    await delay(500);
    expect(endpoint.received.length).toBe(pushed);
  });

  it("ends the subscription of a handler abandoned at its deadline: its pushes are gone, not left waiting", async () => {
    let subscription: Subscription | undefined;
    await harness.start({
      handlerGraceMs: 100,
      handlers: { hang: (_, ctx) => ((subscription = ctx.subscribe()), new Promise(() => {})) },
    });
    const entry = {
      method: "hang",
      who: harness.gateway.who,
      deadline: Math.ceil(Date.now() / 1000) + 1,
      args: { args: { hang: 1, subscribe: 1 } },
      connection: endpoint.connection(),
    };
    const stream = `${harness.streamPrefix}general`;
    await redis.client.xadd(stream, "*", ...entryFields(entry, "m-hang"));
    await waitFor(async () => (await redis.client.xlen(`${stream}:dead`)) === 1, 5000);
    await waitFor(() => subscription?.signal.aborted === true, 5000);
    await expect(subscription?.push({ late: 1 })).rejects.toBeInstanceOf(PushGoneError);
    expect(endpoint.received).toEqual([]);
  });

  it("a subscription push the gateway refuses with another 4xx rejects at once, and the subscription goes on", async () => {
    let subscription: Subscription | undefined;
    await harness.start({ handlers: { watch: (_, ctx) => ((subscription = ctx.subscribe()), 1) } });
    await replyTo(await send("watch", { watch: 1, subscribe: 1 }, endpoint.connection()));
    endpoint.answer = () => 413;
    await expect(subscription?.push({ huge: 1 })).rejects.toMatchObject({ name: "PushError", status: 413 });
    expect(endpoint.received).toHaveLength(1);
    expect(subscription?.signal.aborted).toBe(false);
    endpoint.answer = () => 202;
    await subscription?.push({ small: 1 });
    expect(endpoint.received).toHaveLength(2);
  });

  it("without a push URL ctx.subscribe() throws and ctx.push() rejects; after the handler returned, ctx.subscribe() throws", async () => {
    let returned: RpcContext | undefined;
    await harness.start({
      handlers: {
        nowhere: async (_, ctx) => {
          const subscribeError = (() => {
            try {
              ctx.subscribe();
              return "none";
            } catch (error) {
              return (error as Error).message;
            }
          })();
          const pushError = await ctx.push({ msg_type: "notice" }).then(
            () => "none",
            (error: Error) => error.message,
          );
          return { subscribeError, pushError };
        },
        done: (_, ctx) => ((returned = ctx), "ok"),
      },
    });
    const reply = await replyTo(await send("nowhere", { nowhere: 1, subscribe: 1 }));
    expect(reply.response.result).toEqual({
      subscribeError: "ctx.subscribe(): the request has no connection (the gateway sent no push URL)",
      pushError: "ctx.push(): the request has no connection (the gateway sent no push URL)",
    });
    await replyTo(await send("done", { done: 1, subscribe: 1 }, endpoint.connection()));
    expect(() => returned?.subscribe()).toThrow(/already returned/);
    expect(endpoint.received).toEqual([]);
  });

  it("retries a 410 that comes before the gateway read the subscribing reply", async () => {
    let subscription: Subscription | undefined;
    await harness.start({ handlers: { watch: (_, ctx) => ((subscription = ctx.subscribe()), 1) } });
    await replyTo(await send("watch", { watch: 1, subscribe: 1 }, endpoint.connection()));
    endpoint.answer = () => (endpoint.received.length === 1 ? 410 : 202);
    await subscription?.push(2);
    expect(endpoint.received).toHaveLength(2);
  });

  it("example ticks: without subscribe one tick and no pushes; close() stops a subscription's timer", async () => {
    const service = await harness.start({ handlers: exampleHandlers });
    const once = await replyTo(await send("ticks", { ticks: "R_50" }, endpoint.connection()));
    expect(once.subscription).toBeUndefined();
    expect(once.response.result).toEqual({
      symbol: "R_50",
      quote: expect.any(Number),
      epoch: expect.any(Number),
    });
    await delay(400);
    expect(endpoint.received).toEqual([]);
    await replyTo(await send("ticks", { ticks: "R_50", subscribe: 1 }, endpoint.connection()));
    await waitFor(() => endpoint.received.length >= 2, 10_000);
    await service.close();
    const pushed = endpoint.received.length;
    await delay(500);
    expect(endpoint.received.length).toBe(pushed);
  });
});

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
