/**
 * The command line of `npm run service`: flags and environment into {@link RpcServiceOptions} (minus the
 * handlers, which come from the module). Kept apart from `cli.ts` so it can be tested without a process.
 */
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { RpcServiceOptions } from "./options.js";

/** One-line usage, printed with every flag error. */
export const USAGE =
  "usage: npm run service -- [--redis redis://host:6379 | --rest-url https://... --rest-token T] [--category general,...] " +
  "[--reply-mode list|publish] [--module ./my-service.ts] [--concurrency N] [--claim-idle-ms MS] [--max-deliveries N] " +
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
        "rest-url": { type: "string" },
        "rest-token": { type: "string" },
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
  if (replyMode !== undefined && replyMode !== "list" && replyMode !== "publish") {
    throw new UsageError("--reply-mode must be list or publish");
  }
  const logLevel = values["log-level"];
  if (logLevel !== undefined && !["debug", "info", "warn", "error"].includes(logLevel)) {
    throw new UsageError("--log-level must be debug, info, warn or error");
  }
  return {
    modulePath: values.module ?? DEFAULT_MODULE,
    options: {
      redis: redisOption(values, env),
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

function redisOption(
  values: { redis?: string; "rest-url"?: string; "rest-token"?: string },
  env: NodeJS.ProcessEnv,
): RpcServiceOptions["redis"] {
  if (values.redis && values["rest-url"]) throw new UsageError("give either --redis or --rest-url, not both");
  const restUrl = values["rest-url"] ?? (values.redis ? undefined : env.UPSTASH_REDIS_REST_URL);
  if (values.redis === undefined && restUrl) {
    const restToken = values["rest-token"] ?? env.UPSTASH_REDIS_REST_TOKEN;
    if (!restToken) throw new UsageError("--rest-url needs --rest-token (or UPSTASH_REDIS_REST_TOKEN)");
    return { restUrl, restToken };
  }
  const url = values.redis ?? env.REDIS_URL;
  if (!url) throw new UsageError("say where Redis is: --redis <url>, --rest-url/--rest-token, or REDIS_URL");
  if (!/^rediss?:\/\//.test(url)) throw new UsageError("--redis must be a redis:// or rediss:// URL");
  return url;
}

function integerFlag(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!Number.isInteger(number) || number <= 0) throw new UsageError(`${flag} must be a positive integer`);
  return number;
}
