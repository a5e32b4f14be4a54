/**
 * The outbox: what handled entries still owe Redis (a reply, a dead letter, an ack), sent in batches.
 *
 * Everything that finishes while a batch is in flight joins the next one, so under load one round trip
 * carries many requests: one `RPUSH key v1..vn` per reply key, its `EXPIRE` only when due (see
 * `reply-ttl.ts`), and one `XACK` per stream with every id, after the replies in the same pipeline (reply,
 * then ack). Fewer commands per request matters because Upstash bills per command.
 */
import { buildReplyBatch } from "../wire/index.js";
import { DEAD_LETTERS_PER_COUNT_TRIM, deadLetterMinId } from "./dead-letters.js";
import { ReplyKeyTtl } from "./reply-ttl.js";
import type { OutageTracker } from "./retry.js";
import { backoffDelayMs, sleep } from "./retry.js";
import type { PipelineResult, ServiceTransport, WriteCommand } from "./transport.js";
import type { ReplyMode } from "./options.js";
import type { ServiceLogger } from "./types.js";

/** What one handled entry owes Redis. */
export interface OutboxItem {
  stream: string;
  entryId: string;
  /** The reply to send before the ack, if any. */
  reply?: { who: string; payload: string };
  /** Field/value pairs to add to `<stream>:dead` before the ack, if any. */
  deadLetter?: string[];
  /** Told whether the reply reached Redis (`true`) or was given up on at close (`false`). */
  replied?: (written: boolean) => void;
}

/** Settings the outbox needs from the service options. */
export interface OutboxSettings {
  group: string;
  replyMode: ReplyMode;
  replyTtlSeconds: number;
  deadLetterMaxLen: number;
  deadLetterMaxAgeSeconds: number;
  retryMinMs: number;
  retryMaxMs: number;
}

/** Batches replies, dead letters and acks; retries a failed batch until it goes through or is abandoned. */
export class Outbox {
  private queue: OutboxItem[] = [];
  private flushing: Promise<void> | undefined;
  private abandonAt = Infinity;
  /** Dead letters sent per dead-letter stream since its last `XTRIM MAXLEN` (absent: never trimmed). */
  private readonly deadLettersSinceTrim = new Map<string, number>();
  private readonly replyTtl: ReplyKeyTtl;
  /** Reply keys a push created in a batch that carried no `EXPIRE` for them: the next batch sends it. */
  private expiresOwed = new Set<string>();

  constructor(
    private readonly transport: ServiceTransport,
    private readonly settings: OutboxSettings,
    private readonly outage: OutageTracker,
    private readonly logger: ServiceLogger,
    /** Called with the items whose commands Redis has run (their entries are no longer pending). */
    private readonly onSent: (items: OutboxItem[]) => void,
  ) {
    this.replyTtl = new ReplyKeyTtl(settings.replyTtlSeconds);
  }

  /** Queues an item; it is sent with whatever else is queued in the next batch. */
  push(item: OutboxItem): void {
    this.queue.push(item);
    this.flushing ??= this.flushLoop();
  }

  /** Resolves when everything queued so far was sent, or given up on after `timeoutMs` of failures. */
  async drain(timeoutMs: number): Promise<void> {
    this.abandonAt = Date.now() + timeoutMs;
    while (this.flushing) await this.flushing;
  }

  private async flushLoop(): Promise<void> {
    // Yield once so handlers finishing in the same turn share the batch.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.hasWork()) {
      const batch = this.queue;
      this.queue = [];
      if (!(await this.sendWithRetry(batch))) break;
    }
    this.flushing = undefined;
    if (this.hasWork()) this.flushing = this.flushLoop();
  }

  private hasWork(): boolean {
    return this.queue.length > 0 || this.expiresOwed.size > 0;
  }

  /** The dead-letter streams whose count bound is due with this batch; counts the batch's dead letters. */
  private countTrimsDue(batch: OutboxItem[]): Set<string> {
    const due = new Set<string>();
    for (const item of batch) {
      if (!item.deadLetter) continue;
      const deadStream = `${item.stream}:dead`;
      const since = this.deadLettersSinceTrim.get(deadStream);
      // Counted per dead letter, so the ones after the trim in a large batch count towards the next.
      if (since === undefined || since + 1 >= DEAD_LETTERS_PER_COUNT_TRIM) {
        due.add(deadStream);
        this.deadLettersSinceTrim.set(deadStream, 0);
      } else {
        this.deadLettersSinceTrim.set(deadStream, since + 1);
      }
    }
    return due;
  }

  /** The reply keys whose `EXPIRE` goes with this batch (owed ones, and pushed ones that are due). */
  private expiresDue(batch: OutboxItem[], owed: ReadonlySet<string>, nowMs: number): Set<string> {
    const keys = new Set<string>();
    if (this.settings.replyMode !== "list") return keys;
    for (const key of owed) keys.add(key);
    for (const item of batch) {
      if (item.reply && this.replyTtl.isDue(item.reply.who, nowMs)) keys.add(item.reply.who);
    }
    for (const key of keys) this.replyTtl.sent(key, nowMs);
    return keys;
  }

  /** Tells the TTL tracker what each `RPUSH` found; owes an `EXPIRE` for a key one created without it. */
  private noteCreatedKeys(commands: WriteCommand[], results: PipelineResult[], expired: Set<string>): void {
    commands.forEach(([name, key, ...values], index) => {
      if (name !== "RPUSH") return;
      const result = results[index];
      if (!result || !("result" in result)) return;
      if (this.replyTtl.pushed(key, result.result, values.length, expired.has(key)))
        this.expiresOwed.add(key);
    });
  }

  private async sendWithRetry(batch: OutboxItem[]): Promise<boolean> {
    const countTrims = this.countTrimsDue(batch);
    const owed = this.expiresOwed;
    this.expiresOwed = new Set();
    const never = new AbortController().signal;
    for (;;) {
      const nowMs = Date.now();
      const expires = this.expiresDue(batch, owed, nowMs);
      const commands = buildCommands(batch, this.settings, nowMs, countTrims, expires);
      try {
        const results = await this.transport.pipeline(commands);
        this.outage.succeeded();
        results.forEach((result, index) => {
          if ("error" in result) {
            // Redis refused one command (e.g. a reply key holding another type); the others went through.
            this.logger({
              level: "error",
              msg: "redis refused a reply command",
              command: commands[index]?.[0],
              error: result.error.message,
            });
          }
        });
        this.noteCreatedKeys(commands, results, expires);
        this.onSent(batch);
        for (const item of batch) item.replied?.(true);
        return true;
      } catch (error) {
        // The pushes may have run and created their keys unseen: the retry carries their EXPIRE.
        for (const key of expires) this.replyTtl.forget(key);
        for (const item of batch) if (item.reply) this.replyTtl.forget(item.reply.who);
        const attempt = this.outage.failed(error, "reply batch");
        if (Date.now() >= this.abandonAt) {
          // Closing and Redis is still away: the entries stay pending and another consumer reclaims them.
          this.logger({
            level: "error",
            msg: "abandoned unsent replies on close",
            entries: batch.length + this.queue.length,
          });
          for (const item of [...batch, ...this.queue]) item.replied?.(false);
          this.queue = [];
          this.expiresOwed.clear();
          return false;
        }
        await sleep(backoffDelayMs(attempt, this.settings.retryMinMs, this.settings.retryMaxMs), never);
      }
    }
  }
}

/**
 * Builds the pipeline for a batch: dead letters (each trimming its stream by age), an `XTRIM MAXLEN ~` for
 * each stream of `countTrims`, replies grouped per key (each followed by its `EXPIRE` when the key is in
 * `expireKeys`; a key of `expireKeys` with no reply gets its `EXPIRE` alone), then one XACK per stream.
 */
export function buildCommands(
  batch: OutboxItem[],
  settings: OutboxSettings,
  nowMs: number,
  countTrims: ReadonlySet<string> = new Set(),
  expireKeys: ReadonlySet<string> = new Set(),
): WriteCommand[] {
  const minId = deadLetterMinId(nowMs, settings.deadLetterMaxAgeSeconds);
  const commands: WriteCommand[] = [];
  const repliesByKey = new Map<string, string[]>();
  const idsByStream = new Map<string, string[]>();
  for (const item of batch) {
    if (item.reply && settings.replyMode === "publish")
      commands.push(["PUBLISH", item.reply.who, item.reply.payload]);
    if (item.reply && settings.replyMode !== "publish")
      appendTo(repliesByKey, item.reply.who, item.reply.payload);
    if (item.deadLetter) {
      commands.push(["XADD", `${item.stream}:dead`, "MINID", "~", minId, "*", ...item.deadLetter]);
    }
    appendTo(idsByStream, item.stream, item.entryId);
  }
  for (const deadStream of countTrims) {
    commands.push(["XTRIM", deadStream, "MAXLEN", "~", String(settings.deadLetterMaxLen)]);
  }
  const ttl = String(settings.replyTtlSeconds);
  if (settings.replyMode === "publish-batch") {
    for (const [key, payloads] of repliesByKey) {
      for (const chunk of chunksByBytes(payloads, PUBLISH_BATCH_BYTES)) {
        commands.push(["PUBLISH", key, buildReplyBatch(chunk)]);
      }
    }
  } else if (settings.replyMode === "list") {
    for (const [key, payloads] of repliesByKey) {
      commands.push(["RPUSH", key, ...payloads]);
      if (expireKeys.has(key)) commands.push(["EXPIRE", key, ttl]);
    }
    for (const key of expireKeys) if (!repliesByKey.has(key)) commands.push(["EXPIRE", key, ttl]);
  }
  for (const [stream, ids] of idsByStream) commands.push(["XACK", stream, settings.group, ...ids]);
  return commands;
}

/**
 * Bytes of replies per batched `PUBLISH`: well under Upstash's 10 MB request limit ("Max Request Size",
 * https://upstash.com/docs/redis/troubleshooting/max_request_size_exceeded) with the rest of the pipeline,
 * and small enough that one message never holds a gateway's event stream for long.
 */
const PUBLISH_BATCH_BYTES = 256 * 1024;

/** `payloads` in order, cut into runs of at most `maxBytes` (a larger single payload goes alone). */
function chunksByBytes(payloads: string[], maxBytes: number): string[][] {
  const chunks: string[][] = [];
  let current: string[] = [];
  let bytes = 0;
  for (const payload of payloads) {
    if (current.length > 0 && bytes + payload.length > maxBytes) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(payload);
    bytes += payload.length;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

function appendTo(map: Map<string, string[]>, key: string, value: string): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
