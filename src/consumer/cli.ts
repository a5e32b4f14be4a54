#!/usr/bin/env node
/**
 * `npm run service -- --redis redis://127.0.0.1:6379 [--module ./my-service.ts]`: runs a service module
 * (the example service by default) until SIGTERM or SIGINT, then closes gracefully and exits 0.
 * Secrets (a REST token, a Redis URL with a password) come best from the environment or a file, as `ps`
 * shows every argument; given as flags they work, with one warning on stderr.
 * Prints exactly one line on stdout, `edge-wsproxy service ready: ...`, once it is serving; logs go to stderr.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { ConfigError } from "../core/errors.js";
import { DEFAULT_MODULE, USAGE, UsageError, parseCliArgs, secretFlagsWarning } from "./cli-args.js";
import { createRpcService } from "./service.js";
import type { RpcHandlers } from "./types.js";

async function main(): Promise<void> {
  const config = parseCliArgs(process.argv.slice(2));
  if (config === "help") {
    process.stdout.write(USAGE + "\n");
    return;
  }
  if (config.secretFlags.length > 0) process.stderr.write(secretFlagsWarning(config.secretFlags) + "\n");
  const handlers = await loadHandlers(config.modulePath);
  const service = createRpcService({ ...config.options, handlers });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    service.close().then(
      () => process.exit(0),
      (error: unknown) => fail(`close failed: ${(error as Error).message}`, 1),
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  await service.start();
  if (stopping) return;
  const { kind, target } = service.transport;
  const categories = (config.options.categories ?? ["general"]).join(",");
  process.stdout.write(
    `edge-wsproxy service ready: consumer ${service.consumerName} reading ${categories} via ${kind} ${target}\n`,
  );
}

/** Imports a service module: its `handlers` export, or a default export of handlers. */
async function loadHandlers(modulePath: string): Promise<RpcHandlers> {
  let module: { handlers?: unknown; default?: unknown };
  // The example service lives in the repository (examples/), not in the installed package.
  if (modulePath === DEFAULT_MODULE && !existsSync(modulePath)) {
    throw new UsageError(
      "--module is required: give the path of your service module (it exports `handlers`)",
    );
  }
  try {
    module = (await import(pathToFileURL(resolve(modulePath)).href)) as typeof module;
  } catch (error) {
    throw new UsageError(`cannot load --module ${modulePath}: ${(error as Error).message}`);
  }
  const handlers = module.handlers ?? module.default;
  if (!handlers || typeof handlers !== "object") {
    throw new UsageError(`--module ${modulePath} must export \`handlers\` or a default object of handlers`);
  }
  return handlers as RpcHandlers;
}

function fail(message: string, code: number): never {
  process.stderr.write(message + "\n");
  process.exit(code);
}

main().catch((error: unknown) => {
  if (error instanceof UsageError || error instanceof ConfigError) fail(`${error.message}. ${USAGE}`, 2);
  fail(`service failed: ${error instanceof Error ? error.message : String(error)}`, 1);
});
