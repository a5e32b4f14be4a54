/**
 * The Worker of `bench/hot-path.ts --workerd`: one Durable Object that runs the hot-path loop
 * (`bench/hot-path-loop.ts`) inside workerd, `GET /?warmup=N&n=M`, and answers what the run did. The caller
 * measures workerd's CPU around the request.
 */
import { DurableObject } from "cloudflare:workers";
import { runHotPath } from "./hot-path-loop.js";

export class HotPathObject extends DurableObject {
  override async fetch(request: Request): Promise<Response> {
    const params = new URL(request.url).searchParams;
    const run = await runHotPath(Number(params.get("warmup") ?? 0), Number(params.get("n") ?? 1000), (loop) =>
      loop(),
    );
    return Response.json(run);
  }
}

export default {
  fetch(request: Request, env: { HOT_PATH: DurableObjectNamespace }): Promise<Response> {
    return env.HOT_PATH.get(env.HOT_PATH.idFromName("hot-path")).fetch(request);
  },
};
