/**
 * Test helpers of the workers project: open a WebSocket to the gateway through the Worker's fetch (frames
 * and the close are awaited with a timeout, see test/support/socket.ts), and a request for driving a backend.
 */
import { exports } from "cloudflare:workers";
import type { RpcRequest } from "../../src/core/types.js";
import { frameSocket, type TestSocket as SupportSocket } from "../support/socket.js";

/** The Worker under test (test-worker.ts) as the pool exposes it. */
export const SELF = (exports as unknown as { default: Fetcher }).default;

/** A client socket of the workers project: workerd's `WebSocket` with a queue of received frames. */
export type TestSocket = SupportSocket<WebSocket>;

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
  return frameSocket(ws);
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
