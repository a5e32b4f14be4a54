/**
 * How a hook call is bounded (`runHook`): a hook that returns a plain value has finished and needs no
 * timer (a Durable Object with no timer left can hibernate, and a timer per hook per request is among
 * the costliest calls an object makes); one that returns a promise is bounded by `hookTimeoutMs`.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { HookTimeoutError } from "../../src/core/errors.js";
import { runHook } from "../../src/core/index.js";

afterEach(() => {
  vi.useRealTimers();
});

describe("runHook", () => {
  it("hands back a synchronous hook's value with no timer set", async () => {
    vi.useFakeTimers();
    const result = runHook("beforeForward", 1_000, () => ({ early: "answer" }));
    expect(vi.getTimerCount()).toBe(0);
    await expect(result).resolves.toEqual({ early: "answer" });
  });

  it("turns a synchronous throw into a rejection, with no timer set", async () => {
    vi.useFakeTimers();
    const result = runHook("beforeForward", 1_000, () => {
      throw new Error("hook bug");
    });
    expect(vi.getTimerCount()).toBe(0);
    await expect(result).rejects.toThrow("hook bug");
  });

  it("bounds an asynchronous hook by its timeout, and clears the timer when it settles", async () => {
    vi.useFakeTimers();
    const stuck = runHook("onOpen", 1_000, () => new Promise<never>(() => undefined));
    const caught = stuck.catch((error: unknown) => error);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(999);
    const quick = runHook("onOpen", 1_000, async () => "done");
    await expect(quick).resolves.toBe("done");
    await vi.advanceTimersByTimeAsync(1);
    const error = await caught;
    expect(error).toBeInstanceOf(HookTimeoutError);
    expect(String(error)).toMatch(/onOpen/);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("waits for a thenable that is not a native promise", async () => {
    const thenable = { then: (resolve: (value: string) => void) => resolve("from a thenable") };
    await expect(runHook("afterDispatch", 1_000, () => thenable as unknown as Promise<string>)).resolves.toBe(
      "from a thenable",
    );
  });
});
