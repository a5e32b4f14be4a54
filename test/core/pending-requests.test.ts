import { describe, expect, it } from "vitest";
import { RpcTimeoutError, TransportError } from "../../src/core/errors.js";
import { PendingRequests, SWEEP_MS } from "../../src/core/pending-requests.js";
import { manualClock } from "../support/manual-clock.js";

describe("PendingRequests", () => {
  it("delivers a reply to its own request; once nothing waits, its timer fires within a second and stops", async () => {
    const clock = manualClock();
    const table = new PendingRequests<string>({ clock });
    const first = table.add("1", { timeoutMs: 5_000, label: "ping" });
    const second = table.add("2", { timeoutMs: 5_000, label: "time" });
    expect(table.resolve("2", "reply-2")).toBe("delivered");
    expect(table.resolve("1", "reply-1")).toBe("delivered");
    await expect(first).resolves.toBe("reply-1");
    await expect(second).resolves.toBe("reply-2");
    expect(table.size).toBe(0);
    expect(clock.nextTimerIn()).toBeLessThanOrEqual(SWEEP_MS);
    await clock.advance(SWEEP_MS);
    // No timer left: a Durable Object can hibernate.
    expect(clock.timerCount()).toBe(0);
    expect(table.counters).toMatchObject({ added: 2, delivered: 2, timedOut: 0 });
  });

  it("rejects with RpcTimeoutError naming the method once the wait is over", async () => {
    const clock = manualClock();
    const table = new PendingRequests<string>({ clock });
    const reply = table.add("1", { timeoutMs: 500, label: "slow" });
    await clock.advance(499);
    expect(table.has("1")).toBe(true);
    await clock.advance(1);
    await expect(reply).rejects.toBeInstanceOf(RpcTimeoutError);
    await expect(reply).rejects.toThrow(/"slow" within 500 ms/);
    expect(table.size).toBe(0);
    expect(table.counters.timedOut).toBe(1);
  });

  it("drops a late reply (after the timeout) and counts it", async () => {
    const clock = manualClock();
    const table = new PendingRequests<string>({ clock });
    const reply = table.add("7", { timeoutMs: 100, label: "slow" });
    await clock.advance(100);
    await expect(reply).rejects.toBeInstanceOf(RpcTimeoutError);
    expect(table.resolve("7", "too late")).toBe("late");
    expect(table.counters).toMatchObject({ late: 1, delivered: 0 });
  });

  it("drops a duplicate reply and counts it, never handing it to a newer request", async () => {
    const table = new PendingRequests<string>({ clock: manualClock() });
    const first = table.add("1", { timeoutMs: 1000, label: "echo" });
    expect(table.resolve("1", "a")).toBe("delivered");
    const second = table.add("2", { timeoutMs: 1000, label: "echo" });
    expect(table.resolve("1", "a again")).toBe("duplicate");
    expect(table.resolve("2", "b")).toBe("delivered");
    await expect(first).resolves.toBe("a");
    await expect(second).resolves.toBe("b");
    expect(table.counters).toMatchObject({ duplicate: 1, delivered: 2 });
  });

  it("drops and counts a reply whose id it never issued", () => {
    const table = new PendingRequests<string>({ clock: manualClock() });
    expect(table.resolve("999", "stray")).toBe("unknown");
    expect(table.counters.unknown).toBe(1);
  });

  it("compares ids as strings and forgets old settled ids beyond recentLimit", async () => {
    const table = new PendingRequests<string>({ clock: manualClock(), recentLimit: 2 });
    for (const id of ["1", "2", "3"]) {
      const reply = table.add(id, { timeoutMs: 1000, label: "x" });
      table.resolve(id, id);
      await reply;
    }
    expect(table.resolve("3", "again")).toBe("duplicate");
    expect(table.resolve("1", "again")).toBe("unknown");
  });

  it("fails the requests of one owner (a closed connection) and leaves the others", async () => {
    const table = new PendingRequests<string>({ clock: manualClock() });
    const mine = table.add("1", { timeoutMs: 1000, label: "x", owner: "conn-a" });
    const theirs = table.add("2", { timeoutMs: 1000, label: "x", owner: "conn-b" });
    expect(table.failOwner("conn-a", new TransportError("the connection closed", "wait"))).toBe(1);
    await expect(mine).rejects.toBeInstanceOf(TransportError);
    expect(table.has("2")).toBe(true);
    expect(table.resolve("1", "late")).toBe("late");
    table.resolve("2", "ok");
    await expect(theirs).resolves.toBe("ok");
    expect(table.counters).toMatchObject({ failed: 1, late: 1, delivered: 1 });
  });

  it("calls onEmpty when the last request settles, and failAll empties the table", async () => {
    let emptied = 0;
    const table = new PendingRequests<string>({ clock: manualClock(), onEmpty: () => emptied++ });
    const a = table.add("1", { timeoutMs: 1000, label: "x" });
    const b = table.add("2", { timeoutMs: 1000, label: "x" });
    table.failAll(new Error("going away"));
    await expect(a).rejects.toThrow("going away");
    await expect(b).rejects.toThrow("going away");
    expect(table.size).toBe(0);
    expect(emptied).toBe(1);
  });

  it("refuses to register the same id twice", () => {
    const table = new PendingRequests<string>({ clock: manualClock() });
    void table.add("1", { timeoutMs: 1000, label: "x" });
    expect(() => table.add("1", { timeoutMs: 1000, label: "x" })).toThrow(/already pending/);
  });

  it("times out many requests of mixed timeouts each at its own deadline, on one timer", async () => {
    const clock = manualClock();
    const table = new PendingRequests<string>({ clock });
    const settled = new Map<string, number>();
    const start = clock.now();
    const wait = (id: string, timeoutMs: number) =>
      table.add(id, { timeoutMs, label: id }).catch(() => settled.set(id, clock.now() - start));
    const waits = [wait("a", 300), wait("b", 100)];
    await clock.advance(50);
    waits.push(wait("c", 300), wait("d", 100), wait("e", 5_000));
    // Five requests waiting, yet one timer: the table's, at its earliest deadline.
    expect(clock.timerCount()).toBe(1);
    expect(clock.nextTimerIn()).toBe(50);
    expect(table.resolve("d", "answered in time")).toBe("delivered");
    await clock.advance(5_000);
    await Promise.all(waits);
    expect(Object.fromEntries(settled)).toEqual({ b: 100, a: 300, c: 350, e: 5_050 });
    expect(table.counters).toMatchObject({ timedOut: 4, delivered: 1 });
    expect(clock.timerCount()).toBe(0);
  });

  it("a request that times out sooner than every waiting one moves the timer forward", async () => {
    const clock = manualClock();
    const table = new PendingRequests<string>({ clock });
    const long = table.add("long", { timeoutMs: 10_000, label: "long" }).catch((error: unknown) => error);
    const short = table.add("short", { timeoutMs: 20, label: "short" }).catch((error: unknown) => error);
    expect(clock.nextTimerIn()).toBe(20);
    await clock.advance(20);
    await expect(short).resolves.toBeInstanceOf(RpcTimeoutError);
    expect(table.has("long")).toBe(true);
    expect(table.has("long")).toBe(true);
    await clock.advance(9_979);
    expect(table.has("long")).toBe(true);
    await clock.advance(1);
    await expect(long).resolves.toBeInstanceOf(RpcTimeoutError);
  });

  it("sets about one timer a second for one request at a time, none once idle, and still times out", async () => {
    const clock = manualClock();
    let timersSet = 0;
    const counting = {
      ...clock,
      setTimeout: (callback: () => void, ms: number) => {
        timersSet += 1;
        return clock.setTimeout(callback, ms);
      },
    };
    const table = new PendingRequests<string>({ clock: counting });
    // 3,000 requests one after another, 1 ms each, over 3 seconds.
    for (let round = 0; round < 3_000; round += 1) {
      void table.add(`r${round}`, { timeoutMs: 30_000, label: "x" });
      await clock.advance(1);
      table.resolve(`r${round}`, "ok");
    }
    expect(timersSet).toBeLessThanOrEqual(4);
    await clock.advance(SWEEP_MS);
    expect(clock.timerCount()).toBe(0);
    const late = table.add("late", { timeoutMs: 10, label: "late" });
    await clock.advance(10);
    await expect(late).rejects.toBeInstanceOf(RpcTimeoutError);
    expect(table.counters).toMatchObject({ delivered: 3_000, timedOut: 1 });
  });

  it("forgets the queued deadlines of answered requests while others keep the table busy", async () => {
    const clock = manualClock();
    const table = new PendingRequests<string>({ clock });
    const stuck = table.add("stuck", { timeoutMs: 60_000, label: "stuck" });
    for (let round = 0; round < 5_000; round += 1) {
      void table.add(`r${round}`, { timeoutMs: 30_000, label: "x" });
      table.resolve(`r${round}`, "ok");
    }
    // The answered requests' deadlines do not pile up behind the stuck one: memory stays bounded.
    expect(table.deadlinesHeld).toBeLessThanOrEqual(2 * table.size + 1_024 + 1);
    expect(table.deadlinesHeld).toBeGreaterThanOrEqual(table.size);
    await clock.advance(60_000);
    await expect(stuck).rejects.toBeInstanceOf(RpcTimeoutError);
    expect(table.counters).toMatchObject({ delivered: 5_000, timedOut: 1 });
    expect(table.deadlinesHeld).toBe(0);
  });

  it("remembers exactly recentLimit settled ids", async () => {
    const table = new PendingRequests<string>({ clock: manualClock(), recentLimit: 2 });
    for (const id of ["1", "2"]) {
      const reply = table.add(id, { timeoutMs: 1000, label: "x" });
      table.resolve(id, id);
      await reply;
    }
    expect(table.resolve("1", "again")).toBe("duplicate");
    expect(table.resolve("2", "again")).toBe("duplicate");
  });

  it("keeps forgetting the oldest settled id first, round after round", async () => {
    const table = new PendingRequests<string>({ clock: manualClock(), recentLimit: 3 });
    for (let id = 1; id <= 10; id++) {
      const reply = table.add(String(id), { timeoutMs: 1000, label: "x" });
      table.resolve(String(id), "ok");
      await reply;
    }
    expect(["7", "8", "9", "10"].map((id) => table.resolve(id, "again"))).toEqual([
      "unknown",
      "duplicate",
      "duplicate",
      "duplicate",
    ]);
    // A duplicate does not make an id younger: the next settled id evicts 8, the oldest.
    const reply = table.add("11", { timeoutMs: 1000, label: "x" });
    table.resolve("11", "ok");
    await reply;
    expect(["8", "9"].map((id) => table.resolve(id, "again"))).toEqual(["unknown", "duplicate"]);
  });

  it("remembers an id settled twice in the place of its first settling", async () => {
    const table = new PendingRequests<string>({ clock: manualClock(), recentLimit: 2 });
    for (const id of ["1", "1", "2"]) {
      const reply = table.add(id, { timeoutMs: 1000, label: "x" });
      table.resolve(id, "ok");
      await reply;
    }
    expect(["1", "2"].map((id) => table.resolve(id, "again"))).toEqual(["duplicate", "duplicate"]);
  });

  it("remembers nothing with recentLimit 0", async () => {
    const table = new PendingRequests<string>({ clock: manualClock(), recentLimit: 0 });
    const reply = table.add("1", { timeoutMs: 1000, label: "x" });
    table.resolve("1", "ok");
    await reply;
    expect(table.resolve("1", "again")).toBe("unknown");
  });

  it("calls onEmpty only once the last waiting request settles", async () => {
    let emptied = 0;
    const table = new PendingRequests<string>({ clock: manualClock(), onEmpty: () => emptied++ });
    const a = table.add("1", { timeoutMs: 1000, label: "x" });
    const b = table.add("2", { timeoutMs: 1000, label: "x" });
    table.resolve("1", "a");
    await a;
    expect(emptied).toBe(0);
    table.resolve("2", "b");
    await b;
    expect(emptied).toBe(1);
  });

  it("fail() of an id that is not waiting does nothing and says so", async () => {
    const table = new PendingRequests<string>({ clock: manualClock() });
    const reply = table.add("1", { timeoutMs: 1000, label: "x" });
    expect(table.fail("2", new Error("no such request"))).toBe(false);
    table.resolve("1", "ok");
    await expect(reply).resolves.toBe("ok");
    expect(table.fail("1", new Error("already answered"))).toBe(false);
    expect(table.counters.failed).toBe(0);
  });

  it("uses the runtime's timers when given no clock", async () => {
    const table = new PendingRequests<string>();
    const reply = table.add("1", { timeoutMs: 20, label: "slow" });
    await expect(reply).rejects.toBeInstanceOf(RpcTimeoutError);
    const answered = table.add("2", { timeoutMs: 60_000, label: "fast" });
    table.resolve("2", "ok");
    await expect(answered).resolves.toBe("ok");
  });

  it("counts each waiting request's deadline once, and drops them as requests time out or settle", async () => {
    const clock = manualClock();
    const table = new PendingRequests<string>({ clock });
    const waits = ["a", "b", "c"].map((id, index) =>
      table.add(id, { timeoutMs: 100 * (index + 1), label: id }).catch(() => id),
    );
    void table.add("d", { timeoutMs: 100, label: "d" }).catch(() => "d");
    expect(table.deadlinesHeld).toBe(4);
    table.resolve("d", "answered");
    // Its deadline stays queued until it reaches the head of its queue.
    expect(table.deadlinesHeld).toBe(4);
    await clock.advance(100);
    expect(table.deadlinesHeld).toBe(2);
    await clock.advance(100);
    expect(table.deadlinesHeld).toBe(1);
    await clock.advance(100);
    await Promise.all(waits);
    expect(table.deadlinesHeld).toBe(0);
    expect(table.counters.timedOut).toBe(3);
  });

  it("keeps every waiting request's deadline through a compaction, and no more than twice them plus 1,024", async () => {
    const clock = manualClock();
    const table = new PendingRequests<string>({ clock });
    for (let index = 0; index < 2_000; index += 1) {
      void table.add(`waiting-${index}`, { timeoutMs: 60_000, label: "x" }).catch(() => undefined);
    }
    for (let round = 0; round < 5_000; round += 1) {
      void table.add(`answered-${round}`, { timeoutMs: 30_000, label: "x" });
      table.resolve(`answered-${round}`, "ok");
    }
    expect(table.size).toBe(2_000);
    expect(table.deadlinesHeld).toBeGreaterThanOrEqual(2_000);
    expect(table.deadlinesHeld).toBeLessThanOrEqual(2 * 2_000 + 1_024 + 1);
    await clock.advance(60_000);
    expect(table.counters.timedOut).toBe(2_000);
    expect(table.deadlinesHeld).toBe(0);
  });
});
