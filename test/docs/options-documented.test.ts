/**
 * Every option the code accepts is documented in docs/configuration.md: the members of each exported
 * options interface are read with the TypeScript compiler, and each must appear there as `name` (or a
 * function option as `name(...)`). A function option (a hook, `verify`, `objectName`) must be written with
 * the parameter names its type declares, in order, wherever it appears as `name(...)`: a doc that promises
 * other arguments than the code passes fails here.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../src/devstack/stack.js";

/** The options interfaces users write (looked up by name anywhere under src/, so a moved file still counts). */
const OPTION_INTERFACES = [
  "RpcHooks",
  "ActionOptions",
  "GatewayHooks",
  "GatewayOptions",
  "CreateGatewayOptions",
  "GatewayEnv",
  "PlaygroundOptions",
  "RequireAuthOptions",
  "ConsumerGroupsOptions",
  "ReplyPollerOptions",
  "JsonRpcOptions",
  "RpcServiceOptions",
  "RpcContext",
  "BridgeOptions",
];

const DOC = "docs/configuration.md";

/** Every TypeScript source under `dir`, parsed. */
function sourceFiles(dir: string): ts.SourceFile[] {
  return readdirSync(join(PROJECT_ROOT, dir), { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(".ts") && !file.endsWith(".d.ts"))
    .map((file) => {
      const path = join(PROJECT_ROOT, dir, file);
      return ts.createSourceFile(
        relative(PROJECT_ROOT, path),
        readFileSync(path, "utf8"),
        ts.ScriptTarget.Latest,
        true,
      );
    });
}

const sources = sourceFiles("src");

/** Top-level declarations of `kind` by name, over every source file. */
function declarations<T extends ts.Node>(is: (node: ts.Node) => node is T): Map<string, T[]> {
  const found = new Map<string, T[]>();
  for (const source of sources) {
    source.forEachChild((node) => {
      if (!is(node)) return;
      const name = (node as unknown as { name: ts.Identifier }).name.text;
      found.set(name, [...(found.get(name) ?? []), node]);
    });
  }
  return found;
}

const interfaces = declarations(ts.isInterfaceDeclaration);
const typeAliases = declarations(ts.isTypeAliasDeclaration);

/** A documented member: its name, and its parameter names when it is a function option. */
interface Member {
  name: string;
  parameters?: string[];
}

/**
 * The parameter names of a function option's type: a function type, a method, or a named function type
 * (`RequestHook`), alone or in a union with a list of itself (`RequestHook | RequestHook[]`) or undefined.
 * Any other type (an object, a record, `typeof fetch`) is not a function option.
 */
function parameterNames(type: ts.TypeNode | undefined, seen = new Set<string>()): string[] | undefined {
  if (!type) return undefined;
  if (ts.isParenthesizedTypeNode(type)) return parameterNames(type.type, seen);
  if (ts.isFunctionTypeNode(type)) return type.parameters.map((p) => p.name.getText());
  if (ts.isArrayTypeNode(type)) return parameterNames(type.elementType, seen);
  if (ts.isTypeReferenceNode(type) && ts.isIdentifier(type.typeName)) {
    const name = type.typeName.text;
    const alias = typeAliases.get(name)?.[0];
    if (!alias || seen.has(name)) return undefined;
    return parameterNames(alias.type, new Set([...seen, name]));
  }
  if (ts.isUnionTypeNode(type)) {
    const members = type.types.filter(
      (t) => t.kind !== ts.SyntaxKind.UndefinedKeyword && !ts.isArrayTypeNode(t),
    );
    const lists = members.map((t) => parameterNames(t, seen));
    if (lists.length === 0 || lists.some((list) => list === undefined)) return undefined;
    return lists[0];
  }
  return undefined;
}

/** The members of interface `name` (index signatures left out). */
function interfaceMembers(name: string): Member[] {
  const members: Member[] = [];
  for (const node of interfaces.get(name) ?? []) {
    for (const member of node.members) {
      if (!member.name || !(ts.isIdentifier(member.name) || ts.isStringLiteral(member.name))) continue;
      const parameters = ts.isMethodSignature(member)
        ? member.parameters.map((p) => p.name.getText())
        : ts.isPropertySignature(member)
          ? parameterNames(member.type)
          : undefined;
      members.push({ name: member.name.text, parameters });
    }
  }
  return members;
}

/** The argument lists `name(...)` is written with in the doc, e.g. `["conn, req"]`. */
function documentedCalls(doc: string, name: string): string[] {
  return [...doc.matchAll(new RegExp(`\`${name}\\(([^)]*)\\)`, "g"))].map((match) => match[1] ?? "");
}

const doc = readFileSync(join(PROJECT_ROOT, DOC), "utf8");

describe("the configuration reference (docs/configuration.md)", () => {
  for (const name of OPTION_INTERFACES) {
    it(`documents every member of ${name}`, () => {
      const members = interfaceMembers(name);
      expect(members.length, `interface ${name} was not found under src/`).toBeGreaterThan(0);
      const missing = members
        .filter((member) => !new RegExp(`\`${member.name}[\`(]`).test(doc))
        .map((member) => member.name);
      expect(missing, `options of ${name} missing from ${DOC}`).toEqual([]);
    });

    it(`writes each function option of ${name} with the arguments its type declares`, () => {
      const wrong: string[] = [];
      for (const member of interfaceMembers(name)) {
        if (!member.parameters) continue;
        const expected = member.parameters.join(", ");
        const calls = documentedCalls(doc, member.name);
        if (calls.length === 0 && member.parameters.length > 0) {
          wrong.push(`${member.name}: documented without its arguments (${expected})`);
        }
        for (const call of calls) {
          if (call !== expected) wrong.push(`${member.name}(${call}) should be ${member.name}(${expected})`);
        }
      }
      expect(wrong).toEqual([]);
    });
  }

  it("reads a function option's parameters through named hook types", () => {
    // The check above is only as good as this reading: a hook typed `RequestHook | RequestHook[]`.
    const beforeForward = interfaceMembers("RpcHooks").find((member) => member.name === "beforeForward");
    expect(beforeForward?.parameters).toEqual(["conn", "req"]);
    const afterSent = interfaceMembers("GatewayHooks").find(
      (member) => member.name === "afterSentApiResponse",
    );
    expect(afterSent?.parameters).toEqual(["conn", "req", "reply", "rpcRequest"]);
  });
});
