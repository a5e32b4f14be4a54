/**
 * Test helpers: open a WebSocket to the gateway through the Worker's fetch, and wait for frames or the
 * close with a timeout (so a missing reply fails the test instead of hanging it).
 */
import { exports } from "cloudflare:workers";
import type { RpcRequest } from "../../src/core/types.js";

/** The Worker under test (test-worker.ts) as the pool exposes it. */
export const SELF = (exports as unknown as { default: Fetcher }).default;

/** A client socket with a queue of received frames. */
export interface TestSocket {
  ws: WebSocket;
  /** The next frame, parsed; fails after `timeoutMs`. */
  next(timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Sends a JSON frame and waits for the next frame. */
  call(frame: Record<string, unknown>, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves with the close event's code once the server closed or answered our close. */
  closed: Promise<{ code: number; reason: string }>;
  /** Frames received and not yet taken. */
  pending: unknown[];
}

let counter = 0;

/** A name no other test uses, so each test gets a fresh Durable Object. */
export function uniqueObject(prefix: string): string {
  counter += 1;
  return `${prefix}-${counter}-${crypto.randomUUID()}`;
}

/** Opens a WebSocket to the gateway's object `object` through the Worker. */
export async function openSocket(object: string): Promise<TestSocket> {
  const response = await SELF.fetch(`http://gateway.test/websockets/v3?object=${object}`, {
    headers: { upgrade: "websocket" },
  });
  const ws = response.webSocket;
  if (response.status !== 101 || !ws)
    throw new Error(`upgrade failed: ${response.status} ${await response.text()}`);
  ws.accept();
  const pending: unknown[] = [];
  const waiters: Array<(frame: unknown) => void> = [];
  ws.addEventListener("message", (event: MessageEvent) => {
    const frame = JSON.parse(String(event.data)) as unknown;
    const waiter = waiters.shift();
    if (waiter) waiter(frame);
    else pending.push(frame);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.addEventListener("close", (event: CloseEvent) => resolve({ code: event.code, reason: event.reason }));
  });
  const next = (timeoutMs = 3000): Promise<Record<string, unknown>> => {
    if (pending.length > 0) return Promise.resolve(pending.shift() as Record<string, unknown>);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no frame within ${timeoutMs} ms`)), timeoutMs);
      waiters.push((frame) => {
        clearTimeout(timer);
        resolve(frame as Record<string, unknown>);
      });
    });
  };
  return {
    ws,
    next,
    call(frame, timeoutMs) {
      ws.send(JSON.stringify(frame));
      return next(timeoutMs);
    },
    closed,
    pending,
  };
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A `ping` request as the dispatcher builds it, for driving a backend directly. */
export function pingRequest(overrides: Partial<RpcRequest> = {}): RpcRequest {
  return {
    name: "ping",
    method: "ping",
    msgType: "ping",
    args: { ping: 1 },
    action: {},
    backend: "default",
    stashParams: [],
    callParams: {},
    correlationId: "c0ffee00-0000-4000-8000-000000000001",
    ...overrides,
  };
}
