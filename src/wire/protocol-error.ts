/** A peer sent something the gateway cannot use (bad JSON, missing fields, a broken event stream). */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
}
