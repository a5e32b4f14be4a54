/**
 * The load run of `scripts/load.ts`, also run (smaller) by `test/e2e/load.test.ts`: many connections, each sending
 * requests with random actions (`ping`, `echo`, `slow` with a random delay, so random categories when queue
 * separation is on), a few connections closing mid-request, and a {@link Ledger} that checks every reply.
 */
import { Ledger, type LedgerClient } from "./ledger.js";

/** Options of {@link runLoad}. */
export interface LoadOptions {
  wsUrl: string;
  /** Connections opened. */
  connections: number;
  /** Requests per connection. */
  requestsPerConnection: number;
  /** Share of connections closed after sending half their requests. @default 0.05 */
  abandonShare?: number;
  /**
   * Mean gap between two requests of one connection, ms (uniform in [0, 2 x mean]); it sets the request
   * rate (1,000 connections at 3000 ms: about 330 requests/s). At about 1,000 requests/s the local stack on
   * 2 cores (wrangler's proxy in front of workerd) falls behind and workerd runs out of file descriptors.
   * @default 3000
   */
  meanGapMs?: number;
  /** Upper bound of the random `slow` delay, ms. @default 50 */
  slowMaxMs?: number;
  /** How long the remaining requests may take to be answered, ms. @default 60000 */
  settleTimeoutMs?: number;
  /** Seed of the random choices (printed, so a run can be repeated). @default random */
  seed?: number;
}

/** What a load run measured. */
export interface LoadResult {
  ledger: Ledger;
  seed: number;
  /** Time to open every connection, ms. */
  connectMs: number;
  /** From the first request to the last reply, ms. */
  runMs: number;
}

/** Opens the connections, sends the requests, waits for the replies; the caller closes `ledger`. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const random = mulberry32(seed);
  const ledger = new Ledger();
  const connectStarted = Date.now();
  // In batches: a thousand simultaneous handshakes only measure the local proxy's accept queue.
  for (let opened = 0; opened < options.connections; opened += 50) {
    const batch = Math.min(50, options.connections - opened);
    await Promise.all(Array.from({ length: batch }, () => ledger.open(options.wsUrl)));
  }
  const connectMs = Date.now() - connectStarted;

  const runStarted = Date.now();
  const abandonShare = options.abandonShare ?? 0.05;
  const slowMaxMs = options.slowMaxMs ?? 50;
  await Promise.all(
    ledger.clients.map((client, c) => {
      const abandonAfter = random() < abandonShare ? Math.floor(options.requestsPerConnection / 2) : Infinity;
      const pace = { abandonAfter, slowMaxMs, meanGapMs: options.meanGapMs ?? 3000 };
      return drive(client, c, options.requestsPerConnection, pace, random);
    }),
  );
  await ledger.settle(options.settleTimeoutMs ?? 60_000);
  return { ledger, seed, connectMs, runMs: Date.now() - runStarted };
}

/** Sends one connection's requests with random gaps; closes it after `pace.abandonAfter` of them. */
async function drive(
  client: LedgerClient,
  c: number,
  requests: number,
  pace: { abandonAfter: number; slowMaxMs: number; meanGapMs: number },
  random: () => number,
): Promise<void> {
  for (let i = 0; i < requests; i++) {
    await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 2 * pace.meanGapMs)));
    if (i === pace.abandonAfter) {
      await client.abandon();
      return;
    }
    const pick = random();
    if (pick < 0.4) client.send({ ping: 1 });
    else if (pick < 0.7) client.send({ echo: { c, i, nonce: Math.floor(random() * 1e9) } });
    else client.send({ slow: 1, ms: Math.floor(random() * pace.slowMaxMs) });
  }
}

/** A small seeded PRNG (mulberry32): the same seed gives the same run. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
