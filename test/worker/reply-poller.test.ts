/**
 * The reply poller's schedule, on a hand-driven clock: when it polls, when it backs off, and that it
 * stops (no timer, no command) when nothing waits.
 */
import { describe, expect, it } from "vitest";
import { ReplyPoller, type ReplyPollerOptions } from "../../src/backends/reply-poller.js";
import { flush, manualClock } from "../support/manual-clock.js";

const options: ReplyPollerOptions = {
  pollInitialDelayMs: 4,
  pollMinMs: 1,
  pollMaxMs: 16,
  pollLateBackoffMs: 16,
  pollBackoffFactor: 2,
  pollBatchSize: 10,
  pollMaxInFlight: 1,
};

/**
 * A poller over a scripted reply key: `queue` holds payloads, each poll's time is recorded. With
 * `roundTripMs`, each poll pops half a round trip after it was sent and delivers a round trip after it.
 */
function setup(overrides: Partial<ReplyPollerOptions> = {}, { roundTripMs = 0 } = {}) {
  const clock = manualClock();
  const queue: string[] = [];
  /** Replies on their way: each lands in `queue` just after the next poll looked (one round trip late). */
  const arriving: string[] = [];
  const pollTimes: number[] = [];
  const errors: unknown[] = [];
  let failNext = 0;
  let inFlight = 0;
  /** Polls in flight when each poll was sent, itself included. */
  const inFlightAtSend: number[] = [];
  const travel = () => new Promise<void>((resolve) => clock.setTimeout(resolve, roundTripMs / 2));
  const poller: ReplyPoller = new ReplyPoller(
    { ...options, ...overrides },
    {
      clock,
      // The inbox's pop-and-deliver: each popped payload is the id of the request it answers.
      async poll(count, ticket) {
        pollTimes.push(clock.now());
        inFlightAtSend.push(++inFlight);
        if (roundTripMs > 0) await travel();
        if (failNext > 0) {
          failNext -= 1;
          const error = new Error("redis down");
          errors.push(error);
          throw error;
        }
        const payloads = queue.splice(0, count);
        queue.push(...arriving.splice(0));
        if (roundTripMs > 0) await travel();
        inFlight -= 1;
        for (const id of payloads) poller.received(id, ticket);
        return payloads.length;
      },
    },
  );
  const start = clock.now();
  return {
    clock,
    queue,
    arriving,
    poller,
    errors,
    polls: () => pollTimes.map((t) => t - start),
    inFlightAtSend,
    /** The clock's time now, on the scale of `polls()`. */
    elapsed: () => clock.now() - start,
    failPolls: (n: number) => (failNext = n),
  };
}

/** The inbox's order for one request: queued (`prepare`), and its `XADD` leaving at once (`sending`). */
async function write(poller: ReplyPoller, messageId: string): Promise<void> {
  await poller.prepare(messageId);
  poller.sending(messageId);
}

/** Twenty replies already there when polled: the estimate sinks below 1 ms (polls at the acknowledgement). */
async function learnFastService({
  clock,
  poller,
  queue,
}: Pick<ReturnType<typeof setup>, "clock" | "poller" | "queue">) {
  for (let round = 0; round < 20; round++) {
    const id = `fast-${round}`;
    queue.push(id);
    poller.sent(id);
    await clock.advance(5);
  }
  expect(poller.stats.expectedLatencyMs).toBeLessThan(1);
}

describe("ReplyPoller", () => {
  it("does nothing at all while no request waits", async () => {
    const { clock, polls } = setup();
    await clock.advance(10_000);
    expect(polls()).toEqual([]);
    expect(clock.timerCount()).toBe(0);
  });

  it("polls first after the expected latency, then backs off exponentially up to pollMaxMs", async () => {
    const { clock, poller, polls } = setup();
    poller.sent("1");
    await clock.advance(3);
    expect(polls()).toEqual([]);
    await clock.advance(60);
    // 4 (initial estimate), then +1, +2, +4, +8, +16, +16...
    expect(polls()).toEqual([4, 5, 7, 11, 19, 35, 51]);
  });

  it("re-polls at once after a non-empty poll and stops when nothing waits", async () => {
    const { clock, poller, polls, queue } = setup({ pollBatchSize: 2 });
    for (const id of ["1", "2", "3"]) poller.sent(id);
    queue.push("1", "2", "3");
    await clock.advance(4);
    // Three waiting: the first poll after a third of the expected 4 ms. A batch of 2, then at once the
    // last one; then nothing waits and the poller is idle.
    expect(polls()).toEqual([expect.closeTo(4 / 3), expect.closeTo(4 / 3)]);
    expect(poller.active).toBe(false);
    await clock.advance(1000);
    expect(polls()).toEqual([expect.closeTo(4 / 3), expect.closeTo(4 / 3)]);
    expect(clock.timerCount()).toBe(0);
  });

  it("polls sooner the more requests wait: the first of W replies is due about W times sooner", async () => {
    const { clock, poller, polls } = setup({ pollInitialDelayMs: 24, pollMaxMs: 64 });
    poller.sent("alone");
    // One request: its own expected time.
    expect(clock.nextTimerIn()).toBe(24);
    for (const id of ["b", "c", "d", "e", "f"]) poller.sent(id);
    // Six waiting: a sixth of it.
    expect(clock.nextTimerIn()).toBe(4);
    await clock.advance(4);
    expect(polls()).toEqual([4]);
    // Never sooner than pollMinMs, however many wait.
    for (let index = 0; index < 100; index++) poller.sent(`many-${index}`);
    expect(clock.nextTimerIn()).toBeGreaterThanOrEqual(1);
  });

  it("learns the service latency from replies and polls first at that time", async () => {
    const { clock, poller, polls, queue } = setup({ pollMaxMs: 64 });
    for (let round = 0; round < 20; round++) {
      const id = String(round);
      poller.sent(id);
      // The reply is ready 30 ms after the acknowledgement.
      await clock.advance(30);
      queue.push(id);
      await clock.advance(40);
    }
    expect(poller.stats.expectedLatencyMs).toBeGreaterThan(20);
    expect(poller.stats.expectedLatencyMs).toBeLessThan(45);
    const before = polls().length;
    poller.sent("last");
    await clock.advance(20);
    expect(polls().length).toBe(before);
  });

  it("learns each category's latency apart: a slow category's service does not delay a fast one's first poll", async () => {
    const { clock, poller, polls, queue } = setup({ pollInitialDelayMs: 1.2, pollMinMs: 1, pollMaxMs: 64 });
    for (let round = 0; round < 30; round++) {
      // A fast category: the reply is there when the poll at the acknowledgement arrives.
      const fast = `fast-${round}`;
      queue.push(fast);
      poller.sent(fast, "general");
      await clock.advance(1);
      // A slow one: its reply comes 30 ms after the acknowledgement.
      const slow = `slow-${round}`;
      poller.sent(slow, "reports");
      await clock.advance(30);
      queue.push(slow);
      await clock.advance(40);
    }
    expect(poller.expectedLatencyOf("general")).toBeLessThan(1);
    expect(poller.expectedLatencyOf("reports")).toBeGreaterThan(20);
    // A category with no reply yet starts from pollInitialDelayMs.
    expect(poller.expectedLatencyOf("other")).toBe(1.2);
    const before = polls().length;
    queue.push("fast-now");
    poller.sent("fast-now", "general");
    await flush();
    // Polled at the acknowledgement, with no timer, although the last reply was a slow one.
    expect(polls().length).toBe(before + 1);
    expect(poller.waitingCount).toBe(0);
    poller.sent("slow-now", "reports");
    await clock.advance(15);
    expect(polls().length).toBe(before + 1);
  });

  it("polls at the acknowledgement once replies come faster than pollMinMs, and goes back to a timer after misses", async () => {
    const { clock, poller, polls, queue } = setup({ pollInitialDelayMs: 1.2, pollMinMs: 1 });
    // Replies are there by the time the poll arrives: each first poll hits, the estimate sinks below 1 ms.
    await learnFastService({ clock, poller, queue });
    const before = polls().length;
    queue.push("now");
    poller.sent("now");
    await flush();
    // Sent at once, with no timer: the LPOP's own trip to Redis is the wait.
    expect(polls().length).toBe(before + 1);
    expect(poller.waitingCount).toBe(0);
    // Now the service slows down: polls at the acknowledgement miss, and after a run of misses the first
    // poll waits for a timer again instead of costing an empty LPOP every time.
    for (let round = 0; round < 30; round++) {
      const id = `slow-${round}`;
      poller.sent(id);
      await flush();
      await clock.advance(3);
      queue.push(id);
      await clock.advance(20);
    }
    expect(poller.stats.expectedLatencyMs).toBeGreaterThanOrEqual(1);
    const polled = polls().length;
    poller.sent("timed");
    await flush();
    expect(polls().length).toBe(polled);
  });

  it("polls once more at once when a poll at the acknowledgement just missed a fast reply, within a budget", async () => {
    const { clock, poller, polls, queue, arriving } = setup({ pollInitialDelayMs: 1.2, pollMinMs: 1 });
    await learnFastService({ clock, poller, queue });
    // The reply lands just after the poll at the acknowledgement looked: the next poll, sent at once
    // rather than after a timer, takes it one REST round trip later.
    const before = polls().length;
    arriving.push("just-late");
    poller.sent("just-late");
    await flush();
    expect(poller.waitingCount).toBe(0);
    expect(polls().length).toBe(before + 2);
    expect(poller.stats.repolls).toBe(1);
    // A slower service: second polls that come back empty are paid from the budget (0.04 of a command
    // per request, one saved at the start), so they never add more than that to the commands.
    const start = { polls: polls().length, empty: poller.stats.emptyPolls };
    let requests = 0;
    for (let round = 0; round < 200; round++) {
      const id = `slow-${round}`;
      poller.sent(id);
      requests += 1;
      await flush();
      await clock.advance(0.6);
      queue.push(id);
      await clock.advance(20);
      // Now and then a fast reply pulls the estimate back under pollMinMs.
      for (let fast = 0; fast < 3; fast++) {
        const quick = `quick-${round}-${fast}`;
        queue.push(quick);
        poller.sent(quick);
        requests += 1;
        await clock.advance(5);
      }
    }
    // Every second poll for a slow reply comes back empty.
    const secondPolls = poller.stats.repolls - 1;
    expect(secondPolls).toBeGreaterThan(0);
    expect(secondPolls).toBeLessThanOrEqual(1 + 0.04 * requests);
    expect(polls().length - start.polls - requests).toBe(poller.stats.emptyPolls - start.empty);
  });

  it("counts a miss only against a first poll that came at its request's due time", async () => {
    const { clock, poller, queue } = setup({ pollInitialDelayMs: 10, pollMaxMs: 64 });
    poller.sent("a");
    await clock.advance(5);
    // Due at 15, but the poll for "a" at 10 comes first: that early poll missing "b" proves nothing.
    poller.sent("b");
    await clock.advance(6);
    queue.push("a", "b");
    await clock.advance(10);
    expect(poller.waitingCount).toBe(0);
    expect(poller.stats.expectedLatencyMs).toBeCloseTo(12);
  });

  it("pulls the next poll forward for a request acknowledged during a long back-off", async () => {
    const { clock, poller, polls } = setup({ pollInitialDelayMs: 2 });
    poller.sent("slow");
    await clock.advance(40);
    const before = polls().length;
    const backoffNext = clock.nextTimerIn() ?? 0;
    expect(backoffNext).toBeGreaterThan(2);
    poller.sent("fast");
    expect(clock.nextTimerIn()).toBeLessThanOrEqual(2);
    await clock.advance(2);
    expect(polls().length).toBeGreaterThan(before);
  });

  it("keeps polling with back-off after errors while requests wait, and stops when they are gone", async () => {
    const { clock, poller, polls, errors, failPolls } = setup();
    failPolls(3);
    poller.sent("1");
    await clock.advance(20);
    expect(errors.length).toBe(3);
    expect(poller.stats.pollErrors).toBe(3);
    expect(polls().length).toBeGreaterThan(3);
    poller.forget("1");
    expect(poller.active).toBe(false);
    const count = polls().length;
    await clock.advance(1000);
    expect(polls().length).toBe(count);
    // A timer due within a second may be left to run out; none outlives that.
    expect(clock.timerCount()).toBe(0);
  });

  it("polls a late reply at gaps growing to pollLateBackoffMs: a 30 s wait costs about 40 LPOPs", async () => {
    // The defaults of the consumer-groups backend: each LPOP is a subrequest, and a Workers Free
    // invocation may make 50 of them.
    const { clock, poller, polls, queue } = setup({
      pollInitialDelayMs: 2,
      pollMaxMs: 50,
      pollLateBackoffMs: 1000,
      pollBatchSize: 100,
    });
    poller.sent("slow");
    await clock.advance(30_000);
    expect(polls().length).toBeLessThanOrEqual(42);
    const gaps = polls().map((t, i, all) => t - (all[i - 1] ?? 0));
    expect(Math.max(...gaps)).toBe(1000);
    // The reply comes at last: found within one gap, the request's wait did not stop polling.
    queue.push("slow");
    await clock.advance(1000);
    expect(poller.waitingCount).toBe(0);
    expect(poller.active).toBe(false);
  });

  it("polls a new request at its expected time even while an older one is polled at long gaps", async () => {
    const { clock, poller, queue } = setup({
      pollInitialDelayMs: 2,
      pollMaxMs: 50,
      pollLateBackoffMs: 1000,
    });
    poller.sent("slow");
    await clock.advance(10_000);
    poller.sent("fast");
    queue.push("fast");
    // Its reply is taken at its expected time (2 ms), not after the older request's 1 s gap.
    await clock.advance(2);
    expect(poller.waitingCount).toBe(1);
  });

  /** One request whose `XADD` takes `roundTripMs` to be acknowledged, its reply there at the acknowledgement. */
  async function learnRoundTrip(
    { clock, poller, queue }: Pick<ReturnType<typeof setup>, "clock" | "poller" | "queue">,
    roundTripMs: number,
  ) {
    await write(poller, "first");
    await clock.advance(roundTripMs);
    queue.push("first");
    poller.sent("first");
    await clock.advance(1);
    expect(poller.roundTrip).toBe(roundTripMs);
  }

  it("polls before the acknowledgement when the XADD's round trip is longer than the expected latency", async () => {
    const { clock, poller, polls, queue, elapsed } = setup({ pollInitialDelayMs: 2 });
    await learnRoundTrip({ clock, poller, queue }, 10);
    const polled = polls().length;
    const writtenAt = elapsed();
    const expected = poller.expectedLatencyOf();
    await write(poller, "early");
    // The service answers 1.5 ms after the XADD was sent; its acknowledgement would take 10 ms.
    await clock.advance(1.5);
    queue.push("early");
    await clock.advance(1);
    // Polled once, the expected latency after the write, and the reply was taken; the acknowledgement
    // then brings no further poll.
    expect(polls().slice(polled)).toEqual([expect.closeTo(writtenAt + expected)]);
    expect(queue).toEqual([]);
    // The inbox settles the request at once (no acknowledgement is waited for) and forgets it.
    poller.forget("early");
    await clock.advance(100);
    expect(polls().length).toBe(polled + 1);
    // It was a hit: the estimate shrank.
    expect(poller.expectedLatencyOf()).toBeLessThan(2);
  });

  it("times the early poll from when the XADD leaves, not from when it was queued behind the connection limit", async () => {
    const { clock, poller, polls, queue, elapsed } = setup({ pollInitialDelayMs: 2 });
    await learnRoundTrip({ clock, poller, queue }, 10);
    const polled = polls().length;
    const expected = poller.expectedLatencyOf();
    await poller.prepare("queued");
    // Its XADD waits 5 ms for a free connection: no poll meanwhile (it would reach Redis before the
    // entry, miss for certain, and teach the estimate a latency the service never had).
    await clock.advance(5);
    expect(polls().length).toBe(polled);
    const leftAt = elapsed();
    poller.sending("queued");
    // The service answers 1.5 ms after the XADD left.
    await clock.advance(1.5);
    queue.push("queued");
    await clock.advance(1);
    expect(polls().slice(polled)).toEqual([expect.closeTo(leftAt + expected)]);
    expect(queue).toEqual([]);
    expect(poller.expectedLatencyOf()).toBeLessThan(expected);
  });

  it("an early poll that finds nothing is followed by the poll at the acknowledgement, and counts as a miss", async () => {
    const { clock, poller, polls, queue } = setup({ pollInitialDelayMs: 2 });
    await learnRoundTrip({ clock, poller, queue }, 10);
    const estimate = poller.expectedLatencyOf();
    const polled = polls().length;
    await write(poller, "slow");
    await clock.advance(5);
    // The early poll came and found nothing.
    expect(polls().length).toBe(polled + 1);
    queue.push("slow");
    await clock.advance(5);
    poller.sent("slow");
    await flush();
    // At the acknowledgement (due long ago): polled at once, and the reply taken.
    expect(polls().length).toBe(polled + 2);
    expect(poller.waitingCount).toBe(0);
    expect(poller.expectedLatencyOf()).toBeCloseTo(estimate * 1.2);
    // One early poll per request, no timer left waiting for it.
    await clock.advance(1000);
    expect(polls().length).toBe(polled + 2);
  });

  it("judges a request by its own early poll, even when a later early poll brings its reply", async () => {
    const { clock, poller, polls, queue } = setup({ pollInitialDelayMs: 2 });
    await learnRoundTrip({ clock, poller, queue }, 10);
    const estimate = poller.expectedLatencyOf();
    const polled = polls().length;
    await write(poller, "a");
    await clock.advance(2);
    // a's early poll: nothing yet.
    expect(polls().length).toBe(polled + 1);
    await write(poller, "b");
    await clock.advance(1);
    queue.push("a");
    await clock.advance(1);
    // b's early poll takes a's reply: a's first poll (its own, on time) missed, so the estimate grows.
    expect(polls().length).toBe(polled + 2);
    expect(queue).toEqual([]);
    expect(poller.expectedLatencyOf()).toBeCloseTo(estimate * 1.2);
  });

  it("learns from an early poll even when other polls came between the write and it", async () => {
    const { clock, poller, queue } = setup({ pollInitialDelayMs: 2 });
    await learnRoundTrip({ clock, poller, queue }, 10);
    const estimate = poller.expectedLatencyOf();
    // b's early poll misses; b is polled again at its acknowledgement, 10 ms after its write.
    await write(poller, "b");
    await clock.advance(9.5);
    await write(poller, "a");
    await clock.advance(0.5);
    queue.push("b");
    poller.sent("b");
    await flush();
    expect(poller.expectedLatencyOf()).toBeCloseTo(estimate * 1.2);
    // a was written before b's poll at the acknowledgement; its own early poll, later, finds its reply.
    queue.push("a");
    await clock.advance(3);
    expect(queue).toEqual([]);
    expect(poller.expectedLatencyOf()).toBeCloseTo(estimate * 1.2 * 0.985);
  });

  it("leaves nothing armed for a request forgotten before its early poll", async () => {
    const { clock, poller, polls, queue } = setup({ pollInitialDelayMs: 2 });
    await learnRoundTrip({ clock, poller, queue }, 10);
    const polled = polls().length;
    await write(poller, "gone");
    expect(poller.active).toBe(true);
    poller.forget("gone");
    expect(poller.active).toBe(false);
    await clock.advance(1000);
    expect(polls().length).toBe(polled);
  });

  it("sends no early poll when the round trip is too short for a timer to beat the acknowledgement", async () => {
    const { clock, poller, polls, queue } = setup({ pollInitialDelayMs: 0.5, pollMinMs: 1 });
    // A 1.5 ms round trip: a poll timed at pollMinMs (1 ms) would be due within pollMinMs of it.
    await learnRoundTrip({ clock, poller, queue }, 1.5);
    const polled = polls().length;
    await write(poller, "short");
    await clock.advance(1.5);
    expect(polls().length).toBe(polled);
    queue.push("short");
    poller.sent("short");
    await flush();
    expect(polls().length).toBe(polled + 1);
  });

  it("sends an early poll while another request is polled at back-off, in place of its next timed poll", async () => {
    const { clock, poller, polls, queue, elapsed } = setup({ pollInitialDelayMs: 2, pollMaxMs: 64 });
    await learnRoundTrip({ clock, poller, queue }, 10);
    // A slow request waits, polled on its own schedule (back-off from its expected time).
    await write(poller, "waits");
    await clock.advance(10);
    poller.sent("waits");
    await flush();
    const polled = polls().length;
    const from = elapsed();
    const earlyBefore = poller.stats.earlyPolls;
    await write(poller, "new");
    await clock.advance(3.5);
    // The waiting request's back-off poll at 1; none of them reaches Redis after the reply of "new", due
    // at 2, so its early poll goes then, and the back-off poll due at 3 is not sent: no extra command.
    expect(
      polls()
        .slice(polled)
        .map((at) => at - from),
    ).toEqual([expect.closeTo(1), expect.closeTo(2, 1)]);
    expect(poller.stats.earlyPolls - earlyBefore).toBe(1);
  });

  it("sends an early poll beside one in flight that went out before the request's reply was due", async () => {
    /** Two requests written 1 ms apart after the XADD's round trip (10 ms) is learned: their polls' times. */
    const twoWrites = async (pollMaxInFlight: number) => {
      const test = setup({ pollInitialDelayMs: 2, pollMaxMs: 64, pollMaxInFlight }, { roundTripMs: 10 });
      const { clock, poller, queue } = test;
      await write(poller, "first");
      await clock.advance(10);
      queue.push("first");
      poller.sent("first");
      await clock.advance(20);
      const from = test.elapsed();
      const polled = test.polls().length;
      await write(poller, "a");
      await clock.advance(1);
      await write(poller, "b");
      await clock.advance(2.5);
      return {
        at: test
          .polls()
          .slice(polled)
          .map((at) => at - from),
        inFlightAtSend: test.inFlightAtSend.slice(polled),
      };
    };
    // With no room for a second poll in flight, "b" waits for the first one's return.
    expect((await twoWrites(1)).at).toEqual([expect.closeTo(2, 1)]);
    // "a" polled early at 2; that poll is on its way (until 12) when "b" is due at 3: it reached Redis
    // before b's reply could, so "b" gets its own early poll beside it rather than waiting for "a"'s.
    const { at, inFlightAtSend } = await twoWrites(3);
    expect(at).toEqual([expect.closeTo(2, 1), expect.closeTo(3, 1)]);
    expect(inFlightAtSend).toEqual([1, 2]);
  });

  it("sends no early poll for a request whose reply a poll sent since it was due will find", async () => {
    const { clock, poller, polls, queue, elapsed } = setup({ pollInitialDelayMs: 1.2, pollMaxMs: 64 });
    await learnFastService({ clock, poller, queue });
    await learnRoundTrip({ clock, poller, queue }, 10);
    const from = elapsed();
    const polled = polls().length;
    const earlyBefore = poller.stats.earlyPolls;
    // "new" is due within a millisecond (at about 0.87 ms), its early poll at 1 ms. Another request
    // acknowledged at 0.95 ms is polled at once: that poll reaches Redis after the reply of "new", so no
    // early poll goes.
    await write(poller, "new");
    expect(poller.expectedLatencyOf()).toBeLessThan(0.95);
    await clock.advance(0.95);
    queue.push("other");
    poller.sent("other");
    await flush();
    await clock.advance(1);
    expect(
      polls()
        .slice(polled)
        .map((at) => at - from),
    ).toEqual([expect.closeTo(0.95, 2)]);
    expect(poller.stats.earlyPolls - earlyBefore).toBe(0);
  });

  it("drains a backlog with up to pollMaxInFlight polls at once while batches come back full", async () => {
    const drain = async (pollMaxInFlight: number) => {
      const test = setup({ pollBatchSize: 2, pollMaxInFlight }, { roundTripMs: 10 });
      for (let index = 0; index < 12; index++) {
        test.queue.push(`r${index}`);
        test.poller.sent(`r${index}`);
      }
      await test.clock.advance(100);
      expect(test.poller.waitingCount).toBe(0);
      return test;
    };
    // One at a time: six round trips for six full batches.
    const single = await drain(1);
    expect(single.polls()).toEqual([1, 11, 21, 31, 41, 51]);
    // The first full batch starts two more beside the next: all twelve replies in three round trips.
    const { polls, inFlightAtSend, poller } = await drain(3);
    // At 21 four replies are left: two polls for them, not three, so none comes back empty.
    expect(polls()).toEqual([1, 11, 11, 11, 21, 21]);
    expect(Math.max(...inFlightAtSend)).toBe(3);
    expect(poller.stats.concurrentPolls).toBe(2);
    expect(poller.stats.emptyPolls).toBe(0);
    expect(poller.active).toBe(false);
  });

  it("starts no more polls when the full batch brought the last awaited reply", async () => {
    // (Without the check this spun forever: a line for nothing to wait for never counts itself in flight.)
    const { clock, poller, polls, queue } = setup({ pollBatchSize: 2, pollMaxInFlight: 3 });
    queue.push("given-up", "only");
    poller.sent("only");
    await clock.advance(100);
    expect(poller.waitingCount).toBe(0);
    expect(polls()).toEqual([4]);
    expect(poller.stats.concurrentPolls).toBe(0);
    expect(poller.active).toBe(false);
  });

  it("backs off once, and goes on, when the polls in flight together all fail", async () => {
    const { clock, poller, polls, queue, failPolls, errors } = setup(
      { pollBatchSize: 2, pollMaxInFlight: 3 },
      { roundTripMs: 10 },
    );
    for (let index = 0; index < 12; index++) {
      queue.push(`r${index}`);
      poller.sent(`r${index}`);
    }
    // The first poll (sent at 1, at Redis at 6) comes back full at 11; the three it leads to fail at Redis.
    await clock.advance(7);
    failPolls(3);
    await clock.advance(10.5);
    // All three failed at 16: the last one to fail schedules one back-off poll, 1 ms later.
    expect(polls()).toEqual([1, 11, 11, 11, 17]);
    expect(errors).toHaveLength(3);
    expect(poller.stats.pollErrors).toBe(3);
    await clock.advance(100);
    expect(poller.waitingCount).toBe(0);
    expect(poller.active).toBe(false);
  });

  it("goes back to one poll at a time once a batch comes back short", async () => {
    const { clock, poller, polls, queue, inFlightAtSend } = setup(
      { pollBatchSize: 2, pollMaxInFlight: 3, pollInitialDelayMs: 4 },
      { roundTripMs: 10 },
    );
    // Twelve wait; seven replies are there, the other five come much later.
    for (let index = 0; index < 12; index++) poller.sent(`r${index}`);
    queue.push(...["r0", "r1", "r2", "r3", "r4", "r5", "r6"]);
    await clock.advance(35);
    // 1: two (full), so three at 11: two, two, one. The short one ends its line; the two full ones go on
    // and find nothing, and only the last of them to return goes on polling (after a 1 ms back-off).
    expect(polls()).toEqual([1, 11, 11, 11, 21, 21, 32]);
    expect(poller.waitingCount).toBe(5);
    await clock.advance(50);
    expect(Math.max(...inFlightAtSend.slice(6))).toBe(1);
    // One line backs off from there (1, 2, 4, 8 ms after each empty poll is back) as if it had polled alone: the poll that came back
    // empty beside it left the back-off to it.
    expect(polls().slice(6)).toEqual([32, 44, 58, 76]);
    queue.push("r7", "r8", "r9", "r10", "r11");
    await clock.advance(200);
    expect(poller.waitingCount).toBe(0);
  });

  it("learns nothing from a reply that queued behind a full first batch, and a miss from one behind a short one", async () => {
    // Its first poll, on time at 4 ms, brings a full batch of two earlier replies (given up on, say) that
    // were ahead of it on the list: the reply comes with the next poll, and that is no miss.
    const behindFull = setup({ pollBatchSize: 2, pollMaxMs: 64 });
    behindFull.queue.push("old-1", "old-2", "late");
    behindFull.poller.sent("late");
    await behindFull.clock.advance(10);
    expect(behindFull.poller.waitingCount).toBe(0);
    expect(behindFull.poller.stats.expectedLatencyMs).toBe(4);

    // Here its first poll came back short (only one old reply): the reply was not there yet, a miss.
    const behindShort = setup({ pollBatchSize: 2, pollMaxMs: 64 });
    behindShort.queue.push("old-1");
    behindShort.arriving.push("late");
    behindShort.poller.sent("late");
    await behindShort.clock.advance(10);
    expect(behindShort.poller.waitingCount).toBe(0);
    expect(behindShort.poller.stats.expectedLatencyMs).toBeCloseTo(4 * 1.2);
  });

  it("learns nothing from a reply that another poller's poll brought, or that came without a poll", async () => {
    const { clock, poller } = setup();
    poller.sent("a");
    poller.sent("b");
    poller.received("a", { owner: {}, seq: 1 });
    poller.received("b");
    expect(poller.waitingCount).toBe(0);
    expect(poller.stats.expectedLatencyMs).toBe(4);
    await clock.advance(100);
    expect(poller.active).toBe(false);
  });

  it("stop() ends polling for good", async () => {
    const { clock, poller, polls } = setup();
    poller.sent("1");
    poller.stop();
    await clock.advance(100);
    expect(polls()).toEqual([]);
    poller.sent("2");
    await flush();
    expect(clock.timerCount()).toBe(0);
  });
});
