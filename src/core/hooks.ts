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
 * running out of time rejects with {@link HookTimeoutError}. A hook that returns a plain value (not a
 * promise) has settled already and gets no timer: a timer is among the costliest calls an object makes
 * per request (`bench/profile.ts`), and the gateway's own metrics hooks are synchronous. A hook's timer is
 * cleared as soon as it settles, so no timer outlives the work (a Durable Object with no timers can
 * hibernate).
 */
export function runHook<T>(name: string, timeoutMs: number, invoke: () => T | Promise<T>): Promise<T> {
  let result: T | Promise<T>;
  try {
    result = invoke();
  } catch (error) {
    return Promise.reject(error);
  }
  if (!isThenable(result)) return Promise.resolve(result);
  const pending = result;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new HookTimeoutError(name, timeoutMs)), timeoutMs);
    const settle =
      <A>(finish: (arg: A) => void) =>
      (arg: A) => {
        clearTimeout(timer);
        finish(arg);
      };
    Promise.resolve(pending).then(settle(resolve), settle(reject));
  });
}

function isThenable<T>(value: T | Promise<T>): value is Promise<T> {
  return (
    (typeof value === "object" || typeof value === "function") &&
    value !== null &&
    typeof (value as { then?: unknown }).then === "function"
  );
}

/** The logger used when none is given: the runtime console (Workers send it to their logs). */
export const consoleLogger: Logger = {
  debug: (message, details) => console.debug(message, details ?? ""),
  warn: (message, details) => console.warn(message, details ?? ""),
  error: (message, details) => console.error(message, details ?? ""),
};
