/**
 * The service's waiting and retrying (src/consumer/retry.ts): the back-off between Redis retries, a sleep
 * that close() cuts short without leaving a timer or a listener behind, and an outage logged once (down,
 * then back with its length) however many retries it takes.
 */
import { getEventListeners } from "node:events";
import { afterEach, describe, expect, it, vi } from "vitest";
import { backoffDelayMs, OutageTracker, sleep } from "../../src/consumer/retry.js";

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe("backoffDelayMs", () => {
  it("doubles from the minimum, stays under the cap, and jitters between half and all of it", () => {
    vi.spyOn(Math, "random").mockReturnValue(0.999_999);
    expect(backoffDelayMs(0, 100, 5_000)).toBeCloseTo(100, 0);
    expect(backoffDelayMs(3, 100, 5_000)).toBeCloseTo(800, 0);
    expect(backoffDelayMs(10, 100, 5_000)).toBeCloseTo(5_000, 0);
    vi.spyOn(Math, "random").mockReturnValue(0);
    expect(backoffDelayMs(0, 100, 5_000)).toBe(50);
    expect(backoffDelayMs(3, 100, 5_000)).toBe(400);
    expect(backoffDelayMs(10_000, 100, 5_000)).toBe(2_500);
  });
});

describe("sleep", () => {
  it("resolves after its time, and leaves no timer or abort listener behind", async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    let done = false;
    const slept = sleep(1_000, controller.signal).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(999);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await slept;
    expect(done).toBe(true);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });

  it("resolves at once when the signal fires, clearing its timer and listener", async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    const slept = sleep(60_000, controller.signal);
    expect(vi.getTimerCount()).toBe(1);
    controller.abort();
    await slept;
    expect(vi.getTimerCount()).toBe(0);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });

  it("does not wait at all on a signal that already fired", async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    controller.abort();
    await sleep(60_000, controller.signal);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("OutageTracker", () => {
  it("logs an outage once when it starts and once when it ends, counting the failures in between", () => {
    const lines: Record<string, unknown>[] = [];
    const tracker = new OutageTracker(
      (line) => lines.push(line as Record<string, unknown>),
      "redis://r:6379",
    );
    tracker.succeeded();
    expect(lines).toHaveLength(0);
    expect(tracker.isDown).toBe(false);
    expect(tracker.failed(new Error("connect ECONNREFUSED"), "XREADGROUP")).toBe(0);
    expect(tracker.failed("timeout", "XACK")).toBe(1);
    expect(tracker.failed(new Error("again"), "XREADGROUP")).toBe(2);
    expect(tracker.isDown).toBe(true);
    expect(lines).toEqual([
      expect.objectContaining({
        level: "warn",
        operation: "XREADGROUP",
        error: "connect ECONNREFUSED",
        target: "redis://r:6379",
      }),
    ]);
    tracker.succeeded();
    expect(tracker.isDown).toBe(false);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ level: "info", target: "redis://r:6379" });
    expect(lines[1]?.down_ms).toBeGreaterThanOrEqual(0);
    expect(lines[1]?.down_ms).toBeLessThan(60_000);
    // The next outage counts from 0 again and is logged again, with a reason that is not an Error.
    expect(tracker.failed("socket closed", "RPUSH")).toBe(0);
    expect(lines[2]).toMatchObject({ level: "warn", operation: "RPUSH", error: "socket closed" });
  });
});
