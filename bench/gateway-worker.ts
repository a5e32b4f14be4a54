/**
 * The example deployment (`examples/gateway/worker.ts`) with one change for the benchmark: WebSocket upgrades
 * go to the object named by `?object=<name>` (default `bench`) instead of a random shard, so a run can
 * put every connection on one object (the "10,000 idle WebSockets on one object") or spread them
 * on purpose (`--objects N`). Every other request, and the Durable Object class itself, is the example's.
 */
import example, { GatewayObject } from "../examples/gateway/worker.js";
import type { GatewayEnv } from "../examples/gateway/worker.js";

export { GatewayObject };

export default {
  fetch(request: Request, env: GatewayEnv, ctx: ExecutionContext): Response | Promise<Response> {
    const url = new URL(request.url);
    const namespace = env.GATEWAY as DurableObjectNamespace | undefined;
    if (
      url.pathname === "/websockets/v3" &&
      request.headers.get("upgrade")?.toLowerCase() === "websocket" &&
      namespace
    ) {
      const name = url.searchParams.get("object") ?? "bench";
      return namespace.get(namespace.idFromName(name)).fetch(request);
    }
    return example.fetch(request, env, ctx);
  },
};
