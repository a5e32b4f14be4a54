/**
 * The `XADD` the gateway sends for `{"ping":1,"req_id":N}` (PROTOCOL.md section 3), for the baselines
 * and the floor's bare poll path. Runtime-neutral (Node and workerd): the floor Worker imports it too.
 */
export function gatewayEntry(who: string, messageId: string, reqId: unknown): string[] {
  return [
    "XADD",
    "general",
    "MAXLEN",
    "~",
    "100000",
    "*",
    "rpc",
    "ping",
    "who",
    who,
    "deadline",
    String(Math.floor(Date.now() / 1000) + 30),
    "args",
    JSON.stringify({ args: { ping: 1, req_id: reqId } }),
    "req_log_context",
    JSON.stringify({ correlation_id: crypto.randomUUID() }),
    "message_id",
    messageId,
  ];
}
