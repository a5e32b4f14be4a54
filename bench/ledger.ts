/**
 * A bookkeeping WebSocket client for the load run (`scripts/load.ts`) and the fault and load tests: every request gets a `req_id` unique across
 * all clients of one {@link Ledger}, and every reply is checked against the request it names. A reply is
 * *answered* when it is the first one for a `req_id` this client sent and echoes that very request
 * (`echo_req`) and, for `echo` and `slow`, carries that request's own result (the service's `echo` returns
 * the whole frame, `slow` the delay asked for); anything else (an unknown or another client's `req_id`, a
 * different `echo_req` or result, a second reply) is *misrouted*. A request with no reply is *lost*.
 */
import { isDeepStrictEqual } from "node:util";
import WebSocket from "ws";

/** A frame as sent or received (parsed JSON). */
type Frame = Record<string, unknown>;

/** Totals over the clients that stayed connected. */
export interface LedgerCounts {
  sent: number;
  answered: number;
  lost: number;
  misrouted: number;
  /** Answered with an error, by code (e.g. `{ WrongResponse: 3 }`). */
  errors: Record<string, number>;
  /** Connections closed by the test with requests in flight (their requests are not counted). */
  abandoned: number;
  /** Connections the server closed (their unanswered requests count as lost). */
  closedByServer: number;
}

/** A set of clients sharing one `req_id` sequence. */
export class Ledger {
  readonly clients: LedgerClient[] = [];
  private nextReqId = 1;

  /** Opens one more client on `url`. */
  async open(url: string): Promise<LedgerClient> {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    const client = new LedgerClient(ws, () => this.nextReqId++);
    this.clients.push(client);
    return client;
  }

  /** Totals over the clients not abandoned. */
  counts(): LedgerCounts {
    const counts: LedgerCounts = {
      sent: 0,
      answered: 0,
      lost: 0,
      misrouted: 0,
      errors: {},
      abandoned: 0,
      closedByServer: 0,
    };
    for (const client of this.clients) {
      if (client.abandoned) {
        counts.abandoned += 1;
        continue;
      }
      if (client.ws.readyState !== WebSocket.OPEN) counts.closedByServer += 1;
      counts.sent += client.requests.size;
      counts.answered += client.replies.size;
      counts.misrouted += client.misrouted.length;
      for (const reply of client.replies.values()) {
        const code = (reply.error as { code?: string } | undefined)?.code;
        if (code) counts.errors[code] = (counts.errors[code] ?? 0) + 1;
      }
    }
    counts.lost = counts.sent - counts.answered;
    return counts;
  }

  /** `sent N / answered N / lost N / misrouted N`, plus error codes and abandoned connections. */
  summaryLine(): string {
    const c = this.counts();
    const errors = Object.entries(c.errors)
      .map(([code, n]) => `${code} ${n}`)
      .join(", ");
    return (
      `sent ${c.sent} / answered ${c.answered} / lost ${c.lost} / misrouted ${c.misrouted}` +
      ` (errors: ${errors || "none"}; ${c.abandoned} connections closed mid-request by the client,` +
      ` ${c.closedByServer} by the server)`
    );
  }

  /** The requests of the remaining clients that got no reply, and the misrouted replies (for a failure message). */
  problems(limit = 10): { lost: Frame[]; misrouted: Frame[] } {
    const remaining = this.clients.filter((client) => !client.abandoned);
    const lost = remaining.flatMap((client) =>
      [...client.requests].filter(([reqId]) => !client.replies.has(reqId)).map(([, request]) => request),
    );
    return { lost: lost.slice(0, limit), misrouted: remaining.flatMap((c) => c.misrouted).slice(0, limit) };
  }

  /** Waits until every request of every remaining client has a reply, or `timeoutMs` passed. */
  async settle(timeoutMs: number): Promise<void> {
    await Promise.all(this.clients.filter((c) => !c.abandoned).map((c) => c.settled(timeoutMs)));
  }

  /** Closes every client. */
  async closeAll(): Promise<void> {
    await Promise.all(this.clients.map((client) => client.close()));
  }
}

/** One connection of a {@link Ledger}. */
export class LedgerClient {
  /** Requests sent, by `req_id`. */
  readonly requests = new Map<number, Frame>();
  /** The first correct reply of each request, by `req_id`. */
  readonly replies = new Map<number, Frame>();
  /** Replies that were not the first reply to a request of this client. */
  readonly misrouted: Frame[] = [];
  /** True once the test closed this connection on purpose. */
  abandoned = false;
  readonly closed: Promise<number>;
  private readonly waiters = new Map<number, (reply: Frame) => void>();
  private settledWaiter: (() => void) | undefined;

  constructor(
    readonly ws: WebSocket,
    private readonly nextReqId: () => number,
  ) {
    ws.on("message", (data) => this.onFrame(JSON.parse(String(data)) as Frame));
    this.closed = new Promise((resolve) => ws.on("close", (code) => resolve(code)));
  }

  /** Sends `frame` with a fresh `req_id`; returns it. */
  send(frame: Frame): number {
    const reqId = this.nextReqId();
    const request = { ...frame, req_id: reqId };
    this.requests.set(reqId, request);
    this.ws.send(JSON.stringify(request));
    return reqId;
  }

  /** Sends `frame` and resolves with its reply (rejects after `timeoutMs`). */
  call(frame: Frame, timeoutMs = 5000): Promise<Frame> {
    const reqId = this.send(frame);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(reqId);
        reject(new Error(`no reply to req_id ${reqId} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(reqId, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
    });
  }

  /** Resolves once every request sent has its reply, or after `timeoutMs` (the rest then counts as lost). */
  settled(timeoutMs: number): Promise<void> {
    if (this.replies.size >= this.requests.size) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.settledWaiter = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Closes the connection with requests possibly in flight: they no longer count. */
  async abandon(): Promise<void> {
    this.abandoned = true;
    await this.close();
  }

  /** Closes the connection (1000). */
  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.close(1000, "done");
    }
    if (this.ws.readyState !== WebSocket.CLOSED) await this.closed;
  }

  private onFrame(frame: Frame): void {
    const reqId = frame.req_id;
    const request = typeof reqId === "number" ? this.requests.get(reqId) : undefined;
    if (
      typeof reqId !== "number" ||
      !request ||
      this.replies.has(reqId) ||
      !isDeepStrictEqual(frame.echo_req, request) ||
      !carriesOwnResult(request, frame)
    ) {
      this.misrouted.push(frame);
      return;
    }
    this.replies.set(reqId, frame);
    this.waiters.get(reqId)?.(frame);
    this.waiters.delete(reqId);
    if (this.replies.size >= this.requests.size) this.settledWaiter?.();
  }
}

/** True when `reply` is an error, or the result the service computes for `request` (for `echo` and `slow`). */
function carriesOwnResult(request: Frame, reply: Frame): boolean {
  if (reply.error) return true;
  if ("echo" in request) return isDeepStrictEqual(reply.echo, request);
  if ("slow" in request) return (reply.slow as { slept_ms?: unknown } | undefined)?.slept_ms === request.ms;
  return true;
}
