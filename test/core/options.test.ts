import { describe, expect, it } from "vitest";
import {
  ConfigError,
  createDispatcher,
  resolveGatewayOptions,
  type GatewayOptions,
} from "../../src/core/index.js";
import { assertBackendsExist } from "../../src/core/request.js";
import { fakeBackend } from "./helpers.js";

describe("gateway options (PROTOCOL section 2)", () => {
  it("fills in the documented defaults", () => {
    const resolved = resolveGatewayOptions({ actions: [["ping"], ["time", { msgType: "t" }]] });
    // Literal values, as the docs state them: a changed default must change this test too.
    expect(resolved).toMatchObject({
      defaultBackend: "default",
      basePath: "/websockets/v3",
      maxMessageBytes: 65_536,
      maxResponseBytes: 600_000,
      sanityCheck: true,
      hookTimeoutMs: 15_000,
      requestData: true,
      sensitiveFields: [],
      maxPendingPerConnection: 100,
      maxMessagesPerSecond: 2000,
      messageBurst: 2000,
      abuseCloseAfterRejections: 500,
      abuseWindowMs: 10_000,
    });
    // forget and forget_all come with push (on by default), after the registered actions.
    expect([...resolved.actionTable.keys()]).toEqual(["ping", "time", "forget", "forget_all"]);
  });

  it("resolves each action once: its backend and insteadOfForward, the action's over the global one", () => {
    const global = () => ({ msg_type: "global" });
    const own = () => ({ msg_type: "own" });
    const resolved = resolveGatewayOptions({
      actions: [["ping"], ["time", { backend: "clock", instead_of_forward: own }]],
      insteadOfForward: global,
      defaultBackend: "main",
    });
    expect(resolved.routes.get("ping")).toMatchObject({ backend: "main", insteadOfForward: global });
    expect(resolved.routes.get("time")).toMatchObject({ backend: "clock", insteadOfForward: own });
    // Resolved options, even with hooks added by a spread, are not resolved again.
    const withHook = { ...resolved, onOpen: () => undefined };
    expect(resolveGatewayOptions(resolved)).toBe(resolved);
    expect(resolveGatewayOptions(withHook)).toBe(withHook);
  });

  it.each([
    [{ actions: "ping" }, "`actions`"],
    [{ actions: [[""]] }, "`actions`"],
    [{ actions: [["ping"], ["ping"]] }, '"ping" is registered twice'],
    [{ actions: [["ping", 5]] }, '"ping" must be an object'],
    [{ actions: [], maxMessageBytes: 0 }, "`maxMessageBytes`"],
    [{ actions: [], maxResponseBytes: -1 }, "`maxResponseBytes`"],
    [{ actions: [], hookTimeoutMs: Number.NaN }, "`hookTimeoutMs`"],
    [{ actions: [], basePath: "ws" }, "`basePath`"],
    [{ actions: [], skipSanityCheck: "password" }, "`skipSanityCheck`"],
    [{ actions: [], sensitiveFields: "password" }, "`sensitiveFields`"],
    [{ actions: [], defaultBackend: "" }, "`defaultBackend`"],
    [{ actions: { ping: {} } }, "`actions`"],
    [{ actions: [[5]] }, "`actions`"],
    [{ actions: ["ping"] }, "every entry must be [name, options?]"],
    [{ actions: [["ping", null]] }, '"ping" must be an object'],
    [{ actions: [["ping", { stashWrites: "loginid" }]] }, 'the stashWrites of "ping"'],
    [{ actions: [["ping", { stashWrites: ["loginid", 5] }]] }, 'the stashWrites of "ping"'],
    [{ actions: [], sensitiveFields: ["password", 5] }, "`sensitiveFields`"],
    [{ actions: [], defaultBackend: 5 }, "`defaultBackend`"],
    [{ actions: [], maxSubscriptionsPerConnection: -1 }, "`maxSubscriptionsPerConnection`"],
    [{ actions: [], maxSubscriptionsPerConnection: 1.5 }, "`maxSubscriptionsPerConnection`"],
  ])("rejects %j with a ConfigError naming the option", (options, named) => {
    const resolve = () => resolveGatewayOptions(options as unknown as GatewayOptions);
    expect(resolve).toThrow(ConfigError);
    expect(resolve).toThrow(named);
  });

  it("registers forget and forget_all only with push on, and never over the deployment's own", () => {
    const own = { msgType: "mine" };
    expect([...resolveGatewayOptions({ actions: [["ping"]] }).actionTable.keys()]).toEqual([
      "ping",
      "forget",
      "forget_all",
    ]);
    expect([...resolveGatewayOptions({ actions: [["ping"]], push: false }).actionTable.keys()]).toEqual([
      "ping",
    ]);
    expect(resolveGatewayOptions({ actions: [["forget", own]] }).actionTable.get("forget")).toBe(own);
  });

  it("accepts maxSubscriptionsPerConnection 0 (every subscription refused)", () => {
    expect(resolveGatewayOptions({ actions: [], maxSubscriptionsPerConnection: 0 })).toMatchObject({
      maxSubscriptionsPerConnection: 0,
    });
  });

  it("does not ask a backend of actions answered in place, when every action's backend is checked", () => {
    const local = resolveGatewayOptions({
      actions: [
        ["time", { answerLocally: () => 1 }],
        ["ping", { insteadOfForward: () => ({ msg_type: "ping", ping: 1 }) }],
      ],
      push: false,
    });
    expect(() => assertBackendsExist(local, {}, true)).not.toThrow();
    const forwarded = resolveGatewayOptions({ actions: [["ping"]], push: false });
    expect(() => assertBackendsExist(forwarded, {}, true)).toThrow(ConfigError);
    // With no backend at all, the deployer is told so, and which option to set.
    expect(() => assertBackendsExist(forwarded, {}, true)).toThrow(
      '"ping" uses backend "default", which is not in `backends` (known: none; set `defaultBackend`?)',
    );
  });

  it("refuses an action whose backend does not exist, naming both", () => {
    const create = () =>
      createDispatcher({ actions: [["ping", { backend: "rpc" }]] }, { default: fakeBackend() });
    expect(create).toThrow(ConfigError);
    expect(create).toThrow('"ping" uses backend "rpc", which is not in `backends` (known: default)');
    const withTwo = () =>
      createDispatcher(
        { actions: [["ping", { backend: "rpc" }]] },
        { default: fakeBackend(), jsonrpc: fakeBackend() },
      );
    expect(withTwo).toThrow("(known: default, jsonrpc)");
  });
});
