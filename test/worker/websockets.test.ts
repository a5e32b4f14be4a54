/**
 * The Durable Object's socket life: replies through the consumer-groups backend (in-memory Redis), the
 * stash in the socket attachment, close codes, and what a close does to pending calls.
 */
import { env } from "cloudflare:workers";
import type { ConsumerGroupsStats } from "../../src/backends/index.js";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import type { SocketAttachment } from "../../src/worker/connection.js";
import { SocketConnection } from "../../src/worker/connection.js";
import type { GatewayDurableObject } from "../../src/worker/gateway-object.js";
import { openSocket, uniqueObject } from "./helpers.js";
import { sleep, waitFor } from "../support/wait.js";

const namespace = (env as unknown as { GATEWAY: DurableObjectNamespace<GatewayDurableObject> }).GATEWAY;

function stubOf(object: string): DurableObjectStub<GatewayDurableObject> {
  return namespace.get(namespace.idFromName(object));
}

describe("the gateway Durable Object", () => {
  it("answers a request through the stream and the reply key", async () => {
    const socket = await openSocket(uniqueObject("ping"));
    expect(await socket.call({ ping: 1, req_id: 7 })).toEqual({
      msg_type: "ping",
      ping: "pong",
      req_id: 7,
      echo_req: { ping: 1, req_id: 7 },
    });
    expect(await socket.call({ local: 1 })).toMatchObject({
      msg_type: "local",
      local: "answered in the object",
    });
    socket.ws.close(1000, "done");
  });

  it("keeps the stash in the socket attachment and sends stash values with stashParams", async () => {
    const object = uniqueObject("stash");
    const socket = await openSocket(object);
    expect(await socket.call({ login: "token" })).toEqual({
      msg_type: "login",
      login: { login: { loginid: "CR1" } },
      echo_req: { login: "token" },
    });
    expect(await socket.call({ whoami: 1 })).toMatchObject({ whoami: { loginid: "CR1", scopes: ["read"] } });

    // What hibernation keeps: the attachment, read back the way a woken object reads it.
    const attachment = await runInDurableObject(stubOf(object), (_instance, state) => {
      const [ws] = state.getWebSockets();
      return ws?.deserializeAttachment() as SocketAttachment;
    });
    expect(attachment.stash).toEqual({ loginid: "CR1", scopes: ["read"] });
    expect(attachment.id).toMatch(/^[0-9a-f-]{36}$/);
    socket.ws.close(1000, "done");
  });

  it("refuses a stash that would not fit in the attachment, keeping the previous one", async () => {
    const object = uniqueObject("bigstash");
    const socket = await openSocket(object);
    const logged = vi.spyOn(console, "error");
    try {
      await socket.call({ login: "token" });
      // Fits in local workerd's 16 KiB, not in the 2,048 bytes Cloudflare allows.
      expect(await socket.call({ login: "token", loginid: "CR9", profileBytes: 3000 })).toMatchObject({
        login: { login: { loginid: "CR9" } },
      });
      expect(await socket.call({ whoami: 1 })).toMatchObject({
        whoami: { loginid: "CR1", scopes: ["read"] },
      });
      const attachment = await runInDurableObject(stubOf(object), (_instance, state) => {
        const [ws] = state.getWebSockets();
        return ws?.deserializeAttachment() as SocketAttachment;
      });
      expect(attachment.stash).toEqual({ loginid: "CR1", scopes: ["read"] });
      expect(logged.mock.calls.flat().join("\n")).toMatch(
        /stash of connection .* not updated: \d+ bytes .* exceed maxAttachmentBytes \(2048\)/,
      );
    } finally {
      logged.mockRestore();
      socket.ws.close(1000, "done");
    }
  });

  it("rebuilds a connection from the attachment alone, as after hibernation", () => {
    // The pool cannot hibernate an object, so this checks the rebuild path directly: a socket the
    // connection cache has never seen, carrying only an attachment.
    const [, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    const stored: SocketAttachment = {
      id: "conn-1",
      upgrade: { url: "http://gateway.test/websockets/v3", headers: { origin: "https://app.test" } },
      stash: { loginid: "CR2" },
    };
    server.serializeAttachment(stored);
    const conn = SocketConnection.of(server);
    expect(conn.id).toBe("conn-1");
    expect(conn.stash).toEqual({ loginid: "CR2" });
    expect(conn.upgrade.headers.origin).toBe("https://app.test");
    conn.updateStash({ currency: "USD" });
    expect((server.deserializeAttachment() as SocketAttachment).stash).toEqual({
      loginid: "CR2",
      currency: "USD",
    });
    expect(SocketConnection.of(server)).toBe(conn);
  });

  it("closes with 1009 on a frame larger than maxMessageBytes", async () => {
    const socket = await openSocket(uniqueObject("big"));
    socket.ws.send(JSON.stringify({ ping: "x".repeat(2000) }));
    expect((await socket.closed).code).toBe(1009);
  });

  it("answers the client's close with the same code, and 1000 for a close without a code", async () => {
    const first = await openSocket(uniqueObject("close"));
    first.ws.close(4000, "bye");
    expect(await first.closed).toMatchObject({ code: 4000 });

    const second = await openSocket(uniqueObject("close"));
    second.ws.close();
    // No code from the client is reported as 1005, which cannot be sent back: the object answers 1000
    // (an echoed empty close would reach the client as 1005 again).
    expect((await second.closed).code).toBe(1000);
  });

  it("drops the pending calls of a connection that closes, so the poller stops", async () => {
    const object = uniqueObject("pending");
    const socket = await openSocket(object);
    socket.ws.send(JSON.stringify({ slow: 1, ms: 300 }));
    const stats = () =>
      runInDurableObject(
        stubOf(object),
        (instance) => instance.backendStats().default as ConsumerGroupsStats,
      );
    await waitFor(async () => (await stats())?.pending === 1);

    socket.ws.close(1000, "leaving");
    await socket.closed;
    await waitFor(async () => (await stats())?.failed === 1);
    expect(await stats()).toMatchObject({ pending: 0, failed: 1 });

    // The reply still arrives at 300 ms (a timer set before the one below, so it fires first). Nothing
    // polls for it until the next call, which pops it along with its own reply: it finds no request and is
    // dropped as late, and the new call gets its own.
    await sleep(400);
    const next = await openSocket(object);
    expect(await next.call({ ping: 1 })).toMatchObject({ ping: "pong" });
    const late = await runInDurableObject(stubOf(object), (instance) => instance.backendStats().default);
    expect(late).toMatchObject({ late: 1, delivered: 1, pending: 0 });
    next.ws.close(1000, "done");
  });

  it("answers WrongResponse when no reply comes within the timeout, and stops polling", async () => {
    const object = uniqueObject("timeout");
    const socket = await openSocket(object);
    const started = Date.now();
    expect(await socket.call({ never: 1, req_id: 9 })).toEqual({
      msg_type: "never",
      error: { code: "WrongResponse", message: "Sorry, an error occurred while processing your request." },
      req_id: 9,
      echo_req: { never: 1, req_id: 9 },
    });
    // The test Worker's backend waits 0.5 s.
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    const stats = await runInDurableObject(stubOf(object), (instance) => instance.backendStats().default);
    expect(stats).toMatchObject({ pending: 0, timedOut: 1 });
    await sleep(200);
    const later = await runInDurableObject(stubOf(object), (instance) => instance.backendStats().default);
    expect(later?.polls).toBe(stats?.polls);
    socket.ws.close(1000, "done");
  });

  it("handles the frames of one connection concurrently, replying in completion order", async () => {
    const socket = await openSocket(uniqueObject("order"));
    socket.ws.send(JSON.stringify({ slow: 1, ms: 200, req_id: 1 }));
    socket.ws.send(JSON.stringify({ ping: 1, req_id: 2 }));
    expect(await socket.next()).toMatchObject({ msg_type: "ping", req_id: 2 });
    expect(await socket.next()).toMatchObject({ msg_type: "slow", req_id: 1 });
    socket.ws.close(1000, "done");
  });
});
