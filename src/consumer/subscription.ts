/**
 * A request's push abilities: `ctx.push(frame)` and `ctx.subscribe()`. A subscription is registered by the
 * gateway when it reads the reply (which then carries `subscription: {id}`), so its pushes wait until
 * the reply is written, and a 410 shortly after that is retried: the gateway may not have read the reply
 * yet (it polls the reply key, PROTOCOL.md section 4).
 */
import { randomBytes } from "node:crypto";
import { PushGoneError, type Pusher } from "./push.js";
import { backoffDelayMs, sleep } from "./retry.js";

/**
 * How long after the reply was written a 410 for a subscription push still means "not registered yet"
 * rather than "forgotten": the gateway's reply poll backs off to at most 1 s while a request waits.
 */
export const SUBSCRIPTION_REGISTRATION_GRACE_MS = 3000;

/** A subscription opened by `ctx.subscribe()`; keep it to push frames until {@link signal} fires. */
export interface Subscription {
  /** The subscription id (32 hex chars), sent to the client as `subscription.id`. */
  readonly id: string;
  /** The push URL of the subscribed connection. */
  readonly connection: string;
  /**
   * Pushes one frame's data (the gateway wraps it like the reply: `{"msg_type": M, M: data, ...}`).
   * Rejects with `PushGoneError` when the client forgot the subscription or closed the connection (also
   * when the request's reply was an error, so the subscription was never registered).
   */
  push(data: unknown): Promise<void>;
  /**
   * Aborts when the subscription is over for this service: a push got 410 (reason: the `PushGoneError`),
   * the reply was never registered, or the service is closing. Stop timers here.
   */
  readonly signal: AbortSignal;
}

/** What a request's reply did for its subscription. */
type ReplyState = "pending" | "registered" | "refused";

/** The push side of one request; created by the processor, its methods exposed on the handler's ctx. */
export class RequestPush {
  private subscription: SubscriptionImpl | undefined;
  private handlerDone = false;

  constructor(
    private readonly connection: string | undefined,
    private readonly askedToSubscribe: boolean,
    private readonly pusher: Pusher,
    /** Aborts when the service closes. */
    private readonly serviceSignal: AbortSignal,
  ) {}

  /** `ctx.push(frame)`: a raw frame to the request's connection. */
  push(frame: Record<string, unknown>): Promise<void> {
    if (!this.connection) return Promise.reject(noConnection("ctx.push()"));
    return this.pusher.push(this.connection, { frame }, { signal: this.serviceSignal });
  }

  /** `ctx.subscribe()`: opens (or returns the already opened) subscription of this request. */
  subscribe(): Subscription {
    if (this.subscription) return this.subscription;
    if (!this.askedToSubscribe) {
      throw new Error('ctx.subscribe(): the request did not ask for "subscribe": 1');
    }
    if (!this.connection) throw noConnection("ctx.subscribe()");
    if (this.handlerDone) throw new Error("ctx.subscribe(): the handler already returned");
    this.subscription = new SubscriptionImpl(
      randomBytes(16).toString("hex"),
      this.connection,
      this.pusher,
      this.serviceSignal,
    );
    return this.subscription;
  }

  /** The handler ended; returns the subscription id to put in the reply, unless the result is an error. */
  handlerReturned(result: unknown, isError: boolean): string | undefined {
    this.handlerDone = true;
    if (!this.subscription) return undefined;
    if (isError || result === undefined) {
      this.subscription.replied("refused");
      return undefined;
    }
    return this.subscription.id;
  }

  /** The reply was written to Redis (`true`), or will never be (`false`). */
  replied(written: boolean): void {
    this.handlerDone = true;
    this.subscription?.replied(written ? "registered" : "refused");
  }
}

class SubscriptionImpl implements Subscription {
  private readonly ended = new AbortController();
  private state: ReplyState = "pending";
  private registeredAt = 0;
  private readonly settled: Promise<void>;
  private settle: () => void = () => {};
  readonly signal: AbortSignal;

  constructor(
    readonly id: string,
    readonly connection: string,
    private readonly pusher: Pusher,
    serviceSignal: AbortSignal,
  ) {
    this.signal = AbortSignal.any([this.ended.signal, serviceSignal]);
    this.settled = new Promise((resolve) => (this.settle = resolve));
  }

  replied(state: Exclude<ReplyState, "pending">): void {
    if (this.state !== "pending") return;
    this.state = state;
    this.registeredAt = Date.now();
    if (state === "refused") this.end(new PushGoneError("the subscription was never registered"));
    this.settle();
  }

  async push(data: unknown): Promise<void> {
    await this.settled;
    for (let attempt = 0; ; attempt++) {
      this.signal.throwIfAborted();
      try {
        return await this.pusher.push(
          this.connection,
          { subscription: this.id, data },
          { signal: this.signal },
        );
      } catch (error) {
        if (!(error instanceof PushGoneError)) throw error;
        if (Date.now() - this.registeredAt > SUBSCRIPTION_REGISTRATION_GRACE_MS) {
          this.end(error);
          throw error;
        }
        // The gateway may not have read the reply (and registered the subscription) yet.
        await sleep(backoffDelayMs(attempt, 50, 500), this.signal);
      }
    }
  }

  private end(reason: PushGoneError): void {
    this.ended.abort(reason);
  }
}

function noConnection(call: string): Error {
  return new Error(`${call}: the request has no connection (the gateway sent no push URL)`);
}
