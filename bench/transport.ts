/** The reply transport a benchmark tool runs: what it sets on the stack, and where its bare path is. */

/**
 * What a reply transport needs of the stack: the gateway's `REPLY_TRANSPORT` and the service's reply mode
 * (for subscribe, services publish their replies in batches).
 */
export function transportSettings(subscribe: boolean): {
  gatewayVars: Record<string, string>;
  serviceArgs: string[];
} {
  return subscribe
    ? { gatewayVars: { REPLY_TRANSPORT: "subscribe" }, serviceArgs: ["--reply-mode=publish-batch"] }
    : { gatewayVars: {}, serviceArgs: [] };
}

/**
 * The floor object `object`'s bare path for a reply transport (`bench/floor-worker.ts`, `?mode=sub` or
 * `?mode=poll`): its I/O with none of the gateway's code.
 */
export function bareWsUrl(floorWsUrl: string, object: string, subscribe: boolean): string {
  return `${floorWsUrl}?object=${object}&mode=${subscribe ? "sub" : "poll"}`;
}
