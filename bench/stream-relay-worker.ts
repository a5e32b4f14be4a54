/**
 * The Worker of `bench/stream-relay.ts`: one Durable Object that either echoes each WebSocket message
 * (`?mode=echo`) or subscribes to the bridge's server-sent events for channel `relay` and sends every chunk
 * it reads on to the WebSocket (`?mode=stream`): the subscribe transport's reply path with nothing of the
 * gateway in it.
 */
import { DurableObject } from "cloudflare:workers";

interface RelayEnv {
  RELAY: DurableObjectNamespace;
  UPSTASH_REDIS_REST_URL: string;
  UPSTASH_REDIS_REST_TOKEN: string;
}

export class RelayObject extends DurableObject<RelayEnv> {
  override async fetch(request: Request): Promise<Response> {
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server);
    if (new URL(request.url).searchParams.get("mode") === "stream") void this.relay(server);
    return new Response(null, { status: 101, webSocket: client });
  }

  private async relay(socket: WebSocket): Promise<void> {
    const response = await fetch(`${this.env.UPSTASH_REDIS_REST_URL}/subscribe/relay`, {
      method: "POST",
      headers: { authorization: `Bearer ${this.env.UPSTASH_REDIS_REST_TOKEN}`, accept: "text/event-stream" },
      body: "[]",
    });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      socket.send(decoder.decode(value));
    }
  }

  override async webSocketMessage(socket: WebSocket, message: string | ArrayBuffer): Promise<void> {
    socket.send(typeof message === "string" ? message : "binary");
  }

  override async webSocketClose(socket: WebSocket): Promise<void> {
    socket.close(1000, "bye");
  }
}

export default {
  fetch(request: Request, env: RelayEnv): Response | Promise<Response> {
    return env.RELAY.get(env.RELAY.idFromName("relay")).fetch(request);
  },
};
