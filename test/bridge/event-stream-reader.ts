import { TOKEN } from "./helpers.js";

/** A server-sent-event stream of the bridge, read with `fetch` the way `@upstash/redis` reads it. */
export interface EventStreamReader {
  response: Response;
  /** The next event's `data` (one `data: ` line); fails after `timeoutMs`. */
  next(timeoutMs?: number): Promise<string>;
  /** Every byte received so far, decoded as UTF-8. */
  text(): string;
  /** Comment lines (`: ...`) received so far. */
  comments(): string[];
  /** Resolves when the stream is over: ended by the server or aborted by {@link close}. */
  ended: Promise<void>;
  /** Aborts the request, as a client that goes away. */
  close(): void;
}

/** Opens `path` on the bridge as an event stream; the caller checks `response.status` before reading. */
export async function openEventStream(
  baseUrl: string,
  path: string,
  init: { method?: string; headers?: Record<string, string> } = {},
): Promise<EventStreamReader> {
  const abort = new AbortController();
  const response = await fetch(`${baseUrl}${path}`, {
    method: init.method ?? "GET",
    headers: { authorization: `Bearer ${TOKEN}`, accept: "text/event-stream", ...init.headers },
    signal: abort.signal,
  });
  let text = "";
  let parsedUpTo = 0;
  const events: string[] = [];
  const comments: string[] = [];
  let wake: () => void = () => undefined;

  // Line by line, as @upstash/redis reads it: each `data: ` line is one event, blank lines separate nothing.
  const parse = () => {
    let lineEnd: number;
    while ((lineEnd = text.indexOf("\n", parsedUpTo)) >= 0) {
      const line = text.slice(parsedUpTo, lineEnd);
      parsedUpTo = lineEnd + 1;
      if (line.startsWith("data: ")) events.push(line.slice(6));
      else if (line.startsWith(":")) comments.push(line);
    }
    wake();
  };
  const ended = (async () => {
    if (!response.body) return;
    const decoder = new TextDecoder();
    try {
      for await (const chunk of response.body) {
        text += decoder.decode(chunk as Uint8Array, { stream: true });
        parse();
      }
    } catch (error) {
      // An abort by close() is what the test asked for; anything else is a real failure.
      if (!abort.signal.aborted) throw error;
    }
  })();
  ended.catch(() => undefined); // a test that does not await `ended` must not see an unhandled rejection

  return {
    response,
    ended,
    text: () => text,
    comments: () => comments,
    close: () => abort.abort(),
    async next(timeoutMs = 2_000) {
      const deadline = Date.now() + timeoutMs;
      while (events.length === 0) {
        const remaining = deadline - Date.now();
        if (remaining <= 0)
          throw new Error(`no event within ${timeoutMs} ms; received so far: ${JSON.stringify(text)}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, remaining);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      return events.shift() as string;
    },
  };
}
