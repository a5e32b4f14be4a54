/**
 * Hostile input, property-based (issue 6, item 2). fast-check drives the real dispatcher with frames a
 * broken or hostile client could send. Each frame is built together with the outcome PROTOCOL.md section 1
 * promises for it, so the expectation comes from how the frame was made (a bad key was put in, bytes were
 * spliced), not from the gateway's code paths.
 *
 * The backend is a fake that answers like the example service (examples/example-service.ts: ping, time,
 * echo, app_error, fail), after a JSON round trip of the call params as Redis would do. A fake is enough
 * here because this test targets the core's decoding, sanity check and dispatch; the real stack has its own
 * suites in test/e2e. Generated keys avoid `stash`, `error` and `status`: echo hands the whole frame back
 * as its result, and those keys of a result mean something (stash merge, application error, unwrapping).
 *
 * Per run: one fuzzed connection (replaced after each close) and a control connection whose requests must
 * all succeed meanwhile. After all runs: Object.prototype unpolluted, no limit counters left, heap bounded.
 * Frames holding a `__proto__` key are the exception: the key is dropped, and the sanity of what remains
 * is asked of the sanity check itself (test/core/sanity.test.ts covers it).
 * A failure prints fast-check's seed and path: replay with FUZZ_SEED=<seed> FUZZ_PATH=<path>; run longer
 * with FUZZ_RUNS=<n> (default 300 runs of 34-37 frames, so at least 10,200 frames).
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  createDispatcher,
  createMemoryConnection,
  createSanityCheck,
  type Backend,
  type FrameInfo,
  type JsonObject,
  type Logger,
  type MemoryConnection,
} from "../../src/core/index.js";

const MAX_MESSAGE_BYTES = 65_536; // the gateway default (64 KiB)
const MAX_RESPONSE_BYTES = 600_000; // PROTOCOL 1.2 default
const ACTIONS = ["ping", "time", "echo", "app_error", "fail"] as const;
const RESERVED = new Set<string>([...ACTIONS, "req_id", "passthrough", "stash", "error", "status"]);
const KEY_RULE = /^[A-Za-z0-9_-]{1,50}$/; // PROTOCOL 1.1.2
const INTERNAL = "Sorry, an error occurred while processing your request.";
const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

/** The example service's answers (`result`) by method, given the decoded `args`. */
const service: Record<string, (args: JsonObject) => unknown> = {
  ping: () => "pong",
  time: () => 1_700_000_000,
  echo: (args) => args,
  app_error: (args) => ({
    error: {
      code: "InvalidValue",
      message_to_client: "The value you sent is not accepted.",
      details: { field: "app_error", received: args.app_error ?? null },
    },
  }),
  fail: () => ({ error: { code: "InternalServerError", message_to_client: INTERNAL } }), // it throws
};

/** What PROTOCOL.md promises for one frame. */
type Outcome =
  | { kind: "reply"; reply: JsonObject }
  | { kind: "close1009" }
  | { kind: "silent"; hook: boolean }
  | { kind: "unserialisable"; reqId: unknown };

interface Case {
  label: string;
  data: string | Uint8Array | ArrayBuffer;
  info?: FrameInfo;
  outcome: Outcome;
}

// ---- the model: PROTOCOL.md 1.1-1.3 written as plainly as possible ----

const gatewayError = (code: string, message: string, details?: JsonObject): JsonObject => ({
  msg_type: "error",
  error: details ? { code, message, details } : { code, message },
});
const replyWith = (reply: JsonObject): Outcome => ({ kind: "reply", reply });
const BAD_REQUEST = "The application sent an invalid request.";
const badRequest = (errorCode?: string) =>
  gatewayError("BadRequest", BAD_REQUEST, errorCode ? { error_code: errorCode } : undefined);
/** BadRequest with `details.error_code`: INVALID_UTF8 or INVALID_JSON. */
const invalid = (errorCode: string) => replyWith(badRequest(errorCode));

const checkSanity = createSanityCheck();

/** The reply to a decoded request whose sanity is known from how it was built. */
function requestOutcome(text: string, built: boolean): Outcome {
  // `__proto__` keys are dropped at any depth when a frame is decoded (PROTOCOL.md 1.1.1); what was bad
  // inside one no longer counts, so the sanity of such a frame is that of what remains.
  // Frames are NFC-normalised before parsing, as the Perl proxy did.
  const message = JSON.parse(text.replace(/^\uFEFF/, "").normalize("NFC"), (key, value: unknown) =>
    key === "__proto__" ? undefined : value,
  ) as JsonObject;
  const sane = text.includes('"__proto__"') ? checkSanity(message) === undefined : built;
  // `"req_id": null` is not echoed (Perl).
  const reqId = Object.hasOwn(message, "req_id") ? (message.req_id ?? undefined) : undefined;
  try {
    JSON.stringify(message);
  } catch {
    return { kind: "unserialisable", reqId }; // nested too deep for JSON.stringify
  }
  const action = sane ? ACTIONS.find((name) => Object.hasOwn(message, name)) : undefined;
  let reply: JsonObject;
  if (!sane) reply = gatewayError("SanityCheckFailed", "Parameters sanity check failed.");
  else if (!action) reply = gatewayError("UnrecognisedRequest", "Unrecognised request");
  else reply = rpcReply(action, service[action]!(JSON.parse(JSON.stringify(message)) as JsonObject));
  const full: JsonObject = { ...reply, echo_req: message };
  if (reqId !== undefined) full.req_id = reqId;
  if (Object.hasOwn(message, "passthrough")) full.passthrough = message.passthrough;
  if (Buffer.byteLength(JSON.stringify(full)) <= MAX_RESPONSE_BYTES) return replyWith(full);
  const tooLarge = gatewayError("ResponseTooLarge", "Response too large.");
  return replyWith(reqId === undefined ? tooLarge : { ...tooLarge, req_id: reqId });
}

type AppError = { code: string; message_to_client: string; details?: JsonObject };

function rpcReply(action: string, result: unknown): JsonObject {
  const { error } = result as { error?: AppError };
  if (!error) return { msg_type: action, [action]: result };
  const details = error.details && Object.keys(error.details).length > 0 ? { details: error.details } : {};
  return { msg_type: action, error: { code: error.code, message: error.message_to_client, ...details } };
}

/** A text frame that is not a request: BadRequest, with INVALID_JSON for bad and falsy JSON. */
function nonRequestOutcome(text: string): Outcome {
  let value: unknown;
  try {
    value = JSON.parse(text.replace(/^\uFEFF/, ""));
  } catch {
    return invalid("INVALID_JSON");
  }
  return value ? replyWith(badRequest()) : invalid("INVALID_JSON");
}

// ---- generators: JSON texts, with their sanity known by construction ----

const obj = (entries: [string, string][]) =>
  `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(",")}}`;
const arr = (items: string[]) => `[${items.join(",")}]`;
const uniqueEntries = (key: fc.Arbitrary<string>, value: fc.Arbitrary<string>, maxLength: number) =>
  fc.uniqueArray(fc.tuple(key, value), { maxLength, selector: ([k]) => k });

// Letters of several scripts, Common-script symbols and emoji, C0/C1 controls: all pass the check.
const saneChar = fc
  .oneof(
    fc.integer({ min: 0x20, max: 0x7e }),
    fc.integer({ min: 0x00, max: 0x1f }),
    fc.integer({ min: 0x7f, max: 0x9f }),
    fc.constantFrom(0xe9, 0x436, 0x4e2d, 0x20ac, 0x1f600, 0xa0, 0x2028, 0x200d, 0xe01),
  )
  .map((cp) => String.fromCodePoint(cp));
// Private use, unassigned, Armenian and Tibetan punctuation, a noncharacter, a lone surrogate: all fail.
const badChar = fc.constantFrom("\uE000", "\u0378", "\u0589", "\u0F04", "\uFFFF", "\uD800");
const numberText = fc.oneof(
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n)),
  fc.constantFrom("1e400", "-1e400", "123456789012345678901234567890", "5e-324", "-0", "1E+2", "0.1e-7"),
);
const saneScalar = fc.oneof(
  numberText,
  fc.string({ unit: saneChar, maxLength: 300 }).map((s) => JSON.stringify(s)),
  fc.constantFrom(
    ...["true", "false", "null", '""'],
    JSON.stringify("a".repeat(300)),
    JSON.stringify("😀".repeat(300)),
  ),
);
const protoKey = fc.constantFrom(
  ..."__proto__ constructor prototype toString hasOwnProperty polluted".split(" "),
);
const saneKey = fc.oneof(protoKey, fc.stringMatching(KEY_RULE));
const topKey = saneKey.filter((key) => !RESERVED.has(key));
const badKey = fc.oneof(
  fc.constantFrom("", "a b", "a.b", "x".repeat(51), "ключ", "__proto__ ", "\u0000", "😀"),
  fc.string({ unit: "binary", minLength: 1, maxLength: 60 }).filter((key) => !KEY_RULE.test(key)),
);
const badValue = fc.oneof(
  fc.tuple(fc.string({ unit: saneChar, maxLength: 50 }), badChar).map(([s, c]) => JSON.stringify(s + c)),
  fc.tuple(fc.stringMatching(/^[a-z ]{0,20}$/), badChar).map(([s, c]) => `"${s}${c}"`), // raw in the text
  fc.integer({ min: 301, max: 2000 }).map((n) => JSON.stringify("y".repeat(n))),
  fc.integer({ min: 301, max: 400 }).map((n) => JSON.stringify("é".repeat(n))),
);

/** Anything at all, for places the sanity check does not inspect (two levels down, inside arrays). */
const { wild } = fc.letrec<{ wild: string }>((tie) => ({
  wild: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.oneof(
      { arbitrary: saneScalar, weight: 4 },
      { arbitrary: fc.string({ unit: "binary", maxLength: 40 }).map((s) => JSON.stringify(s)), weight: 4 },
      { arbitrary: fc.nat(3000).map((n) => JSON.stringify("z".repeat(301 + n))), weight: 1 },
      { arbitrary: fc.nat(50).map((n) => `"${"\uD800".repeat(n + 1)}"`), weight: 1 },
      {
        arbitrary: fc.constantFrom('{"__proto__":{"a":1}}', '{"constructor":{"prototype":{"a":1}}}'),
        weight: 2,
      },
    ),
    fc.array(tie("wild"), { maxLength: 4 }).map(arr),
    uniqueEntries(fc.oneof(saneKey, badKey), tie("wild"), 4).map(obj),
  ),
}));
// Nesting deep enough to hurt a recursive parser, yet shallow enough for JSON.stringify (see deepCase).
const nested = fc.tuple(fc.nat(500), fc.boolean(), protoKey, wild).map(([depth, asArray, key, inner]) => {
  const [open, close] = asArray ? ["[", "]"] : [`{"${key}":`, "}"];
  return `${open.repeat(depth + 20)}${inner}${close.repeat(depth + 20)}`;
});
const container = fc.oneof(
  { arbitrary: fc.array(wild, { maxLength: 4 }).map(arr), weight: 4 },
  { arbitrary: uniqueEntries(fc.oneof(protoKey, badKey), wild, 4).map(obj), weight: 4 },
  { arbitrary: nested, weight: 1 },
);
const saneOrContainer = fc.oneof({ arbitrary: saneScalar, weight: 3 }, { arbitrary: container, weight: 1 });
const saneNested = uniqueEntries(saneKey, saneOrContainer, 5).map(obj);
const saneValue = fc.oneof(saneScalar, saneNested, fc.array(saneOrContainer, { maxLength: 5 }).map(arr));
/** One entry that fails the check: a bad key or value at the top, one level down, or in an array. */
const badEntry: fc.Arbitrary<[string, string]> = fc.oneof(
  fc.tuple(badKey, fc.oneof(saneScalar, saneNested)),
  fc.tuple(topKey, badValue),
  fc.tuple(
    topKey,
    fc.tuple(saneKey, badValue).map((entry) => obj([entry])),
  ),
  fc.tuple(
    topKey,
    fc.tuple(badKey, saneScalar).map((entry) => obj([["ok", "1"], entry])),
  ),
  fc.tuple(
    topKey,
    fc.tuple(fc.array(saneScalar, { maxLength: 3 }), badValue).map(([a, v]) => arr([...a, v])),
  ),
);

/** A request text: action keys (maybe none), req_id, passthrough, extra keys, maybe one known violation. */
const request = fc
  .record({
    actions: fc.shuffledSubarray([...ACTIONS], { maxLength: 2 }),
    actionValue: fc.oneof(saneScalar, saneNested),
    reqId: fc.option(fc.nat(), { nil: undefined }),
    passthrough: fc.option(saneNested, { nil: undefined }),
    extras: uniqueEntries(topKey, saneValue, 6),
    bad: fc.oneof({ arbitrary: fc.constant(undefined), weight: 2 }, { arbitrary: badEntry, weight: 1 }),
    rotate: fc.nat(),
  })
  .map(({ actions, actionValue, reqId, passthrough, extras, bad, rotate }) => {
    const entries = [...actions.map((a): [string, string] => [a, actionValue]), ...extras];
    if (reqId !== undefined) entries.push(["req_id", String(reqId)]);
    if (passthrough !== undefined) entries.push(["passthrough", passthrough]);
    const kept = bad ? entries.filter(([k]) => k !== bad[0]) : entries;
    if (bad) kept.push(bad);
    const at = rotate % (kept.length || 1);
    return { text: obj([...kept.slice(at), ...kept.slice(0, at)]), sane: !bad };
  });

const encode = (text: string) => new TextEncoder().encode(text);
const wellFormed = (text: string) => Buffer.from(text, "utf8").toString("utf8") === text;
const splice = (bytes: Uint8Array, at: number, insert: readonly number[]) =>
  Uint8Array.from([...bytes.subarray(0, at), ...insert, ...bytes.subarray(at)]);
// Each is invalid wherever it is inserted (a stray continuation byte breaks the count of the sequence it
// lands in); a truncated sequence is only used at the very end, where nothing can complete it.
const invalidUtf8 = fc.constantFrom(
  ...[[0xff], [0xc0, 0x80], [0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80]],
);
const caseOf = (label: string, data: Case["data"], outcome: Outcome, binary?: boolean): Case =>
  binary === undefined ? { label, data, outcome } : { label, data, outcome, info: { binary } };

/** One request delivered in one of the ways a client (or a runtime) can deliver it. */
const requestCase: fc.Arbitrary<Case> = fc
  .tuple(request, fc.nat(99), invalidUtf8, fc.nat())
  .map(([{ text, sane }, way, bad, at]): Case => {
    const same = () => requestOutcome(text, sane);
    if (way < 45) return caseOf(sane ? "request" : "insane", text, same());
    if (way < 52) return caseOf("bom", `\uFEFF${text}`, same());
    if (way < 57) return caseOf("whitespace", ` \t\r\n${text}\n\r\t `, same());
    if (way < 65 && wellFormed(text)) {
      return caseOf("utf8-bytes-as-text", encode(way < 61 ? text : `\uFEFF${text}`), same(), false);
    }
    if (way < 75) {
      const bytes = encode(text);
      const data =
        way < 73 ? splice(bytes, at % bytes.length, bad) : splice(bytes, bytes.length, [0xe2, 0x82]);
      return caseOf("invalid-utf8", data, invalid("INVALID_UTF8"), false);
    }
    if (way < 82) return caseOf("truncated", text.slice(0, -1), invalid("INVALID_JSON"));
    if (way < 86) return caseOf("double-bom", `\uFEFF\uFEFF${text}`, invalid("INVALID_JSON"));
    if (way < 90 && text.length > 2) {
      const broken = `{"${String.fromCharCode(at % 32)}${text.slice(2)}`; // raw control char in a key
      return caseOf("raw-control", broken, invalid("INVALID_JSON"));
    }
    const data = way < 94 ? encode(text) : way < 97 ? (encode(text).buffer as ArrayBuffer) : text;
    return caseOf("binary", data, { kind: "silent", hook: text.length > 0 }, true);
  });

const NOT_JSON = ["", " ", "{", "}", "{'ping':1}", "{ping:1}", '{"ping":1,}', '{"ping":1}}', "NaN", "\u0000"];
const FALSY_JSON = ["0", "-0", "0.0e5", "false", "null", '""', " null "];

/** Frames that are not requests at all. */
const otherCase: fc.Arbitrary<Case> = fc.oneof(
  fc
    .jsonValue()
    .filter((v) => typeof v !== "object" || v === null || Array.isArray(v))
    .map((v) => JSON.stringify(v))
    .map((text) => caseOf("non-object", text, nonRequestOutcome(text))),
  fc
    .oneof(
      fc.constantFrom(...NOT_JSON, ...FALSY_JSON),
      fc.string({ unit: "binary", maxLength: 100 }).map((s) => `x${s}`),
    )
    .map((text) => caseOf("not-json", text, nonRequestOutcome(text))),
  fc.uint8Array({ maxLength: 300 }).map((bytes): Case => {
    const text = Buffer.from(bytes).toString("utf8");
    const outcome = Buffer.from(text).equals(bytes) ? nonRequestOutcome(text) : invalid("INVALID_UTF8");
    return caseOf("random-bytes-as-text", bytes, outcome, false);
  }),
  fc
    .uint8Array({ maxLength: 2000 })
    .map((bytes) => caseOf("binary", bytes, { kind: "silent", hook: bytes.length > 0 })),
);

/**
 * Frames of exactly `maxMessageBytes` (answered) or a little over it (closed with 1009), padded with
 * one- to four-byte characters or raw lone surrogates (3 bytes each, 6 once escaped in the reply).
 */
const sizeCase: fc.Arbitrary<Case> = fc
  .record({
    pad: fc.constantFrom("a", "é", "€", "😀", "\uD800"),
    action: fc.constantFrom(...ACTIONS),
    reqId: fc.nat(),
    excess: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3000 })),
    way: fc.nat(2),
  })
  .map(({ pad, action, reqId, excess, way }) => {
    const head = `{"${action}":1,"req_id":${reqId},"pad":[["`;
    const fill = MAX_MESSAGE_BYTES + excess - Buffer.byteLength(`${head}"]]}`);
    const count = Math.floor(fill / Buffer.byteLength(pad));
    const text = `${head}${pad.repeat(count)}${"a".repeat(fill - count * Buffer.byteLength(pad))}"]]}`;
    if (excess === 0) return caseOf("at-size-limit", text, requestOutcome(text, true));
    return caseOf("oversized", way === 0 ? text : encode(text), { kind: "close1009" }, way === 2);
  });

/** Requests nested far deeper than MAX_JSON_DEPTH (1000): refused with BadRequest before anything recurses. */
const deepCase: fc.Arbitrary<Case> = fc
  .tuple(fc.constantFrom(...ACTIONS), fc.nat(), fc.integer({ min: 30_000, max: 50_000 }))
  .map(([action, reqId, depth]) => {
    const text = `{"${action}":1,"req_id":${reqId},"deep":${"[".repeat(depth)}${"]".repeat(depth)}}`;
    return caseOf("too-deep", text, replyWith(badRequest()));
  });

/** Every kind of frame; whatever its kind, a frame over `maxMessageBytes` only closes the connection. */
const frame: fc.Arbitrary<Case> = fc
  .oneof(
    { arbitrary: requestCase, weight: 150 },
    { arbitrary: otherCase, weight: 45 },
    { arbitrary: sizeCase, weight: 4 },
    { arbitrary: deepCase, weight: 1 },
  )
  .map((c): Case => {
    const bytes = typeof c.data === "string" ? Buffer.byteLength(c.data) : c.data.byteLength;
    const outcome: Outcome = bytes > MAX_MESSAGE_BYTES ? { kind: "close1009" } : c.outcome;
    return Object.assign({ ...c, outcome }, { [fc.toStringMethod]: () => `${c.label}: ${preview(c.data)}` });
  });

// ---- the harness ----

function preview(value: unknown): string {
  const text =
    typeof value === "string" ? value : value instanceof ArrayBuffer ? "ArrayBuffer" : String(value);
  return JSON.stringify(text.length > 300 ? `${text.slice(0, 300)}... (${text.length} chars)` : text);
}

/** Sorted keys, own properties only (`__proto__` included when it is one), so replies compare exactly. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (typeof value !== "object" || value === null) return JSON.stringify(value);
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical((value as JsonObject)[k])}`).join(",")}}`;
}

function check(c: Case, replies: JsonObject[], conn: MemoryConnection, hookCalls: number): void {
  const fail = (what: string) => {
    throw new Error(`${c.label} frame ${preview(c.data)}: ${what}; got ${preview(JSON.stringify(replies))}`);
  };
  const { outcome } = c;
  if (outcome.kind === "close1009") {
    if (replies.length > 0 || conn.closed?.code !== 1009) fail("expected close 1009 and no reply");
    return;
  }
  if (conn.closed) fail(`unexpected close ${conn.closed.code}`);
  if (outcome.kind === "silent") {
    if (replies.length > 0 || hookCalls !== (outcome.hook ? 1 : 0))
      fail(`expected no reply, onBinaryFrame ${outcome.hook}`);
    return;
  }
  let expected = outcome.kind === "reply" ? outcome.reply : gatewayError("WrongResponse", INTERNAL);
  if (outcome.kind === "unserialisable" && outcome.reqId !== undefined)
    expected = { ...expected, req_id: outcome.reqId };
  if (replies.length !== 1) fail(`expected exactly one reply`);
  if (canonical(replies[0]) !== canonical(JSON.parse(JSON.stringify(expected)))) {
    fail(`expected ${preview(JSON.stringify(expected))}`);
  }
}

const PROTOTYPES = [Object.prototype, Array.prototype, Function.prototype];
const PRISTINE = PROTOTYPES.map((proto) => Object.getOwnPropertyNames(proto).join());
const unpolluted = () =>
  PROTOTYPES.every((proto, i) => Object.getOwnPropertyNames(proto).join() === PRISTINE[i]) &&
  ({} as { polluted?: unknown }).polluted === undefined;

/** A dispatcher on a hand-driven clock, the fake service, and counters of what nobody should see. */
function createHarness() {
  const counts = { binaryFrames: 0, unexpectedFailures: 0 };
  // Counts instead of recording: a logger that kept every call would grow with the run.
  const logger: Logger = {
    warn: () => undefined,
    error: (message) => void (message.startsWith("unexpected failure") && counts.unexpectedFailures++),
  };
  const clock = { nowMs: 0 };
  const backend: Backend = {
    async call(req, params) {
      const { args } = JSON.parse(JSON.stringify(params)) as { args: JsonObject };
      return { result: service[req.method]!(args) };
    },
  };
  const dispatcher = createDispatcher(
    { actions: ACTIONS.map((name): [string] => [name]), onBinaryFrame: () => void counts.binaryFrames++ },
    { default: backend },
    { logger, now: () => clock.nowMs },
  );
  return { dispatcher, clock, counts };
}

type Harness = ReturnType<typeof createHarness>;

/** One run: the frames on a fuzzed connection, control requests on another, then both close. */
async function runFrames(h: Harness, cases: Case[]): Promise<void> {
  let conn = createMemoryConnection();
  const control = createMemoryConnection();
  const controlSent: Promise<void>[] = [];
  for (const [i, c] of cases.entries()) {
    h.clock.nowMs += 5; // 200 frames/s: inside the default rate, so the limits never interfere
    if (i % 6 === 0)
      controlSent.push(h.dispatcher.handleFrame(control, JSON.stringify({ ping: 1, req_id: i })));
    const [before, hooks] = [conn.sent.length, h.counts.binaryFrames];
    await h.dispatcher.handleFrame(conn, c.data, c.info);
    check(c, conn.sent.slice(before), conn, h.counts.binaryFrames - hooks);
    if (conn.closed) {
      await h.dispatcher.handleClose(conn, conn.closed.code, conn.closed.reason);
      conn = createMemoryConnection();
    }
  }
  await Promise.all(controlSent);
  const answered = control.sent.map((reply) => `${String(reply.req_id)}:${String(reply.ping)}`).sort();
  const asked = cases.flatMap((_, i) => (i % 6 === 0 ? [`${i}:pong`] : [])).sort();
  if (answered.join() !== asked.join()) throw new Error(`control connection got ${answered.join()}`);
  for (const open of [conn, control]) {
    open.disconnect();
    await h.dispatcher.handleClose(open, 1000, "");
  }
  if (!unpolluted()) throw new Error("a prototype was polluted");
}

/** `gc()`, also when node was started without --expose-gc (the flag can be set at run time). */
function findGc(): (() => void) | undefined {
  try {
    setFlagsFromString("--expose-gc");
    return runInNewContext("gc") as () => void;
  } catch {
    return undefined; // not Node, or the flag is refused: the test says so and fails
  }
}

describe("hostile frames, property-based", () => {
  it("gives every frame its documented reply or close, leaves others and the prototypes alone", async () => {
    const seed = Number(process.env.FUZZ_SEED ?? Date.now() ^ (Math.random() * 2 ** 31));
    console.log(`fuzz seed ${seed} (replay: FUZZ_SEED=${seed} npx vitest run test/core/fuzz.test.ts)`);
    const h = createHarness();
    const gc = findGc();
    // The heap check needs a full collection before and after; without gc() it would pass on any growth.
    if (!gc) throw new Error("gc() is unavailable (run node with --expose-gc): the heap check cannot run");
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    const started = performance.now();
    const labels = new Map<string, number>();
    let frames = 0;
    const property = fc.asyncProperty(fc.array(frame, { minLength: 34, maxLength: 37 }), async (cases) => {
      frames += cases.length;
      for (const c of cases) labels.set(c.label, (labels.get(c.label) ?? 0) + 1);
      await runFrames(h, cases);
    });
    // Shrinking frames this large can take long: it is cut off after a minute, still printing seed and path.
    const plugins = [fc.interruptAfterTimeLimit(60_000, { failOnInterrupt: true })];
    await fc.assert(property, { numRuns: RUNS, seed, path: process.env.FUZZ_PATH, plugins });
    gc();
    const heapGrowthMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
    const ms = Math.round(performance.now() - started);
    console.log(
      `fuzz: ${frames} frames in ${RUNS} runs, ${ms} ms, heap ${heapGrowthMb.toFixed(1)} MB` +
        `; ${[...labels].map(([label, n]) => `${label} ${n}`).join(", ")}`,
    );
    expect(frames).toBeGreaterThanOrEqual(Math.min(10_000, RUNS * 34));
    expect(h.counts.unexpectedFailures).toBe(0);
    expect(h.dispatcher.limitedConnections).toBe(0);
    expect(heapGrowthMb).toBeLessThan(64);
  }, 120_000);
});
