/**
 * The request entry as the gateway writes it (`entryFields`, PROTOCOL.md 3): optional fields are left out
 * when absent or empty, so a service written for the Perl system sees exactly the fields it knows.
 */
import { describe, expect, it } from "vitest";
import { entryFields, type StreamEntry } from "../../src/wire/index.js";

const base: StreamEntry = {
  method: "ping",
  who: "wsp:reply:obj:1",
  deadline: 1_764_170_030,
  args: { args: { ping: 1 } },
};
const BASE_FIELDS = [
  "rpc",
  "ping",
  "who",
  "wsp:reply:obj:1",
  "deadline",
  "1764170030",
  "args",
  '{"args":{"ping":1}}',
];

describe("entryFields", () => {
  it.each([
    ["absent", base],
    ["empty", { ...base, stashParams: [], correlationId: "", connection: "" }],
  ])("leaves out stash, req_log_context and connection when %s", (_, entry) => {
    expect(entryFields(entry)).toEqual(BASE_FIELDS);
    expect(entryFields(entry, "7")).toEqual([...BASE_FIELDS, "message_id", "7"]);
  });

  it("writes them in the protocol's order when present", () => {
    const entry = {
      ...base,
      stashParams: ["loginid"],
      correlationId: "c-1",
      connection: "http://gw/connections/r",
    };
    expect(entryFields(entry, "7")).toEqual([
      ...BASE_FIELDS,
      "stash",
      '["loginid"]',
      "req_log_context",
      '{"correlation_id":"c-1"}',
      "connection",
      "http://gw/connections/r",
      "message_id",
      "7",
    ]);
  });
});
