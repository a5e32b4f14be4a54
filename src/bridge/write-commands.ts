import type { Redis } from "ioredis";
import type { RedisCommand } from "./commands.js";

/** Tells whether a command may change data, so the bridge knows when to advance its sync token. */
export type WriteCommandTest = (command: RedisCommand) => boolean;

/**
 * One entry of redis-server's `COMMAND` reply, as far as the bridge reads it. Redis 7 example:
 *
 *   ["set", -3, ["write", "denyoom"], 1, 1, 1, ["@write", "@string", "@slow"], [], [...key specs], []]
 *   ["xgroup", -2, [], 0, 0, 0, ["@slow"], [], [], [["xgroup|create", -5, ["write", "denyoom"], ...], ...]]
 */
type CommandInfo = unknown[];

/**
 * Reads the command table of redis-server itself (`COMMAND`), so the answer is exact for the server the
 * bridge talks to instead of a hand-kept list that drifts. A command counts as a write when Redis flags it
 * `write` (SET, XADD, XREADGROUP, XGROUP CREATE, ...) or when it runs a script that may write (`@scripting`
 * without `readonly`: EVAL, EVALSHA, FCALL, but not EVAL_RO). Everything else (GET, PING, PUBLISH, INFO) is
 * a read. A command the table does not know (a module command, a typo) counts as a write: advancing the
 * token once too often costs nothing, missing a write would break read-your-writes.
 */
export async function loadWriteCommandTest(redis: Redis): Promise<WriteCommandTest> {
  const writes = new Set<string>();
  const known = new Set<string>();
  const containers = new Set<string>();
  const visit = (entry: CommandInfo): void => {
    const name = String(entry[0]).toLowerCase();
    const flags = (entry[2] ?? []) as string[];
    const categories = (entry[6] ?? []) as string[]; // absent before Redis 6
    const subcommands = (entry[9] ?? []) as CommandInfo[]; // absent before Redis 7
    known.add(name);
    const runsScript = categories.includes("@scripting") && !flags.includes("readonly");
    if (flags.includes("write") || runsScript) writes.add(name);
    if (subcommands.length > 0) {
      containers.add(name);
      subcommands.forEach(visit);
    }
  };
  ((await redis.call("COMMAND")) as CommandInfo[]).forEach(visit);

  return (command) => {
    const name = command[0].toLowerCase();
    const sub = command[1];
    // Container commands (XGROUP, FUNCTION, CONFIG, ...) carry their flags on "name|subcommand".
    const key = containers.has(name) && typeof sub === "string" ? `${name}|${sub.toLowerCase()}` : name;
    return writes.has(key) || !known.has(key);
  };
}
