/**
 * The parameter sanity check (PROTOCOL.md 1.1.2), after Mojo::WebSocketProxy's `_check_sanity`.
 *
 * Checked: every top-level key; every key and value of a nested object one level down; every element of a
 * top-level array (against the array's key). Values deeper than that are not inspected, as in Perl.
 */
import type { ClientMessage } from "./types.js";

/** The first key/value pair that failed the check. */
export interface SanityFailure {
  key: string;
  value: unknown;
}

const KEY_PATTERN = /^[A-Za-z0-9_-]{1,50}$/;

/**
 * Allowed characters of a scalar value, at most 300 code points. Our reading of "letters, digits,
 * whitespace, printable ASCII or Unicode Common-script characters", following Perl's
 * `[\p{Script=Common}\p{L}\s\w\@_:!-~]` (Perl's `\w` is Unicode-aware):
 * - `\p{L}` letters of any script, plus `\p{M}` combining marks, which many scripts (Devanagari, Thai,
 *   Arabic vowel signs, decomposed accents) need to write a letter at all and which Perl's `\w` accepts;
 * - `\p{N}` digits and other numerals of any script, `\p{Pc}` connector punctuation and
 *   `\p{Join_Control}` (ZWJ/ZWNJ, needed by Indic scripts and emoji sequences), all three in Perl's `\w`;
 * - `\s` whitespace; `!-~` printable ASCII; `\p{Script=Common}` punctuation, symbols, emoji and full-width
 *   forms (e.g. Japanese keyboards' `１−１−１`).
 * What fails: script-specific punctuation (Armenian `։`, Tibetan `༄`), private-use, unassigned and
 * noncharacter code points, lone surrogates. Note that Unicode puts the C0/C1 control characters in the
 * Common script, so, as in the Perl proxy, they pass: the spec's "Common-script characters" includes them.
 */
const VALUE_PATTERN = /^[\p{L}\p{M}\p{N}\p{Pc}\p{Join_Control}\s!-~\p{Script=Common}]{0,300}$/u;

/**
 * Returns a checker for client messages; `skip` exempts the values of matching keys (the key itself must
 * still be well-formed). A `g` or `y` flag on `skip` is dropped, as it would make `test()` stateful.
 */
export function createSanityCheck(skip?: RegExp): (message: ClientMessage) => SanityFailure | undefined {
  const skipPattern = skip && new RegExp(skip.source, skip.flags.replace(/[gy]/g, ""));
  const failed = (key: string, value: unknown): boolean =>
    !KEY_PATTERN.test(key) || (!skipPattern?.test(key) && isBadValue(value));

  return (message) => {
    for (const [key, value] of Object.entries(message)) {
      if (Array.isArray(value)) {
        if (!KEY_PATTERN.test(key)) return { key, value };
        const element = value.find((item) => failed(key, item));
        if (element !== undefined) return { key, value: element };
      } else if (typeof value === "object" && value !== null) {
        if (!KEY_PATTERN.test(key)) return { key, value };
        const nested = Object.entries(value).find(([nestedKey, nestedValue]) =>
          failed(nestedKey, nestedValue),
        );
        if (nested) return { key: nested[0], value: nested[1] };
      } else if (failed(key, value)) {
        return { key, value };
      }
    }
    return undefined;
  };
}

/** Falsy values (`0`, `""`, `false`, `null`) always pass; objects and arrays below the checked depth too. */
/** Printable ASCII, at most 300 characters: a subset of {@link VALUE_PATTERN}, much cheaper to test. */
const ASCII_VALUE = /^[ -~]{0,300}$/;

function isBadValue(value: unknown): boolean {
  if (!value || typeof value === "object") return false;
  const text = String(value);
  // Almost every value is plain ASCII: the Unicode pattern runs only for the rest.
  return !ASCII_VALUE.test(text) && !VALUE_PATTERN.test(text);
}
