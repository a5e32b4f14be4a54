/**
 * Running user hooks: a hook may be one function or a list, sync or async, and each call is bounded by
 * `hookTimeoutMs` so one stuck hook cannot hold a request (or a Durable Object) forever.
 */
import { HookTimeoutError } from "./errors.js";
import type { Logger } from "./types.js";

/** One hook or a list of them, as accepted in the options; `undefined` entries are skipped. */
export type HookSetting<F> = F | readonly (F | undefined)[] | undefined;

/** The hooks of `global` then `action` as one flat list (global hooks always run first). */
export function hookList<F>(global: HookSetting<F>, action?: HookSetting<F>): F[] {
  return [...toArray(global), ...toArray(action)];
}

function toArray<F>(setting: HookSetting<F>): F[] {
  if (setting === undefined) return [];
  const list = Array.isArray(setting) ? (setting as readonly (F | undefined)[]) : [setting as F];
  return list.filter((hook): hook is F => typeof hook === "function");
}

/**
 * Calls `invoke` and waits at most `timeoutMs` for it to settle. A synchronous throw becomes a rejection;
 * running out of time rejects with {@link HookTimeoutError}. The timer is cleared as soon as the hook
 * settles, so no timer outlives the work (a Durable Object with no timers can hibernate).
 */
export function runHook<T>(name: string, timeoutMs: number, invoke: () => T | Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new HookTimeoutError(name, timeoutMs)), timeoutMs);
    const settle =
      <A>(finish: (arg: A) => void) =>
      (arg: A) => {
        clearTimeout(timer);
        finish(arg);
      };
    try {
      Promise.resolve(invoke()).then(settle(resolve), settle(reject));
    } catch (error) {
      settle(reject)(error);
    }
  });
}

/** The logger used when none is given: the runtime console (Workers send it to their logs). */
export const consoleLogger: Logger = {
  debug: (message, details) => console.debug(message, details ?? ""),
  warn: (message, details) => console.warn(message, details ?? ""),
  error: (message, details) => console.error(message, details ?? ""),
};
