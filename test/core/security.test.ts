import { afterEach, describe, expect, it } from "vitest";
import { fakeBackend, gateway } from "./helpers.js";

/** Everything a successful pollution would have put on Object.prototype. */
function pollution(): unknown[] {
  const probe: Record<string, unknown> = {};
  return [
    probe.polluted,
    probe.isAdmin,
    ({} as { token?: unknown }).token,
    Object.prototype.hasOwnProperty.call(Object.prototype, "polluted"),
  ];
}

describe("prototype pollution", () => {
  afterEach(() => {
    expect(pollution()).toEqual([undefined, undefined, undefined, false]);
  });

  it("keeps __proto__, constructor and prototype keys of a frame as plain data", async () => {
    const backend = fakeBackend();
    const { conn, send } = gateway(
      { actions: [["ping", { stashParams: ["token"] }]], sensitiveFields: ["secret"] },
      { default: backend },
    );
    await send(
      '{"ping":1,"req_id":1,"__proto__":{"polluted":1},"constructor":{"prototype":{"isAdmin":true}},' +
        '"passthrough":{"__proto__":{"polluted":2}},"nested":{"__proto__":{"polluted":3}}}',
    );
    const reply = conn.sent[0]!;
    expect(reply.msg_type).toBe("ping");
    expect(Object.getPrototypeOf(reply.echo_req)).toBe(Object.prototype);
    expect(Object.keys(reply.echo_req as object)).toContain("__proto__");
    const params = backend.calls[0]!.params;
    expect(Object.getPrototypeOf(params)).toBe(Object.prototype);
    expect(params.token).toBeNull(); // not read through the prototype chain of the stash
  });

  it("does not let a result's stash change the stash's prototype or add constructor keys", async () => {
    const backend = fakeBackend(() =>
      JSON.parse(
        '{"result":{"stash":{"__proto__":{"token":"forged"},"constructor":1,"loginid":"CR1"},"status":1}}',
      ),
    );
    const { conn, send } = gateway({}, { default: backend });
    await send({ ping: 1 });
    expect(conn.stash).toEqual({ loginid: "CR1" });
    expect(Object.getPrototypeOf(conn.stash)).toBe(Object.prototype);
    expect((conn.stash as { token?: unknown }).token).toBeUndefined();
  });

  it("defines a success reply whose msg_type is __proto__ as data, not as a prototype", async () => {
    const backend = fakeBackend(() => ({ result: { polluted: true } }));
    const { conn, send } = gateway({ actions: [["ping", { msgType: "__proto__" }]] }, { default: backend });
    await send({ ping: 1 });
    expect(conn.sent[0]).toMatchObject({ msg_type: "__proto__" });
    expect(Object.getOwnPropertyNames(conn.sent[0])).toContain("__proto__");
  });
});
