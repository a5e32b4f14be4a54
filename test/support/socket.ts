/**
 * The test client's side of a WebSocket: frames are queued as they arrive and taken with a timeout (a
 * missing reply fails the test instead of hanging it). Wraps any socket with the WHATWG event API: the
 * workerd `WebSocket` of the workers project and the `ws` client of the end-to-end tests.
 */

/** A frame as received (parsed JSON). */
export type Frame = Record<string, unknown>;

/** What the wrapper needs of a socket (`WebSocket` in workerd, `ws`'s `WebSocket` in Node). */
export interface EventSocket {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each runtime types its events its own way
  addEventListener(type: "message" | "close", listener: (event: any) => void): void;
}

/** A connected test client. */
export interface TestSocket<S extends EventSocket = EventSocket> {
  ws: S;
  /** The next frame; rejects after `timeoutMs`. */
  next(timeoutMs?: number): Promise<Frame>;
  /** Sends a frame and returns the next one. */
  call(frame: Frame, timeoutMs?: number): Promise<Frame>;
  /** Sends raw text. */
  sendRaw(text: string): void;
  /** Frames received and not taken yet. */
  queued: Frame[];
  /** The close code and reason, once the socket closed. */
  closed: Promise<{ code: number; reason: string }>;
  /** Closes with 1000 (if still open) and waits for the close. */
  close(): Promise<void>;
}

const OPEN = 1;

/** Wraps an open socket; frames arriving from now on are queued. */
export function frameSocket<S extends EventSocket>(ws: S, defaultTimeoutMs = 5_000): TestSocket<S> {
  const queued: Frame[] = [];
  const waiters: Array<(frame: Frame) => void> = [];
  ws.addEventListener("message", (event: { data: unknown }) => {
    const frame = JSON.parse(String(event.data)) as Frame;
    const waiter = waiters.shift();
    if (waiter) waiter(frame);
    else queued.push(frame);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.addEventListener("close", (event: { code: number; reason: string }) =>
      resolve({ code: event.code, reason: String(event.reason) }),
    );
  });
  const next = (timeoutMs = defaultTimeoutMs): Promise<Frame> => {
    const frame = queued.shift();
    if (frame) return Promise.resolve(frame);
    return new Promise((resolve, reject) => {
      const waiter = (received: Frame): void => {
        clearTimeout(timer);
        resolve(received);
      };
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(waiter), 1);
        reject(new Error(`no frame within ${timeoutMs} ms`));
      }, timeoutMs);
      waiters.push(waiter);
    });
  };
  return {
    ws,
    next,
    call(frame, timeoutMs) {
      ws.send(JSON.stringify(frame));
      return next(timeoutMs);
    },
    sendRaw: (text) => ws.send(text),
    queued,
    closed,
    async close() {
      if (ws.readyState === OPEN) ws.close(1000, "test done");
      await closed;
    },
  };
}
