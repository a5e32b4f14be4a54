/**
 * The bridge serves only what Upstash's REST API serves (src/bridge/upstash-commands.ts): an unlisted command
 * is a 400 naming it on every endpoint, every command this project sends through REST is served, and a
 * blocking XREADGROUP cannot slip through by naming its group or consumer "STREAMS" or "BLOCK".
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startBridgeFixture, type BridgeFixture } from "./helpers.js";

let fixture: BridgeFixture;
beforeAll(async () => {
  fixture = await startBridgeFixture();
});
afterAll(async () => {
  await fixture?.stop();
});

const key = (name: string) => `allow:${randomUUID()}:${name}`;
const post = (path: string, body: unknown) =>
  fixture.http(path, { method: "POST", body: JSON.stringify(body) });

/** Commands redis-server runs but Upstash's compatibility list does not have. */
const UNLISTED: string[][] = [
  ["DEBUG", "SLEEP", "0"],
  ["MODULE", "LIST"],
  ["SWAPDB", "0", "1"],
  ["CONFIG", "GET", "maxmemory"],
  ["INFO"],
  ["OBJECT", "ENCODING", "k"],
  ["EVAL_RO", "return 1", "0"],
  ["XINFO", "STREAM", "s"],
  ["SCRIPT", "KILL"],
];
const named = (command: string[]) =>
  new RegExp(
    `'${(command[0] === "XINFO" || command[0] === "SCRIPT" ? command.slice(0, 2) : command.slice(0, 1)).join(" ")}' is not supported`,
  );

describe("commands Upstash does not serve", () => {
  it.each(UNLISTED)(
    "%s is a 400 naming it on /, /pipeline, /multi-exec and path style",
    async (...command) => {
      const message = named(command);
      expect(await post("/", command)).toMatchObject({
        status: 400,
        body: { error: expect.stringMatching(message) },
      });
      expect(await post("/pipeline", [["PING"], command])).toMatchObject({
        status: 200,
        body: [{ result: "PONG" }, { error: expect.stringMatching(message) }],
      });
      expect(await post("/multi-exec", [["PING"], command])).toMatchObject({
        status: 400,
        body: { error: expect.stringMatching(/^EXECABORT command 2 was refused: ERR /) },
      });
      const path = `/${command.map(encodeURIComponent).join("/")}`;
      expect(await fixture.http(path)).toMatchObject({
        status: 400,
        body: { error: expect.stringMatching(message) },
      });
    },
  );

  it("refuses XREADGROUP with BLOCK even when the group or consumer is named STREAMS or BLOCK", async () => {
    const blocking = [
      ["XREADGROUP", "GROUP", "STREAMS", "c", "BLOCK", "0", "STREAMS", "s", ">"],
      ["XREADGROUP", "GROUP", "g", "STREAMS", "BLOCK", "0", "STREAMS", "s", ">"],
      ["XREADGROUP", "COUNT", "1", "GROUP", "g", "c", "block", "0", "STREAMS", "s", ">"],
      ["XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "s", "$"],
    ];
    for (const command of blocking) {
      expect(await post("/", command), JSON.stringify(command)).toMatchObject({
        status: 400,
        body: { error: expect.stringMatching(/^ERR XREAD(GROUP)? with BLOCK is not supported/) },
      });
    }
  });

  it("serves XREADGROUP without BLOCK whose group and consumer are named BLOCK and STREAMS", async () => {
    const stream = key("s");
    await post("/", ["XGROUP", "CREATE", stream, "BLOCK", "0", "MKSTREAM"]);
    await post("/", ["XADD", stream, "*", "f", "v"]);
    const response = await post("/", [
      "XREADGROUP",
      "GROUP",
      "BLOCK",
      "STREAMS",
      "COUNT",
      "5",
      "STREAMS",
      stream,
      ">",
    ]);
    expect(response).toMatchObject({
      status: 200,
      body: { result: [[stream, [[expect.any(String), ["f", "v"]]]]] },
    });
  });
});

describe("commands this project sends through the REST API", () => {
  it("are all served: the gateway's and the service SDK's REST transport's", async () => {
    const [stream, replies, deadLetters] = [key("stream"), key("reply"), key("dead")];
    const commands: string[][] = [
      // The gateway: the request entry (length and age caps), its replies, health, push.
      ["XADD", stream, "MAXLEN", "~", "100000", "*", "rpc", "ping"],
      ["XADD", stream, "MINID", "~", "0-1", "*", "rpc", "ping"],
      ["LPOP", replies, "10"],
      ["PING"],
      ["PUBLISH", key("channel"), "{}"],
      // The service SDK's REST transport.
      ["XGROUP", "CREATE", stream, "workers", "0", "MKSTREAM"],
      ["XREADGROUP", "GROUP", "workers", "w1", "COUNT", "10", "STREAMS", stream, ">"],
      ["XPENDING", stream, "workers", "IDLE", "0", "-", "+", "10"],
      ["XCLAIM", stream, "workers", "w2", "0", "0-1"],
      ["XACK", stream, "workers", "0-1"],
      ["RPUSH", replies, "{}"],
      ["EXPIRE", replies, "60"],
      ["XADD", deadLetters, "MAXLEN", "~", "1000", "*", "rpc", "ping"],
      // Tests' own checks.
      ["XINFO", "GROUPS", stream],
      ["XLEN", stream],
      ["DEL", replies],
    ];
    for (const command of commands) {
      const response = await post("/", command);
      expect(response.status, `${JSON.stringify(command)}: ${JSON.stringify(response.body)}`).toBe(200);
    }
  });
});
