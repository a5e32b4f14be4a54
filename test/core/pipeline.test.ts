import { describe, expect, it, vi } from "vitest";
import type { RequestHook } from "../../src/core/index.js";
import { fakeBackend, gateway } from "./helpers.js";

const TIMEOUT = { msg_type: "error", error: { code: "Timeout", message: "Timeout" } };

describe("the forward pipeline (PROTOCOL section 2)", () => {
  const answered = { msg_type: "ping", ping: "from hook" };

  it.each([
    ["returns", (() => answered) as RequestHook],
    ["resolves to", (async () => answered) as RequestHook],
    ["rejects with", (() => Promise.reject(answered)) as RequestHook],
    [
      "throws",
      (() => {
        throw answered;
      }) as RequestHook,
    ],
  ])(
    "ends the pipeline when a beforeForward hook %s a reply, skipping the backend and afterForward",
    async (_how, hook) => {
      const backend = fakeBackend();
      const afterForward = vi.fn();
      const later = vi.fn();
      const { conn, send } = gateway(
        { beforeForward: [hook, later], afterForward, actions: [["ping", { beforeForward: later }]] },
        { default: backend },
      );
      await send({ ping: 1, req_id: 5 });
      expect(conn.sent).toEqual([{ ...answered, req_id: 5, echo_req: { ping: 1, req_id: 5 } }]);
      expect(backend.calls).toEqual([]);
      expect(afterForward).not.toHaveBeenCalled();
      expect(later).not.toHaveBeenCalled();
    },
  );

  it("runs global beforeForward hooks before the action's, in order, then forwards on falsy results", async () => {
    const order: string[] = [];
    const hook = (name: string, value: unknown) => () => {
      order.push(name);
      return value as undefined;
    };
    const { conn, send } = gateway({
      beforeForward: [hook("global 1", undefined), hook("global 2", false)],
      actions: [["ping", { beforeForward: [hook("action", null)] }]],
    });
    await send({ ping: 1 });
    expect(order).toEqual(["global 1", "global 2", "action"]);
    expect(conn.sent[0]).toMatchObject({ msg_type: "ping", ping: { echo: "ping" } });
  });

  it("treats a beforeForward hook that throws an Error as a failure: WrongResponse, logged", async () => {
    const { conn, send, logger } = gateway({
      beforeForward: () => {
        throw new Error("bug in hook");
      },
    });
    await send({ ping: 1 });
    expect(conn.sent[0]).toMatchObject({
      msg_type: "ping",
      error: { code: "WrongResponse", message: "Sorry, an error occurred while processing your request." },
    });
    expect(logger.error).toHaveBeenCalled();
  });

  it("answers with the result of insteadOfForward (or instead_of_forward), then runs afterForward", async () => {
    const backend = fakeBackend();
    const afterForward = vi.fn((_conn, _req, reply) => {
      reply.touched = true;
    });
    const { conn, send } = gateway(
      {
        afterForward,
        actions: [
          ["ping", { insteadOfForward: () => ({ msg_type: "ping", ping: "pong" }) }],
          ["time", { instead_of_forward: async () => ({ msg_type: "time", time: 42 }) }],
        ],
      },
      { default: backend },
    );
    await send({ ping: 1 });
    await send({ time: 1 });
    expect(conn.sent).toEqual([
      { msg_type: "ping", ping: "pong", touched: true, echo_req: { ping: 1 } },
      { msg_type: "time", time: 42, touched: true, echo_req: { time: 1 } },
    ]);
    expect(backend.calls).toEqual([]);
    expect(afterForward).toHaveBeenCalledTimes(2);
  });

  it("sends nothing when insteadOfForward returns nothing", async () => {
    const { conn, send } = gateway({ actions: [["ping", { insteadOfForward: () => undefined }]] });
    await send({ ping: 1 });
    expect(conn.sent).toEqual([]);
  });

  it("runs afterForward after a backend call, with the reply", async () => {
    const afterForward = vi.fn();
    const { send } = gateway({ afterForward });
    await send({ ping: 1 });
    expect(afterForward).toHaveBeenCalledWith(expect.anything(), expect.objectContaining({ name: "ping" }), {
      msg_type: "ping",
      ping: { echo: "ping" },
    });
  });

  it("answers Timeout when a hook does not finish within hookTimeoutMs", async () => {
    const backend = fakeBackend();
    const { conn, send } = gateway(
      { hookTimeoutMs: 20, beforeForward: () => new Promise(() => undefined) },
      { default: backend },
    );
    await send({ ping: 1, req_id: 8 });
    expect(conn.sent).toEqual([{ ...TIMEOUT, req_id: 8, echo_req: { ping: 1, req_id: 8 } }]);
    expect(backend.calls).toEqual([]);
  });

  it.each(["beforeCall", "afterForward", "success"])("answers Timeout when %s hangs", async (hookName) => {
    const { conn, send } = gateway({ hookTimeoutMs: 20, [hookName]: () => new Promise(() => undefined) });
    await send({ ping: 1 });
    expect(conn.sent).toEqual([{ ...TIMEOUT, echo_req: { ping: 1 } }]);
  });

  it("answers WrongResponse when a hook replies with something that is not an object", async () => {
    const { conn, send } = gateway({ beforeForward: () => "yes" as never });
    await send({ ping: 1 });
    expect(conn.sent[0]).toMatchObject({ msg_type: "ping", error: { code: "WrongResponse" } });
  });

  it("answers WrongResponse (and logs) when a request's backend does not exist at run time", async () => {
    const { conn, send, logger } = gateway({ defaultBackend: "missing" });
    await send({ ping: 1 });
    expect(conn.sent[0]).toMatchObject({ msg_type: "ping", error: { code: "WrongResponse" } });
    expect(logger.error).toHaveBeenCalledWith(expect.stringContaining('backend "missing"'));
  });
});
