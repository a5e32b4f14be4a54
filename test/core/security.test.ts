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

  it("drops __proto__ keys of a frame at any depth, keeps constructor and prototype keys as plain data", async () => {
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
    expect(reply.echo_req).toEqual({
      ping: 1,
      req_id: 1,
      constructor: { prototype: { isAdmin: true } },
      passthrough: {},
      nested: {},
    });
    const params = backend.calls[0]!.params;
    expect(Object.getPrototypeOf(params)).toBe(Object.prototype);
    expect(params.token).toBeNull(); // not read through the prototype chain of the stash
    // What the service receives, as it would parse it: no `__proto__` anywhere.
    expect(JSON.stringify(params)).not.toContain("__proto__");
  });

  it("drops a __proto__ key spelt with escapes, inside arrays too", async () => {
    const backend = fakeBackend();
    const { send } = gateway({}, { default: backend });
    await send(String.raw`{"ping":1,"__proto__":{"a":1},"list":[{"__proto__":{"b":2},"c":3}]}`);
    expect(backend.calls[0]!.params.args).toEqual({ ping: 1, list: [{ c: 3 }] });
  });

  it("does not let a result's stash change the stash's prototype or add constructor keys", async () => {
    const backend = fakeBackend(() =>
      JSON.parse(
        '{"result":{"stash":{"__proto__":{"token":"forged"},"constructor":1,"loginid":"CR1"},"status":1}}',
      ),
    );
    const { conn, send } = gateway(
      { actions: [["ping", { stashWrites: ["__proto__", "constructor", "loginid"] }]] },
      { default: backend },
    );
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
