/**
 * The service of the end-to-end tests: the example handlers, plus `whoami`, which returns the stash
 * values the gateway sent (`stashParams`), so a test can see the stash round trip in a reply.
 */
import { handlers as exampleHandlers } from "../../examples/example-service.js";
import type { RpcHandlers } from "../../src/consumer/index.js";

/** The example handlers and `whoami`. */
export const handlers: RpcHandlers = {
  ...exampleHandlers,
  whoami: (params) => ({ loginid: params.loginid ?? null, scopes: params.scopes ?? null }),
};
