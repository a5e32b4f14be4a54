/**
 * Object helpers that are safe with client-controlled keys.
 *
 * `JSON.parse('{"__proto__": {...}}')` creates an *own* property named `__proto__`, which is harmless until
 * someone copies it with `target[key] = value` or `Object.assign`: those call the `__proto__` setter and
 * swap the target's prototype. Every copy of client or backend data in the core goes through these helpers
 * (or through spread / `Object.fromEntries`, which define properties and never call setters).
 */
import type { JsonObject } from "./types.js";

/** Keys that change prototypes or constructors when assigned; never copied into the connection stash. */
export const PROTOTYPE_KEYS: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);

/** True for a JSON object (not an array, not null). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Defines `key` as an own, enumerable property of `target`, even when `key` is `__proto__`. Only
 * `__proto__` is an accessor on `Object.prototype`; every other key of a plain object is assigned as a
 * data property, which is cheaper than `defineProperty` (a reply is built with a few of these per request).
 */
export function setOwn(target: JsonObject, key: string, value: unknown): void {
  if (key === "__proto__") {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  } else target[key] = value;
}

/** Reads an own property only, so `constructor` or `__proto__` never come from the prototype chain. */
export function getOwn(source: Readonly<JsonObject>, key: string): unknown {
  return Object.hasOwn(source, key) ? source[key] : undefined;
}

/** A shallow copy of `source` without the keys for which `drop` returns true. */
export function copyWithout(source: Readonly<JsonObject>, drop: (key: string) => boolean): JsonObject {
  return Object.fromEntries(Object.entries(source).filter(([key]) => !drop(key)));
}

/** A shallow copy of `source` without the prototype-changing keys: what may safely enter the stash. */
export function withoutPrototypeKeys(source: Readonly<JsonObject>): JsonObject {
  return copyWithout(source, (key) => PROTOTYPE_KEYS.has(key));
}
