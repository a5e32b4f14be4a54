/**
 * The reply inbox's schedule: the {@link ReplyPoller} (`replyTransport: "poll"`, `LPOP` on the reply key)
 * or the {@link ReplySubscriber} (`replyTransport: "subscribe"`, `SUBSCRIBE` over server-sent events with
 * polling as the fallback). Either decides when to poll (or keep a stream), and hands what it gets to the
 * inbox, which alone checks replies and settles requests (`reply-inbox.ts`).
 */
import type { PollTicket, ReplyPollerStats } from "./reply-poller.js";

/** Counters of the subscription; zero (absent) with the poller. */
export interface ReplySubscriptionStats {
  /** Subscription attempts (each is one `SUBSCRIBE` request). */
  subscriptions: number;
  /** Attempts that failed before the confirmation (HTTP error, timeout, network). */
  subscribeFailures: number;
  /** Confirmed streams that ended while they were still wanted. */
  streamBreaks: number;
  /** Replies that arrived on the stream. */
  pushedReplies: number;
  /** Replies found on the reply list while the stream was confirmed (a service in list mode). */
  listRepliesWhileSubscribed: number;
}

/** Counters of a {@link ReplyReceiver}. */
export type ReplyReceiverStats = ReplyPollerStats & Partial<ReplySubscriptionStats>;

/**
 * What the inbox tells the receiver about each request, in order: `prepare` before its `XADD`,
 * `sending` as the `XADD` leaves, `sent` once the `XADD` is acknowledged, `received` when its reply was
 * delivered, `forget` always last.
 */
export interface ReplyReceiver {
  readonly stats: ReplyReceiverStats;
  /**
   * Resolves when a reply to a request written now will be received (the subscriber waits for its
   * stream's confirmation here). Never rejects: a receiver that cannot get ready falls back to polling.
   * Called before the `XADD` (to `category`'s stream) is queued.
   */
  prepare(messageId: string, category?: string): Promise<void>;
  /**
   * The `XADD` of `messageId` leaves now: its REST request starts (it may have waited behind the object's
   * connection limit since `prepare`). The poller times its first poll from here; without this call a
   * request gets no poll before its acknowledgement.
   */
  sending?(messageId: string): void;
  /** The `XADD` of `messageId` (to `category`'s stream) was acknowledged: its reply may now appear. */
  sent(messageId: string, category?: string): void;
  /** The reply of `messageId` was delivered to its request, by the poll `ticket` when it was popped. */
  received(messageId: string, ticket?: PollTicket): void;
  /** `messageId` no longer waits (answered, timed out, failed, cancelled). */
  forget(messageId: string): void;
  /** Stops for good: no further command or stream. Idempotent. */
  stop(): void;
}
