/**
 * The timer the reply poller and the subscriber's grace period use: fires at the time last wanted, never
 * after a cancel, costs about one runtime timer per `keepMs` under set-cancel-set churn, and leaves nothing
 * armed longer than `keepMs` after the last cancel.
 */
import { describe, expect, it } from "vitest";
import { LazyTimer } from "../../src/core/lazy-timer.js";
import { manualClock, type ManualClock } from "../support/manual-clock.js";

/** A manual clock that also counts the runtime timers set on it. */
function countingClock(): ManualClock & { set: () => number } {
  const clock = manualClock(0);
  let set = 0;
  return {
    ...clock,
    setTimeout(callback, ms) {
      set += 1;
      return clock.setTimeout(callback, ms);
    },
    set: () => set,
  };
}

function setup(keepMs = 1_000) {
  const clock = countingClock();
  const fired: number[] = [];
  const timer = new LazyTimer(clock, () => fired.push(clock.now()), keepMs);
  return { clock, fired, timer };
}

describe("LazyTimer", () => {
  it("fires once at the wanted time", async () => {
    const { clock, fired, timer } = setup();
    timer.set(50);
    expect(timer.at).toBe(50);
    await clock.advance(49);
    expect(fired).toEqual([]);
    await clock.advance(100);
    expect(fired).toEqual([50]);
    expect(timer.at).toBeUndefined();
    expect(clock.timerCount()).toBe(0);
  });

  it("never fires after a cancel, and leaves a timer due within keepMs to run out", async () => {
    const { clock, fired, timer } = setup(1_000);
    timer.set(800);
    timer.cancel();
    expect(timer.at).toBeUndefined();
    expect(clock.timerCount()).toBe(1);
    await clock.advance(1_000);
    expect(fired).toEqual([]);
    expect(clock.timerCount()).toBe(0);
  });

  it("clears at once a cancelled timer due later than keepMs, and any timer on stop()", async () => {
    const { clock, fired, timer } = setup(1_000);
    timer.set(5_000);
    timer.cancel();
    expect(clock.timerCount()).toBe(0);
    timer.set(10);
    timer.stop();
    expect(clock.timerCount()).toBe(0);
    await clock.advance(10_000);
    expect(fired).toEqual([]);
  });

  it("takes cancel() and stop() with nothing armed, keeps a timer due exactly keepMs ahead, arms once per time", async () => {
    const { clock, fired, timer } = setup(1_000);
    timer.cancel();
    timer.stop();
    timer.set(1_000);
    timer.set(1_000);
    expect(clock.set()).toBe(1);
    timer.cancel();
    expect(clock.timerCount()).toBe(1);
    timer.stop();
    timer.stop();
    expect(clock.timerCount()).toBe(0);
    await clock.advance(2_000);
    expect(fired).toEqual([]);
  });

  it("fires at a later time set over an armed timer, not at the armed one", async () => {
    const { clock, fired, timer } = setup();
    timer.set(100);
    timer.cancel();
    timer.set(300);
    await clock.advance(200);
    expect(fired).toEqual([]);
    await clock.advance(200);
    expect(fired).toEqual([300]);
  });

  it("fires at an earlier time set over an armed timer", async () => {
    const { clock, fired, timer } = setup();
    timer.set(300);
    timer.set(100);
    await clock.advance(150);
    expect(fired).toEqual([100]);
    await clock.advance(500);
    expect(fired).toEqual([100]);
    expect(clock.timerCount()).toBe(0);
  });

  it("costs about one runtime timer per keepMs when set and cancelled every millisecond", async () => {
    const { clock, fired, timer } = setup(1_000);
    for (let step = 0; step < 3_000; step++) {
      timer.set(clock.now() + 1_000);
      await clock.advance(1);
      timer.cancel();
    }
    expect(fired).toEqual([]);
    // One per set and one per cancel without it: 6,000 calls into the runtime.
    expect(clock.set()).toBeLessThanOrEqual(4);
    await clock.advance(1_000);
    expect(clock.timerCount()).toBe(0);
  });
});
