/**
 * Perl's hook semantics over the real stack (redis-server, the REST bridge, the example service, the e2e
 * Worker of test/e2e/e2e-worker.ts under `wrangler dev`): a deleted category means `general`, a hook's
 * per-request `rpc_timeout_extend_offset`, the `response` hook's return, `req.callRpc`, Perl option names
 * refused, and the endpoint with a trailing slash.
 */
import { describe, expect, it } from "vitest";
import { connect, readStream, useE2eStack } from "./helpers.js";
import { sleep } from "../support/wait.js";

const e2e = useE2eStack();

describe("Perl's hook semantics over the real stack", () => {
  it("sends a call whose category a hook deleted to the general stream (deriv's active queues)", async () => {
    const client = await connect(e2e.worker.wsUrl);
    expect(await client.call({ active_queue: 1, general: 1, req_id: 1 }, 8000)).toMatchObject({
      msg_type: "active_queue",
      active_queue: "pong",
      req_id: 1,
    });
    // With its category kept, the call lands on `unread`, which no service reads: no reply within 2 s.
    expect(await client.call({ active_queue: 1, req_id: 2 }, 8000)).toMatchObject({
      req_id: 2,
      error: { code: "WrongResponse" },
    });
    expect((await readStream(e2e.redis, "unread")).map((entry) => entry.rpc)).toEqual(["ping"]);
    await client.close();
  });

  it("waits as long as a hook's rpc_timeout_extend_offset on the request says", async () => {
    const client = await connect(e2e.worker.wsUrl);
    // The service sleeps 0.6 s (the 2 s deadline is at least 1 s away): within the 2 s wait...
    expect(await client.call({ hurried: 1, ms: 600, req_id: 1 }, 8000)).toMatchObject({
      msg_type: "hurried",
      hurried: { slept_ms: 600 },
    });
    // ...but not within the 0.2 s this request's hook leaves.
    expect(await client.call({ hurried: 1, ms: 600, hurry: 1, req_id: 2 }, 8000)).toMatchObject({
      req_id: 2,
      error: { code: "WrongResponse" },
    });
    await client.close();
  });

  it("sends what the response hook returns, and nothing when it returns null", async () => {
    const client = await connect(e2e.worker.wsUrl);
    expect(await client.call({ shaped: 1, req_id: 1 })).toMatchObject({
      msg_type: "shaped",
      shaped: true,
      req_id: 1,
    });
    client.sendRaw(JSON.stringify({ shaped: 1, drop: 1, req_id: 2 }));
    // The next reply is the ping's: the dropped one never came (a reply would arrive well within 1 s).
    await sleep(1000);
    expect(await client.call({ ping: 1, req_id: 3 })).toMatchObject({ req_id: 3, ping: "pong" });
    await client.close();
  });

  it("answers insteadOfForward with another method through req.callRpc", async () => {
    const client = await connect(e2e.worker.wsUrl);
    expect(await client.call({ via_call_rpc: 1, req_id: 1 })).toMatchObject({
      msg_type: "called",
      called: { echo: { from: "via_call_rpc" } },
      req_id: 1,
    });
    await client.close();
  });

  it("refuses a configuration written with Perl's option names, naming the option to use", async () => {
    const client = await connect(e2e.worker.wsUrl);
    const reply = await client.call({ perl_names: 1 });
    expect(reply.perl_names).toMatch(
      /"whoami": `stash_params` is the Perl plugin's name: write `stashParams`/,
    );
    await client.close();
  });

  it("accepts the endpoint with a trailing slash, as Perl did", async () => {
    const client = await connect(`${e2e.worker.wsUrl}/`);
    expect(await client.call({ ping: 1 })).toMatchObject({ ping: "pong" });
    await client.close();
  });
});
