/**
 * Structured logs: one JSON object per line on the console, which Workers Logs (and `wrangler tail`)
 * index by field. Requests are logged at `info` with their correlation id, the id the backend service
 * also logs (`req_log_context`), so one request can be followed across both. Any secret the logger is
 * given (the Redis REST token) is replaced by `[redacted]` wherever it appears, error messages included.
 */
import type { Logger } from "../core/types.js";
import type { AnsweredRequest } from "./metrics.js";

/** Log levels, least severe first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

/** The core's {@link Logger} plus `info` and the request line. */
export interface GatewayLogger extends Logger {
  debug(message: string, details?: unknown): void;
  info(message: string, details?: unknown): void;
  /** One line per answered request, at `info`. */
  request(answered: AnsweredRequest): void;
  /** True when lines of `level` are written (callers skip building costly details otherwise). */
  enabled(level: LogLevel): boolean;
}

/** `text` with every secret (empty ones ignored) replaced by `[redacted]`. */
export function redact(text: string, secrets: readonly (string | undefined)[]): string {
  let redacted = text;
  for (const secret of secrets) if (secret) redacted = redacted.split(secret).join("[redacted]");
  return redacted;
}

/** True for a known level name (used to validate `logLevel` and `LOG_LEVEL`). */
export function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === "string" && (LEVELS as readonly string[]).includes(value);
}

/**
 * A JSON-lines logger that writes `level` and above. `secrets` (empty strings ignored) never appear in a
 * line. `fields` are added to every line (e.g. the object's name).
 */
export function createJsonLogger(
  level: LogLevel,
  secrets: readonly (string | undefined)[] = [],
  fields: Record<string, string> = {},
): GatewayLogger {
  const threshold = LEVELS.indexOf(level);
  const hidden = secrets.filter(
    (secret): secret is string => typeof secret === "string" && secret.length > 0,
  );
  const enabled = (at: LogLevel): boolean => LEVELS.indexOf(at) >= threshold;
  const write = (at: LogLevel, entry: Record<string, unknown>): void => {
    if (!enabled(at)) return;
    const record = { time: new Date().toISOString(), level: at, ...fields, ...entry };
    let line: string;
    try {
      line = JSON.stringify(record);
    } catch {
      // Details JSON cannot carry (a cycle, a BigInt): the line is still written, details as text.
      line = JSON.stringify({ ...record, details: String(entry.details) });
    }
    line = redact(line, hidden);
    if (at === "error") console.error(line);
    else if (at === "warn") console.warn(line);
    else console.log(line);
  };
  const line =
    (at: LogLevel) =>
    (message: string, details?: unknown): void =>
      write(
        at,
        details === undefined || details === ""
          ? { msg: message }
          : { msg: message, details: describe(details) },
      );
  return {
    debug: line("debug"),
    info: line("info"),
    warn: line("warn"),
    error: line("error"),
    enabled,
    request: (answered) =>
      write("info", {
        msg: "request",
        action: answered.action,
        outcome: answered.outcome,
        duration_ms: answered.durationMs,
        correlation_id: answered.correlationId,
        connection_id: answered.connectionId,
      }),
  };
}

/** Errors become `{name, message, cause?}` (a stack is noise in a log index); other values pass through. */
function describe(details: unknown): unknown {
  if (!(details instanceof Error)) return details;
  const described: Record<string, unknown> = { name: details.name, message: details.message };
  if (details.cause !== undefined) described.cause = describe(details.cause);
  return described;
}
