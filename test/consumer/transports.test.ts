/**
 * The two ways a service reaches Redis, each against the real thing: the native transport against
 * redis-server, the REST transport against the REST bridge (and, for the answers the bridge never gives, a
 * node:http stand-in for an Upstash endpoint). What the service relies on: refused commands come back as
 * `RedisReplyError` naming the command, one refused command of a pipeline does not fail the others, refused
 * credentials are an `AuthenticationError`, and a failed round trip rejects as a whole.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import { createServer as createTcpServer, type AddressInfo, type Socket } from "node:net";
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { startRedis } from "../../src/devstack/redis.js";
import { createNativeTransport } from "../../src/consumer/native-transport.js";
import { createRestTransport } from "../../src/consumer/rest-transport.js";
import {
  AuthenticationError,
  RedisReplyError,
  isBusyGroupError,
  isNoGroupError,
  type CreateGroupCommand,
  type ReadGroupCommand,
  type ServiceTransport,
} from "../../src/consumer/transport.js";
import { TRANSPORTS, aclUser, startTestRedis, type TestRedis, type TransportKind } from "./helpers.js";
import { sleep, waitFor } from "../support/wait.js";

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis?.stop();
});

const opened: ServiceTransport[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((transport) => transport.close()));
});

function open(kind: TransportKind): ServiceTransport {
  const option = redis.redisOption(kind);
  const transport =
    typeof option === "string"
      ? createNativeTransport(option)
      : createRestTransport(
          (option as { restUrl: string }).restUrl,
          (option as { restToken: string }).restToken,
        );
  opened.push(transport);
  return transport;
}

/** The rejection of `promise` (fails the test when it resolves). */
async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
    },
    (error: Error) => error,
  );
}

describe.each(TRANSPORTS)("the %s transport", (kind) => {
  it("runs the service's commands and names itself without credentials", async () => {
    const transport = open(kind);
    expect(transport.kind).toBe(kind);
    expect(transport.supportsBlockingReads).toBe(kind === "native");
    const option = redis.redisOption(kind);
    expect(transport.target).toBe(typeof option === "string" ? option : redis.bridge.url);
    const stream = `tr:${randomUUID()}`;
    expect(await transport.call(["XGROUP", "CREATE", stream, "g", "$", "MKSTREAM"])).toBe("OK");
    await redis.client.xadd(stream, "*", "rpc", "ping");
    const reply = (await transport.read([
      "XREADGROUP",
      "GROUP",
      "g",
      "c",
      "COUNT",
      "5",
      "STREAMS",
      stream,
      ">",
    ])) as [string, [string, string[]][]][];
    expect(reply[0]?.[0]).toBe(stream);
    expect(reply[0]?.[1][0]?.[1]).toEqual(["rpc", "ping"]);
  });

  it("rejects a refused command with a RedisReplyError naming it (BUSYGROUP, NOGROUP)", async () => {
    const transport = open(kind);
    const stream = `tr:${randomUUID()}`;
    await transport.call(["XGROUP", "CREATE", stream, "g", "$", "MKSTREAM"]);
    const busy = await rejectionOf(transport.call(["XGROUP", "CREATE", stream, "g", "$", "MKSTREAM"]));
    expect(busy).toBeInstanceOf(RedisReplyError);
    expect(busy).toMatchObject({ name: "RedisReplyError", command: "XGROUP" });
    expect(busy.message).toMatch(/^BUSYGROUP/);
    expect(isBusyGroupError(busy)).toBe(true);
    expect(isNoGroupError(busy)).toBe(false);
    const missing = await rejectionOf(
      transport.read(["XREADGROUP", "GROUP", "nope", "c", "COUNT", "1", "STREAMS", stream, ">"]),
    );
    expect(missing).toMatchObject({ name: "RedisReplyError", command: "XREADGROUP" });
    expect(isNoGroupError(missing)).toBe(true);
    expect(isBusyGroupError(missing)).toBe(false);
  });

  it("answers every command of a pipeline in order: a refused one as its error, the others run", async () => {
    const transport = open(kind);
    const text = `tr:${randomUUID()}`;
    const list = `tr:${randomUUID()}`;
    await redis.client.set(text, "a string");
    const results = await transport.pipeline([
      ["RPUSH", text, "x"],
      ["RPUSH", list, "a", "b"],
      ["EXPIRE", list, "60"],
    ]);
    expect(results).toHaveLength(3);
    const refused = results[0] as { error: Error };
    expect(refused.error).toBeInstanceOf(RedisReplyError);
    expect(refused.error).toMatchObject({ command: "RPUSH" });
    expect(refused.error.message).toMatch(/^WRONGTYPE/);
    expect(results.slice(1)).toEqual([{ result: 2 }, { result: 1 }]);
    expect(await redis.client.lrange(list, 0, -1)).toEqual(["a", "b"]);
    await transport.close();
    // Closing twice is fine.
    await transport.close();
  });
});

describe("the native transport", () => {
  it("names its two connections for CLIENT LIST", async () => {
    const transport = open("native");
    const stream = `tr:${randomUUID()}`;
    await transport.call(["XGROUP", "CREATE", stream, "g", "$", "MKSTREAM"]);
    await transport.read(["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", stream, ">"]);
    const clients = String(await redis.client.call("CLIENT", "LIST"));
    expect(clients).toContain("name=edge-wsproxy-service-reader ");
    expect(clients).toContain("name=edge-wsproxy-service ");
  });

  it("stopReading() ends a read blocked with no time limit", async () => {
    const transport = open("native");
    const stream = `tr:${randomUUID()}`;
    await transport.call(["XGROUP", "CREATE", stream, "g", "$", "MKSTREAM"]);
    const blocked = transport.read(blockingRead(stream));
    const outcome = blocked.then(
      () => "resolved",
      () => "rejected",
    );
    await waitForBlockedReader();
    transport.stopReading();
    expect(await outcome).toBe("rejected");
  });

  it("rejects a whole pipeline when the round trip fails (nothing reached Redis)", async () => {
    const closed = await freePort();
    const transport = createNativeTransport(`redis://127.0.0.1:${closed}`, { reconnectMaxMs: 20 });
    opened.push(transport);
    await expect(transport.pipeline([["RPUSH", "k", "v"]])).rejects.toThrow();
  });

  it("close() ends both connections", async () => {
    const transport = open("native");
    const stream = `tr:${randomUUID()}`;
    await transport.call(["XGROUP", "CREATE", stream, "g", "$", "MKSTREAM"]);
    await transport.read(["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", stream, ">"]);
    const named = async (): Promise<string[]> =>
      String(await redis.client.call("CLIENT", "LIST")).match(/name=edge-wsproxy-service\S*/g) ?? [];
    await waitFor(async () => (await named()).length === 2);
    await transport.close();
    await waitFor(async () => (await named()).length === 0);
  });

  it("during an outage a command fails instead of waiting for Redis, nothing is printed, and it serves again after", async () => {
    // A server of its own: stopping the shared one would fail the other tests' connections.
    const server = await startRedis();
    const printed = vi.spyOn(console, "error");
    try {
      const transport = createNativeTransport(server.url, { reconnectMaxMs: 50 });
      opened.push(transport);
      const stream = `tr:${randomUUID()}`;
      const create: CreateGroupCommand = ["XGROUP", "CREATE", stream, "g", "$", "MKSTREAM"];
      const read: ReadGroupCommand = ["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", stream, ">"];
      await transport.call(create);
      await transport.read(read);
      await server.stop();
      // Both connections see the outage; each command fails (the service's own loop then backs off and
      // logs the outage once) rather than staying queued in the client until Redis is back (where the
      // read would be refused: the restarted server has lost the group).
      const during = [transport.call(create), transport.read(read)].map((promise) =>
        promise.then(
          () => "answered",
          (error: unknown) => (error instanceof RedisReplyError ? "refused by Redis" : "failed"),
        ),
      );
      // Long enough for the commands to fail, far shorter than ioredis's own default of 20 retries.
      await sleep(2_000);
      await server.restart();
      expect(await Promise.all(during)).toEqual(["failed", "failed"]);
      await waitFor(
        () =>
          transport.call(create).then(
            () => true,
            () => false,
          ),
        10_000,
      );
      expect(await transport.read(read)).toBeNull();
      // The errors reached the caller only: ioredis printed no "Unhandled error event" per attempt.
      expect(printed.mock.calls.map((call) => String(call[0]))).not.toContainEqual(
        expect.stringContaining("[ioredis]"),
      );
    } finally {
      printed.mockRestore();
      await server.stop();
    }
  });

  it("close() during an outage, with a command still waiting, leaves nothing to reconnect when Redis returns", async () => {
    const server = await startRedis();
    const admin = new Redis(server.url, { maxRetriesPerRequest: 1 });
    admin.on("error", () => {});
    try {
      const transport = createNativeTransport(server.url, { reconnectMaxMs: 50 });
      const stream = `tr:${randomUUID()}`;
      const create: CreateGroupCommand = ["XGROUP", "CREATE", stream, "g", "$", "MKSTREAM"];
      await transport.call(create);
      await server.stop();
      const waiting = transport.call(create).catch(() => undefined);
      await transport.close();
      await waiting;
      await server.restart();
      await waitFor(
        () =>
          admin.ping().then(
            () => true,
            () => false,
          ),
        10_000,
      );
      // Longer than several reconnect attempts would take.
      await sleep(500);
      expect(String(await admin.call("CLIENT", "LIST"))).not.toMatch(/name=edge-wsproxy-service/);
    } finally {
      admin.disconnect();
      await server.stop();
    }
  });

  it("turns a missing password (NOAUTH) into an AuthenticationError", async () => {
    // A server of its own: a password on the shared one would lock the other tests out.
    const server = await startRedis();
    const admin = new Redis(server.url);
    try {
      await admin.call("CONFIG", "SET", "requirepass", "secret");
      const transport = createNativeTransport(server.url, { reconnectMaxMs: 20 });
      opened.push(transport);
      const error = await rejectionOf(transport.call(["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]));
      expect(error).toBeInstanceOf(AuthenticationError);
      expect(error.message).toMatch(/^NOAUTH/);
    } finally {
      admin.disconnect();
      await server.stop();
    }
  });

  it("turns a wrong password into an AuthenticationError", async () => {
    const access = await aclUser(redis, "wrong");
    try {
      const transport = createNativeTransport(access.url, { reconnectMaxMs: 20 });
      opened.push(transport);
      expect(transport.target).toBe(`redis://${access.user}:***@${new URL(access.url).host}`);
      const error = await rejectionOf(transport.call(["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]));
      expect(error).toBeInstanceOf(AuthenticationError);
      expect(error.name).toBe("AuthenticationError");
      expect(error.message).toMatch(/WRONGPASS/);
    } finally {
      await access.remove();
    }
  });

  it("stopReading() ends a blocked read cut off while Redis refuses the login, and later reads fail", async () => {
    const access = await aclUser(redis);
    const { user } = access;
    try {
      // The default back-off: between refused logins the reader mostly waits to reconnect, when ioredis
      // would queue a new read for ever.
      const transport = createNativeTransport(access.url);
      opened.push(transport);
      const stream = `tr:${randomUUID()}`;
      await transport.call(["XGROUP", "CREATE", stream, "g", "$", "MKSTREAM"]);
      const blocked = rejectionOf(transport.read(blockingRead(stream)));
      await waitFor(async () =>
        new RegExp(`flags=b .*user=${user} `).test(String(await redis.client.call("CLIENT", "LIST"))),
      );
      await access.revoke();
      // Both connections were cut off at once: once a login has been refused since, the reader has seen its
      // end too, and the read waits in ioredis for a login that Redis refuses.
      await waitFor(async () => {
        const entries = (await redis.client.call("ACL", "LOG")) as unknown[][];
        return entries.some(
          (entry) => field(entry, "reason") === "auth" && field(entry, "username") === user,
        );
      });
      transport.stopReading();
      expect(await blocked).toBeInstanceOf(Error);
      expect(await rejectionOf(transport.read(blockingRead(stream)))).toBeInstanceOf(Error);
    } finally {
      await access.remove();
    }
  });
});

/** An HTTP stand-in for an Upstash endpoint: `answer` picks the status and the raw body of each request. */
class RestStandIn {
  readonly received: { path: string; authorization: string | undefined; body: unknown }[] = [];
  /** The content-type and content-length headers of each request. */
  readonly framing: { type: string | undefined; length: string | undefined; bytes: number }[] = [];
  answer: (path: string) => { status: number; body: string } | "hang" | "cut" = () => ({
    status: 200,
    body: "{}",
  });
  /** Connections accepted so far, and those still open. */
  connections = 0;
  readonly open = new Set<Socket>();
  private constructor(private readonly server: Server) {}

  static async start(): Promise<RestStandIn> {
    const server = createServer();
    const standIn = new RestStandIn(server);
    server.on("connection", (socket: Socket) => {
      standIn.connections++;
      standIn.open.add(socket);
      socket.on("close", () => standIn.open.delete(socket));
    });
    server.on("request", (request: IncomingMessage, response) => {
      let text = "";
      request.on("data", (chunk) => (text += chunk));
      request.on("end", () => {
        const path = request.url ?? "";
        standIn.received.push({ path, authorization: request.headers.authorization, body: JSON.parse(text) });
        standIn.framing.push({
          type: request.headers["content-type"],
          length: request.headers["content-length"],
          bytes: Buffer.byteLength(text),
        });
        const answer = standIn.answer(path);
        if (answer === "hang") return;
        if (answer === "cut") {
          // Headers and part of the body, then the connection drops.
          response.writeHead(200, { "content-type": "application/json", "content-length": "100" });
          response.write('{"result":', () => response.destroy());
          return;
        }
        response.writeHead(answer.status, { "content-type": "application/json" }).end(answer.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return standIn;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

describe("the REST transport against other answers", () => {
  let standIn: RestStandIn;
  beforeAll(async () => {
    standIn = await RestStandIn.start();
  });
  afterAll(async () => {
    await standIn?.close();
  });

  function rest(url = standIn.url, requestTimeoutMs?: number): ServiceTransport {
    const transport = createRestTransport(url, "tok", { requestTimeoutMs });
    opened.push(transport);
    return transport;
  }

  it("posts commands as JSON under the URL's path with the bearer token", async () => {
    standIn.received.length = 0;
    standIn.framing.length = 0;
    standIn.answer = (path) => ({
      status: 200,
      body: path.endsWith("/pipeline") ? '[{"result":1}]' : '{"result":"OK"}',
    });
    const transport = rest(`${standIn.url}/redis/db0/`);
    expect(transport.target).toBe(`${standIn.url}/redis/db0`);
    expect(await transport.call(["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"])).toBe("OK");
    expect(await transport.pipeline([["EXPIRE", "k", "60"]])).toEqual([{ result: 1 }]);
    expect(standIn.received).toEqual([
      {
        path: "/redis/db0/",
        authorization: "Bearer tok",
        body: ["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"],
      },
      { path: "/redis/db0/pipeline", authorization: "Bearer tok", body: [["EXPIRE", "k", "60"]] },
    ]);
    for (const { type, length, bytes } of standIn.framing) {
      expect(type).toBe("application/json");
      expect(Number(length)).toBe(bytes);
    }
  });

  it.each([401, 403])(
    "HTTP %i is an AuthenticationError, for one command and for a pipeline",
    async (status) => {
      standIn.answer = () => ({ status, body: '{"error":"Unauthorized"}' });
      const transport = rest();
      for (const call of [
        () => transport.call(["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]),
        () => transport.pipeline([["EXPIRE", "k", "60"]]),
      ]) {
        const error = await rejectionOf(call());
        expect(error).toBeInstanceOf(AuthenticationError);
        expect(error.message).toBe(`REST endpoint refused the token (HTTP ${status})`);
      }
    },
  );

  it("a failed HTTP answer without a Redis error fails the command or the whole pipeline, naming the status", async () => {
    const transport = rest();
    standIn.answer = () => ({ status: 502, body: '{"message":"bad gateway"}' });
    await expect(transport.call(["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"])).rejects.toThrow(
      "REST XGROUP failed with HTTP 502",
    );
    await expect(transport.pipeline([["EXPIRE", "k", "60"]])).rejects.toThrow(
      "REST pipeline failed with HTTP 502",
    );
    // A 200 to a pipeline that is not a list of answers is no answer either, nor a list with another status.
    standIn.answer = () => ({ status: 200, body: '{"result":1}' });
    await expect(transport.pipeline([["EXPIRE", "k", "60"]])).rejects.toThrow(
      "REST pipeline failed with HTTP 200",
    );
    standIn.answer = () => ({ status: 500, body: '[{"result":1}]' });
    await expect(transport.pipeline([["EXPIRE", "k", "60"]])).rejects.toThrow(
      "REST pipeline failed with HTTP 500",
    );
    // A Redis error in a non-200 answer is the command's refusal.
    standIn.answer = () => ({ status: 400, body: '{"error":"ERR syntax error"}' });
    const refused = await rejectionOf(transport.call(["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]));
    expect(refused).toMatchObject({
      name: "RedisReplyError",
      command: "XGROUP",
      message: "ERR syntax error",
    });
  });

  it("keeps one connection for successive commands, and close() ends it", async () => {
    standIn.answer = () => ({ status: 200, body: '{"result":"OK"}' });
    await waitFor(() => standIn.open.size === 0);
    const before = standIn.connections;
    const transport = rest();
    for (let i = 0; i < 3; i++) {
      expect(await transport.call(["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"])).toBe("OK");
    }
    expect(standIn.connections - before).toBe(1);
    expect(standIn.open.size).toBe(1);
    await transport.close();
    await waitFor(() => standIn.open.size === 0);
  });

  it("an answer cut off before its end fails the command, or the whole pipeline", async () => {
    standIn.answer = () => "cut";
    await expect(rest().call(["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"])).rejects.toThrow();
    await expect(rest().pipeline([["EXPIRE", "k", "60"]])).rejects.toThrow();
  });

  it("a 200 answer without a result object fails naming the command, or that command of a pipeline", async () => {
    const transport = rest();
    standIn.answer = () => ({ status: 200, body: "null" });
    await expect(transport.call(["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"])).rejects.toThrow(
      "REST XGROUP answered HTTP 200 without a result object",
    );
    standIn.answer = () => ({ status: 200, body: '[{"result":1},null,{"error":"ERR no"}]' });
    const results = await transport.pipeline([
      ["EXPIRE", "k", "60"],
      ["RPUSH", "r", "x"],
      ["PUBLISH", "c", "m"],
    ]);
    expect(results[0]).toEqual({ result: 1 });
    expect(results[1]).toEqual({ error: new Error("REST pipeline answered RPUSH without a result object") });
    expect(results[2]).toMatchObject({
      error: { name: "RedisReplyError", command: "PUBLISH", message: "ERR no" },
    });
  });

  it("a pipeline answered with the wrong number of results fails as a whole", async () => {
    standIn.answer = () => ({ status: 200, body: '[{"result":1}]' });
    await expect(
      rest().pipeline([
        ["EXPIRE", "k", "60"],
        ["RPUSH", "r", "x"],
      ]),
    ).rejects.toThrow("REST pipeline of 2 commands answered with 1 results");
  });

  it("an answer that is not JSON, or none within requestTimeoutMs, fails naming the path", async () => {
    const transport = rest(standIn.url, 300);
    standIn.answer = () => ({ status: 502, body: "<html>bad gateway</html>" });
    const notJson = await rejectionOf(transport.call(["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]));
    expect(notJson.message).toBe("REST / answered HTTP 502 with non-JSON");
    // The parser's own error is kept as the cause, for the log line.
    expect(notJson.cause).toBeInstanceOf(SyntaxError);
    standIn.answer = () => "hang";
    await expect(transport.pipeline([["EXPIRE", "k", "60"]])).rejects.toThrow(
      "REST /pipeline timed out after 300 ms",
    );
  });
});

describe("the REST transport on an https:// URL", () => {
  it("speaks TLS to the endpoint", async () => {
    // A plain TCP listener: it records what the client sends first, then hangs up.
    const firstBytes: Buffer[] = [];
    const server = createTcpServer((socket) => {
      socket.once("data", (chunk: Buffer) => {
        firstBytes.push(chunk);
        socket.destroy();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const transport = createRestTransport(`https://127.0.0.1:${port}`, "tok");
      opened.push(transport);
      await expect(transport.call(["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"])).rejects.toThrow();
      // 0x16: a TLS handshake record (a ClientHello), not the text of an HTTP request.
      expect(firstBytes[0]?.[0]).toBe(0x16);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

/** A TCP port nothing listens on (taken from the OS, then released). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A read of one new entry of group `g` on `stream` that blocks with no time limit. */
function blockingRead(stream: string): ReadGroupCommand {
  return ["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "BLOCK", "0", "STREAMS", stream, ">"];
}

/** The value of `name` in a reply of alternating names and values (an `ACL LOG` entry). */
function field(reply: unknown[], name: string): unknown {
  const index = reply.indexOf(name);
  return index >= 0 && index % 2 === 0 ? reply[index + 1] : undefined;
}

/** Waits until redis-server lists the reader connection as blocked. */
async function waitForBlockedReader(): Promise<void> {
  await waitFor(async () =>
    /name=edge-wsproxy-service-reader .*flags=b /.test(String(await redis.client.call("CLIENT", "LIST"))),
  );
}
