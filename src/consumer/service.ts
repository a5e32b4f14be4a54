/**
 * `createRpcService()`: a backend service that reads the gateway's category streams as the consumer group
 * `processors`, runs handlers, replies on each request's reply key, and recovers what others left behind.
 */
import { AuthenticationError, isBusyGroupError, isNoGroupError, type ServiceTransport } from "./transport.js";
import { createNativeTransport } from "./native-transport.js";
import { createRestTransport } from "./rest-transport.js";
import { parseReadReply, type RawEntry } from "./stream-replies.js";
import { Outbox, type OutboxItem } from "./outbox.js";
import { EntryProcessor } from "./processor.js";
import { reclaimRound } from "./reclaimer.js";
import { OutageTracker, backoffDelayMs, sleep } from "./retry.js";
import { HandlerSlots } from "./slots.js";
import { createPusher } from "./push.js";
import {
  resolveRpcServiceOptions,
  type ResolvedRpcServiceOptions,
  type RpcServiceOptions,
} from "./options.js";

/** The consumer group every service joins (PROTOCOL.md 5). */
export const CONSUMER_GROUP = "processors";

/** A running (or runnable) backend service. */
export interface RpcService {
  /** Creates the groups, then reads and serves until close(). Throws when called twice. */
  start(): Promise<void>;
  /** Stops reading, finishes running handlers, sends their replies and acks, disconnects. Idempotent. */
  close(): Promise<void>;
  /** The consumer name used in the group. */
  readonly consumerName: string;
  /** How Redis is reached: `native` or `rest`, and where (without credentials). */
  readonly transport: { kind: "native" | "rest"; target: string };
  /** Handlers running right now. */
  readonly inFlight: number;
}

/** Creates a service; nothing connects to Redis until {@link RpcService.start}. */
export function createRpcService(options: RpcServiceOptions): RpcService {
  return new Service(resolveRpcServiceOptions(options));
}

class Service implements RpcService {
  private readonly transportImpl: ServiceTransport;
  private readonly outage: OutageTracker;
  private readonly outbox: Outbox;
  private readonly processor: EntryProcessor;
  private readonly slots: HandlerSlots;
  /** Entries read or claimed here and not yet acked, as `<stream> <id>`. */
  private readonly heldEntries = new Set<string>();
  private readonly runningHandlers = new Set<Promise<void>>();
  private readonly stopping = new AbortController();
  private readonly abandoning = new AbortController();
  private state: "new" | "started" | "closing" = "new";
  private loops: Promise<void>[] = [];
  private closing: Promise<void> | undefined;

  constructor(private readonly options: ResolvedRpcServiceOptions) {
    const { redis } = options;
    this.transportImpl =
      typeof redis === "string"
        ? createNativeTransport(redis, { reconnectMaxMs: options.retryMaxMs })
        : "restUrl" in redis
          ? createRestTransport(redis.restUrl, redis.restToken)
          : redis;
    this.outage = new OutageTracker(options.logger, this.transportImpl.target);
    this.slots = new HandlerSlots(options.concurrency);
    const settings = { ...options, group: CONSUMER_GROUP };
    this.outbox = new Outbox(this.transportImpl, settings, this.outage, options.logger, (items) =>
      this.released(items),
    );
    this.processor = new EntryProcessor(
      options.handlers,
      this.outbox,
      options.logger,
      this.abandoning.signal,
      { ...options, pusher: createPusher(options.push), closingSignal: this.stopping.signal },
    );
  }

  get consumerName(): string {
    return this.options.consumerName;
  }

  get transport(): { kind: "native" | "rest"; target: string } {
    return { kind: this.transportImpl.kind, target: this.transportImpl.target };
  }

  get inFlight(): number {
    return this.slots.inUse;
  }

  async start(): Promise<void> {
    if (this.state !== "new") throw new Error("createRpcService: start() was already called");
    this.state = "started";
    try {
      await this.retrying("create groups", () => this.createGroups("$"), { failOnAuthError: true });
    } catch (error) {
      await this.close();
      throw error;
    }
    if (this.stopping.signal.aborted) return;
    this.loops = [this.readLoop(), this.reclaimLoop()];
    const { consumerName, streams, concurrency } = this.options;
    this.options.logger({
      level: "info",
      msg: "service started",
      consumer: consumerName,
      streams,
      concurrency,
      transport: this.transportImpl.kind,
      target: this.transportImpl.target,
    });
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.state = "closing";
    this.stopping.abort(new Error("service closed"));
    this.transportImpl.stopReading();
    await Promise.all(this.loops);
    const { closeTimeoutMs } = this.options;
    if (!(await settlesWithin(Promise.all(this.runningHandlers), closeTimeoutMs))) {
      this.options.logger({
        level: "warn",
        msg: "close timed out; abandoning running handlers",
        running: this.runningHandlers.size,
      });
      this.abandoning.abort();
      // Handlers that honour ctx.signal answer now; give their replies a moment to join the last batch.
      await settlesWithin(Promise.all(this.runningHandlers), 100);
    }
    await this.outbox.drain(Math.max(closeTimeoutMs, 1000));
    await this.transportImpl.close();
    this.options.logger({ level: "info", msg: "service closed", consumer: this.options.consumerName });
  }

  /** `$` on start (as the Perl workers); `0` when the group vanished, since every entry is then unread. */
  private async createGroups(startId: "$" | "0"): Promise<void> {
    for (const stream of this.options.streams) {
      try {
        await this.transportImpl.call(["XGROUP", "CREATE", stream, CONSUMER_GROUP, startId, "MKSTREAM"]);
        if (startId === "0")
          this.options.logger({ level: "warn", msg: "consumer group was missing; re-created", stream });
      } catch (error) {
        if (!isBusyGroupError(error)) throw error;
      }
    }
  }

  /** After NOGROUP (Redis restarted empty, or the stream was deleted): true when the groups exist again. */
  private async recreateGroups(): Promise<boolean> {
    try {
      await this.createGroups("0");
      return true;
    } catch (error) {
      this.outage.failed(error, "re-create groups");
      return false;
    }
  }

  private async readLoop(): Promise<void> {
    const signal = this.stopping.signal;
    let idlePolls = 0;
    while (await this.slots.waitForFree(signal)) {
      const count = Math.min(this.options.readCount, this.slots.free);
      const reply = await this.retrying("read", () => this.transportImpl.read(this.readCommand(count)));
      if (signal.aborted) break;
      let received = 0;
      for (const { stream, entries } of parseReadReply(reply)) {
        for (const entry of entries) {
          received++;
          await this.dispatch(stream, entry, 1);
        }
      }
      if (received > 0 || this.transportImpl.supportsBlockingReads) idlePolls = 0;
      else await sleep(Math.min(this.options.pollMaxMs, this.options.pollMinMs * 2 ** idlePolls++), signal);
    }
  }

  private readCommand(count: number): Parameters<ServiceTransport["read"]>[0] {
    const { streams, consumerName, blockMs } = this.options;
    const block = this.transportImpl.supportsBlockingReads ? ["BLOCK", String(blockMs)] : [];
    return [
      "XREADGROUP",
      "GROUP",
      CONSUMER_GROUP,
      consumerName,
      "COUNT",
      String(count),
      ...block,
      "STREAMS",
      ...streams,
      ...streams.map(() => ">"),
    ];
  }

  private async reclaimLoop(): Promise<void> {
    const signal = this.stopping.signal;
    const { transportImpl: transport, options } = this;
    const context = {
      ...options,
      transport,
      group: CONSUMER_GROUP,
      claimCount: options.readCount,
      isHeld: (stream: string, id: string) => this.heldEntries.has(`${stream} ${id}`),
      dispatch: (stream: string, entry: RawEntry, count: number) => this.dispatch(stream, entry, count),
      deadLetter: (stream: string, entry: RawEntry, count: number, reason: string) => {
        this.options.logger({
          level: "error",
          msg: "poison entry dead-lettered",
          stream,
          entry_id: entry.id,
          delivery_count: count,
        });
        this.heldEntries.add(`${stream} ${entry.id}`);
        this.processor.deadLetter(stream, entry, count, reason);
      },
    };
    while (!signal.aborted) {
      await sleep(options.claimIntervalMs, signal);
      if (signal.aborted) break;
      await this.retrying("reclaim", () => reclaimRound(context));
    }
  }

  /** Takes a handler slot, then serves the entry in the background; resolves once it started. */
  private async dispatch(stream: string, entry: RawEntry, deliveryCount: number): Promise<void> {
    // Closing while waiting for a slot: the entry stays pending and is reclaimed later (by anyone).
    if (!(await this.slots.acquire(this.stopping.signal))) return;
    this.heldEntries.add(`${stream} ${entry.id}`);
    const running = this.processor.process(stream, entry, deliveryCount).finally(() => {
      this.slots.release();
      this.runningHandlers.delete(running);
    });
    this.runningHandlers.add(running);
  }

  private released(items: OutboxItem[]): void {
    for (const item of items) this.heldEntries.delete(`${item.stream} ${item.entryId}`);
  }

  /**
   * Runs a Redis operation until it succeeds or the service stops: back-off with jitter, one log line per
   * outage, and the consumer group re-created when Redis lost it. Resolves `undefined` when stopped.
   */
  private async retrying<T>(
    operation: string,
    run: () => Promise<T>,
    { failOnAuthError = false } = {},
  ): Promise<T | undefined> {
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      try {
        const result = await run();
        this.outage.succeeded();
        return result;
      } catch (error) {
        if (signal.aborted) return undefined;
        if (failOnAuthError && error instanceof AuthenticationError) throw error;
        if (isNoGroupError(error) && (await this.recreateGroups())) continue;
        const attempt = this.outage.failed(error, operation);
        await sleep(backoffDelayMs(attempt, this.options.retryMinMs, this.options.retryMaxMs), signal);
      }
    }
    return undefined;
  }
}

/** True when `promise` settles within `ms`; the timer never outlives the wait. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const timeUp = new AbortController();
  const timer = sleep(ms, timeUp.signal).then(() => false);
  const settled = promise.then(
    () => true,
    () => true,
  );
  const result = await Promise.race([settled, timer]);
  timeUp.abort();
  return result;
}
