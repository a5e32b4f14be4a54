/**
 * The reply subscriber (`replyTransport: "subscribe"`): takes replies that services `PUBLISH` to the
 * object's reply key, over Upstash's server-sent events (`POST <restUrl>/subscribe/<who>`), as the Perl
 * proxy did over `SUBSCRIBE`. One stream per object incarnation, held only while it is needed:
 *
 * - the stream is opened by the first request of a burst, and that request's `XADD` waits for the
 *   `subscribe,<who>,1` confirmation: a reply published before it would be lost (the Perl proxy raced here);
 * - it stays open while requests wait, plus `subscribeGraceMs` after the last one (a burst's next request
 *   then needs no new `SUBSCRIBE`), and is then aborted so the object can hibernate;
 * - a stream that breaks while wanted is opened again (at once after a stream that had been up for a
 *   while, then with jittered exponential back-off up to `subscribeRetryMaxMs`); meanwhile every waiting
 *   request is polled on the normal poll schedule, so replies pushed to the list are never stranded.
 *   Replies *published* while no stream is up are gone (pub/sub keeps nothing); those requests time out.
 *   A new request waits for the next attempt rather than be written where its reply would surely be
 *   lost, and goes out (polled) if that attempt fails too;
 * - while subscribed, a request still unanswered after `replyListCheckMs` is also looked for on the reply
 *   list, and again after 1x, 2x, 4x, then every 8x that while it waits, so a service in list mode is
 *   served (slowly, with a warning) instead of timing out. 0 turns this off for publish-only services.
 */
import type { Clock, TimerHandle } from "../core/pending-requests.js";
import { LazyTimer } from "../core/lazy-timer.js";
import { ProtocolError, TransportError } from "../core/errors.js";
import { readEventData } from "./event-stream-reader.js";
import { ReplyPoller, type PollTicket, type ReplyPollerOptions } from "./reply-poller.js";
import type { ReplyReceiver, ReplyReceiverStats, ReplySubscriptionStats } from "./reply-receiver.js";
import { parseSubscriptionEvent } from "../wire/index.js";

/** What the subscriber is configured with (from {@link ConsumerGroupsOptions}). */
export interface ReplySubscriberSettings extends ReplyPollerOptions {
  /** The reply key, which is also the channel services publish to (`who`). */
  channel: string;
  /** How long the stream stays open after the last waiting request. */
  subscribeGraceMs: number;
  /** Ceiling of the back-off between failed subscription attempts. */
  subscribeRetryMaxMs: number;
  /** While subscribed, an unanswered request is also looked for on the reply list this often; 0: never. */
  replyListCheckMs: number;
  /** An attempt not confirmed within this long is aborted and counts as failed. */
  connectTimeoutMs: number;
}

/** What the subscriber drives: the clock, the inbox's stream, pop-and-deliver and delivery. */
export interface ReplySubscriberDeps {
  clock: Clock;
  /**
   * Opens the stream (`POST <restUrl>/subscribe/<channel>`, `Accept: text/event-stream`). `signal` is
   * aborted once the subscriber is done with the stream, however it ended.
   */
  subscribe(signal: AbortSignal): Promise<Response>;
  /** `LPOP <who> <count>` and delivery, as for the poller: the number of replies popped. */
  poll(count: number, ticket: PollTicket): Promise<number>;
  /** Hands pushed replies to their requests (calling {@link ReplySubscriber.received} for each delivered one). */
  deliver(payloads: string[]): void;
  /** A subscription failed or its stream broke; the subscriber carries on. */
  onError(error: unknown): void;
  /** Something an operator should fix (a service in list mode behind a subscribing gateway). */
  onWarning(message: string): void;
  /** @default Math.random (the back-off jitter) */
  random?: () => number;
}

/** A stream that stayed up at least this long is retried at once when it breaks; a shorter one backs off. */
const STABLE_STREAM_MS = 1_000;
/** First back-off step after a failed attempt. */
const RETRY_MIN_MS = 50;

type StreamState =
  | { kind: "closed" }
  | { kind: "connecting"; controller: AbortController; opened: Promise<void> }
  | { kind: "open"; controller: AbortController; since: number }
  /** `attempted` settles when the next attempt has an outcome, or the retry is called off. */
  | { kind: "retrying"; timer: TimerHandle; attempted: Promise<void>; settle: () => void };

/** Receives replies over a pub/sub stream, polling as the fallback; see the file comment. */
export class ReplySubscriber implements ReplyReceiver {
  private state: StreamState = { kind: "closed" };
  /** Requests between `prepare` and `forget`: while there are any, the stream is wanted. */
  private readonly demand = new Set<string>();
  /** Acknowledged requests, by the poller that looks for them on the list. */
  private readonly waiting = new Map<string, { poller: ReplyPoller; category: string | undefined }>();
  /** Polls slowly while subscribed: only for replies a list-mode service pushed. */
  private readonly listCheck: ReplyPoller;
  /** Polls on the normal schedule while no stream is confirmed. */
  private readonly fallback: ReplyPoller;
  private readonly counters: ReplySubscriptionStats = {
    subscriptions: 0,
    subscribeFailures: 0,
    streamBreaks: 0,
    pushedReplies: 0,
    listRepliesWhileSubscribed: 0,
  };
  /**
   * Closes the stream `subscribeGraceMs` after the last request. The next request cancels it, and a
   * cancelled timer is left to run out (the stream it would close keeps the object awake that long anyway),
   * so a lone client's requests do not each cost a `setTimeout` and a `clearTimeout`.
   */
  private readonly grace: LazyTimer;
  private retryDelayMs = 0;
  private stopped = false;
  private warnedListReplies = false;

  constructor(
    private readonly settings: ReplySubscriberSettings,
    private readonly deps: ReplySubscriberDeps,
  ) {
    this.fallback = new ReplyPoller(settings, {
      clock: deps.clock,
      poll: (count, ticket) => deps.poll(count, ticket),
    });
    this.grace = new LazyTimer(deps.clock, () => this.close(), settings.subscribeGraceMs);
    // After the first check, later ones back off to 8x: a slow request of a publishing service (the
    // supported pairing) then costs a few LPOPs over a 30 s wait, not one per second.
    const every = Math.max(settings.replyListCheckMs, 1);
    this.listCheck = new ReplyPoller(
      {
        ...settings,
        pollInitialDelayMs: every,
        pollMinMs: every,
        pollMaxMs: every * 8,
        pollBackoffFactor: 2,
      },
      {
        clock: deps.clock,
        pollAtAcknowledgement: false,
        poll: async (count, ticket) => {
          const popped = await deps.poll(count, ticket);
          if (popped > 0) this.noteListReplies(popped);
          return popped;
        },
      },
    );
  }

  /** The pollers' counters summed, and the subscription's. */
  get stats(): ReplyReceiverStats {
    const [a, b] = [this.fallback.stats, this.listCheck.stats];
    return {
      polls: a.polls + b.polls,
      emptyPolls: a.emptyPolls + b.emptyPolls,
      repolls: a.repolls + b.repolls,
      earlyPolls: a.earlyPolls + b.earlyPolls,
      concurrentPolls: a.concurrentPolls + b.concurrentPolls,
      pollErrors: a.pollErrors + b.pollErrors,
      expectedLatencyMs: a.expectedLatencyMs,
      ...this.counters,
    };
  }

  /** Opens the stream if needed and waits for its confirmation (or its failure: then the list is polled). */
  async prepare(messageId: string): Promise<void> {
    if (this.stopped) return;
    this.demand.add(messageId);
    this.grace.cancel();
    if (this.state.kind === "closed") this.connect();
    // Backing off: wait for the next attempt, since a published reply with no stream up is lost for sure
    // (and its RPC has run). If that attempt fails as well, the request goes out and is polled.
    if (this.state.kind === "retrying") await this.state.attempted;
    if (this.state.kind === "connecting") await this.state.opened;
  }

  /** The `XADD` was acknowledged: listen on the stream, or poll if no stream is confirmed now. */
  sent(messageId: string, category?: string): void {
    if (this.stopped || !this.demand.has(messageId)) return;
    const poller = this.state.kind === "open" ? this.listCheck : this.fallback;
    this.waiting.set(messageId, { poller, category });
    if (poller === this.fallback || this.settings.replyListCheckMs > 0) poller.sent(messageId, category);
  }

  /** The reply was delivered (by the poll `ticket`, if polled): lets its poller learn and stop looking. */
  received(messageId: string, ticket?: PollTicket): void {
    this.waiting.get(messageId)?.poller.received(messageId, ticket);
  }

  /** The request is done; the last one starts the grace period. */
  forget(messageId: string): void {
    this.demand.delete(messageId);
    this.waiting.get(messageId)?.poller.forget(messageId);
    this.waiting.delete(messageId);
    if (this.demand.size > 0 || this.stopped) return;
    if (this.state.kind === "retrying") {
      this.close();
    } else if (this.state.kind !== "closed" && this.grace.at === undefined) {
      this.grace.set(this.deps.clock.now() + this.settings.subscribeGraceMs);
    }
  }

  /** Aborts the stream and stops polling, for good. Idempotent. */
  stop(): void {
    this.stopped = true;
    this.grace.stop();
    this.close();
    this.fallback.stop();
    this.listCheck.stop();
    this.demand.clear();
    this.waiting.clear();
  }

  /** Starts an attempt; the promise settles when it is confirmed or has failed. */
  private connect(): Promise<void> {
    const controller = new AbortController();
    let settle = (): void => undefined;
    const opened = new Promise<void>((resolve) => (settle = resolve));
    this.state = { kind: "connecting", controller, opened };
    this.counters.subscriptions += 1;
    void this.run(controller, settle);
    return opened;
  }

  /** One stream from request to end; afterwards decides whether to reconnect. */
  private async run(controller: AbortController, settle: () => void): Promise<void> {
    const timeout = this.deps.clock.setTimeout(
      () => controller.abort(new TransportError("no subscription confirmation in time", "SUBSCRIBE")),
      this.settings.connectTimeoutMs,
    );
    let failure: unknown;
    try {
      const response = await this.deps.subscribe(controller.signal);
      if (!response.ok || !response.body) {
        const text = await response.text().catch(() => "");
        throw new TransportError(
          `SUBSCRIBE answered HTTP ${response.status}: ${text.slice(0, 200)}`,
          "SUBSCRIBE",
        );
      }
      await readEventData(response.body, (data) => {
        const event = parseSubscriptionEvent(data, this.settings.channel);
        if (event.kind === "subscribed" && this.isCurrent(controller) && this.state.kind === "connecting") {
          this.deps.clock.clearTimeout(timeout);
          this.state = { kind: "open", controller, since: this.deps.clock.now() };
          settle();
        } else if (event.kind === "message") {
          this.counters.pushedReplies += 1;
          this.deliver([event.payload]);
        }
      });
      failure = new ProtocolError("the subscription stream ended");
    } catch (error) {
      failure = error;
    } finally {
      this.deps.clock.clearTimeout(timeout);
      // Done with this stream however it ended: gives the port its connection back.
      controller.abort();
      settle();
    }
    // Aborted by `close()` (idle or stopped): nothing went wrong and nothing is to be done.
    if (!this.isCurrent(controller)) return;
    this.streamLost(failure);
  }

  private isCurrent(controller: AbortController): boolean {
    return (
      (this.state.kind === "connecting" || this.state.kind === "open") && this.state.controller === controller
    );
  }

  /** The current stream failed or ended by itself: poll everything waiting, reconnect if still wanted. */
  private streamLost(failure: unknown): void {
    const wasOpen = this.state.kind === "open" ? this.state : undefined;
    if (wasOpen) this.counters.streamBreaks += 1;
    else this.counters.subscribeFailures += 1;
    this.deps.onError(failure);
    for (const [messageId, { poller, category }] of this.waiting) {
      if (poller === this.fallback) continue;
      poller.forget(messageId);
      this.waiting.set(messageId, { poller: this.fallback, category });
      this.fallback.sent(messageId, category);
    }
    this.state = { kind: "closed" };
    if (this.stopped || this.demand.size === 0) {
      // Lost during the grace period: nothing is left to close, and the next request reconnects.
      this.grace.stop();
      return;
    }
    const stable = wasOpen !== undefined && this.deps.clock.now() - wasOpen.since >= STABLE_STREAM_MS;
    // The back-off is reset only by a stream that stayed up: one that Redis confirms and drops at once
    // must not be reopened in a tight loop (each attempt is a billed SUBSCRIBE).
    if (stable) this.retryDelayMs = 0;
    const delay = stable ? 0 : this.nextRetryDelay();
    let settle = (): void => undefined;
    const attempted = new Promise<void>((resolve) => (settle = resolve));
    const timer = this.deps.clock.setTimeout(() => {
      if (this.state.kind !== "retrying" || this.state.timer !== timer) return;
      void this.connect().then(settle);
    }, delay);
    this.state = { kind: "retrying", timer, attempted, settle };
  }

  /** 50 ms, doubling to `subscribeRetryMaxMs`, each ±20% so objects that lost Redis together spread out. */
  private nextRetryDelay(): number {
    const base = Math.min(this.settings.subscribeRetryMaxMs, Math.max(RETRY_MIN_MS, this.retryDelayMs * 2));
    this.retryDelayMs = base;
    return base * (0.8 + 0.4 * (this.deps.random ?? Math.random)());
  }

  /** Ends the stream on purpose (idle or stopped). */
  private close(): void {
    const state = this.state;
    this.state = { kind: "closed" };
    if (state.kind === "retrying") {
      this.deps.clock.clearTimeout(state.timer);
      state.settle();
    }
    if (state.kind === "connecting" || state.kind === "open") state.controller.abort();
  }

  private noteListReplies(count: number): void {
    this.counters.listRepliesWhileSubscribed += count;
    if (!this.warnedListReplies) {
      this.warnedListReplies = true;
      this.deps.onWarning(
        `replies to ${this.settings.channel} arrive on the reply list while the gateway subscribes to it: run the ` +
          `service with --reply-mode publish, or the gateway with replyTransport "poll" (list replies wait up to replyListCheckMs)`,
      );
    }
  }

  private deliver(payloads: string[]): void {
    try {
      this.deps.deliver(payloads);
    } catch (error) {
      // A bug in reply handling must not end the stream every waiting request depends on.
      this.deps.onError(error);
    }
  }
}
