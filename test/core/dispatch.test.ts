import { describe, expect, it, vi } from "vitest";
import type { ActionEntry, MemoryConnection } from "../../src/core/index.js";
import { deferred, fakeBackend, gateway } from "./helpers.js";

describe("dispatch (PROTOCOL 1.1.3-1.1.5)", () => {
  it("sends a frame to the first registered action among its keys, whatever their order", async () => {
    const backend = fakeBackend();
    const { conn, send } = gateway({ actions: [["ticks"], ["subscribe"]] }, { default: backend });
    await send({ subscribe: 1, ticks: "R_50" });
    expect(backend.calls.map((call) => call.req.name)).toEqual(["ticks"]);
    expect(conn.sent[0]).toMatchObject({ msg_type: "ticks", ticks: { echo: "ticks" } });
  });

  it("matches only the frame's own keys, never inherited ones like constructor", async () => {
    const backend = fakeBackend();
    const { conn, send } = gateway(
      { actions: [["constructor"], ["toString"], ["ping"]] },
      { default: backend },
    );
    await send({ ping: 1 });
    await send({ pong: 1 });
    expect(backend.calls.map((call) => call.req.name)).toEqual(["ping"]);
    expect(conn.sent[1]).toMatchObject({ error: { code: "UnrecognisedRequest" } });
  });

  it("leaves no timer running once a frame is answered, so the object can hibernate", async () => {
    vi.useFakeTimers();
    try {
      const { conn, send } = gateway({ beforeForward: () => undefined, afterForward: async () => undefined });
      await send({ ping: 1 });
      expect(conn.sent).toHaveLength(1);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it("answers a frame without a known action with UnrecognisedRequest", async () => {
    const { conn, send } = gateway();
    await send({ pong: 1, req_id: 4 });
    expect(conn.sent).toEqual([
      {
        msg_type: "error",
        error: { code: "UnrecognisedRequest", message: "Unrecognised request" },
        req_id: 4,
        echo_req: { pong: 1, req_id: 4 },
      },
    ]);
  });

  it("uses msgType, backend, stashParams and category of the action", async () => {
    const other = fakeBackend(() => ({ result: "ok" }));
    const actions: ActionEntry[] = [
      ["balance", { msgType: "bal", backend: "other", stashParams: ["token"], category: "mt5" }],
    ];
    const { conn, send } = gateway({ actions }, { default: fakeBackend(), other });
    await send({ balance: 1 });
    expect(other.calls[0]?.req).toMatchObject({
      name: "balance",
      method: "balance",
      msgType: "bal",
      backend: "other",
      stashParams: ["token"],
      category: "mt5",
      callParams: {},
    });
    expect(other.calls[0]?.req.correlationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(conn.sent[0]).toMatchObject({ msg_type: "bal", bal: "ok" });
  });

  it("closes with 1009 on a frame larger than maxMessageBytes and sends nothing", async () => {
    const backend = fakeBackend();
    const { conn, send } = gateway({ maxMessageBytes: 20 }, { default: backend });
    await send({ ping: "ééééééééé" }); // 20 characters, 29 bytes
    expect(conn.closed).toEqual({ code: 1009, reason: "Message too big" });
    expect(conn.sent).toEqual([]);
    expect(backend.calls).toEqual([]);
  });

  it("accepts a frame of exactly maxMessageBytes", async () => {
    const { conn, send } = gateway({ maxMessageBytes: 10 });
    await send('{"ping":1}');
    expect(conn.closed).toBeUndefined();
    expect(conn.sent).toHaveLength(1);
  });

  it("hands binary frames to onBinaryFrame, and ignores them without the hook", async () => {
    const onBinaryFrame = vi.fn();
    const withHook = gateway({ onBinaryFrame });
    const bytes = new Uint8Array([1, 2, 3]);
    await withHook.dispatcher.handleFrame(withHook.conn, bytes.buffer);
    expect(onBinaryFrame).toHaveBeenCalledWith(withHook.conn, bytes);
    expect(withHook.conn.sent).toEqual([]);

    const without = gateway();
    await without.dispatcher.handleFrame(without.conn, new TextEncoder().encode('{"ping":1}'));
    expect(without.conn.sent).toEqual([]);
    expect(without.conn.isOpen).toBe(true);
  });

  it("sends replies in completion order, each to its own request", async () => {
    const slow = deferred<{ result: string }>();
    const backend = fakeBackend((req) => (req.args.slow ? slow.promise : { result: "fast" }));
    const { conn, send } = gateway({}, { default: backend });
    const first = send({ ping: 1, slow: 1, req_id: 1 });
    await send({ ping: 1, req_id: 2 });
    slow.resolve({ result: "slow" });
    await first;
    expect(conn.sent.map((reply) => [reply.req_id, reply.ping])).toEqual([
      [2, "fast"],
      [1, "slow"],
    ]);
  });

  it("sends exactly one reply per message", async () => {
    const { conn, send } = gateway({ actions: [["ping"], ["time"]] });
    await Promise.all([
      send({ ping: 1 }),
      send({ time: 1 }),
      send({ nope: 1 }),
      send("[]"),
      send({ ping: 2 }),
    ]);
    expect(conn.sent).toHaveLength(5);
  });

  it("sends nothing to a connection that closed while the backend worked", async () => {
    const reply = deferred<{ result: string }>();
    const afterSentApiResponse = vi.fn();
    const { conn, send, logger } = gateway(
      { afterSentApiResponse },
      { default: fakeBackend(() => reply.promise) },
    );
    const pending = send({ ping: 1 });
    conn.disconnect();
    reply.resolve({ result: "late" });
    await pending;
    expect(conn.sent).toEqual([]);
    expect(afterSentApiResponse).not.toHaveBeenCalled();
    expect(logger.warn).not.toHaveBeenCalled(); // not even an attempted send
  });

  it("sends nothing when the connection closes during beforeSendApiResponse", async () => {
    const { conn, send, logger } = gateway({
      beforeSendApiResponse: (c) => (c as MemoryConnection).disconnect(),
    });
    await send({ ping: 1 });
    expect(conn.sent).toEqual([]);
    expect(logger.warn).not.toHaveBeenCalled();
  });

  it("runs onOpen, onClose and afterDispatch", async () => {
    const onOpen = vi.fn();
    const onClose = vi.fn();
    const afterDispatch = vi.fn();
    const { conn, send, dispatcher } = gateway({ onOpen, onClose, afterDispatch });
    await dispatcher.handleOpen(conn);
    await send({ ping: 1 });
    await send("not json");
    await dispatcher.handleClose(conn, 1000, "bye");
    expect(onOpen).toHaveBeenCalledWith(conn);
    expect(afterDispatch.mock.calls).toEqual([
      [conn, { ping: 1 }],
      [conn, undefined],
    ]);
    expect(onClose).toHaveBeenCalledWith(conn, 1000, "bye");
  });

  it("logs a failing onOpen hook instead of rejecting", async () => {
    const { conn, dispatcher, logger } = gateway({
      onOpen: () => {
        throw new Error("boom");
      },
    });
    await expect(dispatcher.handleOpen(conn)).resolves.toBeUndefined();
    expect(logger.error).toHaveBeenCalledWith("onOpen hook failed", expect.any(Error));
  });
});
