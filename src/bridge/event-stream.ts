import type { IncomingMessage, ServerResponse } from "node:http";
import type { RedisCommand } from "./commands.js";
import { BridgeHttpError } from "./errors.js";
import type { PubSubHub, PubSubListener, PubSubMessage, PubSubTopic } from "./pubsub-hub.js";

/**
 * How long a stream ended for a slow reader may take to hand over what it still holds before its connection
 * is cut, so a reader that stopped for good cannot keep the buffer (or its place in the per-token count).
 */
const OVERFLOW_DRAIN_MS = 10_000;

/**
 * How events are separated on the wire. `"upstash"`: one `data:` line per event and no blank line between
 * events, as Upstash documents its stream and as `@upstash/redis` reads it. `"blank-line"`: each event also
 * ends with a blank line, as the HTML standard frames server-sent events (what a browser `EventSource`
 * needs); a reader that handles only one of the two shows up in tests run against both.
 */
export type SseFraming = "upstash" | "blank-line";

/** The framings {@link SseFraming} allows, for option checks. */
export const SSE_FRAMINGS: readonly SseFraming[] = ["upstash", "blank-line"];

/** What the SSE streams of one bridge share. */
export interface EventStreamContext {
  hub: PubSubHub;
  framing: SseFraming;
  /** Interval of `: keep-alive` comment lines on a quiet stream; 0 sends none. */
  keepAliveMs: number;
  /** The error to answer with when Redis cannot be reached. */
  unavailableError(cause: unknown): BridgeHttpError;
  /** Extra response headers (the sync token). */
  headers(): Record<string, string>;
  /** Every open stream, so the bridge's `close()` can end them. */
  openStreams: Set<{ end(): void }>;
  /** Most streams one token may hold at once (429 past it). */
  maxStreamsPerToken: number;
  /** Most channels or patterns in one stream's path (400 past it). */
  maxChannelsPerStream: number;
  /** Unsent bytes past which a stream is ended for its slow reader. */
  maxBufferedBytes: number;
  /** Streams held per token (keyed by the token's digest) until their connection is gone. */
  streamsByToken: Map<string, number>;
  /** Each event waits this long before it is written (half the simulated round trip), ms. */
  oneWayMs: number;
}

/**
 * The topics of a path-style `SUBSCRIBE`/`PSUBSCRIBE` (`/subscribe/chat`, `/psubscribe/user:*`, several
 * separated by `/`), or `undefined` for any other command. Duplicates are dropped, as Redis ignores them.
 */
export function subscribeTopics(command: RedisCommand): PubSubTopic[] | undefined {
  const [name, ...args] = command;
  const upper = name.toUpperCase();
  if (upper !== "SUBSCRIBE" && upper !== "PSUBSCRIBE") return undefined;
  if (args.length === 0) {
    throw new BridgeHttpError(400, `ERR wrong number of arguments for '${name.toLowerCase()}' command`);
  }
  const kind = upper === "SUBSCRIBE" ? "channel" : "pattern";
  return [...new Set(args.map(String))].map((topic) => ({ kind, name: topic }));
}

/**
 * Serves `/subscribe/<channel>` or `/psubscribe/<pattern>` as server-sent events, in the framing of Upstash
 * (https://upstash.com/docs/redis/features/restapi, "Subscribe & Publish Commands") that `@upstash/redis`
 * parses line by line, one event per `data:` line and no blank line between events:
 *
 *   data: subscribe,chat,1               once per channel, after Redis confirmed it (1, 2, ... per stream)
 *   data: message,chat,hello             per message; the payload is everything after the second comma
 *   data: psubscribe,user:*,1            for a pattern
 *   data: pmessage,user:*,user:42,hi     per pattern message: pattern, channel, payload
 *
 * With `framing: "blank-line"` each event (and each keep-alive comment) is followed by a blank line instead.
 * Payloads are written byte for byte, never base64: `Upstash-Encoding` does not apply to the stream, and
 * `@upstash/redis` does not decode it (it sends that header by default and JSON-parses the payloads).
 * The channel in the path may be sent raw (`/subscribe/wsp:reply:a`, as `@upstash/redis` sends it) or
 * percent-encoded (`wsp%3Areply%3Aa`): both name the same channel. The headers are only
 * sent once Redis has confirmed every subscription, so a 200 means "publish now and it arrives"; if Redis
 * cannot be reached the answer is a 503 JSON error as for other commands. The stream ends when the client
 * goes away (its subscriptions are released at once), when the subscriber connection to Redis is lost,
 * when the client stops reading (past `maxBufferedBytes` unsent, with a last `: closed: ...` comment), or when
 * the bridge closes. A token holds at most `maxStreamsPerToken` streams (429 past it) and a path names at most
 * `maxChannelsPerStream` topics (400 past it).
 */
export async function serveEventStream(
  request: IncomingMessage,
  response: ServerResponse,
  topics: PubSubTopic[],
  context: EventStreamContext,
  tokenKey: string,
): Promise<void> {
  if (!/\btext\/event-stream\b/i.test(request.headers.accept ?? "")) {
    // Production only streams for this Accept header (its docs always send it); refusing here keeps a
    // client that forgets it from passing locally and failing against Upstash.
    throw new BridgeHttpError(
      400,
      "ERR subscribe streams server-sent events: send Accept: text/event-stream",
    );
  }
  if (topics.length > context.maxChannelsPerStream) {
    throw new BridgeHttpError(
      400,
      `ERR ${topics.length} channels in one subscribe stream is over the bridge's limit of ` +
        `${context.maxChannelsPerStream} (option maxChannelsPerStream)`,
    );
  }
  const held = context.streamsByToken.get(tokenKey) ?? 0;
  if (held >= context.maxStreamsPerToken) {
    throw new BridgeHttpError(
      429,
      `ERR this token already holds ${held} subscribe streams, the bridge's limit ` +
        "(option maxStreamsPerToken); close one first",
    );
  }
  context.streamsByToken.set(tokenKey, held + 1);
  // Counted until the connection is gone, not merely until end(): a stream ended for a slow reader still
  // holds its unsent bytes until they are read or the connection is cut.
  response.once("close", () => {
    const left = (context.streamsByToken.get(tokenKey) ?? 1) - 1;
    if (left > 0) context.streamsByToken.set(tokenKey, left);
    else context.streamsByToken.delete(tokenKey);
  });
  let opened = false;
  let ended = false;
  let lost = false;
  let keepAliveTimer: NodeJS.Timeout | undefined;
  const queued: Buffer[] = [];
  const eventEnd = context.framing === "upstash" ? "\n" : "\n\n";

  const stream = {
    end(lastLine?: string): void {
      if (ended) return;
      ended = true;
      clearInterval(keepAliveTimer);
      context.openStreams.delete(stream);
      for (const topic of topics) context.hub.unsubscribe(topic, listener);
      if (opened) response.end(lastLine);
    },
  };
  let queuedBytes = 0;
  let overflowedBeforeOpen = false;
  const dropForSlowReader = (): void => {
    // A comment line: readers skip it, a person reading the stream sees why it ended.
    stream.end(
      `: closed: the reader fell behind by ${response.writableLength} unsent bytes, over the bridge's ` +
        `limit of ${context.maxBufferedBytes} (option maxStreamBufferBytes); later messages are dropped${eventEnd}`,
    );
    const cut = setTimeout(() => response.destroy(), OVERFLOW_DRAIN_MS);
    cut.unref();
    response.once("close", () => clearTimeout(cut));
  };
  const send = (event: Buffer): void => {
    if (ended) return;
    if (!opened) {
      // Messages that arrive while Redis confirms the other channels wait here, under the same bound.
      if (queuedBytes >= context.maxBufferedBytes) {
        overflowedBeforeOpen = true;
        return;
      }
      queued.push(event);
      queuedBytes += event.length;
    } else if (response.writableLength >= context.maxBufferedBytes) {
      dropForSlowReader();
    } else {
      response.write(event);
    }
  };
  const listener: PubSubListener = {
    onMessage: (message) => {
      const event = messageEvent(message, eventEnd);
      // Timers of the same length fire in the order they were set: the events keep their order.
      if (context.oneWayMs > 0) setTimeout(() => send(event), context.oneWayMs);
      else send(event);
    },
    onLost: () => {
      lost = true;
      stream.end();
    },
  };

  context.openStreams.add(stream);
  // "close" also fires when the client disconnects before the stream is open.
  response.once("close", () => stream.end());
  try {
    await Promise.all(topics.map((topic) => context.hub.subscribe(topic, listener)));
  } catch (error) {
    stream.end();
    throw context.unavailableError(error);
  }
  if (lost) throw context.unavailableError(new Error("the subscriber connection was lost"));
  // Ended while Redis was confirming: either the client left (then nobody reads this answer) or the bridge
  // is closing, and a request must not be left without an answer.
  if (ended) throw new BridgeHttpError(503, "ERR the bridge is shutting down");

  response.writeHead(200, {
    ...context.headers(),
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
  });
  opened = true;
  topics.forEach((topic, index) => {
    const confirmation = topic.kind === "channel" ? "subscribe" : "psubscribe";
    response.write(`data: ${confirmation},${topic.name},${index + 1}${eventEnd}`);
  });
  for (const event of queued.splice(0)) send(event);
  if (overflowedBeforeOpen) dropForSlowReader();
  if (context.keepAliveMs > 0) {
    // SSE comment lines: clients ignore them, but they keep idle proxies from cutting a quiet stream and
    // make a vanished client show up as a write error instead of a subscription held forever.
    keepAliveTimer = setInterval(() => send(Buffer.from(`: keep-alive${eventEnd}`)), context.keepAliveMs);
    keepAliveTimer.unref();
  }
}

function messageEvent({ pattern, channel, message }: PubSubMessage, eventEnd: string): Buffer {
  const head = pattern === undefined ? "data: message," : `data: pmessage,${pattern},`;
  return Buffer.concat([Buffer.from(head), channel, Buffer.from(","), message, Buffer.from(eventEnd)]);
}
