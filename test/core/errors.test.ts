/**
 * The gateway's error classes as a deployment meets them: thrown by `createDispatcher` (ConfigError), passed
 * to `rpcFailureCb` and hooks (RpcTimeoutError, TransportError, HookTimeoutError). Their `name` is what an
 * uncaught throw prints and how code that cannot use `instanceof` (two copies of the package) tells them apart.
 */
import { describe, expect, it } from "vitest";
import { ConfigError, HookTimeoutError, RpcTimeoutError, TransportError } from "../../src/core/index.js";

describe("error classes", () => {
  it.each([
    ["ConfigError", () => new ConfigError("`maxMessageBytes` must be a positive number")],
    ["RpcTimeoutError", () => new RpcTimeoutError("ticks", 30_000)],
    ["TransportError", () => new TransportError("connection refused", "XADD general")],
    ["HookTimeoutError", () => new HookTimeoutError("beforeForward", 15_000)],
  ])("%s carries its own name", (name, make) => {
    const error = make();
    expect(error.name).toBe(name);
    expect(String(error)).toMatch(new RegExp(`^${name}: .+`));
  });

  it("a TransportError is a TransportError for rpcFailureCb unless it says RedisError", () => {
    expect(new TransportError("down", "POST /rpc").failureType).toBe("TransportError");
    expect(new TransportError("down", "XADD general", { failureType: "RedisError" }).failureType).toBe(
      "RedisError",
    );
  });
});
