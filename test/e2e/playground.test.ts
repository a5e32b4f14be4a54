/**
 * The playground page in real headless Chromium (Debian's `chromium`, driven by playwright-core) against
 * the whole stack: the example deployment serves the page, the page talks to the gateway over WebSocket.
 *
 * Skipped, with a message, when /usr/bin/chromium is missing on a developer machine; in CI (`CI` set) a
 * missing browser fails instead, so the test cannot silently stop running there.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, type Stack } from "../../src/devstack/stack.js";
import { stackLog } from "./helpers.js";

const CHROMIUM = "/usr/bin/chromium";

/** The bit of the page's `window` a check uses (the project's TypeScript has no DOM types). */
interface PageWindow {
  getComputedStyle(element: unknown): { borderLeftColor: string };
}
const haveChromium = existsSync(CHROMIUM);
const inCi = Boolean(process.env.CI);

if (!haveChromium && !inCi) {
  console.warn(
    `playground browser test skipped: ${CHROMIUM} not found (Debian/Ubuntu: sudo apt-get install -y chromium)`,
  );
}

describe.skipIf(!haveChromium && !inCi)("the playground page in headless Chromium", () => {
  let stack: Stack;
  let context: BrowserContext;
  let page: Page;
  let profileDir: string;

  beforeAll(async () => {
    if (!haveChromium)
      throw new Error(`${CHROMIUM} is missing: CI must install chromium (apt-get install -y chromium)`);
    stack = await startStack({ service: true, worker: true, log: stackLog });
    profileDir = mkdtempSync(join(tmpdir(), "edge-wsproxy-chromium-"));
    // A persistent context because that is how playwright takes a fresh `--user-data-dir`.
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      colorScheme: "light",
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    page = context.pages()[0] ?? (await context.newPage());
  }, 90_000);

  afterAll(async () => {
    await context?.close();
    await stack?.stop();
    if (profileDir) rmSync(profileDir, { recursive: true, force: true });
  });

  it("connects, lists the actions, sends ping and shows pong with its req_id and round-trip time", async () => {
    await page.goto(`${stack.worker?.httpUrl}/`);
    await page.waitForSelector("#status[data-state=open]", { timeout: 10_000 });
    expect(await page.locator("#actions button").allTextContents()).toContain("ping");

    await page.click("#actions button:text-is('ping')");
    expect(JSON.parse(await page.inputValue("#editor"))).toEqual({ ping: 1 });
    await page.click("#send");

    const reply = page.locator(".reply").first();
    await reply.waitFor({ timeout: 10_000 });
    expect(await reply.locator("pre").textContent()).toContain('"ping": "pong"');
    expect(await reply.getAttribute("class")).toBe("reply");
    expect(await reply.locator(".req").textContent()).toBe("req_id 1");
    expect(await reply.locator(".rtt").textContent()).toMatch(/^\d+\.\d ms$/);
  });

  it("sends a frame that is not JSON and highlights the BadRequest reply", async () => {
    await page.fill("#editor", "{not json");
    await page.click("#send");
    const error = page.locator(".reply.error").first();
    await error.waitFor({ timeout: 10_000 });
    expect(await error.locator(".code").textContent()).toBe("BadRequest");
    expect(await error.locator("pre").textContent()).toContain("INVALID_JSON");
    // Highlighted: the error card's accent is the page's error colour, not the success one.
    const border = await error.evaluate(
      (card) => (globalThis as unknown as PageWindow).getComputedStyle(card).borderLeftColor,
    );
    expect(border).toBe("rgb(201, 53, 53)");
    expect(await page.locator("#log").textContent()).toContain("[BadRequest]");
  });

  it("disconnects and reconnects", async () => {
    await page.click("#connect");
    await page.waitForSelector("#status[data-state=closed]", { timeout: 5_000 });
    expect(await page.textContent("#connect")).toBe("Reconnect");
    await page.click("#connect");
    await page.waitForSelector("#status[data-state=open]", { timeout: 10_000 });
    await page.click("#actions button:text-is('ping')");
    await page.click("#send");
    await page.locator(".reply").nth(2).waitFor({ timeout: 10_000 });
    expect(await page.locator(".reply pre").first().textContent()).toContain('"pong"');
  });
});
