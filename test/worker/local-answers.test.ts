/**
 * Actions answered inside the object (`answerLocally`): a heartbeat costs no Redis command, and its reply
 * is built like any other (msg_type, req_id, passthrough, echo_req).
 */
import { describe, expect, it } from "vitest";
import { openSocket, uniqueObject } from "./helpers.js";
import { fakeRedis } from "./test-worker.js";

describe("answerLocally", () => {
  it("answers a heartbeat in the object with no Redis command", async () => {
    const socket = await openSocket(uniqueObject("heartbeat"));
    const before = fakeRedis.commands.length;
    for (let i = 1; i <= 3; i++) {
      expect(await socket.call({ heartbeat: 1, req_id: i, passthrough: { n: i } })).toEqual({
        msg_type: "heartbeat",
        heartbeat: "pong",
        req_id: i,
        passthrough: { n: i },
        echo_req: { heartbeat: 1, req_id: i, passthrough: { n: i } },
      });
    }
    expect(fakeRedis.commands.slice(before)).toEqual([]);
    // The same connection's backend calls still go through Redis.
    expect(await socket.call({ ping: 1 })).toMatchObject({ ping: "pong" });
    expect(fakeRedis.count("XADD")).toBeGreaterThan(0);
    socket.ws.close(1000, "done");
  });
});
