/**
 * A minimal Upstash REST client for the load generators: `node:http` with a keep-alive agent, because
 * Node 20's global `fetch` costs about five times the CPU per call (issue 8), and the bench process shares
 * the machine's two cores with everything it measures.
 */
import { Agent, request } from "node:http";

/** Sends one command (`POST /` with a JSON array) and resolves with its `result`. */
export type RestCommand = (command: string[]) => Promise<unknown>;

/** A keep-alive REST client for `bridgeUrl`; `close()` ends its sockets. */
export function createRestClient(bridgeUrl: string, token: string): { send: RestCommand; close(): void } {
  const url = new URL(bridgeUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: 512 });
  const send: RestCommand = (command) =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify(command);
      const call = request(
        {
          agent,
          host: url.hostname,
          port: url.port,
          method: "POST",
          path: "/",
          headers: {
            authorization: `Bearer ${token}`,
            "content-type": "application/json",
            "content-length": Buffer.byteLength(body),
          },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("end", () => {
            const text = Buffer.concat(chunks).toString();
            try {
              const parsed = JSON.parse(text) as { result?: unknown; error?: string };
              if (response.statusCode === 200) resolve(parsed.result);
              else
                reject(new Error(`REST ${command[0]}: HTTP ${response.statusCode}: ${parsed.error ?? text}`));
            } catch (error) {
              reject(
                new Error(`REST ${command[0]}: unreadable answer: ${text.slice(0, 100)}`, { cause: error }),
              );
            }
          });
          response.on("error", reject);
        },
      );
      call.on("error", reject);
      call.end(body);
    });
  return { send, close: () => agent.destroy() };
}
