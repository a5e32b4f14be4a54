/**
 * The object's one way out to Redis: every command the consumer-groups backend sends (`XADD`, `XTRIM`,
 * `LPOP`) goes through a {@link RedisPipe}, and so does the reply subscription's stream (as one held
 * connection while it is open).
 *
 * - At most `maxConnections` REST requests are open at once. A Durable Object may hold only six
 *   simultaneous outgoing connections and the runtime queues the rest ("Simultaneous outgoing
 *   connections/request: 6 (same as Workers)", Durable Objects limits,
 *   https://developers.cloudflare.com/durable-objects/platform/limits/);
 *   holding the limit here makes a burst queue visibly (`queuedCommands`, `maxQueuedCommands`) and lets a
 *   command's Redis timeout start when it is sent, not while the runtime holds it back.
 * - Commands queued in one turn go out together as one `/pipeline` request, up to `batchSize` commands and
 *   `batchBytes` bytes (Upstash caps a request at 10 MB: "Max Request Size", https://upstash.com/docs/redis/troubleshooting/max_request_size_exceeded);
 *   while every connection is busy the queue grows, and the next free one takes a whole batch, so a burst
 *   costs a few round trips instead of one per request. Each command keeps its own result or error.
 * - A command whose answer may be as large as a response may carry (an `LPOP` of a whole batch of
 *   replies, sized to fit Upstash's 10 MB response on its own) never shares a request with another such
 *   command: two of them queued together go as two requests, each within the limit.
 * - A queued command whose caller no longer wants it (its request timed out meanwhile) is never sent.
 */
import type { Clock } from "../core/pending-requests.js";
import type { PipelineResult, RedisCommand, RedisCommands } from "./redis-client.js";

/** Limits of a {@link RedisPipe}. */
export interface RedisPipeLimits {
  /** REST requests (and held streams) open at once. */
  maxConnections: number;
  /** Commands per `/pipeline` request. */
  batchSize: number;
  /** Bytes (JSON) per `/pipeline` request; a larger single command goes alone. */
  batchBytes: number;
  /** A request that has not settled after this long fails (and frees its connection). */
  requestTimeoutMs: number;
  clock: Clock;
}

/** Counters of a {@link RedisPipe}, for `/metrics`, tests and the benchmark. */
export interface RedisPipeStats {
  /** REST requests sent (a pipeline counts once; a held stream once). */
  redisRequests: number;
  /** Commands sent. */
  redisCommandsSent: number;
  /** Commands waiting for a free connection now. */
  queuedCommands: number;
  /** Most commands waiting at once. */
  maxQueuedCommands: number;
  /** Requests and held streams open now. */
  redisInFlight: number;
  /** Most requests and held streams open at once. */
  maxRedisInFlight: number;
}

interface Queued {
  command: RedisCommand;
  bytes: number;
  /** Its answer may fill a response by itself (see the module comment). */
  largeAnswer: boolean;
  wanted: () => boolean;
  resolve(result: unknown): void;
  reject(error: unknown): void;
}

/**
 * The size of `command` in a `/pipeline` body as `batchBytes` counts it: each argument's UTF-16 length
 * plus quotes and comma, without serialising every command twice. The body can be larger, by at most 3x:
 * JSON escaping doubles a `"` or `\\` (the arguments hold no control characters: `args` is JSON text
 * already) and a character above U+07FF takes 3 bytes in UTF-8. So the default 2 MiB batch stays under
 * Upstash's 10 MB request limit.
 */
export function commandBytes(command: RedisCommand): number {
  let bytes = 2;
  for (const argument of command)
    bytes += (typeof argument === "string" ? argument.length : String(argument).length) + 3;
  return bytes;
}

/** Settled once, shared: `SETTLED.then(f)` runs `f` in a microtask. */
const SETTLED = Promise.resolve();

/** Raised for one command of a pipeline that Redis refused (the others are unaffected). */
export class RedisCommandError extends Error {
  override readonly name = "RedisCommandError";
}

/** See the module comment. */
export class RedisPipe {
  readonly stats: RedisPipeStats = {
    redisRequests: 0,
    redisCommandsSent: 0,
    queuedCommands: 0,
    maxQueuedCommands: 0,
    redisInFlight: 0,
    maxRedisInFlight: 0,
  };
  private queue: Queued[] = [];
  private readonly holders: Array<() => void> = [];
  private flushScheduled = false;
  /** `/pipeline` requests (not held streams) open now. */
  private requestsRunning = 0;

  constructor(
    private readonly redis: RedisCommands,
    private readonly limits: RedisPipeLimits,
  ) {}

  /**
   * Queues `command`; it goes out in this turn's pipeline (or the next one a free connection takes).
   * `wanted` is asked once, just as the command leaves (its request starts): false drops the command, and
   * the promise never settles.
   * `largeAnswer`: its answer may fill a response by itself; it goes in no request with another such one.
   */
  send<T>(command: RedisCommand, wanted: () => boolean = () => true, largeAnswer = false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const bytes = commandBytes(command);
      const resolveAny = resolve as (r: unknown) => void;
      this.queue.push({ command, bytes, largeAnswer, wanted, resolve: resolveAny, reject });
      this.countQueued();
      this.scheduleFlush();
    });
  }

  /**
   * Waits for a free connection and keeps it until the returned release is called (a long-lived
   * request such as the subscription stream). Release is idempotent.
   */
  async hold(): Promise<() => void> {
    if (this.stats.redisInFlight < this.limits.maxConnections && this.holders.length === 0) this.take();
    // Otherwise `flush` takes the connection on the holder's behalf before waking it.
    else await new Promise<void>((resolve) => this.holders.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.give();
    };
  }

  private countQueued(): void {
    this.stats.queuedCommands = this.queue.length;
    this.stats.maxQueuedCommands = Math.max(this.stats.maxQueuedCommands, this.queue.length);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    const flush = (): void => {
      this.flushScheduled = false;
      this.flush();
    };
    // An idle pipe (no request open, this the first command queued) sends at the end of this turn's
    // microtasks: a lone request, the usual case at light load, waits for no timer, and a timer is among
    // the costliest calls an object makes per request in workerd (`bench/profile.ts`). The commands of
    // this turn still go together. A busy pipe waits for a macrotask instead: every command of this turn
    // (each frame of a burst resumes its own chain of promises) is queued by then and goes in one request.
    // (`Promise.prototype.then` rather than `queueMicrotask`: the same microtask, without a call into the
    // runtime's API, which the profile shows as the dearer of the two.)
    if (this.requestsRunning === 0 && this.queue.length === 1) void SETTLED.then(flush);
    else setTimeout(flush, 0);
  }

  private flush(): void {
    // A stream waiting for a connection goes first once one is free.
    while (this.holders.length > 0 && this.stats.redisInFlight < this.limits.maxConnections) {
      this.take();
      this.holders.shift()?.();
    }
    while (this.stats.redisInFlight < this.limits.maxConnections) {
      const batch = this.nextBatch();
      if (batch.length === 0) break;
      this.take();
      this.requestsRunning += 1;
      void this.run(batch);
    }
    this.countQueued();
  }

  private nextBatch(): Queued[] {
    const pipelined = typeof this.redis.execPipeline === "function";
    const maxCount = pipelined ? this.limits.batchSize : 1;
    const batch: Queued[] = [];
    let bytes = 0;
    let largeAnswer = false;
    while (this.queue.length > 0 && batch.length < maxCount) {
      const next = this.queue[0] as Queued;
      if (batch.length > 0 && bytes + next.bytes > this.limits.batchBytes) break;
      if (largeAnswer && next.largeAnswer) break;
      this.queue.shift();
      // Asked once, as the command leaves: the caller may take this as the moment its command is sent.
      if (!next.wanted()) continue;
      batch.push(next);
      bytes += next.bytes;
      largeAnswer ||= next.largeAnswer;
    }
    return batch;
  }

  private take(): void {
    this.stats.redisInFlight += 1;
    this.stats.redisRequests += 1;
    this.stats.maxRedisInFlight = Math.max(this.stats.maxRedisInFlight, this.stats.redisInFlight);
  }

  private give(): void {
    this.stats.redisInFlight -= 1;
    this.flush();
  }

  private async run(batch: Queued[]): Promise<void> {
    this.stats.redisCommandsSent += batch.length;
    const { clock, requestTimeoutMs } = this.limits;
    let timer: unknown;
    // A client that does not abort its own requests (a test double) must not keep the connection, and the
    // commands, forever. One that does (the REST client) needs no second timer per request: a timer is
    // among the costliest calls an object makes per request in workerd (measured with a CPU profile of
    // the benchmark's gateway, `bench/profile.ts`).
    const timedOut = this.redis.abortsOwnRequests
      ? undefined
      : new Promise<never>((_, reject) => {
          timer = clock.setTimeout(
            () => reject(new Error(`no answer from Redis within ${requestTimeoutMs} ms`)),
            requestTimeoutMs + 1_000,
          );
        });
    try {
      const execution = this.execute(batch);
      const results = await (timedOut ? Promise.race([execution, timedOut]) : execution);
      batch.forEach((item, index) => {
        const outcome = results[index] ?? { error: "no result for this command" };
        if (outcome.error !== undefined && outcome.error !== null) {
          item.reject(new RedisCommandError(String(outcome.error)));
        } else item.resolve(outcome.result);
      });
    } catch (error) {
      for (const item of batch) item.reject(error);
    } finally {
      if (timedOut) clock.clearTimeout(timer);
      this.requestsRunning -= 1;
      this.give();
    }
  }

  private async execute(batch: Queued[]): Promise<PipelineResult[]> {
    const commands = batch.map((item) => item.command);
    if (this.redis.execPipeline) return this.redis.execPipeline(commands);
    const [only] = commands;
    return [{ result: await this.redis.exec(only as RedisCommand) }];
  }
}
