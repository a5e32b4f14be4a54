/**
 * How the gateway reads a service's reply (PROTOCOL.md section 4) and its reply-channel events: what is
 * accepted as a result or an error, and which unusable replies carry the `message_id` that fails their
 * request at once instead of at its timeout. (The workers-pool tests drop such replies on the fake Redis;
 * these pin the parser itself, where mutation testing found its checks untested.)
 */
import { describe, expect, it } from "vitest";
import {
  buildReplyPayload,
  parseReply,
  parseSubscriptionEvent,
  ProtocolError,
  ReplyFormatError,
} from "../../src/wire/index.js";

/** The error `parseReply(raw)` throws. */
function refusal(raw: string): ReplyFormatError {
  try {
    parseReply(raw);
  } catch (error) {
    if (error instanceof ReplyFormatError) return error;
    throw error;
  }
  throw new Error(`accepted: ${raw}`);
}

describe("parseReply", () => {
  it("reads a result with its timestamp, a numeric message_id as a string, and the reply key", () => {
    expect(
      parseReply('{"message_id":7,"who":"wsp:reply:o:1","response":{"result":{"a":1},"timestamp":1.5}}'),
    ).toEqual({ messageId: "7", who: "wsp:reply:o:1", response: { result: { a: 1 }, timestamp: 1.5 } });
    expect(parseReply('{"message_id":"8","response":{"result":null}}')).toEqual({
      messageId: "8",
      who: undefined,
      response: { result: null },
    });
  });

  it("ignores a `who` that is not a string and a timestamp that is not a number", () => {
    expect(parseReply('{"message_id":"1","who":5,"response":{"result":2,"timestamp":"x"}}')).toEqual({
      messageId: "1",
      who: undefined,
      response: { result: 2 },
    });
  });

  it("reads an error, filling a missing code and message; a null error means a result", () => {
    expect(parseReply('{"message_id":"1","response":{"error":{"code":"Boom","message":"no"}}}')).toEqual(
      expect.objectContaining({ response: { error: { code: "Boom", message: "no" } } }),
    );
    expect(parseReply('{"message_id":"1","response":{"error":{}}}').response).toEqual({
      error: { code: "InternalServerError", message: "" },
    });
    expect(parseReply('{"message_id":"1","response":{"error":null,"result":3}}').response).toEqual({
      result: 3,
    });
  });

  it("refuses unusable replies, naming the message_id whenever it could be read", () => {
    const cases: [string, string, string | undefined][] = [
      ["not json", "reply is not JSON", undefined],
      ["[1]", "reply is not a JSON object", undefined],
      ["null", "reply is not a JSON object", undefined],
      ['{"response":{"result":1}}', "reply has no message_id", undefined],
      ['{"message_id":true,"response":{"result":1}}', "reply has no message_id", undefined],
      ['{"message_id":"9"}', "reply has no response object", "9"],
      ['{"message_id":"9","response":[1]}', "reply has no response object", "9"],
      ['{"message_id":"9","response":{"error":"boom"}}', "response.error is not an object", "9"],
      ['{"message_id":"9","response":{}}', "response has neither result nor error", "9"],
    ];
    for (const [raw, message, messageId] of cases) {
      const error = refusal(raw);
      expect([raw, error.message, error.messageId]).toEqual([raw, message, messageId]);
      expect(error).toBeInstanceOf(ProtocolError);
      expect(error.name).toBe("ProtocolError");
    }
  });
});

describe("buildReplyPayload and the subscription id", () => {
  it("adds a subscription only when one is given, and reads back only a short token", () => {
    expect(JSON.parse(buildReplyPayload("1", undefined, 2_000))).toEqual({
      message_id: "1",
      response: { result: null, timestamp: 2 },
    });
    const withId = buildReplyPayload("1", "r", 2_000, { subscriptionId: "sub_1-A" });
    expect(parseReply(withId).subscriptionId).toBe("sub_1-A");
    const bad = buildReplyPayload("1", "r", 2_000, { subscriptionId: "has space" });
    expect(parseReply(bad).subscriptionId).toBeUndefined();
  });
});

describe("parseSubscriptionEvent", () => {
  const channel = "p,x:wsp:reply:o:1";
  it("takes the payload after the whole channel, commas and all", () => {
    expect(parseSubscriptionEvent(`message,${channel},{"a":1,"b":2}`, channel)).toEqual({
      kind: "message",
      payload: '{"a":1,"b":2}',
    });
    expect(parseSubscriptionEvent(`subscribe,${channel},1`, channel)).toEqual({ kind: "subscribed" });
  });
  it("ignores other channels and other event types", () => {
    expect(parseSubscriptionEvent(`message,other,{"a":1}`, channel)).toEqual({ kind: "other" });
    expect(parseSubscriptionEvent(`unsubscribe,${channel},0`, channel)).toEqual({ kind: "other" });
    expect(parseSubscriptionEvent(`message,${channel}`, channel)).toEqual({ kind: "other" });
  });
});
