/**
 * A minimal server-sent events reader for the reply subscription: turns a response body into the `data`
 * of each event. Written here rather than taken from `@upstash/redis` because its `Subscriber` neither
 * reports when a stream ends nor lets the caller wait for the confirmation, and both matter here.
 */
import { ProtocolError } from "../core/errors.js";

/**
 * One event larger than this ends the stream with an error. Far above any reply the gateway forwards
 * (`maxResponseBytes` is 600 KB by default); it only keeps a broken stream from growing without bound.
 */
const MAX_EVENT_CHARS = 16 * 1024 * 1024;

/**
 * Yields the `data` of each event of a `text/event-stream` body, in order, as the HTML standard reads
 * it: lines end with LF, CRLF or CR; `data:` lines (one optional space after the colon removed) are
 * joined with LF; a blank line ends the event; comments (`: keep-alive`) and other fields are skipped.
 * Returns when the body ends; throws when reading fails (an aborted fetch, a dropped connection).
 */
export async function* readEventData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let dataLines: string[] = [];
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
        if (line === "") {
          if (dataLines.length > 0) yield dataLines.join("\n");
          dataLines = [];
        } else if (line.startsWith("data:")) {
          dataLines.push(line.slice(line.startsWith("data: ") ? 6 : 5));
        }
        lineEnd = buffer.search(/\r\n|\r|\n/);
      }
      if (buffer.length > MAX_EVENT_CHARS) throw new ProtocolError("a server-sent event exceeded 16 MB");
      if (done) return;
    }
  } finally {
    // Releases the connection when the consumer stops early (the stream is being closed on purpose).
    reader.cancel().catch(() => undefined);
  }
}
