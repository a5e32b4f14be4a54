/**
 * Measures the Redis commands a backend service sends per handled request, per transport and in-flight
 * level, from `INFO commandstats` deltas on a private redis-server. The stand-in gateway's own commands
 * (XADD, BLPOP) are not counted.
 *
 *   npx tsx scripts/measure-service-commands.ts [requests=200]
 */
import { Redis } from "ioredis";
import { startBridge } from "../src/bridge/server.js";
import { startRedis } from "../src/devstack/redis.js";
import { createRpcService, type RpcServiceOptions } from "../src/consumer/index.js";

const SERVICE_COMMANDS = ["xreadgroup", "xack", "rpush", "expire", "xpending", "xclaim", "xgroup", "publish"];
const requests = Number(process.argv[2] ?? 200);

async function commandCounts(client: Redis): Promise<Map<string, number>> {
  const info = await client.info("commandstats");
  const counts = new Map<string, number>();
  for (const match of info.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm))
    counts.set(match[1] ?? "", Number(match[2]));
  return counts;
}

/** Sends `requests` pings with `inFlight` outstanding at a time, spread over `replyKeys` reply keys. */
async function drive(url: string, prefix: string, inFlight: number, replyKeys: number): Promise<void> {
  const writer = new Redis(url);
  const keys = Array.from({ length: replyKeys }, (_, i) => `${prefix}reply:${i}`);
  const waiters = new Map<string, () => void>();
  const readers = keys.map((key) => {
    const reader = new Redis(url);
    void (async () => {
      for (;;) {
        const popped = await reader.blpop(key, 0).catch(() => null);
        if (!popped) return;
        // Drain the rest in one command, as the gateway does with LPOP <key> <batch>.
        const rest = (await reader.lpop(key, 1000).catch(() => null)) ?? [];
        for (const text of [popped[1], ...rest]) {
          const { message_id: id } = JSON.parse(text) as { message_id: string };
          waiters.get(id)?.();
          waiters.delete(id);
        }
      }
    })();
    return reader;
  });
  let next = 0;
  const worker = async (slot: number) => {
    while (next < requests) {
      const id = String(next++);
      const replied = new Promise<void>((resolve) => waiters.set(id, resolve));
      const deadline = String(Math.floor(Date.now() / 1000) + 30);
      const who = keys[slot % keys.length] as string;
      await writer.xadd(
        `${prefix}general`,
        "*",
        "rpc",
        "ping",
        "who",
        who,
        "deadline",
        deadline,
        "args",
        "{}",
        "message_id",
        id,
      );
      await replied;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, (_, slot) => worker(slot)));
  writer.disconnect();
  for (const reader of readers) reader.disconnect();
}

async function main(): Promise<void> {
  const server = await startRedis();
  const bridge = await startBridge({ redisUrl: server.url, port: 0, token: "measure" });
  const stats = new Redis(server.url);
  const rows: string[] = [
    "| transport | in flight | reply keys | commands / request | breakdown |",
    "|---|---|---|---|---|",
  ];
  try {
    for (const kind of ["native", "rest"] as const) {
      for (const [inFlight, replyKeys] of [
        [1, 1],
        [32, 1],
        [32, 32],
      ] as const) {
        const prefix = `m:${kind}:${inFlight}:${replyKeys}:`;
        const redis: RpcServiceOptions["redis"] =
          kind === "native" ? server.url : { restUrl: bridge.url, restToken: "measure" };
        const service = createRpcService({
          redis,
          handlers: { ping: () => "pong" },
          streamPrefix: prefix,
          concurrency: 32,
          logger: false,
        });
        await service.start();
        const before = await commandCounts(stats);
        await drive(server.url, prefix, inFlight, replyKeys);
        const after = await commandCounts(stats);
        await service.close();
        const deltas = SERVICE_COMMANDS.map(
          (name) => [name, (after.get(name) ?? 0) - (before.get(name) ?? 0)] as const,
        );
        const total = deltas.reduce((sum, [, count]) => sum + count, 0);
        const breakdown = deltas
          .filter(([, count]) => count > 0)
          .map(([name, count]) => `${name} ${(count / requests).toFixed(2)}`);
        rows.push(
          `| ${kind} | ${inFlight} | ${replyKeys} | ${(total / requests).toFixed(2)} | ${breakdown.join(", ")} |`,
        );
      }
    }
  } finally {
    stats.disconnect();
    await bridge.close();
    await server.stop();
  }
  console.log(`${requests} requests per row\n${rows.join("\n")}`);
}

await main();
