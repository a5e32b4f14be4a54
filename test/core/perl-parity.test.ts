/**
 * The Perl plugin's hook semantics that a migrated deployment relies on (docs/migrating.md), with the
 * real dispatcher and a fake backend: what the `response` hook's return does, which `rpcFailureCb` runs
 * and when, per-request `block_response`, `req.callRpc` from `insteadOfForward`, Perl option names, NFC.
 */
import { describe, expect, it, vi } from "vitest";
import {
  ConfigError,
  createDispatcher,
  RpcTimeoutError,
  TransportError,
  type RpcFailure,
  type RpcResponse,
} from "../../src/core/index.js";
import { deferred, fakeBackend, gateway } from "./helpers.js";

describe("the response hook (Perl: its return value is the reply)", () => {
  it("replaces the reply with what it returns", async () => {
    const { conn, send } = gateway({
      requestData: false,
      actions: [["ping", { response: () => ({ msg_type: "ping", ping: "replaced" }) }]],
    });
    await send({ ping: 1 });
    expect(conn.sent).toEqual([{ msg_type: "ping", ping: "replaced" }]);
  });

  it.each([null, false] as const)("sends nothing when it returns %s", async (returned) => {
    const after = vi.fn();
    const { conn, send } = gateway({
      afterSentApiResponse: after,
      actions: [["ping", { response: () => returned }]],
    });
    await send({ ping: 1 });
    await send({ nothing: 1 });
    // Only the second frame's UnrecognisedRequest went out.
    expect(conn.sent.map((frame) => frame.msg_type)).toEqual(["error"]);
    expect(after).toHaveBeenCalledTimes(1);
  });

  it("keeps the reply, changed in place, when it returns nothing at all", async () => {
    const { conn, send } = gateway({
      requestData: false,
      response: (_conn, _req, reply) => void (reply.checked = true),
    });
    await send({ ping: 1 });
    expect(conn.sent).toEqual([{ msg_type: "ping", ping: { echo: "ping" }, checked: true }]);
  });

  it("may rewrite or remove the reply's data in place", async () => {
    const { conn, send } = gateway({
      requestData: false,
      actions: [["ping"], ["time"]],
      response: (_conn, req, reply) => {
        if (req.name === "ping") reply.ping = "rewritten";
        else delete reply.time;
      },
    });
    await send({ ping: 1 });
    await send({ time: 1 });
    expect(conn.sent).toEqual([{ msg_type: "ping", ping: "rewritten" }, { msg_type: "time" }]);
  });

  it("hands each hook the reply the previous one returned (global, then the action's)", async () => {
    const { conn, send } = gateway({
      requestData: false,
      response: () => ({ msg_type: "ping", ping: "global" }),
      actions: [["ping", { response: (_conn, _req, reply) => ({ ...reply, action: true }) }]],
    });
    await send({ ping: 1 });
    expect(conn.sent).toEqual([{ msg_type: "ping", ping: "global", action: true }]);
  });
});

describe("rpcFailureCb (Perl)", () => {
  it("runs the action's callback instead of the global one, and the global one for other actions", async () => {
    const calls: string[] = [];
    const { send } = gateway(
      {
        rpcFailureCb: (_conn, _res, req) => void calls.push(`global:${req.name}`),
        actions: [
          ["ping", { rpcFailureCb: (_conn, _res, req) => void calls.push(`action:${req.name}`) }],
          ["echo"],
        ],
      },
      { default: fakeBackend(() => ({ error: { code: "Broken", message: "down" } })) },
    );
    await send({ ping: 1 });
    await send({ echo: 1 });
    expect(calls).toEqual(["action:ping", "global:echo"]);
  });

  it.each([
    ["Timeout", () => new RpcTimeoutError("ping", 1000)],
    ["RedisError", () => new TransportError("XADD failed", "XADD general", { failureType: "RedisError" })],
  ])("tells it the failure's kind: %s", async (kind, error) => {
    const failures: RpcFailure[] = [];
    const { conn, send } = gateway(
      { rpcFailureCb: (_conn, _res, _req, failure) => void failures.push(failure) },
      { default: fakeBackend(() => Promise.reject(error())) },
    );
    await send({ ping: 1 });
    expect(failures.map((failure) => failure.type)).toEqual([kind]);
    expect(conn.sent[0]).toMatchObject({ error: { code: "WrongResponse" } });
  });

  it("is not called for a connection that went away during the call", async () => {
    const reply = deferred<RpcResponse>();
    const rpcFailureCb = vi.fn();
    const { conn, send } = gateway(
      { rpcFailureCb },
      {
        default: fakeBackend(() => reply.promise.then(() => Promise.reject(new RpcTimeoutError("ping", 1)))),
      },
    );
    const sent = send({ ping: 1 });
    conn.disconnect();
    reply.resolve({ result: null });
    await sent;
    expect(rpcFailureCb).not.toHaveBeenCalled();
    expect(conn.sent).toEqual([]);
  });
});

describe("block_response set by a hook for one request (Perl read it from $req_storage)", () => {
  it.each(["blockResponse", "block_response"])("req.%s = true sends nothing on failure", async (field) => {
    const { conn, send } = gateway(
      {
        actions: [["ping"], ["echo"]],
        beforeForward: (_conn, req) => void (req.name === "ping" && (req[field] = true)),
      },
      { default: fakeBackend(() => ({ error: { code: "Broken", message: "down" } })) },
    );
    await send({ ping: 1 });
    await send({ echo: 1 });
    expect(conn.sent.map((frame) => frame.msg_type)).toEqual(["echo"]);
  });
});

describe("req.callRpc from insteadOfForward (Perl's call_rpc)", () => {
  it("calls another method with its own args and msg_type, through the backend with every RPC hook", async () => {
    const backend = fakeBackend((req) => ({ result: { method: req.method, args: req.args } }));
    const seen: string[] = [];
    const { conn, send } = gateway(
      {
        requestData: false,
        beforeCall: (_conn, req) => void seen.push(`beforeCall:${req.method}`),
        actions: [
          [
            "portfolio",
            {
              insteadOfForward: async (_conn, req) => {
                const first = await req.callRpc?.({
                  method: "balance",
                  args: { balance: 1, currency: "USD" },
                });
                seen.push(`first:${JSON.stringify(first)}`);
                return req.callRpc?.({
                  method: "open_positions",
                  args: { open_positions: 1 },
                  msgType: "positions",
                });
              },
            },
          ],
          ["balance", { stashParams: ["token"], success: () => void seen.push("success:balance") }],
        ],
      },
      { default: backend },
      { stash: { token: "T" } },
    );
    await send({ portfolio: 1 });
    expect(backend.calls.map((call) => [call.req.method, call.params])).toEqual([
      ["balance", { args: { balance: 1, currency: "USD" }, token: "T" }],
      ["open_positions", { args: { open_positions: 1 } }],
    ]);
    expect(seen).toEqual([
      "beforeCall:balance",
      "success:balance",
      `first:${JSON.stringify({ msg_type: "balance", balance: { method: "balance", args: { balance: 1, currency: "USD" } } })}`,
      "beforeCall:open_positions",
    ]);
    expect(conn.sent).toEqual([
      { msg_type: "positions", positions: { method: "open_positions", args: { open_positions: 1 } } },
    ]);
  });

  it.each([
    ["without a method", {}],
    ["with an empty method", { method: "" }],
  ])("answers WrongResponse when called %s, calling no backend", async (_, call) => {
    const backend = fakeBackend();
    const { conn, send } = gateway(
      { actions: [["ping", { insteadOfForward: (_conn, req) => req.callRpc?.(call as never) }]] },
      { default: backend },
    );
    await send({ ping: 1 });
    expect(conn.sent[0]).toMatchObject({ msg_type: "ping", error: { code: "WrongResponse" } });
    expect(backend.calls).toEqual([]);
  });

  it("is offered to insteadOfForward only, not to the hooks of a forwarded request", async () => {
    const seen: unknown[] = [];
    const { send } = gateway({ beforeCall: (_conn, req) => void seen.push(req.callRpc) });
    await send({ ping: 1 });
    expect(seen).toEqual([undefined]);
  });
});

describe("Perl option names", () => {
  it.each([
    [
      "stash_params",
      { actions: [["login", { stash_params: ["token"] }]] },
      /"login": `stash_params`.*`stashParams`/,
    ],
    ["msg_type", { actions: [["ping", { msg_type: "pong" }]] }, /`msg_type`.*`msgType`/],
    [
      "before_forward",
      { actions: [["ping"]], before_forward: () => undefined },
      /`before_forward`.*`beforeForward`/,
    ],
    ["rpc_response_cb", { actions: [["ping", { rpc_response_cb: () => undefined }]] }, /`rpcResponseCb`/],
    [
      "opened_connection",
      { actions: [["ping"]], opened_connection: () => undefined },
      /`opened_connection`.*`onOpen`/,
    ],
  ])("refuses %s with a ConfigError naming the camelCase option", (_name, options, message) => {
    const build = () => createDispatcher(options as never, { default: fakeBackend() });
    expect(build).toThrow(ConfigError);
    expect(build).toThrow(message);
  });

  it("still accepts instead_of_forward", async () => {
    const { conn, send } = gateway({
      requestData: false,
      actions: [["ping", { instead_of_forward: () => ({ msg_type: "ping", ping: "local" }) }]],
    });
    await send({ ping: 1 });
    expect(conn.sent).toEqual([{ msg_type: "ping", ping: "local" }]);
  });
});

describe("Unicode normalisation (Perl: NFC)", () => {
  it("hands services and echo_req the NFC form of a decomposed string", async () => {
    const backend = fakeBackend();
    const { conn, send } = gateway({ actions: [["search"]] }, { default: backend });
    await send('{"search":"Cafe\u0301","req_id":1}');
    expect(backend.calls[0]?.params.args).toEqual({ search: "Caf\u00e9", req_id: 1 });
    expect(conn.sent[0]?.echo_req).toEqual({ search: "Caf\u00e9", req_id: 1 });
  });
});
