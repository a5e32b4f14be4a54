/**
 * `npm start`: the whole local stack (redis-server, REST bridge, example service, the gateway under
 * `wrangler dev`) with prefixed logs; prints where to connect; Ctrl-C stops every part.
 */
import { createServer } from "node:net";
import { StartError } from "../src/devstack/processes.js";
import { startStack, type Stack } from "../src/devstack/stack.js";

const port = Number(process.env.PORT ?? 8787);

/** True when something already listens on the port (another `npm start`, say). */
function portTaken(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(true));
    server.listen(p, "127.0.0.1", () => server.close(() => resolve(false)));
  });
}

async function main(): Promise<void> {
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    console.error(`PORT must be a TCP port number, got "${process.env.PORT}"`);
    process.exit(2);
  }
  if (await portTaken(port)) {
    console.error(
      `Port ${port} is already in use (is another \`npm start\` running?). Stop it, or choose another port: PORT=8788 npm start`,
    );
    process.exit(1);
  }
  console.log("Starting redis-server, the REST bridge, the example service and the gateway...");
  const started = Date.now();
  const running: { stack?: Stack } = {};
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping every part...`);
    await running.stack?.stop();
    console.log("Stopped.");
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
  // A closing terminal (or a dropped SSH session) hangs up: stop as for Ctrl-C.
  process.on("SIGHUP", () => void stop("SIGHUP"));

  // LOG_LEVEL=info: one JSON line per request in the worker's log, so you see what the gateway does.
  const stack = await startStack({
    service: true,
    worker: { port, vars: { LOG_LEVEL: process.env.LOG_LEVEL ?? "info" } },
    log: (line) => console.log(line),
  });
  running.stack = stack;
  const worker = stack.worker;
  if (!worker) throw new Error("the Worker did not start");
  // `npm run call` connects to port 8787's URL unless told otherwise: on another port the hint says where.
  const urlFlag =
    worker.wsUrl === `ws://127.0.0.1:8787${new URL(worker.wsUrl).pathname}` ? "" : `--url ${worker.wsUrl} `;
  console.log(
    [
      "",
      `edge-wsproxy is up (${((Date.now() - started) / 1000).toFixed(1)} s):`,
      `  Playground ${worker.httpUrl}/`,
      `  WebSocket  ${worker.wsUrl}`,
      `  Health     ${worker.httpUrl}/health`,
      `  Metrics    ${worker.httpUrl}/metrics`,
      `  Redis      ${stack.redis.url} (private, no persistence)`,
      `  Bridge     ${stack.bridge.url} (Upstash REST protocol)`,
      "",
      `Try it:  npm run call -- ${urlFlag}'{"ping":1}'     (or interactively: npm run call${urlFlag ? ` -- ${urlFlag.trimEnd()}` : ""})`,
      "Press Ctrl-C to stop.",
      "",
    ].join("\n"),
  );
}

main().catch((error: unknown) => {
  console.error(error instanceof StartError ? error.message : error);
  process.exit(1);
});
