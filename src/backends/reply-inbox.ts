/**
 * The reply inbox of one Durable Object incarnation: its reply key, the table of requests waiting there,
 * how replies are received (the {@link ReplyPoller}'s `LPOP`s, or the {@link ReplySubscriber}'s stream
 * with polling as the fallback) and how each is checked and handed to its request. A backend's call is
 * "write the entry, then await the inbox for this id": {@link ReplyInbox.receive}.
 *
 * The receiver is the inbox's schedule only: it decides when to `LPOP` (or keep a stream open) and asks
 * the inbox to pop and deliver; it never sees a reply's request.
 */
import { TransportError } from "../core/errors.js";
import { PendingRequests, type Clock, type PendingCounters } from "../core/pending-requests.js";
import type { Logger } from "../core/types.js";
import { parsePublishedReplies, parseReply, ReplyFormatError, type ReplyMessage } from "../wire/index.js";
import { describeError, type RedisPort } from "./redis-port.js";
import { ReplyPoller, type PollTicket, type ReplyPollerOptions } from "./reply-poller.js";
import type { ReplyReceiver, ReplyReceiverStats } from "./reply-receiver.js";
import { ReplySubscriber } from "./reply-subscriber.js";

/** How an inbox receives its replies, and its schedule's knobs (from {@link ConsumerGroupsOptions}). */
export interface ReplyInboxSettings extends ReplyPollerOptions {
  /** The reply key is this plus 16 random hex digits (a new key per incarnation). */
  keyPrefix: string;
  /** `"poll"`: `LPOP` on the reply key while requests wait; `"subscribe"`: a stream, polling as fallback. */
  transport: "poll" | "subscribe";
  subscribeGraceMs: number;
  subscribeRetryMaxMs: number;
  replyListCheckMs: number;
  /** A subscription attempt not confirmed within this long fails. */
  connectTimeoutMs: number;
  clock: Clock;
  logger: Logger;
}

/** Everything an inbox counts: the pending table's counters, the receiver's, and dropped replies. */
export interface ReplyInboxStats extends PendingCounters, ReplyReceiverStats {
  whoami: string;
  pending: number;
  /** Replies naming another reply key in `who`. */
  foreign: number;
  /** Replies that could not be parsed (not JSON, no `message_id`, no usable `response`). */
  invalid: number;
}

/** One request's wait, as {@link ReplyInbox.receive} is told it. */
export interface ReplyWait {
  /** Reject with `RpcTimeoutError` after this long. */
  timeoutMs: number;
  /** Names the request in the timeout error (the RPC method). */
  label: string;
  /** Groups waits for {@link ReplyInbox.connectionClosed} (a connection id). */
  owner?: string;
  /** The category the request is written to: the poller learns each category's service latency apart. */
  category: string;
}

/**
 * Sends the request whose reply will carry `messageId` (the `XADD`). Resolves once Redis has it; rejects
 * with the error the request then fails with. `wanted` turns false once the request no longer waits; the
 * write asks it once, just as the `XADD` leaves (the Redis port does), which the receiver takes as the
 * moment the request was sent.
 */
export type ReplyWrite = (messageId: string, wanted: () => boolean) => Promise<unknown>;

/** See the module comment. */
export class ReplyInbox {
  /** The reply key (also the channel services publish to): `who` in each entry. */
  readonly key: string;
  private readonly pending: PendingRequests<ReplyMessage>;
  private readonly receiver: ReplyReceiver;
  private readonly dropped = { foreign: 0, invalid: 0 };
  private readonly logger: Logger;

  constructor(
    private readonly port: RedisPort,
    private readonly settings: ReplyInboxSettings,
  ) {
    // Random per incarnation: a woken or restarted object must never pop replies meant for its earlier self.
    this.key = `${settings.keyPrefix}${randomHex(8)}`;
    this.logger = settings.logger;
    this.pending = new PendingRequests<ReplyMessage>({ clock: settings.clock });
    this.receiver = this.createReceiver();
  }

  /** Requests waiting now. */
  get size(): number {
    return this.pending.size;
  }

  /**
   * Waits for the reply to one request: picks its `message_id`, makes sure a reply to it will be heard
   * (the subscription's confirmation), lets `write` send the request, and resolves with the reply.
   * Rejects with `RpcTimeoutError`, `write`'s error, or `TransportError` when the connection closed or the
   * inbox was closed.
   */
  async receive(wait: ReplyWait, write: ReplyWrite): Promise<ReplyMessage> {
    const messageId = this.newMessageId();
    const reply = this.pending.add(messageId, wait);
    // The rejection is handled by the `await reply` below; this keeps a timeout that fires while the write
    // is still in flight from being reported as unhandled in between.
    reply.catch(() => undefined);
    const wanted = (): boolean => this.pending.has(messageId);
    try {
      // The subscriber must be listening before the entry exists, or a fast published reply is lost; a
      // request that times out (or is cancelled) meanwhile must fail then, not when the stream is ready.
      await Promise.race([this.receiver.prepare(messageId, wait.category), reply.catch(() => undefined)]);
      // Not awaited: the request ends with its reply, its write failure or its timeout, whichever comes
      // first, so even a write that never settles cannot keep the client from its WrongResponse.
      if (wanted()) {
        // Asked by the port as the XADD leaves: the poller times the first poll from then, not from a
        // wait behind the object's connection limit.
        const leaving = (): boolean => {
          if (!wanted()) return false;
          this.receiver.sending?.(messageId);
          return true;
        };
        write(messageId, leaving).then(
          () => {
            if (wanted()) this.receiver.sent(messageId, wait.category);
          },
          (error: unknown) => this.pending.fail(messageId, error),
        );
      }
      return await reply;
    } finally {
      this.receiver.forget(messageId);
    }
  }

  /** Fails the waits of a closed connection, so the receiver can stop; their replies count as late. */
  connectionClosed(owner: string): void {
    this.pending.failOwner(owner, new TransportError("the connection closed", "wait for reply"));
  }

  /** Stops the receiver and fails every wait. */
  close(): void {
    this.receiver.stop();
    this.pending.failAll(new TransportError("the backend is closed", "wait for reply"));
  }

  stats(): ReplyInboxStats {
    return {
      whoami: this.key,
      pending: this.pending.size,
      ...this.pending.counters,
      ...this.receiver.stats,
      ...this.dropped,
    };
  }

  /** The poller, or the subscriber (`transport: "subscribe"`); both pop and deliver through the inbox. */
  private createReceiver(): ReplyReceiver {
    const { clock } = this.settings;
    const poll = (count: number, ticket: PollTicket): Promise<number> => this.poll(count, ticket);
    if (this.settings.transport === "poll") return new ReplyPoller(this.settings, { clock, poll });
    return new ReplySubscriber(
      { ...this.settings, channel: this.key },
      {
        clock,
        poll,
        deliver: (payloads) => this.deliverPublished(payloads),
        subscribe: (signal) => this.port.subscribe(this.key, signal),
        // A dropped stream is expected now and then (it is reopened); the error never holds the token.
        onError: (error) => this.logger.warn(`[wsproxy] SUBSCRIBE ${this.key}: ${describeError(error)}`),
        onWarning: (message) => this.logger.warn(`[wsproxy] ${message}`),
      },
    );
  }

  /** `LPOP <key> <count>` and delivers what came (by the poll `ticket`): the number of replies popped. */
  private async poll(count: number, ticket: PollTicket): Promise<number> {
    let popped: unknown;
    try {
      // A whole batch may fill a REST response by itself: it shares its request with no other `LPOP`.
      popped = await this.port.exec<unknown>(["LPOP", this.key, String(count)], undefined, true);
      if (popped !== null && popped !== undefined && !Array.isArray(popped)) {
        throw new TransportError("LPOP returned a non-list", `LPOP ${this.key}`, {
          failureType: "RedisError",
        });
      }
    } catch (error) {
      this.logger.error(`[wsproxy] LPOP ${this.key} failed: ${describeError(error)}`);
      throw error;
    }
    if (!Array.isArray(popped) || popped.length === 0) return 0;
    try {
      const payloads = popped.map((item) => (typeof item === "string" ? item : JSON.stringify(item)));
      this.deliver(payloads, ticket);
    } catch (error) {
      // A bug in reply handling must not kill the loop that every waiting request depends on.
      this.logger.error(`[wsproxy] LPOP ${this.key} failed: ${describeError(error)}`);
    }
    return popped.length;
  }

  /** Checks each reply popped from the list (by the poll `ticket`) and settles its request. */
  private deliver(payloads: string[], ticket: PollTicket): void {
    for (const payload of payloads) {
      let reply: ReplyMessage;
      try {
        reply = parseReply(payload);
      } catch (error) {
        this.unusable(error);
        continue;
      }
      this.settle(reply, ticket);
    }
  }

  /** Each published message: one reply, or a batch of them (`[...]`, PROTOCOL.md 4, batched publish). */
  private deliverPublished(messages: string[]): void {
    for (const message of messages) {
      for (const outcome of parsePublishedReplies(message)) {
        if (outcome instanceof ReplyFormatError) this.unusable(outcome);
        else this.settle(outcome);
      }
    }
  }

  private unusable(error: unknown): void {
    const messageId = error instanceof ReplyFormatError ? error.messageId : undefined;
    // An unusable reply to a waiting request fails it now (WrongResponse) rather than at its timeout.
    if (messageId === undefined || !this.pending.fail(messageId, error)) this.dropped.invalid += 1;
    this.logger.warn(`[wsproxy] unusable reply on ${this.key}: ${describeError(error)}`);
  }

  /** Hands a checked reply to its request; tells the receiver it was delivered (and by which poll). */
  private settle(reply: ReplyMessage, ticket?: PollTicket): void {
    if (reply.who !== undefined && reply.who !== this.key) {
      this.dropped.foreign += 1;
      this.logger.warn(`[wsproxy] dropped a reply addressed to ${reply.who} found on ${this.key}`);
      return;
    }
    const outcome = this.pending.resolve(reply.messageId, reply);
    if (outcome === "delivered") this.receiver.received(reply.messageId, ticket);
    else this.logger.warn(`[wsproxy] dropped ${outcome} reply message_id=${reply.messageId} on ${this.key}`);
  }

  /** 64 random bits as 16 hex digits, unique among the waiting requests: not guessable from another. */
  private newMessageId(): string {
    for (;;) {
      const id = randomHex(8);
      if (!this.pending.has(id)) return id;
    }
  }
}

/** Two hex digits per byte value: a message id is made on every request (a CPU profile's hot path). */
const HEX_BYTE = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

/**
 * Random bytes drawn from `crypto.getRandomValues` a page at a time, each byte handed out once: the same
 * randomness as a call per id, without a call into the runtime on every request.
 */
const RANDOM_PAGE_BYTES = 4096;
let randomPage = new Uint8Array(0);
let randomAt = 0;

function randomHex(bytes: number): string {
  if (randomAt + bytes > randomPage.length) {
    randomPage = crypto.getRandomValues(new Uint8Array(RANDOM_PAGE_BYTES));
    randomAt = 0;
  }
  let hex = "";
  for (let index = randomAt; index < randomAt + bytes; index += 1)
    hex += HEX_BYTE[randomPage[index] as number];
  randomAt += bytes;
  return hex;
}
