/**
 * Secrets for the command-line tools (the bridge, the service): read from a file so they stay out of `ps`,
 * and the check that tells when a secret was passed on the command line instead.
 */
import { readFileSync } from "node:fs";

/**
 * A secret kept in a file: its text without the final line break an editor adds. Throws an Error naming
 * the flag and the path when the file cannot be read or is empty.
 */
export function readSecretFile(path: string, flag: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new Error(`cannot read ${flag} ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const secret = text.replace(/\r?\n$/, "");
  if (!secret) throw new Error(`${flag} ${path} is empty`);
  return secret;
}

/** True for a Redis URL that carries a password (`redis://:pw@host`, `redis://user:pw@host`). */
export function hasPassword(url: string): boolean {
  try {
    return new URL(url).password !== "";
  } catch {
    return false;
  }
}
