/**
 * `requireAuth({ reverifyAfterMs })`: an identity that came from a token is verified again once it is
 * that old, so a revoked session stops working on a socket that stays open. Runs in workerd, where the
 * clock moves only across I/O (a timer here): back-to-back requests see the same time.
 */
import { describe, expect, it } from "vitest";
import type { Connection, JsonObject, RpcRequest } from "../../src/core/types.js";
import { requireAuth } from "../../src/worker/security.js";
import { sleep } from "../support/wait.js";
import { pingRequest } from "./helpers.js";

/** A connection whose upgrade URL carries `?token=`, with an in-memory stash. */
function tokenConnection(token: string): Connection {
  let stash: JsonObject = {};
  return {
    id: "conn-1",
    upgrade: { url: `wss://gateway.example.com/websockets/v3?token=${token}`, headers: {} },
    get stash() {
      return stash;
    },
    updateStash: (patch) => {
      stash = { ...stash, ...patch };
    },
    isOpen: true,
    sendJson: () => undefined,
    close: () => undefined,
  };
}

const whoami: RpcRequest = pingRequest({ name: "whoami", method: "whoami", msgType: "whoami" });

describe("requireAuth reverifyAfterMs", () => {
  it("verifies the token again once the identity is older than reverifyAfterMs, and drops a revoked one", async () => {
    const sessions = new Map([["session-1", "CR1"]]);
    let verified = 0;
    const hook = requireAuth({
      verify: (token) => {
        verified += 1;
        return sessions.get(token);
      },
      stashKey: "loginid",
      reverifyAfterMs: 200,
    });
    const conn = tokenConnection("session-1");
    expect(await hook(conn, whoami)).toBeUndefined();
    expect(await hook(conn, whoami)).toBeUndefined();
    expect(verified).toBe(1);
    await sleep(400);
    expect(await hook(conn, whoami)).toBeUndefined();
    expect(verified).toBe(2);
    sessions.delete("session-1"); // the session is revoked while the socket stays open
    await sleep(400);
    expect(await hook(conn, whoami)).toMatchObject({
      error: { code: "AuthorizationRequired", message: "The token is no longer valid." },
    });
    expect(conn.stash.loginid).toBeNull();
    expect(await hook(conn, whoami)).toMatchObject({ error: { code: "AuthorizationRequired" } });
  });

  it("shares one re-verification among the frames that arrive while it runs", async () => {
    let verified = 0;
    const hook = requireAuth({
      verify: async () => {
        verified += 1;
        await sleep(50);
        return "CR1";
      },
      stashKey: "loginid",
      reverifyAfterMs: 200,
    });
    const conn = tokenConnection("session-1");
    expect(await hook(conn, whoami)).toBeUndefined();
    await sleep(400);
    const burst = await Promise.all(Array.from({ length: 5 }, () => hook(conn, whoami)));
    expect(burst).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(verified).toBe(2);
  });

  it("verifies once per connection by default", async () => {
    let verified = 0;
    const hook = requireAuth({ verify: () => ((verified += 1), "CR1"), stashKey: "loginid" });
    const conn = tokenConnection("session-1");
    expect(await hook(conn, whoami)).toBeUndefined();
    await sleep(300);
    expect(await hook(conn, whoami)).toBeUndefined();
    expect(verified).toBe(1);
  });
});
