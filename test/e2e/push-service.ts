/**
 * The service of the push tests: the example handlers, with every push the process sends logged on stderr
 * as `push-attempt <subscription id or -> <status>` (one line per HTTP attempt, retries included), so a
 * test sees what the service tried after a `forget` or a close. The SDK's pusher calls `globalThis.fetch`
 * at each attempt, so wrapping it here sees them all. Run with `--module test/e2e/push-service.ts`.
 */
import { handlers as exampleHandlers } from "../../examples/example-service.js";
import type { RpcHandlers } from "../../src/consumer/index.js";

const realFetch = globalThis.fetch;

globalThis.fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
  const url = input instanceof Request ? input.url : String(input);
  if (!/\/connections\//.test(url)) return realFetch(input, init);
  let subscription = "-";
  try {
    const body = JSON.parse(String(init?.body)) as { subscription?: unknown };
    if (typeof body.subscription === "string") subscription = body.subscription;
  } catch {
    // A body that is not JSON text: logged without a subscription.
  }
  try {
    const response = await realFetch(input, init);
    console.error(`push-attempt ${subscription} ${response.status}`);
    return response;
  } catch (error) {
    console.error(`push-attempt ${subscription} network`);
    throw error;
  }
};

/** The example handlers, unchanged. */
export const handlers: RpcHandlers = { ...exampleHandlers };
