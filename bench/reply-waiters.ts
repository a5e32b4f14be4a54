/**
 * How the baselines' Node clients wait for the service's reply, matching how the service sends it:
 * `list` (the default, `RPUSH` + `EXPIRE`): a native `BLPOP` on the client's reply key; `publish`
 * (`--reply-transport subscribe`): a native `SUBSCRIBE` to the reply key's channel. Either way the reply is
 * pushed to the client the moment the service sends it, which is what the baselines stand for.
 */
import { Redis } from "ioredis";

/** How the service replies (its `--reply-mode`). */
export type ReplyMode = "list" | "publish";

/** Waits for one reply on the client's own key or channel. */
export interface ReplyWaiter {
  /** The next reply payload, or undefined after `REPLY_WAIT_SECONDS`. Called after the request was written. */
  next(): Promise<string | undefined>;
  close(): void;
}

/** Longest wait for one reply, seconds; the closed loop gives up at about the same time. */
const REPLY_WAIT_SECONDS = 10;

/** `BLPOP` on `connection` (shared with the client's own commands, which run before it). */
class ListWaiter implements ReplyWaiter {
  constructor(
    private readonly connection: Redis,
    private readonly replyKey: string,
  ) {}

  async next(): Promise<string | undefined> {
    const popped = await this.connection.blpop(this.replyKey, REPLY_WAIT_SECONDS);
    return popped?.[1];
  }

  close(): void {
    // The connection is the client's; it closes it.
  }
}

/** A subscriber connection of its own; replies that arrive before `next()` is called are kept in order. */
class ChannelWaiter implements ReplyWaiter {
  private readonly arrived: string[] = [];
  private waiting: ((payload: string | undefined) => void) | undefined;

  constructor(private readonly subscriber: Redis) {
    subscriber.on("message", (_channel: string, payload: string) => {
      if (this.waiting) this.settle(payload);
      else this.arrived.push(payload);
    });
  }

  next(): Promise<string | undefined> {
    const ready = this.arrived.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.settle(undefined), REPLY_WAIT_SECONDS * 1000);
      this.waiting = (payload) => {
        clearTimeout(timer);
        resolve(payload);
      };
    });
  }

  close(): void {
    this.subscriber.disconnect();
  }

  private settle(payload: string | undefined): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.(payload);
  }
}

/**
 * A waiter for `replyKey`. In `list` mode it uses `connection` (the client's own native connection);
 * in `publish` mode it opens and subscribes a connection of its own first.
 */
export async function createReplyWaiter(
  mode: ReplyMode,
  redisUrl: string,
  connection: Redis,
  replyKey: string,
): Promise<ReplyWaiter> {
  if (mode === "list") return new ListWaiter(connection, replyKey);
  const subscriber = new Redis(redisUrl, { maxRetriesPerRequest: 1, enableReadyCheck: false });
  subscriber.on("error", () => undefined);
  await subscriber.subscribe(replyKey);
  return new ChannelWaiter(subscriber);
}
