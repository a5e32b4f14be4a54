/**
 * The security helpers of `src/worker/security.ts` (portable: they use only the core's types), driven
 * through the core dispatcher with an in-memory connection. End to end: test/e2e/security.test.ts.
 */
import { describe, expect, it } from "vitest";
import { originAllowed, requireAuth, type RequireAuthOptions } from "../../src/worker/security.js";
import { fakeBackend, gateway } from "./helpers.js";

/** A gateway with `ping` open and `balance` behind `requireAuth`; counts `verify` calls. */
function securedGateway(
  url: string,
  headers: Record<string, string> = {},
  extra: Partial<RequireAuthOptions> = {},
) {
  const verified: string[] = [];
  const backend = fakeBackend();
  const gw = gateway(
    {
      actions: [["ping"], ["balance"]],
      beforeForward: requireAuth({
        verify: (token) => {
          verified.push(token);
          return token === "good" ? "CR1" : undefined;
        },
        unauthenticatedActions: ["ping"],
        ...extra,
      }),
    },
    { default: backend },
    { upgrade: { url, headers } },
  );
  return { ...gw, backend, verified };
}

describe("requireAuth", () => {
  it("serves only the unauthenticated actions without a token, and forwards nothing else", async () => {
    const { conn, send, backend } = securedGateway("http://h/websockets/v3");
    await send({ ping: 1 });
    await send({ balance: 1, auth: "CR-FORGED" });
    expect(conn.sent[0]).toMatchObject({ msg_type: "ping" });
    expect(conn.sent[1]).toMatchObject({
      msg_type: "balance",
      error: { code: "AuthorizationRequired", message: "Please log in." },
    });
    expect(backend.calls.map((call) => call.req.name)).toEqual(["ping"]);
    expect(conn.stash).toEqual({});
  });

  it("verifies a query token once per connection and keeps the identity in the stash", async () => {
    const { conn, send, backend, verified } = securedGateway("http://h/websockets/v3?token=good");
    await send({ balance: 1 });
    await send({ balance: 1 });
    expect(conn.sent.map((frame) => frame.error)).toEqual([undefined, undefined]);
    expect(verified).toEqual(["good"]);
    expect(conn.stash).toEqual({ auth: "CR1" });
    expect(backend.calls).toHaveLength(2);
  });

  it("reads `Authorization: Bearer` (and a custom stashKey), and says so when a token is bad", async () => {
    const byHeader = securedGateway("http://h/", { authorization: "Bearer good" }, { stashKey: "loginid" });
    await byHeader.send({ balance: 1 });
    expect(byHeader.conn.stash).toEqual({ loginid: "CR1" });
    const bad = securedGateway("http://h/?token=nope");
    await bad.send({ balance: 1 });
    await bad.send({ ping: 1 });
    expect(bad.conn.sent[0]).toMatchObject({
      error: { code: "AuthorizationRequired", message: "The token is not valid." },
    });
    expect(bad.conn.sent[1]).toMatchObject({ msg_type: "ping" });
  });
});

describe("requireAuth against a hostile client", () => {
  it("verifies a refused token once per connection, however many frames carry it", async () => {
    const { conn, send, verified, backend } = securedGateway("http://h/?token=stolen");
    await Promise.all(Array.from({ length: 5 }, () => send({ balance: 1 })));
    for (let i = 0; i < 5; i++) await send({ balance: 1 });
    expect(verified).toEqual(["stolen"]);
    expect(conn.sent).toHaveLength(10);
    expect(backend.calls).toEqual([]);
  });

  it("reads the stash's own values only: a stashKey named like a prototype member authenticates no one", async () => {
    for (const stashKey of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
      const { conn, send, backend } = securedGateway("http://h/", {}, { stashKey });
      await send({ balance: 1 });
      expect(conn.sent[0]).toMatchObject({ error: { code: "AuthorizationRequired" } });
      expect(backend.calls).toEqual([]);
    }
  });

  it("takes the query token from conn.upgrade.credentials, where the gateway moves it out of the URL", async () => {
    const verified: string[] = [];
    const { conn, send } = gateway(
      {
        actions: [["balance"]],
        beforeForward: requireAuth({ verify: (token) => (verified.push(token), token === "good" && "CR1") }),
      },
      { default: fakeBackend() },
      { upgrade: { url: "http://h/websockets/v3", headers: {}, credentials: { token: "good" } } },
    );
    await send({ balance: 1 });
    expect(verified).toEqual(["good"]);
    expect(conn.stash).toEqual({ auth: "CR1" });
  });
});

describe("originAllowed", () => {
  it.each([
    [undefined, "https://evil.example", true],
    [["https://app.example.com"], null, true],
    [["https://app.example.com"], "https://app.example.com", true],
    [["https://app.example.com"], "https://app.example.com:8443", false],
    [["https://app.example.com"], "http://app.example.com", false],
    [["https://app.example.com"], "https://app.example.com.evil.example", false],
    [["*"], "https://anyone.example", true],
  ])("allowedOrigins %j, Origin %j: %s", (allowed, origin, expected) => {
    expect(originAllowed(allowed, origin)).toBe(expected);
  });
});
