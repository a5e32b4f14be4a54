/**
 * The Worker of the end-to-end hook tests: the example service's actions with limits small enough to
 * reach every gateway error of PROTOCOL.md 1.3 over the real stack (Timeout, ResponseTooLarge), and one
 * object for all connections so the tests can count its Redis commands.
 */
import { createGateway } from "../../src/worker/gateway.js";

const gateway = createGateway({
  actions: [
    ["ping"],
    ["echo"],
    ["slow"],
    // A beforeForward hook slower than hookTimeoutMs: the client gets Timeout.
    ["stall", { beforeForward: () => new Promise((resolve) => setTimeout(() => resolve(undefined), 2_000)) }],
  ],
  hookTimeoutMs: 300,
  maxResponseBytes: 4_000,
  objectName: () => "e2e",
});

export default { fetch: gateway.fetch };
export const GatewayObject = gateway.GatewayObject;
