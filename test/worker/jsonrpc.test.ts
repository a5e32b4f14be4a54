/**
 * The JSON-RPC backend, chosen per action (`backend: "http"`) next to the consumer-groups default, with
 * its service as a local function (no network, no fetch mock).
 */
import { describe, expect, it } from "vitest";
import { JsonRpcBackend } from "../../src/backends/index.js";
import { RpcTimeoutError, TransportError } from "../../src/core/errors.js";
import type { Connection, RpcRequest } from "../../src/core/types.js";
import { openSocket, uniqueObject } from "./helpers.js";

describe("JSON-RPC backend", () => {
  it("posts {id, method, params, jsonrpc} to url + method and maps result, error and HTTP failure", async () => {
    const socket = await openSocket(uniqueObject("jsonrpc"));
    expect(await socket.call({ rpc_echo: { a: 1 } })).toEqual({
      msg_type: "rpc_echo",
      rpc_echo: { method: "rpc_echo", echo: { rpc_echo: { a: 1 } } },
      echo_req: { rpc_echo: { a: 1 } },
    });
    expect(await socket.call({ rpc_error: 1 })).toMatchObject({
      msg_type: "rpc_error",
      error: { code: "CallError", message: "Sorry, an error occurred while processing your request." },
    });
    expect(await socket.call({ rpc_broken: 1 })).toMatchObject({
      msg_type: "rpc_broken",
      error: { code: "WrongResponse" },
    });
    expect(await socket.call({ ping: 1 })).toMatchObject({ ping: "pong" });
    socket.ws.close(1000, "done");
  });

  it("sends the JSON-RPC 2.0 body and times out a silent service", async () => {
    const seen: Array<{ url: string; body: Record<string, unknown> }> = [];
    const backend = new JsonRpcBackend({
      url: "http://rpc.internal/v1/",
      requestTimeoutMs: 100,
      async fetch(request) {
        seen.push({ url: request.url, body: (await request.json()) as Record<string, unknown> });
        return new Promise<Response>((_resolve, reject) =>
          request.signal.addEventListener("abort", () => reject(request.signal.reason)),
        );
      },
    });
    const req = { method: "ping" } as RpcRequest;
    await expect(backend.call(req, { args: { ping: 1 } }, {} as Connection)).rejects.toBeInstanceOf(
      RpcTimeoutError,
    );
    expect(seen[0]?.url).toBe("http://rpc.internal/v1/ping");
    expect(seen[0]?.body).toMatchObject({ method: "ping", params: { args: { ping: 1 } }, jsonrpc: "2.0" });
    expect(seen[0]?.body.id).toMatch(/^[0-9a-f-]{36}$/);

    const invalid = new JsonRpcBackend({
      url: "http://rpc.internal/",
      fetch: async () => new Response("{oops"),
    });
    await expect(invalid.call(req, {}, {} as Connection)).rejects.toBeInstanceOf(TransportError);
  });
});
