/**
 * The pending-request table: one entry per backend call waiting for its reply, keyed by `message_id`.
 *
 * Portable (no runtime imports): time comes through the {@link Clock} seam so tests drive it by hand.
 * A reply settles its entry exactly once; a reply for an entry that already settled, timed out or never
 * existed is dropped and counted, never handed to another request (PROTOCOL.md section 3).
 */
import { RpcTimeoutError } from "./errors.js";

/** A timer handle as returned by {@link Clock.setTimeout}; opaque to callers. */
export type TimerHandle = unknown;

/** Time and timers: the platform's by default, a fake one in tests. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** The runtime's own clock (`Date.now`, `setTimeout`). */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** The pending table's timer is never set further ahead than this (see {@link PendingRequests}). */
export const SWEEP_MS = 1_000;

/** What happened to a reply handed to {@link PendingRequests.resolve}. */
export type ReplyOutcome =
  /** It settled a waiting request. */
  | "delivered"
  /** Its request had already timed out, failed or been cancelled. */
  | "late"
  /** Its request had already received a reply. */
  | "duplicate"
  /** No request of this table ever had that id (or it is too old to remember). */
  | "unknown";

/** Running totals, for logs, health output and tests. */
export interface PendingCounters {
  added: number;
  delivered: number;
  timedOut: number;
  /** Settled with an error other than a timeout (Redis error, cancelled on close). */
  failed: number;
  late: number;
  duplicate: number;
  unknown: number;
}

/** Options of {@link PendingRequests}. */
export interface PendingRequestsOptions {
  /** @default systemClock */
  clock?: Clock;
  /**
   * How many settled ids are remembered to tell a late or duplicate reply from an unknown one. Older ids
   * count as unknown; either way the reply is dropped. @default 10000
   */
  recentLimit?: number;
  /** Called whenever the table becomes empty (so a poller can stop). */
  onEmpty?: () => void;
}

/** Options of one {@link PendingRequests.add} call. */
export interface PendingEntryOptions {
  /** Reject with {@link RpcTimeoutError} after this long. */
  timeoutMs: number;
  /** Names the call in the timeout error (the RPC method). */
  label: string;
  /** Groups entries for {@link PendingRequests.failOwner}, e.g. a connection id. */
  owner?: string;
}

interface PendingEntry<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
  /** When it times out ({@link Clock.now} time). */
  deadline: number;
  timeoutMs: number;
  label: string;
  owner?: string;
}

/** One request in a {@link DeadlineQueue}; it may have settled since (then it is skipped). */
interface QueuedDeadline {
  messageId: string;
  deadline: number;
}

/**
 * The requests of one timeout length in the order they were added, so also in deadline order (the clock
 * does not go back). Settled requests stay until they reach the head or the queue is compacted.
 */
interface DeadlineQueue {
  items: QueuedDeadline[];
  head: number;
}

type SettledAs = "replied" | "abandoned";

/** The table of requests waiting for a reply. `T` is the reply type. */
export class PendingRequests<T> {
  readonly counters: PendingCounters = {
    added: 0,
    delivered: 0,
    timedOut: 0,
    failed: 0,
    late: 0,
    duplicate: 0,
    unknown: 0,
  };
  private readonly entries = new Map<string, PendingEntry<T>>();
  private readonly recent = new Map<string, SettledAs>();
  /**
   * The remembered ids in the order they settled, a ring of `recentLimit` slots: the slot written next
   * holds the oldest id, evicted in O(1). (Evicting a Map's first key instead walks over the holes its
   * earlier deletions left, until the Map is rehashed: about 5 µs per request at 10,000 ids in V8.)
   */
  private readonly recentOrder: (string | undefined)[] = [];
  private recentNext = 0;
  /**
   * One timer for the whole table instead of one per request (a timer is among the costliest calls an
   * object makes per request, `bench/profile.ts`), set for the earliest deadline but never more than
   * {@link SWEEP_MS} ahead. It is not cleared when the table empties, so a busy object with one request at
   * a time sets about one timer a second instead of one per request; once nothing waits it fires within
   * {@link SWEEP_MS}, finds nothing to do and is not set again, leaving the object free to hibernate.
   * Requests are queued by timeout length (one queue per length, in deadline order), so the earliest
   * deadline is one of the heads.
   */
  private readonly deadlines = new Map<number, DeadlineQueue>();
  private queuedDeadlines = 0;
  private timer: { handle: TimerHandle; at: number } | undefined;
  private readonly clock: Clock;
  private readonly recentLimit: number;
  private readonly onEmpty?: () => void;

  constructor(options: PendingRequestsOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.recentLimit = options.recentLimit ?? 10_000;
    this.onEmpty = options.onEmpty;
  }

  /** Number of requests waiting. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Deadlines queued for the timer, counting those of requests settled since (they are dropped when they
   * reach the head of their queue, or by a compaction once they outnumber the waiting requests by more than
   * 1,024): at most twice the waiting requests plus 1,024, and 0 when nothing waits. For stats and tests.
   */
  get deadlinesHeld(): number {
    return this.queuedDeadlines;
  }

  /** True while `messageId` waits for its reply. */
  has(messageId: string): boolean {
    return this.entries.has(messageId);
  }

  /**
   * Registers a request and returns the promise of its reply. It rejects with {@link RpcTimeoutError}
   * after `timeoutMs`, or with whatever {@link fail} is given. Either way the entry is removed.
   */
  add(messageId: string, options: PendingEntryOptions): Promise<T> {
    if (this.entries.has(messageId)) throw new Error(`message_id ${messageId} is already pending`);
    this.counters.added += 1;
    const { timeoutMs, label, owner } = options;
    const deadline = this.clock.now() + timeoutMs;
    return new Promise<T>((resolve, reject) => {
      this.entries.set(messageId, { resolve, reject, deadline, timeoutMs, label, owner });
      let queue = this.deadlines.get(timeoutMs);
      if (!queue) {
        queue = { items: [], head: 0 };
        this.deadlines.set(timeoutMs, queue);
      }
      queue.items.push({ messageId, deadline });
      this.queuedDeadlines += 1;
      if (this.queuedDeadlines > 2 * this.entries.size + 1_024) this.compactDeadlines();
      if (!this.timer || this.timer.at > deadline)
        this.armTimer(Math.min(deadline, this.clock.now() + SWEEP_MS));
    });
  }

  /** Hands a reply to its request, or drops and counts it. `messageId` is compared as a string. */
  resolve(messageId: string, reply: T): ReplyOutcome {
    const entry = this.entries.get(messageId);
    if (!entry) {
      const outcome = this.classifyStray(messageId);
      this.counters[outcome] += 1;
      return outcome;
    }
    this.remove(messageId, "replied");
    this.counters.delivered += 1;
    entry.resolve(reply);
    return "delivered";
  }

  /** Rejects one waiting request; false when it was not waiting. */
  fail(messageId: string, error: unknown): boolean {
    const entry = this.entries.get(messageId);
    if (!entry) return false;
    this.remove(messageId, "abandoned");
    this.counters.failed += 1;
    entry.reject(error);
    return true;
  }

  /** Rejects every waiting request of `owner` (a connection that closed); returns how many. */
  failOwner(owner: string, error: unknown): number {
    let count = 0;
    for (const [messageId, entry] of [...this.entries]) {
      if (entry.owner === owner && this.fail(messageId, error)) count += 1;
    }
    return count;
  }

  /** Rejects every waiting request and clears the timer (the object is going away). */
  failAll(error: unknown): void {
    for (const messageId of [...this.entries.keys()]) this.fail(messageId, error);
    this.cancelTimer();
  }

  private remove(messageId: string, as: SettledAs): boolean {
    const entry = this.entries.get(messageId);
    if (!entry) return false;
    this.entries.delete(messageId);
    this.remember(messageId, as);
    if (this.entries.size === 0) {
      // Nothing waits: the timer, at most SWEEP_MS away, fires once more and is not set again.
      this.deadlines.clear();
      this.queuedDeadlines = 0;
      this.onEmpty?.();
    }
    return true;
  }

  private armTimer(at: number): void {
    this.cancelTimer();
    const handle = this.clock.setTimeout(
      () => {
        this.timer = undefined;
        this.expire();
      },
      Math.max(0, at - this.clock.now()),
    );
    this.timer = { handle, at };
  }

  private cancelTimer(): void {
    if (!this.timer) return;
    this.clock.clearTimeout(this.timer.handle);
    this.timer = undefined;
  }

  /** Times out every request whose deadline has come, then sets the timer for the next deadline. */
  private expire(): void {
    const now = this.clock.now();
    let next = Infinity;
    for (const [timeoutMs, queue] of this.deadlines) {
      while (queue.head < queue.items.length) {
        const item = queue.items[queue.head] as QueuedDeadline;
        const entry = this.entries.get(item.messageId);
        if (entry && entry.deadline === item.deadline) {
          if (item.deadline > now) {
            next = Math.min(next, item.deadline);
            break;
          }
          queue.head += 1;
          this.queuedDeadlines -= 1;
          this.timeOut(item.messageId, entry);
          // The last one: the table has dropped every queue and has no timer to set.
          if (this.entries.size === 0) return;
          continue;
        }
        queue.head += 1;
        this.queuedDeadlines -= 1;
      }
      if (queue.head >= queue.items.length) this.deadlines.delete(timeoutMs);
    }
    if (this.entries.size > 0 && !this.timer) this.armTimer(Math.min(next, now + SWEEP_MS));
  }

  private timeOut(messageId: string, entry: PendingEntry<T>): void {
    if (!this.remove(messageId, "abandoned")) return;
    this.counters.timedOut += 1;
    entry.reject(new RpcTimeoutError(entry.label, entry.timeoutMs));
  }

  /** Drops the queued deadlines of settled requests (they are skipped anyway; this bounds the memory). */
  private compactDeadlines(): void {
    this.queuedDeadlines = 0;
    for (const [timeoutMs, queue] of this.deadlines) {
      const items = queue.items
        .slice(queue.head)
        .filter((item) => this.entries.get(item.messageId)?.deadline === item.deadline);
      if (items.length === 0) this.deadlines.delete(timeoutMs);
      else this.deadlines.set(timeoutMs, { items, head: 0 });
      this.queuedDeadlines += items.length;
    }
  }

  private remember(messageId: string, as: SettledAs): void {
    if (this.recentLimit <= 0) return;
    if (!this.recent.has(messageId)) {
      const oldest = this.recentOrder[this.recentNext];
      if (oldest !== undefined) this.recent.delete(oldest);
      this.recentOrder[this.recentNext] = messageId;
      this.recentNext = this.recentNext + 1 === this.recentLimit ? 0 : this.recentNext + 1;
    }
    this.recent.set(messageId, as);
  }

  private classifyStray(messageId: string): "late" | "duplicate" | "unknown" {
    const settled = this.recent.get(messageId);
    if (settled === "replied") return "duplicate";
    if (settled === "abandoned") return "late";
    return "unknown";
  }
}
