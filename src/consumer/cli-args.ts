/**
 * The command line of `npm run service`: flags and environment into {@link RpcServiceOptions} (minus the
 * handlers, which come from the module). Kept apart from `cli.ts` so it can be tested without a process.
 */
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { hasPassword, readSecretFile } from "../cli/secrets.js";
import type { RpcServiceOptions } from "./options.js";

/** One-line usage, printed with every flag error. */
export const USAGE =
  "usage: npm run service -- [--redis redis://host:6379 | --redis-url-file PATH | --rest-url https://... --rest-token-file PATH] " +
  "(or REDIS_URL, UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN) [--category general,...] " +
  "[--reply-mode list|publish|publish-batch] [--module ./my-service.ts] [--concurrency N] [--claim-idle-ms MS] [--max-deliveries N] " +
  "[--consumer NAME] [--stream-prefix P] [--log-level debug|info|warn|error]";

/** The example service, run when no `--module` is given. */
export const DEFAULT_MODULE = fileURLToPath(new URL("../../examples/example-service.ts", import.meta.url));

/** A flag or environment problem; the CLI prints the message and the usage and exits 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** What the CLI runs: service options without handlers, and the module that provides them. */
export interface CliConfig {
  options: Omit<RpcServiceOptions, "handlers">;
  modulePath: string;
  /**
   * The flags that carried a secret on the command line (`--rest-token`, a password in `--redis`), which
   * every user of the machine can read with `ps`: the CLI warns once. Empty when secrets came from the
   * environment or a file.
   */
  secretFlags: string[];
}

/** The warning the CLI prints once on stderr for {@link CliConfig.secretFlags}; never contains a secret. */
export function secretFlagsWarning(secretFlags: string[]): string {
  return (
    `edge-wsproxy service: warning: ${secretFlags.join(" and ")} can be read by every user of this machine (ps); ` +
    "set REDIS_URL / UPSTASH_REDIS_REST_TOKEN or use --redis-url-file / --rest-token-file instead"
  );
}

/** Parses `argv` (without `node script`) with `env` fallbacks; throws {@link UsageError}. */
export function parseCliArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): CliConfig | "help" {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        redis: { type: "string" },
        "redis-url-file": { type: "string" },
        "rest-url": { type: "string" },
        "rest-token": { type: "string" },
        "rest-token-file": { type: "string" },
        category: { type: "string", multiple: true },
        "reply-mode": { type: "string" },
        module: { type: "string" },
        concurrency: { type: "string" },
        "claim-idle-ms": { type: "string" },
        "max-deliveries": { type: "string" },
        consumer: { type: "string" },
        "stream-prefix": { type: "string" },
        "log-level": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return "help";
  const replyMode = values["reply-mode"];
  if (
    replyMode !== undefined &&
    replyMode !== "list" &&
    replyMode !== "publish" &&
    replyMode !== "publish-batch"
  ) {
    throw new UsageError("--reply-mode must be list, publish or publish-batch");
  }
  const logLevel = values["log-level"];
  if (logLevel !== undefined && !["debug", "info", "warn", "error"].includes(logLevel)) {
    throw new UsageError("--log-level must be debug, info, warn or error");
  }
  for (const [flag, fileFlag] of [
    ["redis", "redis-url-file"],
    ["rest-token", "rest-token-file"],
  ] as const) {
    if (values[flag] !== undefined && values[fileFlag] !== undefined) {
      throw new UsageError(`give either --${flag} or --${fileFlag}, not both`);
    }
  }
  const fromFiles = {
    redis: values.redis ?? secretFromFile(values["redis-url-file"], "--redis-url-file"),
    "rest-url": values["rest-url"],
    "rest-token": values["rest-token"] ?? secretFromFile(values["rest-token-file"], "--rest-token-file"),
  };
  return {
    modulePath: values.module ?? DEFAULT_MODULE,
    secretFlags: [
      ...(values["rest-token"] !== undefined ? ["--rest-token"] : []),
      ...(values.redis !== undefined && hasPassword(values.redis) ? ["--redis (its password)"] : []),
    ],
    options: {
      redis: redisOption(fromFiles, env),
      categories: values.category?.flatMap((value) => value.split(",")).filter(Boolean),
      replyMode,
      concurrency: integerFlag(values.concurrency, "--concurrency"),
      claimIdleMs: integerFlag(values["claim-idle-ms"], "--claim-idle-ms"),
      maxDeliveries: integerFlag(values["max-deliveries"], "--max-deliveries"),
      consumerName: values.consumer,
      streamPrefix: values["stream-prefix"],
      logLevel: logLevel as RpcServiceOptions["logLevel"],
    },
  };
}

/** {@link readSecretFile} for an optional flag, as a usage error. */
function secretFromFile(path: string | undefined, flag: string): string | undefined {
  if (path === undefined) return undefined;
  try {
    return readSecretFile(path, flag);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function redisOption(
  values: { redis?: string; "rest-url"?: string; "rest-token"?: string },
  env: NodeJS.ProcessEnv,
): RpcServiceOptions["redis"] {
  if (values.redis && values["rest-url"]) throw new UsageError("give either --redis or --rest-url, not both");
  const restUrl = values["rest-url"] ?? (values.redis ? undefined : env.UPSTASH_REDIS_REST_URL);
  if (values.redis === undefined && restUrl) {
    const restToken = values["rest-token"] ?? env.UPSTASH_REDIS_REST_TOKEN;
    if (!restToken) {
      throw new UsageError(
        "--rest-url needs UPSTASH_REDIS_REST_TOKEN or --rest-token-file (or --rest-token)",
      );
    }
    return { restUrl, restToken };
  }
  const url = values.redis ?? env.REDIS_URL;
  if (!url) {
    throw new UsageError(
      "say where Redis is: REDIS_URL, --redis <url>, --redis-url-file <path>, or --rest-url with UPSTASH_REDIS_REST_TOKEN",
    );
  }
  if (!/^rediss?:\/\//.test(url)) throw new UsageError("--redis must be a redis:// or rediss:// URL");
  return url;
}

function integerFlag(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!Number.isInteger(number) || number <= 0) throw new UsageError(`${flag} must be a positive integer`);
  return number;
}
