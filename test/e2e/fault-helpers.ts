/**
 * Helpers of the fault matrix (test/e2e/faults.test.ts): which service processes run, which consumer holds
 * an entry, killing one, finding a request's stream entry, waiting for `/health` to recover.
 */
import type { Redis } from "ioredis";
import type { Stack } from "../../src/devstack/stack.js";
import { type Frame, type StreamFields } from "./helpers.js";
import { sleep } from "../support/wait.js";

/** Services of `stack` whose process is still running. */
export function aliveServices(stack: Stack): Stack["services"] {
  return stack.services.filter((service) => {
    try {
      process.kill(service.pid, 0);
      return true;
    } catch {
      return false;
    }
  });
}

/** The consumer (`<host>-<pid>`) that holds the pending entry `entryId` of `general`, once it is read. */
export async function holderOf(redis: Redis, entryId: string): Promise<string> {
  for (let tries = 0; tries < 100; tries++) {
    const rows = (await redis.xpending("general", "processors", "-", "+", 100)) as [string, string][];
    const row = rows.find(([id]) => id === entryId);
    if (row) return row[1];
    await sleep(20);
  }
  throw new Error(`entry ${entryId} was never read`);
}

/** SIGKILLs the service process of `stack` whose consumer name is `consumer`. */
export async function killConsumer(stack: Stack, consumer: string): Promise<void> {
  const victim = aliveServices(stack).find((service) => consumer.endsWith(`-${service.pid}`));
  if (!victim) throw new Error(`no running service is ${consumer}`);
  process.kill(victim.pid, "SIGKILL");
  await victim.stop();
}

/** The newest `general` entry of `method` whose client frame has `req_id`, with its entry id. */
export async function entryOf(
  redis: Redis,
  method: string,
  reqId: number,
): Promise<{ id: string; fields: StreamFields }> {
  const until = Date.now() + 5000;
  while (Date.now() < until) {
    const entries = await redis.xrange("general", "-", "+");
    for (const [id, flat] of entries.reverse()) {
      const fields: StreamFields = {};
      for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i] ?? ""] = flat[i + 1] ?? "";
      const args = JSON.parse(fields.args ?? "{}") as { args?: Frame };
      if (fields.rpc === method && args.args?.req_id === reqId) return { id, fields };
    }
    await sleep(20);
  }
  throw new Error(`no ${method} entry with req_id ${reqId}`);
}

/**
 * Waits until the Worker's `GET /health` says it reaches Redis again: the moment of recovery as an
 * operator sees it (the bridge reconnects to a restarted redis-server within its 1 s back-off).
 */
export async function waitHealthy(httpUrl: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if ((await fetch(`${httpUrl}/health`)).ok) return;
    await sleep(100);
  }
  throw new Error(`/health did not recover within ${timeoutMs} ms`);
}
