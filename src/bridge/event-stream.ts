import type { IncomingMessage, ServerResponse } from "node:http";
import type { RedisCommand } from "./commands.js";
import { BridgeHttpError } from "./errors.js";
import type { PubSubHub, PubSubListener, PubSubMessage, PubSubTopic } from "./pubsub-hub.js";

/**
 * A slow reader's unsent events are dropped with its stream past this many buffered bytes, as redis-server
 * itself disconnects a pub/sub client whose output buffer passes its hard limit (32 MB by default).
 */
const MAX_BUFFERED_BYTES = 32 * 1024 * 1024;

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
 * when the client stops reading, or when the bridge closes.
 */
export async function serveEventStream(
  request: IncomingMessage,
  response: ServerResponse,
  topics: PubSubTopic[],
  context: EventStreamContext,
): Promise<void> {
  if (!/\btext\/event-stream\b/i.test(request.headers.accept ?? "")) {
    // Production only streams for this Accept header (its docs always send it); refusing here keeps a
    // client that forgets it from passing locally and failing against Upstash.
    throw new BridgeHttpError(
      400,
      "ERR subscribe streams server-sent events: send Accept: text/event-stream",
    );
  }
  let opened = false;
  let ended = false;
  let lost = false;
  let keepAliveTimer: NodeJS.Timeout | undefined;
  const queued: Buffer[] = [];
  const eventEnd = context.framing === "upstash" ? "\n" : "\n\n";

  const stream = {
    end(): void {
      if (ended) return;
      ended = true;
      clearInterval(keepAliveTimer);
      context.openStreams.delete(stream);
      for (const topic of topics) context.hub.unsubscribe(topic, listener);
      if (opened) response.end();
    },
  };
  const send = (event: Buffer): void => {
    if (ended) return;
    if (!opened) {
      queued.push(event);
    } else if (response.writableLength > MAX_BUFFERED_BYTES) {
      stream.end();
    } else {
      response.write(event);
    }
  };
  const listener: PubSubListener = {
    onMessage: (message) => send(messageEvent(message, eventEnd)),
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
