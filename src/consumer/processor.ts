/**
 * Serving one stream entry: validate it, drop it when its deadline passed, run its handler with a deadline
 * signal, and queue the reply and the ack (or the dead letter) in the outbox. A handler still running
 * `handlerGraceMs` after the deadline is abandoned, so a hung handler cannot keep its slot.
 */
import { maskSensitiveFields } from "./dead-letters.js";
import { INTERNAL_ERROR_RESULT, buildReplyPayload, parseRpcEntry, type RpcEntry } from "../wire/index.js";
import type { RawEntry } from "./stream-replies.js";
import type { Outbox } from "./outbox.js";
import type { Pusher } from "./push.js";
import { RequestPush } from "./subscription.js";
import type { LogEntry, RpcContext, RpcHandlers, ServiceLogger } from "./types.js";

const MAX_TIMER_MS = 2 ** 31 - 1;

/** The dead-letter reason of an entry whose handler outlived its deadline plus `handlerGraceMs`. */
export const HANDLER_TIMEOUT_REASON = "handler_timeout";

/** What {@link EntryProcessor} needs from the service options. */
export interface ProcessorSettings {
  handlerGraceMs: number;
  sensitiveFields: string[];
  /** Sends `ctx.push()` and subscription frames. */
  pusher: Pusher;
  /** Aborts when the service closes: ends every subscription and cuts push retries short. */
  closingSignal: AbortSignal;
}

/** A handler abandoned at its deadline plus the grace (distinct from anything a handler returns). */
const TIMED_OUT = Symbol("handler timed out");

/** Runs handlers for entries; one per service. */
export class EntryProcessor {
  constructor(
    private readonly handlers: RpcHandlers,
    private readonly outbox: Outbox,
    private readonly logger: ServiceLogger,
    /** Fires when close() gave up waiting for handlers; handlers see it through `ctx.signal`. */
    private readonly abandonSignal: AbortSignal,
    private readonly settings: ProcessorSettings,
  ) {}

  /** Serves one entry; never rejects. */
  async process(stream: string, raw: RawEntry, deliveryCount: number): Promise<void> {
    const entry = parseRpcEntry(raw.fields);
    if ("malformed" in entry) {
      this.log("error", entry.malformed, { stream, entry_id: raw.id, correlation_id: entry.correlationId });
      // When the entry says where to reply, answer so the client is not left waiting for a timeout.
      const reply =
        entry.who && entry.messageId
          ? { who: entry.who, payload: buildReplyPayload(entry.messageId, INTERNAL_ERROR_RESULT) }
          : undefined;
      this.deadLetter(stream, raw, deliveryCount, entry.malformed, reply);
      return;
    }
    const base = { stream, entry_id: raw.id, method: entry.method, correlation_id: entry.correlationId };
    if (entry.deadlineSeconds !== undefined && Date.now() >= entry.deadlineSeconds * 1000) {
      this.log("info", "deadline passed, dropped", { ...base, deadline: entry.deadlineSeconds });
      this.outbox.push({ stream, entryId: raw.id });
      return;
    }
    const requestPush = new RequestPush(
      entry.connection,
      Boolean(isRecord(entry.params.args) && entry.params.args.subscribe),
      this.settings.pusher,
      this.settings.closingSignal,
    );
    const result = await this.runHandler(entry, stream, raw.id, deliveryCount, base, requestPush);
    if (result === TIMED_OUT) {
      requestPush.replied(false);
      // No reply: the client got its timeout at the deadline. Acked with the dead letter, so reclaim
      // does not hand the entry to the next consumer, which would hang in turn.
      this.deadLetter(stream, raw, deliveryCount, HANDLER_TIMEOUT_REASON);
      return;
    }
    // An error reply registers nothing at the gateway, so it carries no subscription.
    const subscriptionId = requestPush.handlerReturned(result, isRecord(result) && result.error != null);
    this.outbox.push({
      stream,
      entryId: raw.id,
      reply: {
        who: entry.who,
        payload: buildReplyPayload(entry.messageId, result, Date.now(), { subscriptionId }),
      },
      replied: (written) => requestPush.replied(written),
    });
  }

  /**
   * Sends `fields` (sensitive values masked) plus `reason`, `delivery_count` and `entry_id` to
   * `<stream>:dead` and acks the entry.
   */
  deadLetter(
    stream: string,
    raw: RawEntry,
    deliveryCount: number,
    reason: string,
    reply?: { who: string; payload: string },
  ): void {
    const deadLetter = [
      ...maskSensitiveFields(raw.fields ?? [], this.settings.sensitiveFields),
      "reason",
      reason,
      "delivery_count",
      String(deliveryCount),
      "entry_id",
      raw.id,
    ];
    this.outbox.push({ stream, entryId: raw.id, deadLetter, reply });
  }

  private async runHandler(
    entry: RpcEntry,
    stream: string,
    entryId: string,
    deliveryCount: number,
    base: Record<string, unknown>,
    requestPush: RequestPush,
  ): Promise<unknown | typeof TIMED_OUT> {
    const handler = Object.hasOwn(this.handlers, entry.method) ? this.handlers[entry.method] : undefined;
    if (!handler) {
      this.log("warn", "unknown method", base);
      return INTERNAL_ERROR_RESULT;
    }
    const deadlineMs = entry.deadlineSeconds === undefined ? undefined : entry.deadlineSeconds * 1000;
    const controller = new AbortController();
    const abandon = () => controller.abort(new Error("service closed"));
    this.abandonSignal.addEventListener("abort", abandon);
    const timer = abortAtDeadline(controller, deadlineMs);
    const ctx: RpcContext = {
      method: entry.method,
      deadline: deadlineMs === undefined ? undefined : new Date(deadlineMs),
      signal: controller.signal,
      correlationId: entry.correlationId,
      stashNames: entry.stashNames,
      messageId: entry.messageId,
      who: entry.who,
      entryId,
      stream,
      deliveryCount,
      connection: entry.connection,
      subscribe: () => requestPush.subscribe(),
      push: (frame) => requestPush.push(frame),
    };
    const started = Date.now();
    const guard = guardTimer(deadlineMs, this.settings.handlerGraceMs);
    try {
      // Called inside the promise so a synchronous throw is handled like a rejection.
      const handled = new Promise((resolve) => resolve(handler(entry.params, ctx)));
      const result = await (guard ? Promise.race([handled, guard.expired]) : handled);
      if (result === TIMED_OUT) {
        // The abandoned handler's eventual result or error goes nowhere: never a second reply.
        handled.catch(() => {});
        this.log("error", "handler outlived its deadline; abandoned", {
          ...base,
          grace_ms: this.settings.handlerGraceMs,
          duration_ms: Date.now() - started,
        });
        return TIMED_OUT;
      }
      this.log("debug", "handled", { ...base, duration_ms: Date.now() - started });
      return result;
    } catch (error) {
      const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      this.log("error", "handler threw", { ...base, error: reason, duration_ms: Date.now() - started });
      return INTERNAL_ERROR_RESULT;
    } finally {
      guard?.cancel();
      clearTimeout(timer);
      this.abandonSignal.removeEventListener("abort", abandon);
    }
  }

  private log(level: LogEntry["level"], msg: string, fields: Record<string, unknown>): void {
    this.logger({ level, msg, ...fields });
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Aborts `controller` at `deadlineMs`; returns the timer, or `undefined` when there is no usable deadline. */
function abortAtDeadline(
  controller: AbortController,
  deadlineMs: number | undefined,
): NodeJS.Timeout | undefined {
  if (deadlineMs === undefined) return undefined;
  const delayMs = deadlineMs - Date.now();
  // setTimeout fires at once for delays beyond 2^31-1 ms; a deadline that far away is no deadline.
  if (delayMs > MAX_TIMER_MS) return undefined;
  return setTimeout(() => controller.abort(new Error("deadline passed")), delayMs);
}

/** Resolves `expired` with {@link TIMED_OUT} at `deadlineMs + graceMs`; `undefined` without a usable deadline. */
function guardTimer(
  deadlineMs: number | undefined,
  graceMs: number,
): { expired: Promise<typeof TIMED_OUT>; cancel: () => void } | undefined {
  if (deadlineMs === undefined) return undefined;
  const delayMs = deadlineMs + graceMs - Date.now();
  if (delayMs > MAX_TIMER_MS) return undefined;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), Math.max(0, delayMs));
  });
  return { expired, cancel: () => clearTimeout(timer) };
}
