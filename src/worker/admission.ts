/**
 * Fairness between clients of one Durable Object: per-client-address caps on open connections and on
 * frames per second, so one source cannot fill `maxConnectionsPerObject` (counted before authentication)
 * or use up an object's CPU for everyone else.
 *
 * The address is the `cf-connecting-ip` header, which Cloudflare sets on every request to a Worker to the
 * client's IP ("HTTP request headers", https://developers.cloudflare.com/fundamentals/reference/http-headers/).
 * Without it, or with a loopback address (local `wrangler dev` says `127.0.0.1` for every client; a test
 * harness; an object reached otherwise), every client would share
 * one bucket and the caps would lock everyone out at once, so such connections are not counted: the
 * per-address caps are off for them and only the per-object cap applies.
 *
 * Connections are counted with hibernation tags (`ctx.acceptWebSocket(ws, [tag])`,
 * `ctx.getWebSockets(tag)`), which survive hibernation ("WebSocket Hibernation API",
 * https://developers.cloudflare.com/durable-objects/api/websockets/); frame rates live in memory, per
 * incarnation (a woken object starts every address from zero, which errs on the side of serving).
 */

import { isLoopbackHost } from "./local-redis.js";

/** Prefix of the hibernation tag that holds a socket's client address. */
const ADDRESS_TAG_PREFIX = "ip:";
/** Tags are short strings; an IPv6 address is at most 45 characters, anything longer is not an address. */
const MAX_ADDRESS_LENGTH = 64;

/**
 * The client address of an upgrade (`cf-connecting-ip`), or undefined when the request has none or a
 * loopback one: `wrangler dev` sets it to `127.0.0.1` for every local client, which would put a whole
 * local load test in one bucket.
 */
export function clientAddress(request: Request): string | undefined {
  const address = request.headers.get("cf-connecting-ip")?.trim();
  if (!address || isLoopbackHost(address)) return undefined;
  return address.slice(0, MAX_ADDRESS_LENGTH);
}

/** The hibernation tags of a socket from `address` (none without an address: it is not counted). */
export function addressTags(address: string | undefined): string[] {
  return address === undefined ? [] : [ADDRESS_TAG_PREFIX + address];
}

/** The client address stored in a socket's tags, if any. */
export function addressOfTags(tags: readonly string[]): string | undefined {
  const tag = tags.find((candidate) => candidate.startsWith(ADDRESS_TAG_PREFIX));
  return tag?.slice(ADDRESS_TAG_PREFIX.length);
}

/** The open sockets of one object, as the hibernation API lists them. */
export interface SocketRegistry {
  getWebSockets(tag?: string): WebSocket[];
}

/** True when one more connection from `address` would exceed `maxPerAddress` (0 = no cap). */
export function addressFull(
  registry: SocketRegistry,
  address: string | undefined,
  maxPerAddress: number,
): boolean {
  if (address === undefined || maxPerAddress <= 0) return false;
  return registry.getWebSockets(ADDRESS_TAG_PREFIX + address).length >= maxPerAddress;
}

/**
 * Frames per second per client address, over every connection of that address in one object: a token
 * bucket of `perSecond` tokens per second holding at most one second's worth. 0 turns it off.
 */
export class AddressFrameRate {
  private readonly buckets = new Map<string, { tokens: number; atMs: number }>();

  constructor(
    private readonly perSecond: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one frame from `address`'s budget; false when it is spent (the frame is over the rate). */
  take(address: string | undefined): boolean {
    if (address === undefined || this.perSecond <= 0) return true;
    const nowMs = this.now();
    const bucket = this.buckets.get(address) ?? { tokens: this.perSecond, atMs: nowMs };
    bucket.tokens = Math.min(this.perSecond, bucket.tokens + ((nowMs - bucket.atMs) / 1000) * this.perSecond);
    bucket.atMs = nowMs;
    this.buckets.set(address, bucket);
    if (this.buckets.size > 10_000) this.prune(nowMs);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Forgets full buckets (idle addresses), so the table stays as small as the active sources. */
  private prune(nowMs: number): void {
    for (const [address, bucket] of this.buckets) {
      if (nowMs - bucket.atMs >= 1000) this.buckets.delete(address);
    }
  }
}
