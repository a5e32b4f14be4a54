/**
 * A minimal server-sent events reader for the reply subscription: turns a response body into the `data`
 * of each event. Written here rather than taken from `@upstash/redis` because its `Subscriber` neither
 * reports when a stream ends nor lets the caller wait for the confirmation, and both matter here.
 */
import { ProtocolError } from "../core/errors.js";

/**
 * One line longer than this ends the stream with an error. Far above any reply the gateway forwards
 * (`maxResponseBytes` is 600 KB by default); it only keeps a broken stream from growing without bound.
 */
const MAX_EVENT_CHARS = 16 * 1024 * 1024;

/**
 * Calls `onData` with the `data` of each event of a `text/event-stream` body, in order, in both framings a
 * server may use:
 *
 * - Upstash's, as its REST API documents it (https://upstash.com/docs/redis/features/restapi, "Subscribe &
 *   Publish Commands") and as `@upstash/redis` reads it (`pkg/http.ts`: the body split at `\n`, each line
 *   that starts with `data: ` handed on as one message): one `data:` line per event and no blank line
 *   between events (`data: subscribe,chat,1\ndata: message,chat,hello\n`);
 * - the standard one (HTML "Server-sent events"), where a blank line ends each event.
 *
 * So every `data:` line is one event, handed on as soon as its line end arrives; blank lines, comments
 * (`: keep-alive`) and other fields are skipped. Lines end with LF, CRLF or CR; one optional space after
 * `data:` is removed. A standard event of several `data:` lines is therefore read as several events, one per
 * line, exactly as `@upstash/redis` reads it: neither framing can carry a payload holding a raw line break
 * to that client (Upstash's sends the payload on one line), and every reply the gateway reads is JSON
 * without one. Resolves when the body ends; rejects when reading fails (an aborted fetch, a dropped
 * connection) or `onData` throws. A callback rather than an async iterator: an iterator costs promises and
 * turns per event on the reply path of every pushed reply.
 */
export async function readEventData(
  body: ReadableStream<Uint8Array>,
  onData: (data: string) => void,
): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      let lineEnd = buffer.search(/\r\n|\r|\n/);
      while (lineEnd !== -1) {
        // A CR at the very end may be the first half of a CRLF still in flight: wait for more.
        if (buffer[lineEnd] === "\r" && lineEnd === buffer.length - 1 && !done) break;
        const line = buffer.slice(0, lineEnd);
        buffer = buffer.slice(lineEnd + (buffer.startsWith("\r\n", lineEnd) ? 2 : 1));
        if (line.startsWith("data:")) onData(line.slice(line.startsWith("data: ") ? 6 : 5));
        lineEnd = buffer.search(/\r\n|\r|\n/);
      }
      if (buffer.length > MAX_EVENT_CHARS) throw new ProtocolError("a server-sent event exceeded 16 MB");
      if (done) return;
    }
  } finally {
    // Releases the connection when reading stops early (the stream is being closed on purpose, or failed).
    reader.cancel().catch(() => undefined);
  }
}
