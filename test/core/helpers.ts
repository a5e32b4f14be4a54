/**
 * Test helpers for the core: a fake backend, a quiet logger, and a gateway wired to an in-memory
 * connection whose `sent` list is exactly what a client would have received.
 */
import { vi } from "vitest";
import {
  createDispatcher,
  createMemoryConnection,
  type Backend,
  type GatewayOptions,
  type JsonObject,
  type Logger,
  type MemoryConnection,
  type MemoryConnectionInit,
  type RpcRequest,
  type RpcResponse,
} from "../../src/core/index.js";

/** One call the fake backend received. */
export interface BackendCall {
  req: RpcRequest;
  params: JsonObject;
}

/** A backend that answers with `answer` and records its calls. */
export interface FakeBackend extends Backend {
  calls: BackendCall[];
}

/** A fake backend; by default it answers `{result: {echo: <method>}}`. */
export function fakeBackend(
  answer: (req: RpcRequest, params: JsonObject) => RpcResponse | Promise<RpcResponse> = (req) => ({
    result: { echo: req.method },
  }),
): FakeBackend {
  const calls: BackendCall[] = [];
  return {
    calls,
    async call(req, params) {
      calls.push({ req, params });
      return answer(req, params);
    },
  };
}

/** A logger that records instead of printing. */
export function quietLogger() {
  const log = () => vi.fn<(message: string, details?: unknown) => void>();
  return { debug: log(), warn: log(), error: log() } satisfies Logger;
}

/** A dispatcher, one open connection, and `send` to push a client frame through it. */
export function gateway(
  options: Partial<GatewayOptions> = {},
  backends: Record<string, Backend> = { default: fakeBackend() },
  connection: MemoryConnectionInit = {},
) {
  const logger = quietLogger();
  const dispatcher = createDispatcher({ actions: [["ping"]], ...options }, backends, { logger });
  const conn: MemoryConnection = createMemoryConnection(connection);
  const send = (frame: unknown) =>
    dispatcher.handleFrame(conn, typeof frame === "string" ? frame : JSON.stringify(frame));
  return { dispatcher, conn, send, logger };
}

/** A promise with its resolve function exposed, to settle a slow backend or hook on cue. */
export function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
