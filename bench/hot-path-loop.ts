/**
 * The loop of `bench/hot-path.ts`, runtime-neutral (Node, or workerd for the same figure there): `requests`
 * client frames, one at a time, through the dispatcher and the consumer-groups backend, with a stand-in
 * Redis that answers each command in a microtask and has the reply ready for the poll at the `XADD`'s
 * answer.
 */
import { ConsumerGroupsBackend, type RedisCommands } from "../src/backends/index.js";
import { createDispatcher, createMemoryConnection } from "../src/core/index.js";
import { buildReplyPayload } from "../src/wire/index.js";

/** What one run did. */
export interface HotPathRun {
  answered: number;
  errors: number;
  lpopPerXadd: number;
}

/** Runs `warmup` requests, then `measure()` around `requests` more; resolves with what the measured ones did. */
export async function runHotPath(
  warmup: number,
  requests: number,
  measure: (run: () => Promise<void>) => Promise<void>,
): Promise<HotPathRun> {
  /** Lists by key; each `XADD` puts its reply on its `who` list at once. */
  const lists = new Map<string, string[]>();
  const counts = { XADD: 0, LPOP: 0 };
  const redis: RedisCommands = {
    async exec<T>(command: [string, ...(string | number)[]]): Promise<T> {
      const [name, ...args] = command.map(String);
      await null;
      if (name === "XADD") {
        counts.XADD += 1;
        const field = (key: string) => args[args.indexOf(key) + 1] ?? "";
        const list = lists.get(field("who")) ?? [];
        list.push(buildReplyPayload(field("message_id"), "pong"));
        lists.set(field("who"), list);
        return `${Date.now()}-0` as T;
      }
      if (name === "LPOP") {
        counts.LPOP += 1;
        const popped = (lists.get(args[0] ?? "") ?? []).splice(0, Number(args[1] ?? 1));
        return (popped.length > 0 ? popped : null) as T;
      }
      throw new Error(`unexpected ${name}`);
    },
  };
  const quiet = { debug() {}, warn() {}, error() {} };
  const backend = new ConsumerGroupsBackend({ redis, objectId: "hot-path", logger: quiet });
  // Every default but the frame rate, which one client at tens of thousands of requests a second exceeds.
  const dispatcher = createDispatcher(
    { actions: [["ping"]], maxMessagesPerSecond: 0 },
    { default: backend },
    { logger: quiet },
  );
  // The client's side: each frame serialised as a socket sends it, and the next request sent once it came.
  let answered = 0;
  let errors = 0;
  let next: () => void = () => undefined;
  const connection = {
    ...createMemoryConnection({}),
    sendJson(frame: unknown) {
      if (JSON.stringify(frame).includes('"error"')) errors += 1;
      answered += 1;
      next();
    },
  };
  let reqId = 0;
  const loop = async (count: number): Promise<void> => {
    for (let sent = 0; sent < count; sent++) {
      const replied = new Promise<void>((resolve) => (next = resolve));
      await dispatcher.handleFrame(connection, JSON.stringify({ ping: 1, req_id: (reqId += 1) }));
      await replied;
    }
  };
  try {
    await loop(warmup);
    const before = { answered, errors, xadd: counts.XADD, lpop: counts.LPOP };
    await measure(() => loop(requests));
    return {
      answered: answered - before.answered,
      errors: errors - before.errors,
      lpopPerXadd: (counts.LPOP - before.lpop) / (counts.XADD - before.xadd),
    };
  } finally {
    backend.close();
  }
}
