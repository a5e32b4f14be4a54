import { describe, expect, it, vi } from "vitest";
import {
  RpcTimeoutError,
  TransportError,
  type GatewayOptions,
  type RpcResponse,
} from "../../src/core/index.js";
import { fakeBackend, gateway } from "./helpers.js";

const SORRY = "Sorry, an error occurred while processing your request.";

/** A gateway whose default backend answers every call with `response`. */
function answering(
  response: RpcResponse | (() => Promise<RpcResponse>),
  options: Partial<GatewayOptions> = {},
) {
  const backend = fakeBackend(typeof response === "function" ? response : () => response);
  return { backend, ...gateway(options, { default: backend }) };
}

describe("reply building (PROTOCOL 1.2)", () => {
  it("replies {msg_type: M, M: result}", async () => {
    const { conn, send } = answering({ result: { balance: 10, currency: "USD" } }, { requestData: false });
    await send({ ping: 1 });
    expect(conn.sent).toEqual([{ msg_type: "ping", ping: { balance: 10, currency: "USD" } }]);
  });

  it.each([
    [{ status: 1 }, 1],
    [{ status: "pong", stash: { a: 1 } }, "pong"],
    [
      { status: 1, other: 2 },
      { status: 1, other: 2 },
    ],
    [{ stash: { a: 1 } }, {}],
    ["plain", "plain"],
    [
      [1, 2],
      [1, 2],
    ],
    [null, null],
  ])("unwraps a result whose only key is status: %j → %j", async (result, expected) => {
    const { conn, send } = answering({ result }, { requestData: false });
    await send({ ping: 1 });
    expect(conn.sent).toEqual([{ msg_type: "ping", ping: expected }]);
  });

  it("replies an application error with details", async () => {
    const error = {
      code: "InvalidToken",
      message_to_client: "The token is invalid.",
      details: { field: "x" },
    };
    const { conn, send } = answering({ result: { error } }, { requestData: false });
    await send({ ping: 1 });
    expect(conn.sent).toEqual([
      {
        msg_type: "ping",
        error: { code: "InvalidToken", message: "The token is invalid.", details: { field: "x" } },
      },
    ]);
  });

  it.each([{}, undefined, "text", [1]])(
    "replies an application error without details %j",
    async (details) => {
      const error = { code: "InvalidToken", message_to_client: "The token is invalid.", details };
      const { conn, send } = answering({ result: { error } }, { requestData: false });
      await send({ ping: 1 });
      expect(conn.sent).toEqual([
        { msg_type: "ping", error: { code: "InvalidToken", message: "The token is invalid." } },
      ]);
    },
  );

  it("replies an application error whose message is not a string with an empty message", async () => {
    const error = { code: "InvalidToken", message_to_client: { text: "no" } };
    const { conn, send } = answering({ result: { error } }, { requestData: false });
    await send({ ping: 1 });
    expect(conn.sent).toEqual([{ msg_type: "ping", error: { code: "InvalidToken", message: "" } }]);
  });

  it("replies CallError with the action's msg_type when the response carries error", async () => {
    const rpcFailureCb = vi.fn();
    const { conn, send } = answering(
      { error: { code: "-32601", message: "Method not found" } },
      { requestData: false, rpcFailureCb, actions: [["ping", { msgType: "pong" }]] },
    );
    await send({ ping: 1 });
    expect(conn.sent).toEqual([{ msg_type: "pong", error: { code: "CallError", message: SORRY } }]);
    expect(rpcFailureCb.mock.calls[0]?.[3]).toEqual({
      code: "-32601",
      message: "Method not found",
      type: "CallError",
    });
  });

  it.each([
    ["a backend timeout", new RpcTimeoutError("ping", 30_000), "Timeout"],
    [
      "a Redis failure",
      new TransportError("XADD failed", "XADD general", { failureType: "RedisError" }),
      "RedisError",
    ],
    ["an HTTP failure", new TransportError("POST failed", "POST http://rpc/ping"), "TransportError"],
    ["any other error", new Error("surprise"), "WrongResponse"],
  ])("replies WrongResponse on %s and tells rpcFailureCb", async (_name, thrown, type) => {
    const rpcFailureCb = vi.fn();
    const { conn, send } = answering(() => Promise.reject(thrown), { rpcFailureCb, requestData: false });
    await send({ ping: 1 });
    expect(conn.sent).toEqual([{ msg_type: "ping", error: { code: "WrongResponse", message: SORRY } }]);
    expect(rpcFailureCb).toHaveBeenCalledWith(conn, undefined, expect.objectContaining({ name: "ping" }), {
      code: "WrongResponse",
      message: thrown.message,
      type,
    });
  });

  it.each([
    ["an application error without a code", { result: { error: "text" } }],
    ["an application error whose code is not a string", { result: { error: { code: 5, message: "x" } } }],
    ["an application error whose code is empty", { result: { error: { code: "", message: "x" } } }],
    ["a response with neither result nor error", {} as RpcResponse],
  ])("replies WrongResponse on %s", async (_name, response) => {
    const { conn, send } = answering(response, { requestData: false });
    await send({ ping: 1 });
    expect(conn.sent).toEqual([{ msg_type: "ping", error: { code: "WrongResponse", message: SORRY } }]);
  });

  it("sends nothing on failures with blockResponse, but still calls rpcFailureCb", async () => {
    const rpcFailureCb = vi.fn();
    const { conn, send } = answering(() => Promise.reject(new RpcTimeoutError("ping", 1)), {
      actions: [["ping", { blockResponse: true, rpcFailureCb }]],
    });
    await send({ ping: 1 });
    expect(conn.sent).toEqual([]);
    expect(rpcFailureCb).toHaveBeenCalledTimes(1);
  });

  it("sends nothing when rpcResponseCb returns a falsy value, and its reply otherwise", async () => {
    const success = vi.fn();
    const { conn, send } = answering(
      { result: { stash: { token: "t" }, status: 1 } },
      {
        success,
        actions: [
          ["ping", { rpcResponseCb: () => undefined }],
          ["time", { rpcResponseCb: (_c, _r, res) => ({ msg_type: "time", raw: res }) }],
        ],
        requestData: false,
      },
    );
    await send({ ping: 1 });
    await send({ time: 1 });
    expect(conn.sent).toEqual([{ msg_type: "time", raw: { result: { stash: { token: "t" }, status: 1 } } }]);
    expect(success).not.toHaveBeenCalled();
    expect(conn.stash).toEqual({});
  });

  it("runs the RPC hooks in order, global before action, and lets response replace the reply", async () => {
    const order: string[] = [];
    const log = (name: string) => () => void order.push(name);
    const hooks = ["beforeCall", "beforeGetRpcResponse", "afterGotRpcResponse", "success", "response"];
    const global = Object.fromEntries(hooks.map((name) => [name, log(`global ${name}`)]));
    const action = Object.fromEntries(hooks.map((name) => [name, log(`action ${name}`)]));
    const { conn, send } = answering(
      { result: 1 },
      {
        ...global,
        requestData: false,
        actions: [["ping", { ...action, response: () => ({ msg_type: "x" }) }]],
      },
    );
    await send({ ping: 1 });
    expect(order).toEqual(hooks.flatMap((name) => [`global ${name}`, `action ${name}`]).slice(0, -1));
    expect(conn.sent).toEqual([{ msg_type: "x" }]);
  });

  it("calls the error hook, not success, for an application error", async () => {
    const success = vi.fn();
    const error = vi.fn((_conn, _req, reply) => void (reply.error.message = "changed"));
    const { conn, send } = answering(
      { result: { error: { code: "E", message_to_client: "m" } } },
      { success, error, requestData: false },
    );
    await send({ ping: 1 });
    expect(success).not.toHaveBeenCalled();
    expect(conn.sent).toEqual([{ msg_type: "ping", error: { code: "E", message: "changed" } }]);
  });

  it("lets beforeCall add call params", async () => {
    const { backend, send } = answering(
      { result: 1 },
      { beforeCall: (_c, req) => void (req.callParams.lang = "EN") },
    );
    await send({ ping: 1 });
    expect(backend.calls[0]?.params).toEqual({ args: { ping: 1 }, lang: "EN" });
  });
});

describe("the connection stash", () => {
  it("merges a result's stash into the connection and removes it from the reply", async () => {
    const { conn, send } = answering(
      { result: { stash: { token: "secret", loginid: "CR1" }, balance: 5 } },
      { requestData: false, actions: [["ping", { stashWrites: ["token", "loginid"] }]] },
    );
    await send({ ping: 1 });
    expect(conn.sent).toEqual([{ msg_type: "ping", ping: { balance: 5 } }]);
    expect(conn.stash).toEqual({ token: "secret", loginid: "CR1" });
  });

  it("writes only the keys the action's stashWrites lists; nothing by default; counts what it drops", async () => {
    // A service that reflects its input: the client's `stash` field comes back as the result's stash.
    const reflecting = fakeBackend((_req, params) => ({ result: params.args }));
    const { conn, send, dispatcher } = gateway(
      { actions: [["echo"], ["login", { stashWrites: ["loginid"] }]] },
      { default: reflecting },
      { stash: { loginid: "CR-REAL" } },
    );
    await send({ echo: 1, stash: { loginid: "CR9", scopes: ["admin"] } });
    expect(conn.stash).toEqual({ loginid: "CR-REAL" });
    expect(conn.sent[0]).toMatchObject({ msg_type: "echo", echo: { echo: 1 } });
    await send({ login: 1, stash: { loginid: "CR2", scopes: ["admin"] } });
    expect(conn.stash).toEqual({ loginid: "CR2" });
    expect(dispatcher.counters.stashWritesDropped).toBe(3);
  });

  it("sends stashParams from the stash only, never from client fields of the same name", async () => {
    const backend = fakeBackend(() => ({ result: 1 }));
    const { send } = gateway(
      { actions: [["ping", { stashParams: ["token", "loginid"] }]] },
      { default: backend },
      { stash: { token: "from-stash" } },
    );
    await send({ ping: 1, token: "from-client", loginid: "CR-evil" });
    expect(backend.calls[0]?.params).toEqual({
      args: { ping: 1, token: "from-client", loginid: "CR-evil" },
      token: "from-stash",
      loginid: null,
    });
  });
});
