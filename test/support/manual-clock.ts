/** A clock whose time moves only when a test calls `advance`, for the pending table and the poller. */
import type { Clock } from "../../src/core/pending-requests.js";

/** A {@link Clock} driven by hand. */
export interface ManualClock extends Clock {
  /** Moves time forward, firing due timers in order (awaiting a turn after each so promises settle). */
  advance(ms: number): Promise<void>;
  /** Number of scheduled timers. */
  timerCount(): number;
  /** When the next timer fires, relative to now; undefined when none is scheduled. */
  nextTimerIn(): number | undefined;
}

/** Lets pending promise callbacks run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/** Creates a {@link ManualClock} starting at `start`. */
export function manualClock(start = 1_000_000): ManualClock {
  let now = start;
  let nextId = 1;
  const timers = new Map<number, { at: number; callback: () => void }>();
  const due = (): [number, { at: number; callback: () => void }] | undefined =>
    [...timers].filter(([, t]) => t.at <= now).sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0];
  return {
    now: () => now,
    setTimeout(callback, ms) {
      const id = nextId++;
      timers.set(id, { at: now + Math.max(0, ms), callback });
      return id;
    },
    clearTimeout(handle) {
      timers.delete(handle as number);
    },
    async advance(ms) {
      const target = now + ms;
      for (;;) {
        const next = [...timers.values()].filter((t) => t.at <= target).sort((a, b) => a.at - b.at)[0];
        if (!next) break;
        now = Math.max(now, next.at);
        let timer = due();
        while (timer) {
          timers.delete(timer[0]);
          timer[1].callback();
          await flush();
          timer = due();
        }
      }
      now = target;
      await flush();
    },
    timerCount: () => timers.size,
    nextTimerIn() {
      const next = [...timers.values()].sort((a, b) => a.at - b.at)[0];
      return next === undefined ? undefined : next.at - now;
    },
  };
}
