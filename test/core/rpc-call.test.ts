/**
 * The RPC hook orchestration (`callRpc`, through the dispatcher and directly) where a service answers
 * something unusable, a callback fails, the connection goes away mid-call, or a result writes the stash.
 */
import { describe, expect, it, vi } from "vitest";
import {
  buildRequest,
  callRpc,
  createMemoryConnection,
  type RpcFailure,
  type RpcResponse,
} from "../../src/core/index.js";
import { deferred, fakeBackend, gateway } from "./helpers.js";

const SORRY = "Sorry, an error occurred while processing your request.";

describe("unusable service answers", () => {
  it.each([
    ["null", null],
    ["a string", "ok"],
    ["an array", [{ result: 1 }]],
    ["an object with neither result nor error", { status: 1 }],
  ])("answers %s with WrongResponse and tells rpcFailureCb", async (_, response) => {
    const failures: RpcFailure[] = [];
    const { conn, send } = gateway(
      {
        requestData: false,
        actions: [["ticks", { msgType: "tick" }]],
        rpcFailureCb: (_conn, _res, _req, failure) => void failures.push(failure),
      },
      { default: fakeBackend(() => response as unknown as RpcResponse) },
    );
    await send({ ticks: "R_100" });
    expect(conn.sent).toEqual([{ msg_type: "tick", error: { code: "WrongResponse", message: SORRY } }]);
    expect(failures).toEqual([
      { code: "WrongResponse", message: expect.any(String) as string, type: "WrongResponse" },
    ]);
  });

  it.each([
    ["a string", "boom"],
    ["an object without a code or message", { code: 5, message: ["x"] }],
  ])("tells rpcFailureCb CallError with an empty message for an error that is %s", async (_, error) => {
    const failures: RpcFailure[] = [];
    const { conn, send } = gateway(
      { requestData: false, rpcFailureCb: (_conn, _res, _req, failure) => void failures.push(failure) },
      { default: fakeBackend(() => ({ error }) as unknown as RpcResponse) },
    );
    await send({ ping: 1 });
    expect(conn.sent).toEqual([{ msg_type: "ping", error: { code: "CallError", message: SORRY } }]);
    expect(failures).toEqual([{ code: "CallError", message: "", type: "CallError" }]);
  });

  it("a failing rpcFailureCb is logged, and the client still gets its error", async () => {
    const { conn, send, logger } = gateway(
      {
        requestData: false,
        rpcFailureCb: () => {
          throw new Error("alerting down");
        },
      },
      { default: fakeBackend(() => ({ error: { code: "Broken", message: "down" } })) },
    );
    await send({ ping: 1 });
    expect(conn.sent).toEqual([{ msg_type: "ping", error: { code: "CallError", message: SORRY } }]);
    expect(logger.error).toHaveBeenCalledTimes(1);
  });
});

describe("the connection going away during the call", () => {
  it("runs no response hook and writes no stash for an answer that came after the close", async () => {
    const answer = deferred<RpcResponse>();
    const afterGotRpcResponse = vi.fn();
    const success = vi.fn();
    const backend = fakeBackend(() => answer.promise);
    const { conn, send } = gateway(
      { afterGotRpcResponse, actions: [["login", { stashWrites: ["loginid"], success }]] },
      { default: backend },
    );
    const sent = send({ login: 1 });
    await vi.waitFor(() => expect(backend.calls).toHaveLength(1));
    conn.disconnect();
    answer.resolve({ result: { stash: { loginid: "CR1" } } });
    await sent;
    expect(afterGotRpcResponse).not.toHaveBeenCalled();
    expect(success).not.toHaveBeenCalled();
    expect(conn.stash).toEqual({});
    expect(conn.sent).toEqual([]);
  });
});

describe("stash writes", () => {
  it("writes allowed keys without a warning", async () => {
    const { conn, send, logger, dispatcher } = gateway(
      { requestData: false, actions: [["login", { stashWrites: ["loginid"] }]] },
      { default: fakeBackend(() => ({ result: { ok: 1, stash: { loginid: "CR1" } } })) },
    );
    await send({ login: 1 });
    expect(conn.stash).toEqual({ loginid: "CR1" });
    expect(logger.warn).not.toHaveBeenCalled();
    expect(dispatcher.counters.stashWritesDropped).toBe(0);
  });

  it("does not touch the connection's stash when every key is refused", async () => {
    const { conn, send, logger } = gateway(
      { requestData: false },
      { default: fakeBackend(() => ({ result: { ok: 1, stash: { loginid: "CR1" } } })) },
    );
    const updateStash = vi.spyOn(conn, "updateStash");
    await send({ ping: 1 });
    expect(updateStash).not.toHaveBeenCalled();
    expect(logger.warn).toHaveBeenCalledTimes(1);
  });
});

describe("the response hooks", () => {
  it("once one suppresses the reply (null), the next ones do not run and nothing is sent", async () => {
    const actionResponse = vi.fn();
    const { conn, send } = gateway({
      response: () => null,
      actions: [["ping", { response: actionResponse }]],
    });
    await send({ ping: 1 });
    expect(conn.sent).toEqual([]);
    expect(actionResponse).not.toHaveBeenCalled();
  });
});

describe("callRpc called directly, with no options", () => {
  it("drops a stash key the action does not list and answers", async () => {
    const conn = createMemoryConnection();
    const req = buildRequest("login", {}, { login: 1 }, "default", Date.now());
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    try {
      const backend = fakeBackend(() => ({ result: { ok: 1, stash: { loginid: "CR1" } } }));
      expect(await callRpc(conn, req, backend, { global: {}, action: req.action })).toEqual({
        msg_type: "login",
        login: { ok: 1 },
      });
      expect(conn.stash).toEqual({});
    } finally {
      warn.mockRestore();
    }
  });

  it("answers a failed call with WrongResponse, logging to the console", async () => {
    const conn = createMemoryConnection();
    const req = buildRequest("ping", {}, { ping: 1 }, "default", Date.now());
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    try {
      const backend = fakeBackend(() => Promise.reject(new Error("down")));
      expect(await callRpc(conn, req, backend, { global: {}, action: req.action })).toEqual({
        msg_type: "ping",
        error: { code: "WrongResponse", message: SORRY },
      });
      expect(warn).toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });
});
