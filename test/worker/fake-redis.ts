/**
 * An in-memory stand-in for Redis behind the gateway's {@link RedisCommands} seam, with a tiny service
 * that answers stream entries the way a consumer-groups service would (RPUSH to `who`). It lets the
 * Durable Object, the poller and the pending table run for real inside workerd without a Redis server.
 */
import type { RedisCommands } from "../../src/backends/index.js";

/** One `XADD`ed entry. */
export interface FakeEntry {
  stream: string;
  /** The raw command after the key: `MAXLEN ~ 100000 * rpc ping who ...`. */
  command: string[];
  fields: Record<string, string>;
}

/** A handler of the fake service; `undefined` means "never answer". */
export type FakeHandler = (params: Record<string, unknown>) => unknown;

/** In-memory Redis: streams as arrays of entries, lists as arrays; counts every command. */
export class FakeRedis implements RedisCommands {
  readonly commands: string[][] = [];
  readonly entries: FakeEntry[] = [];
  readonly lists = new Map<string, string[]>();
  /** Makes every command with this name fail until cleared. */
  readonly failing = new Set<string>();
  /** Makes every command hang (never settle), as a fetch the network never answers. */
  hanging = false;
  /** Called for each `XADD`, after it is stored. */
  onEntry?: (entry: FakeEntry) => void;

  async exec<TResult>(command: [string, ...(string | number)[]]): Promise<TResult> {
    const [name, ...rest] = command.map(String) as [string, ...string[]];
    this.commands.push([name, ...rest]);
    if (this.hanging) return new Promise<TResult>(() => undefined);
    // Resolve on a later turn, as a network call would.
    await new Promise((resolve) => setTimeout(resolve, 0));
    const upper = name.toUpperCase();
    if (this.failing.has(upper)) throw new Error(`fake ${upper} failure`);
    return this.run(upper, rest) as TResult;
  }

  /** `RPUSH key value...` without counting it as a gateway command. */
  push(key: string, ...values: string[]): void {
    const list = this.lists.get(key) ?? [];
    list.push(...values);
    this.lists.set(key, list);
  }

  /** Commands of one name the gateway sent, e.g. `count("LPOP")`. */
  count(name: string): number {
    return this.commands.filter((command) => command[0]?.toUpperCase() === name).length;
  }

  private run(name: string, args: string[]): unknown {
    switch (name) {
      case "PING":
        return "PONG";
      case "XADD": {
        const [stream = "", ...command] = args;
        const star = command.indexOf("*");
        const fields: Record<string, string> = {};
        for (let i = star + 1; i + 1 < command.length; i += 2)
          fields[command[i] ?? ""] = command[i + 1] ?? "";
        const entry = { stream, command, fields };
        this.entries.push(entry);
        this.onEntry?.(entry);
        return `${Date.now()}-${this.entries.length}`;
      }
      case "XTRIM":
        return 0;
      case "LPOP": {
        const list = this.lists.get(args[0] ?? "") ?? [];
        const popped = list.splice(0, Number(args[1] ?? 1));
        return popped.length > 0 ? popped : null;
      }
      default:
        throw new Error(`ERR fake redis does not know ${name}`);
    }
  }
}

/** Replies the way the service SDK does: `{"message_id","response":{"result","timestamp"}}`. */
export function replyPayload(messageId: string, result: unknown): string {
  return JSON.stringify({ message_id: messageId, response: { result, timestamp: Date.now() / 1000 } });
}

/**
 * Serves entries from `redis` with `handlers`, after `delayMs` (or the handler's `ms` argument for
 * `slow`). Methods without a handler are never answered, to exercise timeouts.
 */
export function serveFake(redis: FakeRedis, handlers: Record<string, FakeHandler>, delayMs = 1): void {
  redis.onEntry = (entry) => {
    const handler = handlers[entry.fields.rpc ?? ""];
    if (!handler) return;
    const params = JSON.parse(entry.fields.args ?? "{}") as Record<string, unknown>;
    const args = (params.args ?? {}) as Record<string, unknown>;
    const wait = typeof args.ms === "number" ? args.ms : delayMs;
    setTimeout(() => {
      redis.push(entry.fields.who ?? "", replyPayload(entry.fields.message_id ?? "", handler(params)));
    }, wait);
  };
}
