/**
 * Configuration errors reach the Worker's log, never a client: the upgrade's 500 and `/health` answer a
 * generic text, and the detail (which names settings, and could quote a value) is logged once per isolate
 * per distinct message, redacted like every other line.
 */
import type { GatewayEnv } from "./config.js";
import { createJsonLogger } from "./log.js";
import { configuredSecrets } from "./plan.js";

/** What a client is told when the gateway cannot serve because of its configuration. */
export const CONFIG_ERROR_TEXT = "The gateway is misconfigured: see the Worker's log.";

/** Logs a configuration error's detail, once per distinct message for the life of the reporter. */
export type ConfigErrorReporter = (detail: string, env: GatewayEnv) => void;

/** A reporter that logs each distinct detail once (one line per isolate, not one per request). */
export function configErrorReporter(): ConfigErrorReporter {
  const logged = new Set<string>();
  return (detail, env) => {
    if (logged.has(detail)) return;
    // A bounded memory: a detail that changes on every request would otherwise grow the set.
    if (logged.size < 100) logged.add(detail);
    createJsonLogger("error", configuredSecrets(env, {})).error(`gateway configuration error: ${detail}`);
  };
}
