/**
 * The category of a request comes from its action's registration, never from the client's frame: a frame
 * carrying `"category"` must not pick the stream its entry lands on.
 */
import { describe, expect, it } from "vitest";
import type { ActionEntry } from "../../src/core/index.js";
import { fakeBackend, gateway } from "./helpers.js";

describe("request category", () => {
  const actions: ActionEntry[] = [["ping"], ["balance", { category: "mt5" }]];

  it("is the action's category whatever category the frame names", async () => {
    const backend = fakeBackend();
    const { conn, send } = gateway({ actions }, { default: backend });
    await send({ balance: 1, category: "slow" });
    await send({ balance: 1, category: "general" });
    expect(backend.calls.map((call) => call.req.category)).toEqual(["mt5", "mt5"]);
    expect(conn.sent).toHaveLength(2);
  });

  it("stays unset (the backend's default stream) for an action without one, whatever the frame names", async () => {
    const backend = fakeBackend();
    const { send } = gateway({ actions }, { default: backend });
    await send({ ping: 1, category: "slow" });
    await send({ ping: 1, category: "no-such-category" });
    expect(backend.calls.map((call) => call.req.category)).toEqual([undefined, undefined]);
    // The frame itself still reaches the service unchanged, as the client sent it.
    expect(backend.calls.map((call) => call.req.args)).toEqual([
      { ping: 1, category: "slow" },
      { ping: 1, category: "no-such-category" },
    ]);
  });
});
