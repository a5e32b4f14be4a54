/** The bridge over plain HTTP: request shapes, status codes, encodings and limits that a client can see. */
import { randomUUID } from "node:crypto";
import { Redis as IORedis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startBridgeFixture, TOKEN, type BridgeFixture } from "./helpers.js";

let fixture: BridgeFixture;
beforeAll(async () => {
  fixture = await startBridgeFixture();
});
afterAll(async () => {
  await fixture?.stop();
});

const key = (name: string) => `http:${randomUUID()}:${name}`;
const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fixture.http(path, {
    method: "POST",
    body: typeof body === "string" ? body : JSON.stringify(body),
    headers,
  });
const BASE64 = { "upstash-encoding": "base64" };

describe("request shapes", () => {
  it("POST / runs one JSON command and answers {result}", async () => {
    const k = key("a");
    expect(await post("/", ["SET", k, "v"])).toMatchObject({ status: 200, body: { result: "OK" } });
    expect(await post("/", ["GET", k])).toMatchObject({ status: 200, body: { result: "v" } });
    expect(await post("/", ["INCRBY", key("n"), 5])).toMatchObject({ body: { result: 5 } });
  });

  it("path style GET decodes each segment, and a POST body becomes the last argument", async () => {
    const k = key("path/with slash ü");
    expect(await fixture.http(`/set/${encodeURIComponent(k)}/${encodeURIComponent("x y/z")}`)).toMatchObject({
      status: 200,
      body: { result: "OK" },
    });
    expect(await fixture.http(`/get/${encodeURIComponent(k)}`)).toMatchObject({ body: { result: "x y/z" } });
    const body = 'raw body 🎉 with /slashes/ and "quotes"';
    await fixture.http(`/set/${encodeURIComponent(k)}`, { method: "POST", body });
    expect(await fixture.http(`/get/${encodeURIComponent(k)}`)).toMatchObject({ body: { result: body } });
  });

  it("/pipeline answers one entry per command, in order, with 200 even when some fail", async () => {
    const k = key("p");
    const { status, body } = await post("/pipeline", [
      ["SET", k, "text"],
      ["INCR", k],
      ["GET", k],
      ["BLPOP", k, "1"],
    ]);
    expect(status).toBe(200);
    expect(body).toEqual([
      { result: "OK" },
      { error: "ERR value is not an integer or out of range" },
      { result: "text" },
      { error: expect.stringMatching(/blocking command 'BLPOP' is not supported/) },
    ]);
  });

  it("/pipeline of one command answers as a longer pipeline does: its result, its error or its refusal, base64 too", async () => {
    const k = key("one");
    expect(await post("/pipeline", [["SET", k, "text ü"]])).toMatchObject({
      status: 200,
      body: [{ result: "OK" }],
    });
    expect(await post("/pipeline", [["GET", k]], BASE64)).toMatchObject({
      status: 200,
      body: [{ result: Buffer.from("text ü").toString("base64") }],
    });
    expect(await post("/pipeline", [["INCR", k]])).toMatchObject({
      status: 200,
      body: [{ error: "ERR value is not an integer or out of range" }],
    });
    expect(await post("/pipeline", [["BLPOP", k, "1"]])).toMatchObject({
      status: 200,
      body: [{ error: expect.stringMatching(/blocking command 'BLPOP' is not supported/) }],
    });
  });

  it("/multi-exec answers one entry per command, or one error when the transaction aborts", async () => {
    const k = key("m");
    expect(
      await post("/multi-exec", [
        ["SET", k, "1"],
        ["INCR", k],
        ["HSET", k, "f", "v"],
      ]),
    ).toMatchObject({
      status: 200,
      body: [{ result: "OK" }, { result: 2 }, { error: expect.stringMatching(/^WRONGTYPE/) }],
    });
    const aborted = await post("/multi-exec", [
      ["SET", key("never"), "1"],
      ["NOSUCHCOMMAND", "x"],
    ]);
    expect(aborted.status).toBe(400);
    expect(aborted.body).toEqual({
      error: expect.stringMatching(/^EXECABORT command 2 was refused: ERR 'NOSUCHCOMMAND' is not supported/),
    });
  });

  it("the Content-Type header does not matter", async () => {
    expect(await post("/", ["PING"], { "content-type": "text/plain" })).toMatchObject({
      body: { result: "PONG" },
    });
  });
});

describe("Upstash-Encoding: base64", () => {
  it("encodes every string but a top-level OK; numbers and nil stay as they are", async () => {
    const k = key("b64");
    const encode = (text: string) => Buffer.from(text).toString("base64");
    expect(await post("/", ["SET", k, "OK"], BASE64)).toMatchObject({ body: { result: "OK" } });
    expect(await post("/", ["RPUSH", k + "l", "OK", "🎉"], BASE64)).toMatchObject({ body: { result: 2 } });
    expect(await post("/", ["LRANGE", k + "l", "0", "-1"], BASE64)).toMatchObject({
      body: { result: [encode("OK"), encode("🎉")] },
    });
    expect(await post("/", ["MGET", k + "l", key("missing")], BASE64)).toMatchObject({
      body: { result: [null, null] },
    });
    expect(await post("/", ["PING"], BASE64)).toMatchObject({ body: { result: encode("PONG") } });
    expect(
      await post(
        "/pipeline",
        [
          ["ECHO", "é"],
          ["STRLEN", k],
        ],
        BASE64,
      ),
    ).toMatchObject({
      body: [{ result: encode("é") }, { result: 2 }],
    });
  });

  it("returns binary values written as a raw body byte for byte", async () => {
    const k = encodeURIComponent(key("bin"));
    const bytes = Buffer.from([0x00, 0xff, 0x80, 0x41, 0xfe, 0x0a]);
    await fixture.http(`/set/${k}`, { method: "POST", body: bytes });
    expect(await fixture.http(`/get/${k}`, { headers: BASE64 })).toMatchObject({
      body: { result: bytes.toString("base64") },
    });
    expect(await fixture.http(`/strlen/${k}`)).toMatchObject({ body: { result: 6 } });
    // Without base64 the bytes are read as UTF-8, so invalid sequences become U+FFFD.
    expect(await fixture.http(`/get/${k}`)).toMatchObject({
      body: { result: "\u0000\ufffd\ufffdA\ufffd\n" },
    });
  });
});

describe("errors", () => {
  it("Redis errors are 400 with the Redis message", async () => {
    expect(await post("/", ["SET", key("e"), "x", "NOSUCHOPTION"])).toEqual({
      status: 400,
      body: { error: "ERR syntax error" },
      headers: expect.anything(),
    });
    expect(await post("/", ["GET"])).toMatchObject({
      status: 400,
      body: { error: "ERR wrong number of arguments for 'get' command" },
    });
  });

  it.each([
    ["missing", {}],
    ["wrong", { authorization: "Bearer not-the-token" }],
    ["not a bearer", { authorization: `Basic ${TOKEN}` }],
  ])("a %s token is 401 Unauthorized and runs nothing", async (_, headers) => {
    const k = key("unauth");
    const response = await fetch(`${fixture.bridge.url}/set/${k}/x`, { headers });
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: "Unauthorized" });
    expect(await fixture.http(`/exists/${k}`)).toMatchObject({ body: { result: 0 } });
  });

  it("accepts the token as a _token query parameter", async () => {
    const response = await fetch(`${fixture.bridge.url}/ping?_token=${TOKEN}`);
    expect(await response.json()).toEqual({ result: "PONG" });
  });

  it.each([
    ["malformed JSON", '["GET", ', /^ERR malformed JSON body/],
    ["an empty body", "", /^ERR empty request body/],
    ["a JSON object", '{"command":"GET"}', /must be a non-empty JSON array/],
    ["an empty array", "[]", /must be a non-empty JSON array/],
    ["a nested object", '["SET","k",{"a":1}]', /element 2 must be a string, number or boolean, got object/],
    ["a null argument", '["GET",null]', /element 1 must be a string, number or boolean, got null/],
  ])("POST / with %s is a clear 400", async (_, body, message) => {
    const response = await post("/", body);
    expect(response).toMatchObject({ status: 400, body: { error: expect.stringMatching(message) } });
  });

  it("/pipeline and /multi-exec need an array of commands", async () => {
    expect(await post("/pipeline", ["GET", "k"])).toMatchObject({
      status: 400,
      body: { error: expect.stringMatching(/command 1 of \/pipeline must be a non-empty JSON array/) },
    });
    expect(await post("/multi-exec", [])).toMatchObject({
      status: 400,
      body: {
        error: expect.stringMatching(/body of \/multi-exec must be a non-empty JSON array of commands/),
      },
    });
  });

  it.each([
    ["PUT", "/"],
    ["DELETE", "/del/k"],
    ["GET", "/pipeline"],
    ["GET", "/"],
  ])("%s %s is 405 with an Allow header", async (method, path) => {
    const response = await fixture.http(path, { method });
    expect(response.status).toBe(405);
    expect(response.headers.get("allow")).toMatch(/POST/);
    expect(response.body).toEqual({ error: expect.stringMatching(/^ERR .*(not allowed|takes POST)/) });
  });

  it("an empty command path is 404 with a JSON error", async () => {
    expect(await fixture.http("//get/k")).toMatchObject({
      status: 404,
      body: { error: expect.stringMatching(/^ERR unknown path/) },
    });
  });
});

describe("refused commands", () => {
  it.each([
    [["BLPOP", "q", "1"], /blocking command 'BLPOP'/],
    [["brpoplpush", "a", "b", "0"], /blocking command 'BRPOPLPUSH'/],
    [["WAIT", "0", "0"], /blocking command 'WAIT'/],
    [["XREAD", "block", "10", "STREAMS", "s", "$"], /XREAD with BLOCK is not supported/],
    [["SUBSCRIBE", "ch"], /'SUBSCRIBE' is not supported/],
    [["MONITOR"], /'MONITOR' is not supported/],
    [["SELECT", "1"], /'SELECT' is not supported.*shared/],
    [["CLIENT", "REPLY", "OFF"], /'CLIENT' is not supported/],
    [["QUIT"], /'QUIT' is not supported/],
    [["MULTI"], /send the transaction's commands to \/multi-exec/],
  ])("%j is a 400 that names the command", async (command, message) => {
    expect(await post("/", command)).toMatchObject({
      status: 400,
      body: { error: expect.stringMatching(message) },
    });
  });

  it("a refused command aborts a transaction before anything runs", async () => {
    const k = key("refused-tx");
    const response = await post("/multi-exec", [
      ["SET", k, "1"],
      ["BLPOP", k, "0"],
    ]);
    expect(response).toMatchObject({
      status: 400,
      body: { error: expect.stringMatching(/^EXECABORT command 2 was refused/) },
    });
    expect(await post("/", ["EXISTS", k])).toMatchObject({ body: { result: 0 } });
  });

  it("XREAD without BLOCK is served, even on a stream named 'block'", async () => {
    const stream = key("block");
    await post("/", ["XADD", stream, "*", "f", "v"]);
    const { status, body } = await post("/", ["XREAD", "COUNT", "1", "STREAMS", stream, "0"]);
    expect(status).toBe(200);
    expect(body).toEqual({ result: [[stream, [[expect.any(String), ["f", "v"]]]]] });
  });

  it("the shared connection is unaffected after refusals: SELECT did not switch databases", async () => {
    const k = key("db0");
    await post("/", ["SET", k, "in db 0"]);
    await post("/", ["SELECT", "1"]);
    expect(await post("/", ["GET", k])).toMatchObject({ body: { result: "in db 0" } });
  });
});

describe("body size limit", () => {
  const limit = 10 * 1024 * 1024;

  it("accepts a body of exactly 10 MB", async () => {
    const k = key("big");
    const prefix = JSON.stringify(["SET", k, ""]).slice(0, -2); // up to and including the value's opening quote
    const value = "x".repeat(limit - prefix.length - 2);
    const body = `${prefix}${value}"]`;
    expect(Buffer.byteLength(body)).toBe(limit);
    expect(await post("/", body)).toMatchObject({ status: 200, body: { result: "OK" } });
    expect(await post("/", ["STRLEN", k])).toMatchObject({ body: { result: value.length } });
    await post("/", ["DEL", k]);
  });

  it("refuses a larger body with 413 and a JSON error, and keeps serving", async () => {
    const response = await post("/", "x".repeat(limit + 1));
    expect(response).toMatchObject({
      status: 413,
      body: { error: expect.stringMatching(/larger than 10485760 bytes/) },
    });
    expect(await post("/", ["PING"])).toMatchObject({ status: 200, body: { result: "PONG" } });
  });

  it("refuses a streamed body without Content-Length once it passes the limit", async () => {
    const chunk = new Uint8Array(1024 * 1024).fill(0x78);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 12) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const response = await fetch(`${fixture.bridge.url}/`, {
      method: "POST",
      body: stream,
      headers: { authorization: `Bearer ${TOKEN}` },
      duplex: "half",
    } as RequestInit);
    expect(response.status).toBe(413);
    expect(await response.json()).toEqual({ error: expect.stringMatching(/larger than/) });
  });
});

it("PUBLISH reaches subscribers and answers how many received it", async () => {
  const channel = key("channel");
  const subscriber = new IORedis(fixture.redis.url);
  try {
    const received = new Promise<string>((resolve) =>
      subscriber.on("message", (_, message: string) => resolve(message)),
    );
    await subscriber.subscribe(channel);
    expect(await post("/", ["PUBLISH", channel, "hello 🎉"])).toMatchObject({ body: { result: 1 } });
    expect(await received).toBe("hello 🎉");
  } finally {
    subscriber.disconnect();
  }
});
