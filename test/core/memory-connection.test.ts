/**
 * The in-memory connection shipped for tests and for trying the core without a socket: its documented
 * defaults, and a send after the close failing loudly as a real socket's does.
 */
import { describe, expect, it } from "vitest";
import { createMemoryConnection } from "../../src/core/index.js";

describe("createMemoryConnection", () => {
  it("has the documented defaults", () => {
    const conn = createMemoryConnection();
    expect(conn.upgrade).toEqual({ url: "http://localhost/websockets/v3", headers: {} });
    expect(conn.stash).toEqual({});
    expect(conn.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(conn.isOpen).toBe(true);
  });

  it.each([
    ["closed by the gateway", (conn: ReturnType<typeof createMemoryConnection>) => conn.close(1000, "bye")],
    ["left by the client", (conn: ReturnType<typeof createMemoryConnection>) => conn.disconnect()],
  ])("refuses a send once %s, naming the frame", (_, end) => {
    const conn = createMemoryConnection();
    conn.sendJson({ msg_type: "ping", ping: 1 });
    end(conn);
    expect(() => conn.sendJson({ msg_type: "late" })).toThrow(/closed.*"late"/);
    expect(conn.sent).toEqual([{ msg_type: "ping", ping: 1 }]);
  });
});
