/**
 * The reply poller: one per Durable Object incarnation, draining the object's reply key with
 * `LPOP <who> <batch>` while (and only while) requests wait for replies.
 *
 * Schedule (PROTOCOL.md section 4):
 * - a request's first poll is due the *expected latency* of its category (each category is served by its
 *   own services, at its own speed) after its `XADD` left, i.e. its REST request started (`sending`: a
 *   write queued behind the object's connection limit is timed from when it goes). The expected latency
 *   is a running estimate of a high percentile (about the 93rd) of the time after which an `LPOP` sent
 *   then finds the reply, at most `pollMaxMs`. An `LPOP` sent then reaches Redis half a round trip
 *   later, as the `XADD` did, so the estimate is about the service's own time, whatever the REST round
 *   trip. A first poll that finds its reply shortens it a little, one that misses lengthens it a lot, so
 *   about 7% of first polls come back empty whatever the service's speed;
 * - a first poll due before the `XADD`'s acknowledgement can come (the learned round trip is longer than
 *   the expected latency by at least `pollMinMs`: a distant Redis, a fast service) is sent *before* it, on a
 *   timer of at least `pollMinMs` after the `XADD` left: the reply then comes about one round trip
 *   after the service made it, not two (one for the `XADD`'s answer, one for the `LPOP`). It is not sent
 *   when a poll went out at or after the request's due time (that one reaches Redis after the reply, as
 *   the early one would), nor when `pollMaxInFlight` polls are in flight; it takes the place of a timed
 *   poll still to come. Only one such early poll per request; when it comes back empty, the request is
 *   polled as below once acknowledged;
 * - a first poll due before the acknowledgement that is not sent early, or due within `pollMinMs` of it,
 *   goes at the acknowledgement: the `LPOP` is sent at once, with no timer. It needs half a REST round trip
 *   to reach Redis, so when the service answers within about one round trip the reply is usually there when
 *   it arrives; a timer would only add its own granularity (a 1 ms `setTimeout` in workerd fires after
 *   about 1.3 ms). The estimate may sink to `pollMinMs / 16`, so a few misses move it back to timed polls;
 * - a poll at the acknowledgement that came back empty is followed at once by one more: the service is
 *   known fast, so its reply is most likely there one REST round trip later, where a timer would wait
 *   1.3 ms or more. Such a second poll costs a command only when it is empty too, so it is made from a
 *   budget earned by each request ({@link REPOLL_SHARE} of a command per request): on average at most
 *   that many extra `LPOP`s per request, whatever the service's speed;
 * - with W acknowledged requests waiting, the next poll comes after the expected latency divided by W (at
 *   least `pollMinMs`): each reply is expected by then with the probability the estimate gives, and the
 *   first of W of them about W times sooner. So a busy object polls at a short cadence whatever the
 *   estimate (each poll then brings several replies, so commands per request stay low), and a request
 *   alone waits for its own expected time. Whether a reply's first poll was late enough is still judged
 *   by the request's own expected time;
 * - a poll that returned replies is followed at once by another (more are likely queued behind them);
 * - a poll that came back full (`pollBatchSize` replies) says the list holds a backlog: more polls go out
 *   beside the next one, up to `pollMaxInFlight` at once, each in a request of its own (a full batch is
 *   sized to fill one REST response). With Redis a round trip away, one poll at a time would bring at most
 *   one batch per round trip (13 replies with the default `maxResponseBytes`), whatever the load. A poll
 *   that comes back short or empty while another is in flight ends its own line: the backlog is drained,
 *   and one poll at a time carries on;
 * - an empty poll backs off exponentially from `pollMinMs` by `pollBackoffFactor` up to `pollMaxMs`, but a
 *   request acknowledged meanwhile pulls the next poll forward to its own expected time;
 * - once every waiting request is past its expected time (the reply is late: a slow service, or one that
 *   is down), the back-off keeps growing up to `pollLateBackoffMs` (1 s). Each `LPOP` is a subrequest, and
 *   Cloudflare caps subrequests per invocation (Workers Free 50, Paid 10,000 by default, raised with
 *   `[limits] subrequests`; "Limits", https://developers.cloudflare.com/workers/platform/limits/), so a
 *   request waiting 30 s costs about 40 `LPOP`s instead of 600. With the default factor 2 the gap never
 *   exceeds the time already waited, so a late reply is found at most about twice as late;
 * - otherwise one `LPOP` in flight at a time; nothing waiting means no Redis command, and within a second
 *   no timer (a timer due within a second is left to run out rather than cleared: a lone client's requests
 *   then cost about one timer a second, not a `setTimeout` and a `clearTimeout` each; see `LazyTimer`), so
 *   the object can hibernate.
 */
import { SWEEP_MS, type Clock } from "../core/pending-requests.js";
import { LazyTimer } from "../core/lazy-timer.js";
import type { ReplyReceiver } from "./reply-receiver.js";

/** The poller's knobs (all part of {@link ConsumerGroupsOptions}). */
export interface ReplyPollerOptions {
  /** Expected service latency before any reply was seen: the first poll's delay. @default 2 */
  pollInitialDelayMs: number;
  /** Floor of the first-poll delay and first back-off step. @default 1 */
  pollMinMs: number;
  /** Ceiling of the first-poll delay and of the back-off while a request is within its expected time. @default 50 */
  pollMaxMs: number;
  /**
   * Ceiling of the back-off once every waiting request is past its expected time, so a long wait costs few
   * `LPOP`s (subrequests). A value below `pollMaxMs` acts as `pollMaxMs`. @default 1000
   */
  pollLateBackoffMs: number;
  /** Growth of the back-off after each empty poll. @default 2 */
  pollBackoffFactor: number;
  /** Replies popped per `LPOP`. @default 100 */
  pollBatchSize: number;
  /** `LPOP`s in flight at once while batches come back full (a backlog on the reply list). @default 3 */
  pollMaxInFlight: number;
}

/**
 * One `LPOP` of a poller. The inbox hands it back with each reply that poll delivered
 * ({@link ReplyPoller.received}), so the poller knows which of several polls in flight brought a reply.
 */
export interface PollTicket {
  readonly owner: object;
  /** The poller's sequence number of this poll (1 for its first). */
  readonly seq: number;
}

/** What the poller drives: the clock, and the inbox's pop-and-deliver. */
export interface ReplyPollerDeps {
  /**
   * `LPOP <who> <count>` and hands the replies to their requests (calling {@link ReplyPoller.received} with
   * `ticket` for each delivered one) before it resolves with the number popped (0: the key was empty). A
   * rejection is a failed poll: counted, backed off from, reported by the inbox.
   */
  poll(count: number, ticket: PollTicket): Promise<number>;
  clock: Clock;
  /**
   * False keeps every first poll on a timer of at least `pollMinMs` (a slow check, such as the
   * subscriber's look at the reply list, must never poll at the acknowledgement). @default true
   */
  pollAtAcknowledgement?: boolean;
}

/** Counters for tests and the benchmark. */
export interface ReplyPollerStats {
  polls: number;
  emptyPolls: number;
  /** Second polls sent at once after an empty poll at the acknowledgement (see the module comment). */
  repolls: number;
  /** Polls sent before an acknowledgement, for requests whose first poll was due well before it. */
  earlyPolls: number;
  /** Polls sent beside another in flight, after a full batch (see `pollMaxInFlight`). */
  concurrentPolls: number;
  pollErrors: number;
  /** Expected service latency of the category whose reply was judged last, ms (see `expectedLatencyOf`). */
  expectedLatencyMs: number;
}

interface Waiting {
  /** The request's category: its reply's first poll is judged against that category's estimate. */
  category: string;
  /** Number of polls issued before its first poll (before the acknowledgement, or before its early poll). */
  pollsBefore: number;
  /** When its first poll was due by the latency estimate. */
  dueAt: number;
}

/** A request whose `XADD` is on its way: written, not acknowledged yet. */
interface Writing extends Waiting {
  /** When its `XADD` left ({@link ReplyPoller.sending}), or was queued until it does. */
  writtenAt: number;
  /** True once its `XADD` left: only then may it get an early poll. */
  left: boolean;
  /** When its early poll is due; undefined when it gets none, or had it. */
  earlyAt: number | undefined;
  /** True once its early poll was sent (that poll is its first). */
  polledEarly: boolean;
}

/** How many recent polls' issue times are kept, to judge a request's first poll after the fact. */
const POLL_HISTORY = 256;

/**
 * Steps of the latency estimate. A reply's first poll either finds it (the service was at least that
 * fast) or not, and nothing more is known, so the estimate is moved by that outcome alone: -1.5% per hit,
 * +20% per miss. It settles where misses are 0.015 / (0.015 + 0.2), about 7% of first polls, and a single
 * slow reply moves it by one step only. (An average of observed latencies would not do: a poll that finds
 * its reply at once says nothing about how much earlier it was there, so such an average only rises.)
 * A first poll that came before the request's due time (a busy object polls back to back) and missed
 * says nothing about the estimate and is not counted; nor does one that came back full (the reply may
 * have been queued behind that batch).
 */
const HIT_STEP = 0.015;
const MISS_STEP = 0.2;

/** The estimate's floor, as a share of `pollMinMs` (below `pollMinMs` the first poll goes at the ack). */
const ESTIMATE_FLOOR_SHARE = 1 / 16;

/**
 * Budget of the second poll at once after an empty poll at the acknowledgement: each acknowledged request
 * adds this share of a command, an empty second poll spends one, and a second poll needs a whole one. It
 * keeps the poller within its share of commands at light load (one `XADD` and about one `LPOP` per
 * request; the gateway's target is 2.1 commands per request at 1 client, docs/performance.md).
 */
const REPOLL_SHARE = 0.04;
/** The most the budget saves up, in commands: a few second polls in a row after a quiet spell. */
const REPOLL_SAVINGS = 2;

/** Weight of the newest `XADD` round trip in the running round-trip estimate. */
const ROUND_TRIP_WEIGHT = 1 / 8;

/** Settled once, shared: polling needs no preparation before an `XADD`. */
const READY = Promise.resolve();

/** Polls the reply key on the schedule above. */
export class ReplyPoller implements ReplyReceiver {
  readonly stats: ReplyPollerStats;
  private readonly waiting = new Map<string, Waiting>();
  /** Requests between their `XADD` and its acknowledgement (see {@link ReplyPoller.prepare}). */
  private readonly writing = new Map<string, Writing>();
  /**
   * Expected service latency by category (the categories a gateway may write to are configured, so this
   * stays small): a slow category's service must not delay the first poll of a fast one's replies.
   */
  private readonly estimates = new Map<string, number>();
  /** The next timed poll; a timer due within {@link SWEEP_MS} is left to run out when cancelled. */
  private readonly timer: LazyTimer;
  /** The next early poll (before an acknowledgement). */
  private readonly earlyTimer: LazyTimer;
  /** Running estimate of the `XADD`'s round trip, ms (0 before the first acknowledgement). */
  private roundTripMs = 0;
  /** Polls in flight now. */
  private inFlight = 0;
  private stopped = false;
  private backoffMs: number;
  /** Latest expected time of the requests acknowledged so far: past it, every waiting request is late. */
  private latestDueAt = -Infinity;
  /** Earliest expected time of requests acknowledged while a poll was in flight (not covered by it). */
  private uncoveredDueAt = Infinity;
  /** Issue times of the last {@link POLL_HISTORY} polls, by sequence number modulo its length. */
  private readonly pollIssuedAt: number[] = new Array<number>(POLL_HISTORY).fill(0);
  /**
   * 1 for each of the last {@link POLL_HISTORY} polls that came back short of a full batch (the list was
   * empty when it got there); 0 while in flight, and for a full batch or a failure.
   */
  private readonly pollCameBackShort = new Uint8Array(POLL_HISTORY);
  /** Commands saved up for second polls at once ({@link REPOLL_SHARE}). */
  private repollBudget = 1;

  constructor(
    private readonly options: ReplyPollerOptions,
    private readonly deps: ReplyPollerDeps,
  ) {
    this.backoffMs = options.pollMinMs;
    this.timer = new LazyTimer(deps.clock, () => void this.poll(), SWEEP_MS);
    this.earlyTimer = new LazyTimer(deps.clock, () => this.pollEarly(), SWEEP_MS);
    this.stats = {
      polls: 0,
      emptyPolls: 0,
      repolls: 0,
      earlyPolls: 0,
      concurrentPolls: 0,
      pollErrors: 0,
      expectedLatencyMs: options.pollInitialDelayMs,
    };
  }

  /** Number of acknowledged requests the poller is polling for. */
  get waitingCount(): number {
    return this.waiting.size;
  }

  /** True while a poll is scheduled or in flight. */
  get active(): boolean {
    return this.inFlight > 0 || this.timer.at !== undefined || this.earlyTimer.at !== undefined;
  }

  /** Learned round trip of an `XADD`, ms (0 before the first acknowledgement). */
  get roundTrip(): number {
    return this.roundTripMs;
  }

  /**
   * The `XADD` of `messageId` (to `category`'s stream) is queued now. Nothing else to prepare: a reply
   * pushed to the list waits there until the next poll. Its schedule starts when it leaves ({@link sending}).
   */
  prepare(messageId: string, category = ""): Promise<void> {
    if (this.stopped || this.deps.pollAtAcknowledgement === false) return READY;
    const now = this.deps.clock.now();
    this.writing.set(messageId, {
      category,
      pollsBefore: this.stats.polls,
      dueAt: now + this.expectedLatencyOf(category),
      writtenAt: now,
      left: false,
      earlyAt: undefined,
      polledEarly: false,
    });
    return READY;
  }

  /**
   * The `XADD` of `messageId` leaves now: its first poll is due from now, and sent before the
   * acknowledgement when that is due clearly earlier (see the module comment). A poll timed from when
   * it was queued could reach Redis before the entry itself (both queued behind the connection limit),
   * miss for certain and teach the estimate a latency the service never had.
   */
  sending(messageId: string): void {
    const writing = this.writing.get(messageId);
    if (this.stopped || !writing || writing.left) return;
    const now = this.deps.clock.now();
    const { pollMinMs } = this.options;
    const expected = this.expectedLatencyOf(writing.category);
    const earlyAt = now + Math.max(pollMinMs, expected);
    // Early only when the timer fires at least `pollMinMs` before the acknowledgement is expected.
    const early = earlyAt + pollMinMs <= now + this.roundTripMs;
    writing.left = true;
    writing.writtenAt = now;
    writing.dueAt = now + expected;
    writing.pollsBefore = this.stats.polls;
    writing.earlyAt = early ? earlyAt : undefined;
    if (early && (this.earlyTimer.at === undefined || earlyAt < this.earlyTimer.at))
      this.earlyTimer.set(earlyAt);
  }

  /**
   * The `XADD` of `messageId` was acknowledged: its reply may now appear. `category` picks the latency
   * estimate its first poll is timed by (one per category, learned from that category's replies).
   */
  sent(messageId: string, category = ""): void {
    if (this.stopped) return;
    const now = this.deps.clock.now();
    const writing = this.writing.get(messageId);
    let dueAt: number;
    let pollsBefore = this.stats.polls;
    if (writing) {
      this.writing.delete(messageId);
      const roundTrip = now - writing.writtenAt;
      this.roundTripMs += (roundTrip - this.roundTripMs) * (this.roundTripMs === 0 ? 1 : ROUND_TRIP_WEIGHT);
      dueAt = writing.dueAt;
      if (writing.polledEarly) pollsBefore = writing.pollsBefore;
    } else dueAt = now + this.expectedLatencyOf(category);
    const delay = this.firstPollDelay(dueAt - now);
    // A poll at the acknowledgement is the first poll the estimate asked for: it is judged by its outcome.
    dueAt = Math.min(dueAt, now + delay);
    this.waiting.set(messageId, { category, pollsBefore, dueAt });
    this.latestDueAt = Math.max(this.latestDueAt, dueAt);
    // With W requests waiting, the first of their W replies is due about W times sooner than any one of
    // them: a busy object polls that much sooner (see the module comment). `dueAt` stays this request's own.
    const pollAt = delay === 0 ? now : now + Math.max(this.options.pollMinMs, delay / this.waiting.size);
    // A new request restarts the back-off: its own reply should not wait behind an older one's long gaps.
    this.backoffMs = this.options.pollMinMs;
    this.repollBudget = Math.min(REPOLL_SAVINGS, this.repollBudget + REPOLL_SHARE);
    if (this.inFlight > 0) this.uncoveredDueAt = Math.min(this.uncoveredDueAt, pollAt);
    else if (pollAt <= now) {
      // Polled at the acknowledgement: no timer (see the module comment).
      this.timer.cancel();
      void this.poll(true);
    } else this.scheduleAt(pollAt);
  }

  /**
   * The reply of `messageId` was delivered by the poll `ticket` (called while `poll` delivers): learn
   * whether its first poll was late enough. A reply that came another way (pushed, or another poller's
   * poll) teaches nothing.
   */
  received(messageId: string, ticket?: PollTicket): void {
    const waiting = this.waiting.get(messageId) ?? this.writing.get(messageId);
    if (!waiting) return;
    this.waiting.delete(messageId);
    this.writing.delete(messageId);
    if (ticket?.owner !== this) return;
    const firstPoll = waiting.pollsBefore + 1;
    let factor = 1 - HIT_STEP;
    if (ticket.seq !== firstPoll) {
      // A poll already in flight at the acknowledgement that brought the reply says nothing either.
      if (ticket.seq < firstPoll) return;
      const known = ticket.seq - firstPoll < POLL_HISTORY;
      const firstPollOnTime = known && (this.pollIssuedAt[firstPoll % POLL_HISTORY] ?? 0) >= waiting.dueAt;
      // A first poll that came back full (or is still on its way) may have missed the reply only because
      // it queued behind that batch: that is no miss of the estimate.
      if (!firstPollOnTime || this.pollCameBackShort[firstPoll % POLL_HISTORY] !== 1) return;
      factor = 1 + MISS_STEP;
    }
    const { pollMinMs, pollMaxMs } = this.options;
    const next = this.expectedLatencyOf(waiting.category) * factor;
    const estimate = Math.min(pollMaxMs, Math.max(pollMinMs * ESTIMATE_FLOOR_SHARE, next));
    this.estimates.set(waiting.category, estimate);
    this.stats.expectedLatencyMs = estimate;
  }

  /** The expected service latency of `category`'s replies, ms (`pollInitialDelayMs` before its first reply). */
  expectedLatencyOf(category = ""): number {
    return this.estimates.get(category) ?? this.options.pollInitialDelayMs;
  }

  /** `messageId` no longer waits (timed out, failed, cancelled); stops polling when nothing waits. */
  forget(messageId: string): void {
    this.waiting.delete(messageId);
    this.writing.delete(messageId);
    if (this.waiting.size === 0) this.timer.cancel();
    if (this.writing.size === 0) this.earlyTimer.cancel();
  }

  /** Stops for good: no further poll; an in-flight one is not awaited. Idempotent. */
  stop(): void {
    this.stopped = true;
    this.waiting.clear();
    this.writing.clear();
    this.timer.stop();
    this.earlyTimer.stop();
  }

  /** 0 (poll at the acknowledgement) when the first poll is due within `pollMinMs` from now. */
  private firstPollDelay(remaining: number): number {
    const { pollMinMs, pollMaxMs } = this.options;
    if (this.deps.pollAtAcknowledgement === false) return Math.min(pollMaxMs, Math.max(pollMinMs, remaining));
    return remaining < pollMinMs ? 0 : Math.min(pollMaxMs, remaining);
  }

  /**
   * The early-poll timer fired: one `LPOP` for the requests whose early poll is due, unless each of them
   * is covered already (see the module comment); then the timer for the next one.
   */
  private pollEarly(): void {
    const now = this.deps.clock.now();
    const { pollMaxInFlight } = this.options;
    // A poll sent at or after a request's due time reaches Redis after its reply, as an early poll would.
    const lastSentAt =
      this.stats.polls > 0 ? (this.pollIssuedAt[this.stats.polls % POLL_HISTORY] ?? 0) : -Infinity;
    const room = this.inFlight < pollMaxInFlight;
    let due = false;
    let next = Infinity;
    for (const writing of this.writing.values()) {
      if (writing.earlyAt === undefined) continue;
      if (writing.earlyAt > now) {
        next = Math.min(next, writing.earlyAt);
        continue;
      }
      writing.earlyAt = undefined;
      if (!room || lastSentAt >= writing.dueAt) continue;
      writing.polledEarly = true;
      writing.pollsBefore = this.stats.polls;
      due = true;
    }
    if (next !== Infinity) this.earlyTimer.set(next);
    if (!due) return;
    this.stats.earlyPolls += 1;
    // It takes the place of a timed poll still to come (a slower request's back-off): when it comes back
    // empty, the back-off goes on from there.
    this.timer.cancel();
    void this.pollLine(false, true);
  }

  private scheduleAt(at: number): void {
    const wanted = this.timer.at;
    if (wanted !== undefined && wanted <= at) return;
    this.timer.set(at);
  }

  /** A timed poll, or one at the acknowledgement: only when no poll is in flight. */
  private async poll(atAcknowledgement = false): Promise<void> {
    if (this.inFlight === 0) await this.pollLine(atAcknowledgement, false);
  }

  /**
   * Polls back to back for as long as replies keep coming (a loop rather than recursion); a full batch
   * starts more lines beside this one, up to `pollMaxInFlight` (see the module comment).
   */
  private async pollLine(atAcknowledgement: boolean, early: boolean): Promise<void> {
    let repoll = false;
    const { pollBatchSize } = this.options;
    while (!this.stopped && (this.waiting.size > 0 || early)) {
      early = false;
      this.inFlight += 1;
      this.uncoveredDueAt = Infinity;
      this.stats.polls += 1;
      const ticket: PollTicket = { owner: this, seq: this.stats.polls };
      this.pollIssuedAt[ticket.seq % POLL_HISTORY] = this.deps.clock.now();
      this.pollCameBackShort[ticket.seq % POLL_HISTORY] = 0;
      let popped: number | undefined;
      try {
        popped = await this.deps.poll(pollBatchSize, ticket);
      } catch {
        // Reported by the inbox; the poller backs off and keeps going while requests wait.
        this.stats.pollErrors += 1;
      } finally {
        this.inFlight -= 1;
      }
      if (popped !== undefined && popped < pollBatchSize)
        this.pollCameBackShort[ticket.seq % POLL_HISTORY] = 1;
      if (popped === 0) this.stats.emptyPolls += 1;
      if (popped !== undefined && popped > 0) {
        this.backoffMs = this.options.pollMinMs;
        atAcknowledgement = false;
        repoll = false;
        if (popped >= pollBatchSize) this.widen();
        // A short batch while another poll is on its way: the backlog is drained, that one carries on.
        else if (this.inFlight > 0) return;
        // The polls on their way may bring a whole batch each: this line goes on only for requests beyond.
        if (this.waiting.size <= this.inFlight * pollBatchSize) return;
        continue;
      }
      // Empty or failed while another poll is on its way: that one carries on (and backs off if it must).
      if (this.inFlight > 0) return;
      if (popped === undefined) {
        this.scheduleAfterEmptyPoll();
        return;
      }
      if (repoll) this.repollBudget -= 1;
      if (atAcknowledgement && !repoll && this.repollBudget >= 1) {
        // Known fast (see the module comment): once more at once, from the budget.
        repoll = true;
        this.stats.repolls += 1;
        continue;
      }
      this.scheduleAfterEmptyPoll();
      return;
    }
  }

  /**
   * A full batch came back: more lines beside the one that goes on, up to `pollMaxInFlight` in all, and
   * only while more requests wait than the lines already going may bring (a whole batch each), so the end
   * of a backlog costs no empty polls. (Each new line counts itself in flight at once; one started with
   * nothing to wait for would not, and this loop would never end.)
   */
  private widen(): void {
    const { pollMaxInFlight, pollBatchSize } = this.options;
    while (
      this.inFlight + 1 < pollMaxInFlight &&
      !this.stopped &&
      this.waiting.size > (this.inFlight + 1) * pollBatchSize
    ) {
      this.stats.concurrentPolls += 1;
      void this.pollLine(false, false);
    }
  }

  private scheduleAfterEmptyPoll(): void {
    if (this.stopped || this.waiting.size === 0) return;
    const now = this.deps.clock.now();
    const delay = this.backoffMs;
    const { pollMaxMs, pollLateBackoffMs, pollBackoffFactor } = this.options;
    // `latestDueAt` only grows (a forgotten request may have set it): at worst the long gaps start later.
    const ceiling = now >= this.latestDueAt ? Math.max(pollMaxMs, pollLateBackoffMs) : pollMaxMs;
    this.backoffMs = Math.min(ceiling, this.backoffMs * pollBackoffFactor);
    this.scheduleAt(Math.min(now + delay, this.uncoveredDueAt));
  }
}
