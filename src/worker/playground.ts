/**
 * The playground: a one-file page at `GET /` (and `/playground`) to call the gateway from a browser, and
 * `GET /actions`, the configured actions with an example frame each, which the page offers as a list.
 */
import type { Hono } from "hono";
import type { ActionOptions, JsonObject } from "../core/types.js";
import type { GatewayEnv } from "./config.js";
import { PLAYGROUND_HTML } from "./playground-page.js";

/** The `playground` option's object form. */
export interface PlaygroundOptions {
  /**
   * Example frames by action name, shown when the action is picked (e.g. `{ echo: { echo: 1, text: "hi" } }`).
   * @default `{ "<action>": 1 }` for each action
   */
  examples?: Record<string, JsonObject>;
}

/** One entry of `GET /actions`. */
export interface ActionListing {
  name: string;
  msgType: string;
  example: JsonObject;
}

/** The body of `GET /actions`. */
export interface ActionsBody {
  basePath: string;
  actions: ActionListing[];
}

/**
 * The page's security headers: scripts and styles only from the page itself (they are inline), WebSocket
 * and fetch only to this host, never framed (it sends requests on the visitor's behalf).
 */
const PAGE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "content-security-policy":
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self' ws: wss:; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-cache",
};

/** The `/actions` body for a configuration: names in priority order, each with its example frame. */
export function listActions(
  actionTable: ReadonlyMap<string, ActionOptions>,
  basePath: string,
  examples: Record<string, JsonObject> = {},
): ActionsBody {
  const actions = [...actionTable].map(([name, options]) => ({
    name,
    msgType: options.msgType ?? name,
    example: Object.hasOwn(examples, name) ? (examples[name] as JsonObject) : { [name]: 1 },
  }));
  return { basePath, actions };
}

/** Adds `GET /`, `GET /playground` and `GET /actions` to the Worker. */
export function mountPlayground(app: Hono<{ Bindings: GatewayEnv }>, body: ActionsBody): void {
  const page = (): Response => new Response(PLAYGROUND_HTML, { headers: PAGE_HEADERS });
  app.get("/", page);
  app.get("/playground", page);
  app.get("/actions", (c) => c.json(body, 200, { "cache-control": "no-cache" }));
}
