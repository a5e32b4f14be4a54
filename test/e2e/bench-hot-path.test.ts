/**
 * The hot-path benchmark (bench/hot-path.ts): its loop drives real client frames through the dispatcher
 * and the consumer-groups backend and gets every one answered, in Node and inside workerd, with one `LPOP`
 * per `XADD` as the 1-client runs have it. No timing assertion.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { runHotPath } from "../../bench/hot-path-loop.js";
import { PROJECT_ROOT } from "../../src/devstack/stack.js";

const run = promisify(execFile);

it("answers every request of the loop without an error, polling once per request", async () => {
  let measured = false;
  const result = await runHotPath(50, 200, async (loop) => {
    await loop();
    measured = true;
  });
  expect(measured).toBe(true);
  expect(result).toEqual({ answered: 200, errors: 0, lpopPerXadd: 1 });
});

it("runs the same loop inside workerd with --workerd", async () => {
  const { stdout } = await run(
    process.execPath,
    ["--import", "tsx", join(PROJECT_ROOT, "bench/hot-path.ts"), "300", "--workerd"],
    { cwd: PROJECT_ROOT, timeout: 60_000 },
  );
  const lines = stdout.trim().split("\n");
  expect(lines).toHaveLength(3);
  for (const line of lines)
    expect(line).toMatch(/^workerd, run \d: 300 requests, 300 answered \(0 errors\): .*1\.00 LPOP per XADD$/);
}, 90_000);
