/**
 * The per-connection limiter (`createConnectionLimits`, exported for platforms that run the core their own
 * way) at its edges: each limit on its own, budgets reached exactly, a request alone over a budget,
 * ending a request twice, abuse windows that end exactly on time. Hand-driven clock, in-memory connections.
 */
import { describe, expect, it } from "vitest";
import {
  createConnectionLimits,
  createMemoryConnection,
  type ConnectionLimitSettings,
} from "../../src/core/index.js";

const OFF: ConnectionLimitSettings = {
  maxPendingPerConnection: 0,
  maxPendingBytesPerConnection: 0,
  maxPendingBytesPerObject: 0,
  maxMessagesPerSecond: 0,
  messageBurst: 0,
  abuseCloseAfterRejections: 0,
  abuseWindowMs: 1000,
};

function limiter(settings: Partial<ConnectionLimitSettings>) {
  const clock = { nowMs: 1_000_000 };
  return { clock, limits: createConnectionLimits({ ...OFF, ...settings }, () => clock.nowMs) };
}

describe("requests in flight", () => {
  it("maxPendingPerConnection applies with the byte budget off", () => {
    const { limits } = limiter({ maxPendingPerConnection: 2 });
    const conn = createMemoryConnection();
    expect(limits.beginRequest(conn, 10)).toBeTypeOf("function");
    expect(limits.beginRequest(conn, 10)).toBeTypeOf("function");
    expect(limits.beginRequest(conn, 10)).toBeUndefined();
  });

  it("maxPendingBytesPerConnection applies with the count limit off", () => {
    const { limits } = limiter({ maxPendingBytesPerConnection: 100 });
    const conn = createMemoryConnection();
    for (let i = 0; i < 10; i++) expect(limits.beginRequest(conn, 10), `request ${i}`).toBeTypeOf("function");
    expect(limits.beginRequest(conn, 1)).toBeUndefined();
    expect(limits.usage.connectionByteRejections).toBe(1);
  });

  it("a budget reached exactly still admits the request", () => {
    const { limits } = limiter({ maxPendingBytesPerConnection: 100, maxPendingBytesPerObject: 200 });
    const [a, b] = [createMemoryConnection(), createMemoryConnection()];
    expect(limits.beginRequest(a, 60)).toBeTypeOf("function");
    expect(limits.beginRequest(a, 40)).toBeTypeOf("function"); // 100 of 100 on a
    expect(limits.beginRequest(b, 100)).toBeTypeOf("function"); // 200 of 200 on the object
    expect(limits.usage).toMatchObject({
      pendingBytes: 200,
      connectionByteRejections: 0,
      objectByteRejections: 0,
    });
  });

  it("a request alone over the object's budget still gets through, the next one waits", () => {
    const { limits } = limiter({ maxPendingBytesPerObject: 100 });
    const [a, b] = [createMemoryConnection(), createMemoryConnection()];
    const end = limits.beginRequest(a, 500);
    expect(end).toBeTypeOf("function");
    expect(limits.beginRequest(b, 1)).toBeUndefined();
    expect(limits.usage.objectByteRejections).toBe(1);
    end?.();
    expect(limits.beginRequest(b, 1)).toBeTypeOf("function");
  });

  it("ending requests frees exactly their slots and bytes, once, even if ended twice", () => {
    const { limits } = limiter({ maxPendingPerConnection: 2, maxPendingBytesPerConnection: 100 });
    const conn = createMemoryConnection();
    const first = limits.beginRequest(conn, 50);
    const second = limits.beginRequest(conn, 50);
    first?.();
    first?.();
    expect(limits.usage.pendingBytes).toBe(50);
    expect(limits.beginRequest(conn, 50)).toBeTypeOf("function"); // back at 2 in flight, 100 bytes
    expect(limits.beginRequest(conn, 1)).toBeUndefined();
    second?.();
    expect(limits.beginRequest(conn, 50)).toBeTypeOf("function");
  });

  it("frees bytes by count and by size as requests end out of order", () => {
    const { limits } = limiter({ maxPendingPerConnection: 3, maxPendingBytesPerConnection: 100 });
    const conn = createMemoryConnection();
    const ends = [
      limits.beginRequest(conn, 30),
      limits.beginRequest(conn, 30),
      limits.beginRequest(conn, 30),
    ];
    ends[0]?.();
    // 2 in flight, 60 bytes: 40 more fit, 41 do not.
    expect(limits.beginRequest(conn, 41)).toBeUndefined();
    expect(limits.beginRequest(conn, 40)).toBeTypeOf("function");
    expect(limits.beginRequest(conn, 1)).toBeUndefined();
  });

  it("with every per-connection limit off, ending a request is safe and keeps no state", () => {
    const { limits } = limiter({ maxPendingBytesPerObject: 1000 });
    const conn = createMemoryConnection();
    const end = limits.beginRequest(conn, 10);
    expect(() => end?.()).not.toThrow();
    expect(limits.usage.pendingBytes).toBe(0);
    expect(limits.size).toBe(0);
  });
});

describe("abuse close", () => {
  it("never closes with abuseCloseAfterRejections 0", () => {
    const { limits } = limiter({ abuseCloseAfterRejections: 0 });
    const conn = createMemoryConnection();
    for (let i = 0; i < 100; i++) expect(limits.recordRejection(conn)).toBe(false);
    expect(limits.usage.abuseCloses).toBe(0);
  });

  it("never counts a connection that is already closed as an abuse close", () => {
    const { limits } = limiter({ abuseCloseAfterRejections: 1 });
    const conn = createMemoryConnection();
    conn.disconnect();
    expect(limits.recordRejection(conn)).toBe(false);
    expect(limits.usage.abuseCloses).toBe(0);
    expect(limits.size).toBe(0);
  });

  it("a window ends exactly abuseWindowMs after its first rejection", () => {
    const { limits, clock } = limiter({ abuseCloseAfterRejections: 2, abuseWindowMs: 1000 });
    const conn = createMemoryConnection();
    expect(limits.recordRejection(conn)).toBe(false);
    clock.nowMs += 1000; // a new window: this is its first rejection
    expect(limits.recordRejection(conn)).toBe(false);
    clock.nowMs += 999;
    expect(limits.recordRejection(conn)).toBe(true);
    expect(limits.usage.abuseCloses).toBe(1);
  });
});
