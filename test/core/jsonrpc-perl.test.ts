/**
 * The JSON-RPC backend as the Perl plugin's default: chosen when a backend has a `url` and no `type`,
 * a 4xx answer whose body is a JSON-RPC error is the service's error, and the URL may be set per action
 * or computed per request. Against a real HTTP server on 127.0.0.1.
 */
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBackend, JsonRpcBackend } from "../../src/backends/index.js";
import type { RpcFailure } from "../../src/core/index.js";
import { gateway } from "./helpers.js";

let server: Server;
let base = "";
/** The path of every request the server received. */
const paths: string[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString()));
    request.on("end", () => {
      paths.push(request.url ?? "");
      const call = JSON.parse(body) as { id: string; method: string };
      response.setHeader("content-type", "application/json");
      if (call.method === "refused") {
        response.statusCode = 400;
        response.end(
          JSON.stringify({ id: call.id, jsonrpc: "2.0", error: { code: -32602, message: "bad params" } }),
        );
      } else if (call.method === "plain_400") {
        response.statusCode = 400;
        response.end("Bad Request");
      } else {
        response.end(JSON.stringify({ id: call.id, jsonrpc: "2.0", result: { via: request.url } }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe("the JSON-RPC backend, Perl's way", () => {
  it("is what a backend with a url and no type becomes", () => {
    expect(createBackend("default", { url: `${base}/rpc/` })).toBeInstanceOf(JsonRpcBackend);
  });

  it("reads a 4xx JSON-RPC error body as the service's error (CallError, code for rpcFailureCb)", async () => {
    const failures: RpcFailure[] = [];
    const { conn, send } = gateway(
      {
        requestData: false,
        actions: [["refused"], ["plain_400"]],
        rpcFailureCb: (_conn, _res, _req, failure) => void failures.push(failure),
      },
      { default: new JsonRpcBackend({ url: `${base}/rpc/` }) },
    );
    await send({ refused: 1 });
    await send({ plain_400: 1 });
    expect(conn.sent.map((frame) => (frame.error as { code: string }).code)).toEqual([
      "CallError",
      "WrongResponse",
    ]);
    expect(failures.map(({ type, code }) => [type, code])).toEqual([
      ["CallError", "-32602"],
      ["TransportError", "WrongResponse"],
    ]);
  });

  it("takes the url of the action, a function of the request, or the backend's", async () => {
    const { conn, send } = gateway(
      {
        requestData: false,
        actions: [
          ["ping"],
          ["balance", { url: `${base}/accounts/` }],
          ["trade", { url: (req: { args: { region?: string } }) => `${base}/${req.args.region}/` }],
        ],
      },
      { default: new JsonRpcBackend({ url: (req) => `${base}/by-function/${req.name}/` }) },
    );
    await send({ ping: 1 });
    await send({ balance: 1 });
    await send({ trade: 1, region: "eu" });
    expect(conn.sent.map((frame) => frame[frame.msg_type as string])).toEqual([
      { via: "/by-function/ping/ping" },
      { via: "/accounts/balance" },
      { via: "/eu/trade" },
    ]);
  });

  it("refuses a url setting that is not http(s)", () => {
    expect(() => new JsonRpcBackend({ url: "ftp://rpc/" })).toThrow(
      /`url` must be an http\(s\) URL or a function/,
    );
  });
});
