/**
 * A stand-in for Upstash's `/subscribe/<channel>` endpoint, given to the consumer-groups backend as its
 * `fetch`: each call opens a {@link FakeStream} the test drives (confirm, publish, end, fail), and a
 * service double that answers entries by publishing (as the Perl workers did).
 */
import type { FakeRedis, FakeHandler } from "./fake-redis.js";
import { replyPayload } from "./fake-redis.js";

/** One server-sent events stream the subscriber opened. */
export interface FakeStream {
  url: string;
  headers: Headers;
  signal: AbortSignal | undefined;
  /** Sends `subscribe,<channel>,1`. */
  confirm(): void;
  /** Sends `message,<channel>,<payload>`. */
  publish(payload: string): void;
  /** Ends the stream from the server side (as the bridge does when its Redis subscriber drops). */
  end(): void;
  /** True once the stream ended or the client aborted it. */
  readonly closed: boolean;
}

/** The fake endpoint: `fetch` for the backend, the streams it opened, and how it should answer. */
export interface FakePubSub {
  fetch: typeof fetch;
  streams: FakeStream[];
  /** Answer the next attempts with this HTTP status instead of a stream (0: stream). */
  failWithStatus: number;
  /** Confirm each new stream at once. */
  autoConfirm: boolean;
  /** The stream currently open (the last one not closed). */
  open(): FakeStream | undefined;
  /** Publishes to every open stream of `channel` (what Redis would do); returns the receiver count. */
  publishTo(channel: string, payload: string): number;
}

/** The channel of a `/subscribe/<channel>` URL, sent raw or percent-encoded. */
function channelOf(url: string): string {
  return decodeURIComponent(url.slice(url.lastIndexOf("/") + 1));
}

/** Creates a {@link FakePubSub}. */
export function fakePubSub(): FakePubSub {
  const encoder = new TextEncoder();
  const pubsub: FakePubSub = {
    streams: [],
    failWithStatus: 0,
    autoConfirm: true,
    open: () => pubsub.streams.filter((stream) => !stream.closed).at(-1),
    publishTo(channel, payload) {
      const receivers = pubsub.streams.filter((s) => !s.closed && channelOf(s.url) === channel);
      for (const stream of receivers) stream.publish(payload);
      return receivers.length;
    },
    async fetch(input, init) {
      const url = String(input);
      if (pubsub.failWithStatus) {
        return Response.json({ error: "Unauthorized" }, { status: pubsub.failWithStatus });
      }
      const channel = channelOf(url);
      let controller!: ReadableStreamDefaultController<Uint8Array>;
      let closed = false;
      const body = new ReadableStream<Uint8Array>({
        start: (c) => void (controller = c),
        cancel: () => void (closed = true),
      });
      const send = (text: string): void => {
        if (!closed) controller.enqueue(encoder.encode(text));
      };
      const stream: FakeStream = {
        url,
        headers: new Headers(init?.headers),
        signal: init?.signal ?? undefined,
        // Upstash's framing: one `data:` line per event, no blank line between events.
        confirm: () => send(`data: subscribe,${channel},1\n`),
        publish: (payload) => send(`data: message,${channel},${payload}\n`),
        end() {
          if (closed) return;
          closed = true;
          controller.close();
        },
        get closed() {
          return closed;
        },
      };
      init?.signal?.addEventListener("abort", () => {
        if (closed) return;
        closed = true;
        controller.error(init.signal?.reason);
      });
      pubsub.streams.push(stream);
      if (pubsub.autoConfirm) stream.confirm();
      return new Response(body, { headers: { "content-type": "text/event-stream" } });
    },
  };
  return pubsub;
}

/** Answers entries of `redis` by publishing to `who` on `pubsub`, after `delayMs`. */
export function servePublishing(
  redis: FakeRedis,
  pubsub: FakePubSub,
  handlers: Record<string, FakeHandler>,
  delayMs = 1,
): void {
  redis.onEntry = (entry) => {
    const handler = handlers[entry.fields.rpc ?? ""];
    if (!handler) return;
    const params = JSON.parse(entry.fields.args ?? "{}") as Record<string, unknown>;
    setTimeout(() => {
      const payload = replyPayload(entry.fields.message_id ?? "", handler(params));
      pubsub.publishTo(entry.fields.who ?? "", payload);
    }, delayMs);
  };
}
