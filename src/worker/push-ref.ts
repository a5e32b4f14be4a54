/**
 * Connection references (docs/push.md): `<base64url(objectName)>.<connectionId>.<secret>`, the capability
 * a service gets with each request (inside the push URL `<pushOrigin>/connections/<ref>`).
 *
 * The object name lets the Worker route a push without a lookup. The secret is 128 bits, 32 lowercase hex
 * digits: the first half of HMAC-SHA-256(object key, connection id), where the object key is 256 random
 * bits the object keeps in its storage. So the object can tell, with no record per connection, a reference
 * it issued to a connection that has since closed (410 Gone) from one it never issued (404), even after it
 * was evicted or restarted; a wrong guess at the secret has a 2^-128 chance.
 */

/** A reference taken apart. */
export interface ConnectionRef {
  objectName: string;
  connectionId: string;
  secret: string;
}

/** The object's storage key of its reference key. */
export const PUSH_KEY_STORAGE_KEY = "wsproxy:push-key";

const SECRET_PATTERN = /^[0-9a-f]{32}$/;
const CONNECTION_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const BASE64URL_PATTERN = /^[A-Za-z0-9_-]+$/;
/** An object name longer than this cannot be in a reference (Cloudflare's limit on names is higher). */
const MAX_OBJECT_NAME_BYTES = 512;

/** `<base64url(objectName)>.<connectionId>.<secret>`. */
export function formatRef(ref: ConnectionRef): string {
  return `${base64url(new TextEncoder().encode(ref.objectName))}.${ref.connectionId}.${ref.secret}`;
}

/**
 * Reads a reference, or a push URL (`https://gw.example/connections/<ref>`, with or without `/messages`).
 * Undefined when it is malformed.
 */
export function parseRef(value: string): ConnectionRef | undefined {
  const marker = value.lastIndexOf("/connections/");
  let ref = marker >= 0 ? value.slice(marker + "/connections/".length) : value;
  if (ref.endsWith("/messages")) ref = ref.slice(0, -"/messages".length);
  const [encodedName, connectionId, secret, ...rest] = ref.split(".");
  if (rest.length > 0 || !encodedName || !connectionId || !secret) return undefined;
  if (!SECRET_PATTERN.test(secret) || !CONNECTION_ID_PATTERN.test(connectionId)) return undefined;
  if (!BASE64URL_PATTERN.test(encodedName) || encodedName.length > (MAX_OBJECT_NAME_BYTES * 4) / 3 + 4) {
    return undefined;
  }
  const objectName = decodeBase64url(encodedName);
  return objectName === undefined ? undefined : { objectName, connectionId, secret };
}

/** Imports the object's raw key (32 bytes) for HMAC-SHA-256. */
export function importPushKey(raw: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

/** The secret of one connection: the first 16 bytes of HMAC-SHA-256(key, connectionId), in hex. */
export async function connectionSecret(key: CryptoKey, connectionId: string): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(connectionId));
  return hex(new Uint8Array(mac).subarray(0, 16));
}

/** Compares two secrets in time independent of where they differ. */
export function secretsEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function decodeBase64url(encoded: string): string | undefined {
  try {
    const binary = atob(encoded.replaceAll("-", "+").replaceAll("_", "/"));
    const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    // Not base64 or not UTF-8: a malformed reference, answered 404 by the caller.
    return undefined;
  }
}
