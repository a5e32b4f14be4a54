/**
 * The wire contract end to end, for generated requests and results: the gateway writes an entry (the
 * field list its XADD sends), the service SDK parses it, builds its reply, and the gateway parses that reply.
 * Whatever a client sent and a handler returned must arrive unchanged, and the reply must name the request.
 */
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  buildReplyBatch,
  buildReplyPayload,
  entryFields,
  parsePublishedReplies,
  parseReply,
  ReplyFormatError,
  parseRpcEntry,
  type RpcEntry,
  type StreamEntry,
} from "../../src/wire/index.js";

/** Any JSON value, with strings over the whole Unicode range (astral planes, combining marks, controls). */
const jsonValue = fc.jsonValue({ stringUnit: "binary", maxDepth: 4 });

/** Numbers at the edges of what JSON carries exactly. */
const bigNumber = fc.oneof(
  fc.constantFrom(Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, Number.MAX_VALUE, Number.MIN_VALUE),
  fc.constantFrom(2 ** 53 + 2, -(2 ** 63), 1e21, 0.1 + 0.2, 5e-324),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

/** What a handler may return, including the empty and falsy results a lossy `||` would drop. */
const result = fc.oneof(
  jsonValue,
  bigNumber,
  fc.constantFrom({}, [], "", 0, false, null),
  fc.dictionary(fc.string({ unit: "grapheme" }), fc.array(bigNumber)),
);

/** A client frame: always a JSON object after the gateway decoded it. */
const frame = fc.dictionary(fc.string({ unit: "binary" }), jsonValue, { maxKeys: 6 });

/** Stash values sent along (`stashParams`); `args` is taken by the frame itself. */
const stash = fc.dictionary(
  fc.string({ unit: "grapheme", minLength: 1 }).filter((name) => name !== "args"),
  jsonValue,
  { maxKeys: 4 },
);

/** Message ids as the gateway makes them (random hex) and as older gateways did (a counter). */
const messageId = fc.oneof(
  fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: 16, maxLength: 16 }),
  fc.nat().map(String),
);

const request = fc.record({
  method: fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 }),
  who: fc.string({ unit: "grapheme", minLength: 1 }).map((id) => `wsp:reply:${id}:1f2e3d4c5b6a7980`),
  deadline: fc.integer({ min: 0, max: 2 ** 40 }),
  frame,
  stash,
  correlationId: fc.option(fc.uuid(), { nil: undefined }),
  connection: fc.option(
    fc
      .string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: 32, maxLength: 32 })
      .map((secret) => `https://gateway.example.com/connections/c2hhcmQtMA.conn1.${secret}`),
    { nil: undefined },
  ),
  subscriptionId: fc.option(fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/), { nil: undefined }),
  messageId,
});

/** JSON text has no negative zero: `JSON.stringify(-0)` writes `0`, so `-0` arrives as `0`. */
function asJsonCarriesIt(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_key, item) => (Object.is(item, -0) ? 0 : item)));
}

describe("the wire contract between the gateway and a service", () => {
  it("a request survives the gateway's entry and the SDK's parser", () => {
    fc.assert(
      fc.property(request, (req) => {
        const entry: StreamEntry = {
          method: req.method,
          who: req.who,
          deadline: req.deadline,
          args: { args: req.frame, ...req.stash },
          stashParams: Object.keys(req.stash),
          correlationId: req.correlationId,
          connection: req.connection,
        };
        const fields = entryFields(entry, req.messageId);
        // The consumer-groups backend appends the id itself; both spellings must send the same XADD.
        expect([...entryFields(entry), "message_id", req.messageId]).toEqual(fields);
        expect(fields.every((field) => typeof field === "string")).toBe(true);

        const parsed = parseRpcEntry(fields);
        expect(parsed).not.toHaveProperty("malformed");
        expect(parsed).toEqual({
          method: req.method,
          who: req.who,
          messageId: req.messageId,
          deadlineSeconds: req.deadline,
          params: asJsonCarriesIt({ args: req.frame, ...req.stash }) as RpcEntry["params"],
          stashNames: Object.keys(req.stash),
          correlationId: req.correlationId,
          connection: req.connection,
        } satisfies RpcEntry);
      }),
      { numRuns: 300 },
    );
  });

  it("a handler's result survives the SDK's reply and the gateway's parser, under the request's message_id", () => {
    fc.assert(
      fc.property(request, result, fc.integer({ min: 0, max: 4e12 }), (req, handlerResult, nowMs) => {
        const fields = entryFields(
          { method: req.method, who: req.who, deadline: req.deadline, args: { args: req.frame } },
          req.messageId,
        );
        const parsed = parseRpcEntry(fields) as RpcEntry;

        const extra = { subscriptionId: req.subscriptionId };
        const reply = parseReply(buildReplyPayload(parsed.messageId, handlerResult, nowMs, extra));
        expect(typeof reply.messageId).toBe("string");
        expect(reply.messageId).toBe(req.messageId);
        expect(reply.subscriptionId).toBe(req.subscriptionId);
        expect(reply.response).toEqual({ result: asJsonCarriesIt(handlerResult), timestamp: nowMs / 1000 });
      }),
      { numRuns: 300 },
    );
  });

  it("replies batched into one published message each reach the gateway under their own message_id", () => {
    fc.assert(
      fc.property(fc.array(result, { minLength: 1, maxLength: 8 }), (results) => {
        const payloads = results.map((r, i) => buildReplyPayload(String(i), r, 1_700_000_000_000));
        const message = buildReplyBatch(payloads);
        // One reply is published exactly as a Perl-era service publishes it, never wrapped.
        if (payloads.length === 1) expect(message).toBe(payloads[0]);
        const replies = parsePublishedReplies(message) as ReturnType<typeof parseReply>[];
        expect(replies.map((reply) => reply.messageId)).toEqual(results.map((_, i) => String(i)));
        replies.forEach((reply, i) =>
          expect(reply.response).toEqual({ result: asJsonCarriesIt(results[i]), timestamp: 1_700_000_000 }),
        );
      }),
      { numRuns: 200 },
    );
  });

  it("an unusable reply in a batch fails only itself, with its message_id when it has one", () => {
    const good = buildReplyPayload("1", "pong", 1_700_000_000_000);
    const outcomes = parsePublishedReplies(`[${good},{"message_id":"2"},42]`);
    expect(outcomes).toHaveLength(3);
    expect(outcomes[0]).toMatchObject({ messageId: "1", response: { result: "pong" } });
    expect(outcomes[1]).toBeInstanceOf(ReplyFormatError);
    expect((outcomes[1] as ReplyFormatError).messageId).toBe("2");
    expect(outcomes[2]).toBeInstanceOf(ReplyFormatError);
    expect(parsePublishedReplies("not json")[0]).toBeInstanceOf(ReplyFormatError);
  });

  it("a handler that returns nothing replies null, and the gateway accepts it", () => {
    const reply = parseReply(buildReplyPayload("7", undefined, 1_700_000_000_000));
    expect(reply).toEqual({ messageId: "7", response: { result: null, timestamp: 1_700_000_000 } });
  });

  it("a subscription id that is not a short token is not taken from a reply", () => {
    for (const id of ["", "a b", "x".repeat(65), "../x", 7]) {
      const raw = JSON.stringify({ message_id: "7", response: { result: 1 }, subscription: { id } });
      expect(parseReply(raw).subscriptionId).toBeUndefined();
    }
  });

  it("a numeric message_id from an older service names the same request as its string", () => {
    fc.assert(
      fc.property(fc.nat(), result, (id, handlerResult) => {
        const raw = JSON.stringify({ message_id: id, response: { result: handlerResult } });
        expect(parseReply(raw).messageId).toBe(String(id));
      }),
    );
  });

  it("the wire module imports nothing of the project and nothing platform-specific", () => {
    const dir = fileURLToPath(new URL("../../src/wire/", import.meta.url));
    for (const file of readdirSync(dir)) {
      const source = readFileSync(`${dir}${file}`, "utf8");
      const specifiers = [...source.matchAll(/\bfrom\s+"([^"]+)"/g)].map((match) => match[1] ?? "");
      expect(
        specifiers.filter((specifier) => !/^\.\/[a-z-]+\.js$/.test(specifier)),
        file,
      ).toEqual([]);
    }
  });
});
