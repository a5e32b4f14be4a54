/**
 * Security over the real stack (issue 6 item 4): the e2e Worker's `/secure/websockets/v3` gateway
 * (`requireAuth` with `?token=`, an `Authorization` header or `login` first; `allowedOrigins`;
 * `maxConnectionsPerObject: 3`) and its `/websockets/v3` one, the example service behind both. Every
 * line the Worker prints is kept, to check that the Redis token never shows.
 * Per-connection rate limits: test/core/limits.test.ts; the bridge's 401 without its token:
 * test/bridge/http.test.ts.
 */
import WebSocket from "ws";
import { beforeAll, describe, expect, it } from "vitest";
import { connect, readStream, startE2eWorker, useE2eStack } from "./helpers.js";

const workerLines: string[] = [];
const e2e = useE2eStack({
  // Every line the Worker prints, to check that the Redis token never shows.
  startWorker: (stack) => startE2eWorker(stack.bridge, {}, (line) => workerLines.push(line)),
});
let secureUrl: string;

beforeAll(() => {
  secureUrl = e2e.worker.wsUrl.replace("/websockets/v3", "/secure/websockets/v3");
});

/** The HTTP status of a WebSocket upgrade to `url` (101 when it opened). */
function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once("unexpected-response", (_request, response) => resolve(response.statusCode ?? 0));
    ws.once("open", () => {
      ws.close();
      resolve(101);
    });
    ws.once("error", reject);
  });
}

const AUTHORIZATION_REQUIRED = { code: "AuthorizationRequired", message: "Please log in." };

describe("authentication with requireAuth", () => {
  it("serves only the unauthenticated actions until the connection logs in, and never forwards the others", async () => {
    const client = await connect(`${secureUrl}?object=auth-1`);
    expect(await client.call({ ping: 1 })).toMatchObject({ ping: "pong" });
    expect(await client.call({ whoami: 1, loginid: "CR-FORGED" })).toMatchObject({
      msg_type: "whoami",
      error: AUTHORIZATION_REQUIRED,
    });
    expect((await readStream(e2e.redis, "general")).filter((entry) => entry.rpc === "whoami")).toEqual([]);
    // The first message authenticates: the service's `login` stores `loginid` in the stash.
    expect(await client.call({ login: "any" })).toMatchObject({ login: { loginid: "CR90000" } });
    expect(await client.call({ whoami: 1 })).toMatchObject({ whoami: { loginid: "CR90000" } });
    await client.close();
  });

  it("accepts a token in the query string or an Authorization header, and refuses a bad one", async () => {
    const byQuery = await connect(`${secureUrl}?object=auth-2&token=good-token`);
    expect(await byQuery.call({ whoami: 1 })).toMatchObject({ whoami: { loginid: "CR-TOKEN" } });
    const headerClient = await connect(`${secureUrl}?object=auth-2`, {
      headers: { authorization: "Bearer good-token" },
    });
    expect(await headerClient.call({ whoami: 1 })).toMatchObject({ whoami: { loginid: "CR-TOKEN" } });
    const bad = await connect(`${secureUrl}?object=auth-2&token=stolen`);
    expect(await bad.call({ whoami: 1 })).toMatchObject({
      error: { code: "AuthorizationRequired", message: "The token is not valid." },
    });
    expect(await bad.call({ ping: 1 })).toMatchObject({ ping: "pong" });
    await Promise.all([byQuery.close(), headerClient.close(), bad.close()]);
  });
});

describe("what a client cannot choose", () => {
  it("stashParams values come from the server-side stash, never from client fields of the same name", async () => {
    const client = await connect(e2e.worker.wsUrl);
    expect(await client.call({ whoami: 1, loginid: "CR-FORGED" })).toMatchObject({
      whoami: { loginid: null },
    });
    expect(await client.call({ login: "t" })).toMatchObject({ login: { loginid: "CR90000" } });
    expect(await client.call({ whoami: 1, loginid: "CR-FORGED" })).toMatchObject({
      whoami: { loginid: "CR90000" },
    });
    const entries = (await readStream(e2e.redis, "general"))
      .filter((entry) => entry.rpc === "whoami")
      .slice(-2);
    // The client's field stays inside `args` (its frame); the call parameter is the stash's.
    expect(entries.map((entry) => JSON.parse(entry.args ?? "{}").loginid)).toEqual([null, "CR90000"]);
    await client.close();
  });

  it("stream keys come only from configured categories, whatever the frame says", async () => {
    const client = await connect(e2e.worker.wsUrl);
    const keysBefore = new Set(await e2e.redis.keys("*"));
    expect(await client.call({ ping: 1, category: "evil", stream: "evil" })).toMatchObject({ ping: "pong" });
    const newKeys = (await e2e.redis.keys("*")).filter((key) => !keysBefore.has(key));
    expect(newKeys.filter((key) => !key.startsWith("wsp:reply:"))).toEqual([]);
    await client.close();
  });
});

describe("connection admission", () => {
  it("refuses an upgrade from an origin not in allowedOrigins with 403; allows listed origins and non-browsers", async () => {
    const url = `${secureUrl}?object=origins`;
    expect(await upgradeStatus(url, { origin: "https://evil.example" })).toBe(403);
    expect(await upgradeStatus(url, { origin: "https://app.example.com.evil.example" })).toBe(403);
    expect(await upgradeStatus(url, { origin: "https://app.example.com" })).toBe(101);
    expect(await upgradeStatus(url)).toBe(101);
  });

  it("closes a connection over maxConnectionsPerObject with 1013 Try again later; one leaves, one more fits", async () => {
    const url = `${secureUrl}?object=cap`;
    const clients = await Promise.all([connect(url), connect(url), connect(url)]);
    const extra = await connect(url);
    const reason = new Promise<string>((resolve) =>
      extra.ws.once("close", (_code, why) => resolve(String(why))),
    );
    expect((await extra.closed).code).toBe(1013);
    expect(await reason).toBe("Try again later");
    for (const client of clients) expect(await client.call({ ping: 1 })).toMatchObject({ ping: "pong" });
    await clients[0]?.close();
    const next = await connect(url);
    expect(await next.call({ ping: 1 })).toMatchObject({ ping: "pong" });
    // Another object has its own count.
    const elsewhere = await connect(`${secureUrl}?object=cap-2`);
    expect(await elsewhere.call({ ping: 1 })).toMatchObject({ ping: "pong" });
    await Promise.all([...clients.slice(1), next, elsewhere].map((client) => client.close()));
  });
});

describe("the Redis token", () => {
  it("never reaches a client, a log line, /health or /metrics, even when Redis calls fail", async () => {
    const client = await connect(e2e.worker.wsUrl);
    const frames = [await client.call({ ping: 1 })];
    await e2e.stack.bridge.stop(); // failures get logged: make some
    try {
      frames.push(await client.call({ ping: 1 }, 8000));
      const health = await fetch(`${e2e.worker.httpUrl}/health`);
      expect(health.status).toBe(503);
      frames.push((await health.json()) as Record<string, unknown>);
    } finally {
      await e2e.stack.bridge.restart();
    }
    const metrics = await fetch(`${e2e.worker.httpUrl}/metrics`);
    const exposed = [JSON.stringify(frames), await metrics.text(), ...workerLines].join("\n");
    expect(frames[1]).toMatchObject({ error: { code: "WrongResponse" } });
    expect(workerLines.length).toBeGreaterThan(0);
    expect(exposed).not.toContain(e2e.stack.bridge.token);
    // The bridge listens on loopback only and answers nothing without the token.
    expect(new URL(e2e.stack.bridge.url).hostname).toBe("127.0.0.1");
    expect((await fetch(`${e2e.stack.bridge.url}/ping`)).status).toBe(401);
    await client.close();
  });
});
