/**
 * Every option the code accepts is documented in the README: the members of each exported options interface
 * are read with the TypeScript compiler, and each must appear in the README as `name` (or a hook as `name(...)`).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../src/devstack/stack.js";

/** The options interfaces users write, by the file that declares them. */
const OPTION_INTERFACES: Record<string, string[]> = {
  "src/core/types.ts": ["RpcHooks", "ActionOptions"],
  "src/core/options.ts": ["GatewayHooks", "GatewayOptions"],
  "src/worker/config.ts": ["CreateGatewayOptions", "GatewayEnv"],
  "src/worker/playground.ts": ["PlaygroundOptions"],
  "src/backends/consumer-groups-options.ts": ["ConsumerGroupsOptions"],
  "src/backends/reply-poller.ts": ["ReplyPollerOptions"],
  "src/backends/jsonrpc.ts": ["JsonRpcOptions"],
  "src/consumer/options.ts": ["RpcServiceOptions"],
  "src/bridge/server.ts": ["BridgeOptions"],
};

/** The names of the members of an interface declared in `file` (index signatures left out). */
function interfaceMembers(file: string, name: string): string[] {
  const source = ts.createSourceFile(
    file,
    readFileSync(join(PROJECT_ROOT, file), "utf8"),
    ts.ScriptTarget.Latest,
  );
  const members: string[] = [];
  source.forEachChild((node) => {
    if (!ts.isInterfaceDeclaration(node) || node.name.text !== name) return;
    for (const member of node.members) {
      if (member.name && (ts.isIdentifier(member.name) || ts.isStringLiteral(member.name))) {
        members.push(member.name.text);
      }
    }
  });
  return members;
}

const readme = readFileSync(join(PROJECT_ROOT, "README.md"), "utf8");

describe("README configuration reference", () => {
  for (const [file, interfaces] of Object.entries(OPTION_INTERFACES)) {
    for (const name of interfaces) {
      it(`documents every member of ${name} (${file})`, () => {
        const members = interfaceMembers(file, name);
        expect(members.length, `${name} was not found in ${file}`).toBeGreaterThan(0);
        const missing = members.filter((member) => !new RegExp(`\`${member}[\`(]`).test(readme));
        expect(missing, `options of ${name} missing from README.md`).toEqual([]);
      });
    }
  }
});
