/**
 * The playground page (src/worker/playground-page.ts) in headless Chromium with a subscription: the
 * frames pushed after the reply update one card as they come (with a frame count), and its Forget button
 * sends `{"forget": id}`. A node:http + `ws` server stands in for the gateway, answering like the example
 * deployment's `ticks` action. Skipped when /usr/bin/chromium is missing outside CI, as test/e2e/playground.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { PLAYGROUND_HTML } from "../../src/worker/playground-page.js";
import { waitFor } from "../support/wait.js";

const CHROMIUM = "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);

describe.skipIf(!haveChromium && !process.env.CI)("the playground page with a subscription", () => {
  let server: Server;
  let sockets: WebSocketServer;
  let context: BrowserContext;
  let page: Page;
  let profileDir: string;
  const received: Record<string, unknown>[] = [];
  const timers = new Set<NodeJS.Timeout>();

  beforeAll(async () => {
    server = createServer((request, response) => {
      if (request.url === "/actions") {
        const actions = [{ name: "ticks", msgType: "tick", example: { ticks: "R_100", subscribe: 1 } }];
        response.writeHead(200, { "content-type": "application/json" });
        response.end(JSON.stringify({ basePath: "/websockets/v3", actions }));
        return;
      }
      response.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(PLAYGROUND_HTML);
    });
    sockets = new WebSocketServer({ server, path: "/websockets/v3" });
    sockets.on("connection", (socket) => {
      let timer: NodeJS.Timeout | undefined;
      socket.on("message", (data) => {
        const request = JSON.parse(String(data)) as Record<string, unknown>;
        received.push(request);
        const echo = { echo_req: request, req_id: request.req_id };
        if (request.forget !== undefined) {
          clearInterval(timer);
          socket.send(JSON.stringify({ msg_type: "forget", forget: 1, ...echo }));
          return;
        }
        let quote = 0;
        const tick = () =>
          JSON.stringify({
            msg_type: "tick",
            tick: { symbol: "R_100", quote: quote++, id: "sub1" },
            subscription: { id: "sub1" },
            ...echo,
          });
        socket.send(tick());
        timer = setInterval(() => socket.send(tick()), 50);
        timers.add(timer);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    profileDir = mkdtempSync(join(tmpdir(), "edge-wsproxy-chromium-"));
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
      ],
    });
    page = context.pages()[0] ?? (await context.newPage());
  }, 90_000);

  afterAll(async () => {
    for (const timer of timers) clearInterval(timer);
    await context?.close();
    for (const client of sockets?.clients ?? []) client.terminate();
    sockets?.close();
    await new Promise((resolve) => server?.close(resolve));
    if (profileDir) rmSync(profileDir, { recursive: true, force: true });
  });

  it("shows the streamed frames on one card as they come, and Forget sends {forget: id}", async () => {
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    await page.waitForSelector("#status[data-state=open]", { timeout: 10_000 });
    await page.click("#actions button:text-is('ticks')");
    await page.click("#send");
    const card = page.locator(".reply:has(.sub)");
    await card.waitFor({ timeout: 10_000 });
    expect(await card.locator(".sub").textContent()).toBe("subscription sub1");
    await waitFor(
      async () => Number.parseInt((await card.locator(".frames").textContent()) ?? "0") >= 5,
      10_000,
    );
    // One card for the subscription, showing the latest frame, not one card per frame.
    expect(await page.locator(".reply").count()).toBe(1);
    expect(await card.locator("pre").textContent()).not.toContain('"quote": 0,');

    await card.locator("button.forget").click();
    await waitFor(() => received.some((request) => request.forget === "sub1"), 10_000);
    expect(received.at(-1)).toEqual({ forget: "sub1", req_id: 2 });
    await page.locator(".reply .type:text-is('forget')").waitFor({ timeout: 10_000 });
    expect(await card.getAttribute("class")).toContain("ended");
    expect(await card.locator("button.forget").isDisabled()).toBe(true);
  }, 60_000);
});
