import { describe, expect, it, vi } from "vitest";
import { createDispatcher, type Connection, type JsonObject, type SendHook } from "../../src/core/index.js";
import { fakeBackend, gateway, quietLogger } from "./helpers.js";

describe("the send step (PROTOCOL 1.2)", () => {
  it("echoes req_id, passthrough and echo_req", async () => {
    const { conn, send } = gateway();
    await send({ ping: 1, req_id: 3, passthrough: { tab: 2 } });
    expect(conn.sent).toEqual([
      {
        msg_type: "ping",
        ping: { echo: "ping" },
        req_id: 3,
        passthrough: { tab: 2 },
        echo_req: { ping: 1, req_id: 3, passthrough: { tab: 2 } },
      },
    ]);
  });

  it("masks sensitive fields in echo_req as <not shown>, at any depth and inside arrays", async () => {
    const { conn, send } = gateway({ sensitiveFields: ["password", "token"], actions: [["login"]] });
    await send({
      login: 1,
      password: "p",
      token: "t",
      change: { password: "q", keep: 1, deeper: { token: "u", list: [{ password: "v" }] } },
    });
    expect(conn.sent[0]?.echo_req).toEqual({
      login: 1,
      password: "<not shown>",
      token: "<not shown>",
      change: {
        password: "<not shown>",
        keep: 1,
        deeper: { token: "<not shown>", list: [{ password: "<not shown>" }] },
      },
    });
    expect(JSON.stringify(conn.sent)).not.toMatch(/"[ptquv]"/);
  });

  it("does not echo a req_id that is null, on replies and on gateway errors", async () => {
    const { conn, send } = gateway();
    await send({ ping: 1, req_id: null });
    await send({ nothing: 1, req_id: null });
    expect(conn.sent.map((frame) => Object.hasOwn(frame, "req_id"))).toEqual([false, false]);
    expect(conn.sent[0]?.echo_req).toEqual({ ping: 1, req_id: null });
  });

  it("adds no request data when requestData is off", async () => {
    const { conn, send } = gateway({ requestData: false });
    await send({ ping: 1, req_id: 3, passthrough: 1 });
    expect(conn.sent).toEqual([{ msg_type: "ping", ping: { echo: "ping" } }]);
  });

  it("never writes request data into a reply object a hook shares between requests", async () => {
    const shared = { msg_type: "ping", ping: "pong" };
    const { conn, send } = gateway({
      actions: [["ping", { insteadOfForward: () => shared }]],
      beforeSendApiResponse: (_conn, _req, reply) => void (reply.seen = Number(reply.seen ?? 0) + 1),
    });
    await send({ ping: 1, req_id: 1 });
    await send({ ping: 1 });
    expect(shared).toStrictEqual({ msg_type: "ping", ping: "pong" });
    expect(conn.sent[0]).toMatchObject({ req_id: 1, seen: 1 });
    expect(conn.sent[1]).toMatchObject({ seen: 1 });
    expect(conn.sent[1]).not.toHaveProperty("req_id");
  });

  it("replaces a reply larger than maxResponseBytes (in UTF-8 bytes) with ResponseTooLarge, keeping req_id", async () => {
    const backend = fakeBackend(() => ({ result: "é".repeat(60) })); // 60 characters, 120 bytes
    const { conn, send } = gateway({ maxResponseBytes: 100 }, { default: backend });
    await send({ ping: 1, req_id: 77 });
    expect(conn.sent).toEqual([
      { msg_type: "error", error: { code: "ResponseTooLarge", message: "Response too large." }, req_id: 77 },
    ]);
  });

  it("measures maxResponseBytes in UTF-8 bytes, not characters", async () => {
    // {"msg_type":"ping","ping":"é…é"} is 89 characters but 149 bytes
    const backend = fakeBackend(() => ({ result: "é".repeat(60) }));
    const { conn, send } = gateway({ maxResponseBytes: 100, requestData: false }, { default: backend });
    await send({ ping: 1, req_id: 77 });
    expect(conn.sent).toEqual([
      { msg_type: "error", error: { code: "ResponseTooLarge", message: "Response too large." } },
    ]);
  });

  it("runs beforeSendApiResponse (which may change the reply) and afterSentApiResponse", async () => {
    const beforeSendApiResponse = vi.fn((_conn, _req, reply: JsonObject) => void (reply.extra = true));
    const afterSentApiResponse = vi.fn();
    const { conn, send } = gateway({ beforeSendApiResponse, afterSentApiResponse, requestData: false });
    await send({ ping: 1 });
    expect(conn.sent).toEqual([{ msg_type: "ping", ping: { echo: "ping" }, extra: true }]);
    expect(afterSentApiResponse).toHaveBeenCalledWith(conn, { ping: 1 }, conn.sent[0], expect.anything());
  });

  it("hands the send hooks the request record the RPC hooks saw (Perl's $req_storage)", async () => {
    const seen: unknown[] = [];
    const { conn, send } = gateway({
      beforeForward: (_conn, req) => void (req.tenant = "acme"),
      beforeSendApiResponse: (_conn, _req, _reply, rpcRequest) => void seen.push(rpcRequest?.tenant),
      afterSentApiResponse: (_conn, _req, _reply, rpcRequest) => void seen.push(rpcRequest?.msgType),
    });
    await send({ ping: 1 });
    // A frame that matches no action has no request record.
    await send({ nothing: 1 });
    expect(conn.sent).toHaveLength(2);
    expect(seen).toEqual(["acme", "ping", undefined, undefined]);
  });

  it("uses sendText when the connection has it, serialising once", async () => {
    const texts: string[] = [];
    const conn: Connection = {
      id: "c1",
      upgrade: { url: "/", headers: {} },
      stash: {},
      updateStash: () => undefined,
      isOpen: true,
      sendJson: () => {
        throw new Error("sendJson must not be used");
      },
      sendText: (text) => void texts.push(text),
      close: () => undefined,
    };
    const dispatcher = createDispatcher(
      { actions: [["ping"]], requestData: false },
      { default: fakeBackend() },
      {
        logger: quietLogger(),
      },
    );
    await dispatcher.handleFrame(conn, '{"ping":1}');
    expect(texts).toEqual(['{"msg_type":"ping","ping":{"echo":"ping"}}']);
  });
});

describe("the send step when something goes wrong", () => {
  it("sends WrongResponse with the reply's msg_type when beforeSendApiResponse throws", async () => {
    const { conn, send, logger } = gateway({
      actions: [["ping", { msgType: "pong" }]],
      beforeSendApiResponse: () => {
        throw new Error("hook bug");
      },
    });
    await send({ ping: 1, req_id: 4 });
    expect(conn.sent).toEqual([
      {
        msg_type: "pong",
        error: { code: "WrongResponse", message: expect.any(String) as string },
        req_id: 4,
        echo_req: { ping: 1, req_id: 4 },
      },
    ]);
    expect(logger.error).toHaveBeenCalledTimes(1);
  });

  it("sends WrongResponse with msg_type error when the failing hook also broke msg_type", async () => {
    const { conn, send } = gateway({
      requestData: false,
      beforeSendApiResponse: (_conn, _req, reply) => {
        reply.msg_type = 5;
        throw new Error("hook bug");
      },
    });
    await send({ ping: 1 });
    expect(conn.sent).toEqual([
      { msg_type: "error", error: { code: "WrongResponse", message: expect.any(String) as string } },
    ]);
  });

  it("sends WrongResponse, keeping req_id, for a reply JSON cannot carry", async () => {
    const { conn, send, logger } = gateway({
      beforeSendApiResponse: (_conn, _req, reply) => void (reply.big = 1n),
    });
    await send({ ping: 1, req_id: 9 });
    expect(conn.sent).toEqual([
      {
        msg_type: "error",
        error: { code: "WrongResponse", message: expect.any(String) as string },
        req_id: 9,
      },
    ]);
    expect(logger.error).toHaveBeenCalledTimes(1);
  });

  it("sends a reply of exactly maxResponseBytes as it is", async () => {
    const reply = JSON.stringify({ msg_type: "ping", ping: "x" });
    const backend = fakeBackend(() => ({ result: "x" }));
    const { conn, send } = gateway(
      { maxResponseBytes: reply.length, requestData: false },
      { default: backend },
    );
    await send({ ping: 1 });
    expect(conn.sent).toEqual([{ msg_type: "ping", ping: "x" }]);
  });

  it("sends ResponseTooLarge without req_id when the request's req_id is null or requestData is off", async () => {
    const backend = fakeBackend(() => ({ result: "x".repeat(200) }));
    const tooLarge = {
      msg_type: "error",
      error: { code: "ResponseTooLarge", message: "Response too large." },
    };
    const on = gateway({ maxResponseBytes: 100 }, { default: backend });
    await on.send({ ping: 1, req_id: null });
    const off = gateway({ maxResponseBytes: 100, requestData: false }, { default: backend });
    await off.send({ ping: 1, req_id: 5 });
    expect([...on.conn.sent, ...off.conn.sent]).toStrictEqual([tooLarge, tooLarge]);
  });

  it("echoes a passthrough that is null (only a null req_id counts as absent)", async () => {
    const { conn, send } = gateway();
    await send({ ping: 1, passthrough: null });
    expect(conn.sent[0]).toHaveProperty("passthrough", null);
  });

  it("runs no send hook for a connection that closed before its reply was sent", async () => {
    const beforeSendApiResponse = vi.fn();
    const afterSentApiResponse = vi.fn();
    const { conn, send } = gateway({
      actions: [
        [
          "ping",
          {
            insteadOfForward: (c) => {
              c.close(1000, "bye");
              return { msg_type: "ping", ping: 1 };
            },
          },
        ],
      ],
      beforeSendApiResponse,
      afterSentApiResponse,
    });
    await send({ ping: 1 });
    expect(conn.sent).toEqual([]);
    expect(beforeSendApiResponse).not.toHaveBeenCalled();
    expect(afterSentApiResponse).not.toHaveBeenCalled();
  });

  it("a failing afterSentApiResponse is logged and changes nothing that was sent", async () => {
    const { conn, send, logger } = gateway({
      requestData: false,
      afterSentApiResponse: () => {
        throw new Error("metrics down");
      },
    });
    await send({ ping: 1 });
    await send({ ping: 2 });
    expect(conn.sent).toEqual([
      { msg_type: "ping", ping: { echo: "ping" } },
      { msg_type: "ping", ping: { echo: "ping" } },
    ]);
    expect(logger.error).toHaveBeenCalledTimes(2);
  });

  it("a send the socket refuses (it closed under the gateway) is a warning, and the gateway goes on", async () => {
    const afterSentApiResponse = vi.fn();
    const { conn, send, logger } = gateway({ requestData: false, afterSentApiResponse });
    conn.sendJson = () => {
      throw new Error("socket closed");
    };
    await send({ ping: 1 });
    expect(logger.warn).toHaveBeenCalledTimes(1);
    expect(logger.error).not.toHaveBeenCalled();
    expect(afterSentApiResponse).toHaveBeenCalledTimes(1);
  });
});

describe("hook lists", () => {
  it("skip entries that are not functions (a hook left out by a condition, in plain JavaScript)", async () => {
    const seen: string[] = [];
    const tag: SendHook = (_conn, _req, reply) => void (reply.tagged = true);
    const { conn, send, logger } = gateway({
      requestData: false,
      // What `[debug && logHook, tag]` gives a JavaScript deployment when `debug` is off.
      beforeSendApiResponse: [undefined, tag] as unknown as SendHook[],
      afterSentApiResponse: [false, () => void seen.push("sent")] as unknown as SendHook[],
    });
    await send({ ping: 1 });
    expect(conn.sent).toEqual([{ msg_type: "ping", ping: { echo: "ping" }, tagged: true }]);
    expect(seen).toEqual(["sent"]);
    expect(logger.error).not.toHaveBeenCalled();
  });
});
