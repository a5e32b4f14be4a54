import type { Redis } from "ioredis";

/** What an SSE stream listens to: a channel (`SUBSCRIBE`) or a glob-style pattern (`PSUBSCRIBE`). */
export interface PubSubTopic {
  kind: "channel" | "pattern";
  name: string;
}

/** One message as Redis pushed it, bytes unchanged; `pattern` is set for pattern subscriptions only. */
export interface PubSubMessage {
  channel: Buffer;
  message: Buffer;
  pattern?: string;
}

/** Receives the messages of the topics it subscribed to. */
export interface PubSubListener {
  onMessage(message: PubSubMessage): void;
  /** The subscriber connection was lost: the subscription is gone and is not restored by itself. */
  onLost(): void;
}

interface TopicState {
  listeners: Set<PubSubListener>;
  /** Settles when Redis has answered the SUBSCRIBE/PSUBSCRIBE sent for this topic. */
  subscribed: Promise<unknown>;
}

/**
 * Shares one Redis subscriber connection among every SSE stream of the bridge, the way one redis-server
 * connection can hold any number of subscriptions. Each channel and pattern is reference-counted: the first
 * listener sends SUBSCRIBE (or PSUBSCRIBE), the last one to leave sends UNSUBSCRIBE, so a channel nobody
 * listens to is never left subscribed in Redis. Commands on one connection run in order, so a SUBSCRIBE sent
 * after an UNSUBSCRIBE of the same channel (a listener arriving just after the last one left) is correct
 * without further bookkeeping.
 *
 * The connection must not resubscribe by itself after a reconnect (ioredis `autoResubscribe: false`): when it
 * drops, every listener is told through `onLost` and forgotten, because messages published in the gap are
 * lost and a stream that silently skipped some would be worse than one that ends.
 */
export class PubSubHub {
  private readonly topics = new Map<string, TopicState>();

  constructor(private readonly connection: Redis) {
    connection.on("messageBuffer", (channel: Buffer, message: Buffer) => {
      this.deliver(topicKey({ kind: "channel", name: channel.toString() }), { channel, message });
    });
    connection.on("pmessageBuffer", (pattern: string, channel: Buffer, message: Buffer) => {
      this.deliver(topicKey({ kind: "pattern", name: pattern }), { pattern, channel, message });
    });
    connection.on("close", () => this.dropAll());
  }

  /**
   * Adds `listener` to `topic` and resolves once Redis has confirmed the subscription, so every message
   * published after that reaches the listener (it may also get messages before the promise resolves).
   * Rejects when Redis cannot be reached; the listener is then removed again.
   */
  async subscribe(topic: PubSubTopic, listener: PubSubListener): Promise<void> {
    const key = topicKey(topic);
    let state = this.topics.get(key);
    if (!state) {
      const subscribed =
        topic.kind === "channel"
          ? this.connection.subscribe(topic.name)
          : this.connection.psubscribe(topic.name);
      const created: TopicState = { listeners: new Set(), subscribed };
      // A failed SUBSCRIBE leaves nothing subscribed: forget the topic so the next listener tries again.
      subscribed.catch(() => {
        if (this.topics.get(key) === created) this.topics.delete(key);
      });
      this.topics.set(key, created);
      state = created;
    }
    state.listeners.add(listener);
    try {
      await state.subscribed;
    } catch (error) {
      this.unsubscribe(topic, listener);
      throw error;
    }
  }

  /** Removes `listener`; when it was the topic's last one, Redis is told to unsubscribe. Idempotent. */
  unsubscribe(topic: PubSubTopic, listener: PubSubListener): void {
    const key = topicKey(topic);
    const state = this.topics.get(key);
    if (!state?.listeners.delete(listener) || state.listeners.size > 0) return;
    this.topics.delete(key);
    const unsubscribed =
      topic.kind === "channel"
        ? this.connection.unsubscribe(topic.name)
        : this.connection.punsubscribe(topic.name);
    // If this fails the connection is down, and the subscription went away with it.
    unsubscribed.catch(() => undefined);
  }

  private deliver(key: string, message: PubSubMessage): void {
    for (const listener of this.topics.get(key)?.listeners ?? []) listener.onMessage(message);
  }

  private dropAll(): void {
    const listeners = [...this.topics.values()].flatMap((state) => [...state.listeners]);
    this.topics.clear();
    for (const listener of new Set(listeners)) listener.onLost();
  }
}

function topicKey(topic: PubSubTopic): string {
  return `${topic.kind}:${topic.name}`;
}
