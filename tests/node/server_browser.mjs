// server_browser.mjs BASE_URL MODEL_ID SCREENSHOT - opens the chat page of a
// running `edgeagent serve` in headless Chromium (Debian's, via
// playwright-core), sends a message, waits for the streamed answer and
// checks the page shows the model and a tokens/s figure, that it made no
// request outside the server and logged no console error; saves a
// screenshot. Prints "N passed, N failed".
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const [base, modelId, shot] = process.argv.slice(2);
const userDir = fs.mkdtempSync(path.join(os.tmpdir(), "ea-chromium-"));
const ctx = await chromium.launchPersistentContext(userDir, {
  executablePath: process.env.EA_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1000, height: 720 },
});
let passed = 0, failed = 0;
const outside = [], consoleErrors = [];
try {
  const page = await ctx.newPage();
  page.on("request", (r) => { if (!r.url().startsWith(base)) outside.push(r.url()); });
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  await page.goto(base + "/");
  await page.waitForFunction(() => document.getElementById("status").textContent === "ready", null, { timeout: 20000 });
  assert.equal(await page.textContent("#model"), "model: " + modelId);
  // short answers keep the test quick under sanitizers on a busy machine
  await page.click("summary");
  await page.fill("#max_tokens", "48");
  await page.fill("#input", "Hello! Tell me a short story.");
  await page.press("#input", "Enter");
  await page.waitForSelector('.msg.user', { timeout: 5000 });
  await page.waitForSelector('.msg.assistant[data-done="1"]', { timeout: 180000 });
  const meta = await page.textContent(".msg.assistant .meta");
  const tokens = Number(await page.getAttribute(".msg.assistant .meta", "data-tokens"));
  const answer = await page.textContent(".msg.assistant .text");
  console.log("answer:", JSON.stringify(answer.slice(0, 80)), "| meta:", meta);
  assert.ok(!(await page.$(".msg.error")), "the answer is an error: " + answer);
  assert.ok(tokens > 0, "no tokens counted");
  assert.ok(meta.includes(modelId), "model not shown: " + meta);
  assert.match(meta, /[0-9.]+ tok\/s/);
  // a second turn uses the history
  await page.fill("#input", "And another one.");
  await page.click("#send");
  await page.waitForFunction(() => document.querySelectorAll('.msg.assistant[data-done="1"]').length === 2, null, { timeout: 180000 });
  fs.mkdirSync(path.dirname(shot), { recursive: true });
  await page.screenshot({ path: shot, fullPage: true });
  assert.ok(fs.statSync(shot).size > 1000, "screenshot not written");
  assert.deepEqual(outside, [], "requests outside the server");
  assert.deepEqual(consoleErrors, [], "console errors; last answer: " + await page.textContent(".msg.assistant:last-of-type .text"));
  console.log("[  OK  ] chat page streams an answer; screenshot " + shot);
  passed++;
} catch (e) {
  console.log("[ FAIL ] chat page: " + (e && e.stack ? e.stack : e));
  failed++;
} finally {
  await ctx.close();
  fs.rmSync(userDir, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
