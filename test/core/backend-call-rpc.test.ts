/**
 * A backend driven directly with the core's `callRpc` (Perl's `$backend->call_rpc`), as a hook or an
 * embedding does: the JSON-RPC backend against a real JSON-RPC server on 127.0.0.1, with every RPC hook
 * applied.
 */
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JsonRpcBackend } from "../../src/backends/jsonrpc.js";
import { buildRequest, callRpc, createMemoryConnection } from "../../src/core/index.js";

let server: Server;
let url = "";

beforeAll(async () => {
  server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString()));
    request.on("end", () => {
      const call = JSON.parse(body) as { id: string; method: string; params: { args: unknown } };
      const answer =
        call.method === "login"
          ? { result: { loginid: "CR1", stash: { loginid: "CR1" } } }
          : { error: { code: "Broken", message: "no such method" } };
      response.setHeader("content-type", "application/json");
      response.end(JSON.stringify({ id: call.id, jsonrpc: "2.0", ...answer }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}/rpc/`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe("callRpc on a backend", () => {
  it("runs the action's hooks around the call and merges the stash", async () => {
    const backend = new JsonRpcBackend({ url });
    const conn = createMemoryConnection();
    const seen: string[] = [];
    const action = {
      stashWrites: ["loginid"],
      beforeCall: () => void seen.push("beforeCall"),
      success: () => void seen.push("success"),
    };
    const req = buildRequest("login", action, { login: "token", req_id: 4 }, "default", Date.now());
    const reply = await callRpc(conn, req, backend, { global: {}, action: req.action });
    expect(reply).toEqual({ msg_type: "login", login: { loginid: "CR1" } });
    expect(seen).toEqual(["beforeCall", "success"]);
    expect(conn.stash).toEqual({ loginid: "CR1" });
  });

  it("turns a JSON-RPC error into CallError for the action", async () => {
    const backend = new JsonRpcBackend({ url });
    const req = buildRequest("missing", {}, { missing: 1 }, "default", Date.now());
    expect(await callRpc(createMemoryConnection(), req, backend, { global: {}, action: req.action })).toEqual(
      {
        msg_type: "missing",
        error: { code: "CallError", message: "Sorry, an error occurred while processing your request." },
      },
    );
  });
});
