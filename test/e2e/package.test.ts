/**
 * The package as a user installs it (`npm run check:package`, offline): the tarball from `npm pack`, installed
 * in a scratch project, where the README's 4-line Worker passes `wrangler deploy --dry-run`, plain Node
 * imports the service SDK and the bridge from the built JavaScript, the bin commands run and the shipped
 * declarations type-check a Worker and a service.
 */
import { describe, expect, it } from "vitest";
import { checkPackage } from "../../scripts/check-package.js";

describe("the installed package", () => {
  it("deploys the 4-line Worker, serves Node from built JavaScript and type-checks", () => {
    const lines: string[] = [];
    const { problems, packed } = checkPackage({ log: (line) => lines.push(line) });
    expect(problems).toEqual([]);
    expect(lines).toContain("edge-wsproxy/service: createRpcService, edge-wsproxy/bridge: startBridge");
    expect(lines).toContain("worker.ts and service.ts type-check");
    for (const bin of ["edge-wsproxy-bridge", "edge-wsproxy-service", "edge-wsproxy-call"]) {
      expect(lines.some((line) => line.startsWith(`${bin} --help: usage`))).toBe(true);
    }
    // The tarball ships built JavaScript and declarations, not the sources or the tests.
    const paths = packed?.files.map((file) => file.path) ?? [];
    expect(paths).toContain("dist/index.js");
    expect(paths).toContain("dist/index.d.ts");
    expect(paths.filter((path) => /^(src|test|examples|scripts)\//.test(path))).toEqual([]);
  }, 240_000);
});
