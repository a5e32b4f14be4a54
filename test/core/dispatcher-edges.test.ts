/**
 * The dispatcher's less travelled paths, as the platform glue meets them: frames over the rate that are
 * binary, text the platform marks binary, empty binary frames, frames that are JSON but not an object, a
 * connection that misbehaves (`handleFrame` never rejects), and the statuses `handlePush` answers.
 */
import { describe, expect, it, vi } from "vitest";
import { createDispatcher, createMemoryConnection } from "../../src/core/index.js";
import { fakeBackend, gateway, quietLogger } from "./helpers.js";

describe("frames", () => {
  it("binary frames over the message rate send nothing but count toward the abuse close", async () => {
    const onBinaryFrame = vi.fn();
    const logger = quietLogger();
    const options = {
      actions: [["ping"]] as [string][],
      onBinaryFrame,
      maxMessagesPerSecond: 1,
      messageBurst: 1,
      abuseCloseAfterRejections: 3,
    };
    // A clock that stands still: no frame is let through by the rate refilling.
    const dispatcher = createDispatcher(
      options,
      { default: fakeBackend() },
      { logger, now: () => 1_000_000 },
    );
    const conn = createMemoryConnection();
    const bytes = new Uint8Array([1, 2, 3]);
    for (let i = 0; i < 4; i++) await dispatcher.handleFrame(conn, bytes);
    expect(onBinaryFrame).toHaveBeenCalledTimes(1);
    expect(conn.sent).toEqual([]);
    expect(conn.closed).toEqual({ code: 1008, reason: "Policy violation" });
    expect(logger.error).not.toHaveBeenCalled();
  });

  it("a frame the platform already refused (overRate) is answered RateLimit, with its req_id", async () => {
    const { dispatcher, conn, logger } = gateway();
    await dispatcher.handleFrame(conn, '{"ping":1,"req_id":3}', { overRate: true });
    expect(conn.sent).toEqual([
      expect.objectContaining({
        msg_type: "error",
        error: expect.objectContaining({ code: "RateLimit" }),
        req_id: 3,
      }),
    ]);
    expect(logger.error).not.toHaveBeenCalled();
  });

  it("text the platform marks binary reaches onBinaryFrame as its UTF-8 bytes", async () => {
    const onBinaryFrame = vi.fn();
    const { dispatcher, conn } = gateway({ onBinaryFrame });
    await dispatcher.handleFrame(conn, "é!", { binary: true });
    expect(onBinaryFrame).toHaveBeenCalledWith(conn, new Uint8Array([0xc3, 0xa9, 0x21]));
    expect(conn.sent).toEqual([]);
  });

  it("an empty binary frame is ignored, even with an onBinaryFrame hook", async () => {
    const onBinaryFrame = vi.fn();
    const { dispatcher, conn } = gateway({ onBinaryFrame });
    await dispatcher.handleFrame(conn, new Uint8Array(0));
    await dispatcher.handleFrame(conn, new ArrayBuffer(0));
    expect(onBinaryFrame).not.toHaveBeenCalled();
    expect(conn.sent).toEqual([]);
  });

  it("JSON that is not an object gets BadRequest but is no encoding error", async () => {
    const onEncodingError = vi.fn();
    const afterDispatch = vi.fn();
    const { conn, send } = gateway({ onEncodingError, afterDispatch });
    await send("[1,2]");
    expect(conn.sent).toEqual([
      expect.objectContaining({ msg_type: "error", error: expect.objectContaining({ code: "BadRequest" }) }),
    ]);
    expect(onEncodingError).not.toHaveBeenCalled();
    expect(afterDispatch).toHaveBeenCalledWith(conn, undefined);
  });

  it("never rejects, even when the connection throws; the failure is logged", async () => {
    const logger = quietLogger();
    const dispatcher = createDispatcher(
      { actions: [["ping"]], maxMessageBytes: 10 },
      { default: fakeBackend() },
      { logger },
    );
    const conn = createMemoryConnection();
    conn.close = () => {
      throw new Error("socket already gone");
    };
    await expect(dispatcher.handleFrame(conn, '{"ping":"far too long"}')).resolves.toBeUndefined();
    expect(logger.error).toHaveBeenCalledTimes(1);
  });
});

describe("handlePush statuses", () => {
  it("answers 410 when the connection closes while a hook prepares the pushed frame", async () => {
    const { dispatcher, conn } = gateway({
      beforeSendApiResponse: (c) => c.close(1000, "bye"),
    });
    expect(await dispatcher.handlePush(conn, { frame: { msg_type: "notice" } })).toBe(410);
    expect(conn.sent).toEqual([]);
  });

  it("answers 410 for a subscription the connection does not know, without logging an error", async () => {
    const { dispatcher, conn, logger } = gateway();
    expect(await dispatcher.handlePush(conn, { subscription: "nope", data: 1 })).toBe(410);
    const withRegistry = Object.assign(createMemoryConnection(), {
      subscriptions: {
        count: 0,
        get: () => undefined,
        add: () => false,
        remove: () => false,
        removeMatching: () => [],
      },
    });
    expect(await dispatcher.handlePush(withRegistry, { subscription: "nope", data: 1 })).toBe(410);
    expect(logger.error).not.toHaveBeenCalled();
  });
});
