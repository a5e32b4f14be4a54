/**
 * The runtime floor (baseline c): a Durable Object that answers each WebSocket message after exactly one
 * REST `PING` to the bridge. It is what any gateway on this runtime pays at least: the WebSocket hop into
 * workerd, one `fetch` to the REST endpoint, and the send back. Every upgrade goes to one object, named
 * by `?object=` (default `floor`), like the benchmark's gateway worker.
 *
 * It keeps the platform's rule on outgoing connections, as the gateway does: at most six `fetch`es of an
 * object wait for their response headers at once, the rest queue ("Simultaneous open connections",
 * https://developers.cloudflare.com/workers/platform/limits/, counted while waiting for headers since
 * https://developers.cloudflare.com/changelog/2026-04-09-relaxed-connection-limiting; an object's
 * concurrent requests share one I/O context, https://developers.cloudflare.com/dynamic-workers/platform/limits/).
 * Local workerd does not enforce it: without this the floor would keep 64 `PING`s in flight where a real
 * object keeps six, and with Redis some milliseconds away it would measure a floor no deployment has.
 *
 * With `?mode=poll` on the upgrade, a socket gets the poll transport's I/O with nothing of the gateway in
 * it (`bench/bare-poll.ts`): the gateway's exact `XADD`, then an `LPOP` of the object's reply key as soon as
 * the `XADD` is answered, and again at once while it comes back empty, then the answer. No gateway that
 * polls can answer sooner than this on the same runtime. With `?mode=sub`, the subscribe transport's I/O
 * in the same way: the object subscribes to its reply key's channel (server-sent events) once, then for
 * each message writes the entry and answers when the service's published reply arrives on the stream.
 * With `?mode=ping2` it sends two `PING`s one after the other: two REST round trips with no service at
 * work meanwhile.
 */
import { DurableObject } from "cloudflare:workers";
import { gatewayEntry } from "./entry.js";

interface FloorEnv {
  FLOOR: DurableObjectNamespace;
  UPSTASH_REDIS_REST_URL: string;
  UPSTASH_REDIS_REST_TOKEN: string;
}

/** Fetches waiting for their response headers at once, at most (see the module comment). */
const MAX_WAITING_FOR_HEADERS = 6;

/** Answers `{"req_id": N, ...}` with `{"msg_type":"ping","ping":"pong","req_id":N}` after one REST PING. */
export class FloorObject extends DurableObject<FloorEnv> {
  private waitingForHeaders = 0;
  private readonly queued: Array<() => void> = [];
  /** The poll and sub modes' reply key (and channel), and their last message id. */
  private readonly who = `bench:bare:${crypto.randomUUID()}`;
  private messages = 0;
  /** The sub mode's stream, open once confirmed; and the messages waiting for their reply on it. */
  private subscribed?: Promise<void>;
  private readonly replies = new Map<string, () => void>();

  override async fetch(request: Request): Promise<Response> {
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    // The hibernation API, as the gateway uses it; the mode's tag survives hibernation.
    const mode = new URL(request.url).searchParams.get("mode");
    this.ctx.acceptWebSocket(server, mode === "poll" || mode === "sub" || mode === "ping2" ? [mode] : []);
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(socket: WebSocket, message: string | ArrayBuffer): Promise<void> {
    let reqId: unknown;
    try {
      reqId = (JSON.parse(typeof message === "string" ? message : "{}") as { req_id?: unknown }).req_id;
      const [mode] = this.ctx.getTags(socket);
      if (mode === "poll") await this.barePoll(reqId);
      else if (mode === "sub") await this.bareSubscribe(reqId);
      else for (let pings = mode === "ping2" ? 2 : 1; pings > 0; pings--) await this.ping();
      socket.send(JSON.stringify({ msg_type: "ping", ping: "pong", req_id: reqId }));
    } catch (error) {
      socket.send(
        JSON.stringify({ msg_type: "ping", error: { code: "Floor", message: String(error) }, req_id: reqId }),
      );
    }
  }

  /** One REST `PING`. */
  private async ping(): Promise<void> {
    const { result } = (await (await this.rest('["PING"]')).json()) as { result?: string };
    if (result !== "PONG") throw new Error(`PING answered ${JSON.stringify(result)}`);
  }

  /** The poll mode: `XADD`, then `LPOP` from its answer on, with no pause, until the reply is there. */
  private async barePoll(reqId: unknown): Promise<void> {
    const messageId = String((this.messages += 1));
    const added = (await (
      await this.rest(JSON.stringify(gatewayEntry(this.who, messageId, reqId)))
    ).json()) as {
      result?: unknown;
    };
    if (typeof added.result !== "string") throw new Error(`XADD answered ${JSON.stringify(added)}`);
    const pop = JSON.stringify(["LPOP", this.who]);
    for (let polls = 0; polls < 100_000; polls++) {
      const { result } = (await (await this.rest(pop)).json()) as { result?: unknown };
      if (typeof result !== "string") continue;
      const reply = JSON.parse(result) as { message_id?: unknown };
      if (String(reply.message_id) === messageId) return;
    }
    throw new Error(`no reply to ${messageId}`);
  }

  /** The sub mode: the stream once, then `XADD`, answered when the service's reply comes on the stream. */
  private async bareSubscribe(reqId: unknown): Promise<void> {
    this.subscribed ??= this.subscribe();
    await this.subscribed;
    const messageId = String((this.messages += 1));
    const replied = new Promise<void>((resolve) => this.replies.set(messageId, resolve));
    const added = (await (
      await this.rest(JSON.stringify(gatewayEntry(this.who, messageId, reqId)))
    ).json()) as { result?: unknown };
    if (typeof added.result !== "string") throw new Error(`XADD answered ${JSON.stringify(added)}`);
    await replied;
  }

  /** Opens the stream of the reply channel; resolves once Redis confirmed the subscription. */
  private async subscribe(): Promise<void> {
    const response = await this.rest("[]", `/subscribe/${this.who}`);
    if (!response.ok || !response.body) throw new Error(`subscribe answered ${response.status}`);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const prefix = `data: message,${this.who},`;
    let confirm = (): void => undefined;
    const confirmed = new Promise<void>((resolve) => (confirm = resolve));
    void (async () => {
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        // A stream that ended is opened again by the next message.
        if (done) return void (this.subscribed = undefined);
        buffer += decoder.decode(value, { stream: true });
        for (let end = buffer.indexOf("\n"); end !== -1; end = buffer.indexOf("\n")) {
          const line = buffer.slice(0, end).replace(/\r$/, "");
          buffer = buffer.slice(end + 1);
          if (line.startsWith("data: subscribe,")) confirm();
          if (!line.startsWith(prefix)) continue;
          // One reply, or a JSON array of them (a service in `publish-batch` mode).
          const payload = JSON.parse(line.slice(prefix.length)) as unknown;
          for (const reply of Array.isArray(payload) ? payload : [payload]) {
            const id = String((reply as { message_id?: unknown }).message_id);
            this.replies.get(id)?.();
            this.replies.delete(id);
          }
        }
      }
    })();
    await confirmed;
  }

  /**
   * One REST request (`body`: a command's JSON array, to `path`), once fewer than six fetches wait for their
   * headers. `/subscribe/...` asks for server-sent events.
   */
  private async rest(body: string, path = ""): Promise<Response> {
    if (this.waitingForHeaders < MAX_WAITING_FOR_HEADERS) this.waitingForHeaders += 1;
    // A finishing fetch hands its place straight to the next in line, so the count never goes over.
    else await new Promise<void>((resolve) => this.queued.push(resolve));
    try {
      return await fetch(`${this.env.UPSTASH_REDIS_REST_URL}${path}`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${this.env.UPSTASH_REDIS_REST_TOKEN}`,
          ...(path ? { accept: "text/event-stream" } : {}),
        },
        body,
      });
    } finally {
      const next = this.queued.shift();
      if (next) next();
      else this.waitingForHeaders -= 1;
    }
  }

  override async webSocketClose(socket: WebSocket, code: number): Promise<void> {
    // 1005/1006 only describe a close and cannot be sent back.
    socket.close(code === 1005 || code === 1006 ? 1000 : code, "bye");
  }
}

export default {
  fetch(request: Request, env: FloorEnv): Response | Promise<Response> {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket")
      return new Response("floor", { status: 426 });
    const name = new URL(request.url).searchParams.get("object") ?? "floor";
    return env.FLOOR.get(env.FLOOR.idFromName(name)).fetch(request);
  },
};
