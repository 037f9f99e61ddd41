// dashboard_browser.mjs BASE_URL OFF_URL OFF_KEY SHOT_DIR - opens /dashboard of a
// running `edgeagent serve` (a local upstream, the OpenAI stub as the cloud,
// a ledger) in headless Chromium (Debian's, via playwright-core), records
// the charts' figures (the data-* attributes and SVG bars the page
// exposes), sends requests (edge, cloud, one with an email under a redact
// task, one that falls back from a failing cloud to the edge) and checks
// that the charts change accordingly; checks no console error, no request
// outside the server, that the page fits a phone's width, and that the
// dashboard of OFF_URL (`serve --no-ledger --api-key OFF_KEY`) asks for the
// key, then says the ledger is off. Saves
// screenshots at desktop (1280x800) and phone (375x740) sizes into SHOT_DIR.
// Prints "N passed, N failed".
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const [base, offBase, offKey, shotDir] = process.argv.slice(2);
const userDir = fs.mkdtempSync(path.join(os.tmpdir(), "ea-chromium-"));
const ctx = await chromium.launchPersistentContext(userDir, {
  executablePath: process.env.EA_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1280, height: 800 },
});
let passed = 0, failed = 0;

async function check(name, fn) {
  try {
    await fn();
    console.log("[  OK  ] " + name);
    passed++;
  } catch (e) {
    console.log("[ FAIL ] " + name + ": " + (e && e.stack ? e.stack : e));
    failed++;
  }
}

function watch(page, origin) {
  const seen = { outside: [], errors: [] };
  page.on("request", (r) => { if (!r.url().startsWith(origin)) seen.outside.push(r.url()); });
  page.on("console", (m) => { if (m.type() === "error") seen.errors.push(m.text()); });
  page.on("pageerror", (e) => seen.errors.push(String(e)));
  return seen;
}

// The charts' figures as the page exposes them.
async function state(page) {
  return page.evaluate(() => {
    const d = (id) => document.getElementById(id).dataset;
    const bars = (sel) => document.querySelectorAll(sel).length;
    return {
      polls: Number(document.body.dataset.polls),
      ledger: document.body.dataset.ledger,
      edge: Number(d("share").edge), cloud: Number(d("share").cloud),
      cloudBars: bars('#share-chart rect.bar[data-tier="cloud"]'),
      deviceBars: bars('#share-chart rect.bar[data-tier="device"]'),
      latency: Number(d("latency").count), latencySources: d("latency").sources || "",
      latencyBars: bars("#latency-chart rect.bar"),
      ttft: Number(d("ttft").count),
      cost: Number(d("cost").cost), savings: Number(d("cost").savings),
      counterfactual: Number(d("cost").counterfactual),
      costPaths: bars("#cost-chart path.actual"),
      fallbacks: Number(d("upstreams").fallbacks), breakers: JSON.parse(d("upstreams").breakers),
      privacy: JSON.parse(d("privacy").types),
      privacyRows: [...document.querySelectorAll("#privacy-chart .row")].map((r) => r.textContent),
      budgets: Number(d("budgets").count), spent: Number(d("budgets").spent),
      requestsKpi: document.getElementById("k-requests").textContent,
    };
  });
}

async function chat(task, text, stream) {
  const r = await fetch(base + "/v1/chat/completions", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model: "task:" + task, max_tokens: 6, stream: !!stream,
                           messages: [{ role: "user", content: text }] }),
  });
  const body = await r.text();
  assert.equal(r.status, 200, task + ": " + body.slice(0, 300));
  return { source: r.headers.get("x-edgeagent-source"), attempts: r.headers.get("x-edgeagent-attempts") || "" };
}

await check("dashboard charts change after edge, cloud, redacted and fallback requests", async () => {
  const page = await ctx.newPage();
  const seen = watch(page, base);
  await page.goto(base + "/dashboard?every=700&window=15m");
  await page.waitForFunction(() => document.body.dataset.ledger === "on" && Number(document.body.dataset.polls) >= 1,
                             null, { timeout: 20000 });
  const before = await state(page);
  console.log("before:", JSON.stringify(before));
  assert.equal(before.edge + before.cloud, 0, "a fresh ledger has no requests");
  assert.equal(before.budgets, 2, "two caps configured (global daily, task cloud daily)");
  assert.deepEqual(before.breakers, { local: "closed", cloud: "closed" });
  assert.deepEqual(before.privacy, {});

  const sent = [];
  sent.push(await chat("edge", "Hello there", false));
  sent.push(await chat("edge", "Tell me more", true));
  sent.push(await chat("cloud", "What is the weather", false));
  sent.push(await chat("cloud", "And tomorrow", true));
  sent.push(await chat("red", "Mail jane.doe@example.com about the invoice", false));
  const fb = await chat("fall", "#fault status=500", false);
  sent.push(fb);
  console.log("sources:", sent.map((s) => s.source + " [" + s.attempts + "]").join(", "));
  assert.deepEqual(sent.map((s) => s.source), ["edge", "edge", "cloud:cloud", "cloud:cloud", "cloud:cloud", "edge"]);
  assert.match(fb.attempts, /cloud=http_500/);

  // the page polls: wait until every chart has seen the six requests
  await page.waitForFunction(() => {
    const d = (id) => document.getElementById(id).dataset;
    return Number(d("share").edge) >= 3 && Number(d("share").cloud) >= 3 && Number(d("latency").count) >= 6 &&
           JSON.parse(d("privacy").types).email >= 1 && Number(d("upstreams").fallbacks) >= 1;
  }, null, { timeout: 30000 });
  const after = await state(page);
  console.log("after:", JSON.stringify(after));
  assert.equal(after.edge, 3, "edge requests: two on the edge task, one fallback");
  assert.equal(after.cloud, 3, "cloud requests: two on the cloud task, one redacted");
  assert.ok(after.cloudBars > 0 && after.deviceBars > 0, "bars of both sources in the share chart");
  assert.equal(after.latency, 6);
  assert.ok(after.latencyBars >= 2, "latency bars");
  assert.deepEqual(after.latencySources.split(",").sort(), ["cloud", "device"]);
  assert.ok(after.ttft >= 5, "time to first token counted: " + after.ttft);
  assert.ok(after.cost > before.cost, "cost rose");
  assert.ok(after.counterfactual > after.cost, "the edge's requests saved against the reference");
  assert.ok(Math.abs(after.savings - (after.counterfactual - after.cost)) < 1e-12, "savings = counterfactual - cost");
  assert.equal(after.costPaths, 1);
  assert.ok(after.fallbacks >= 1, "a fallback from the cloud");
  assert.equal(after.privacy.email, 1, "one email found");
  assert.ok(after.privacyRows.some((t) => t.startsWith("EMAIL")), "an EMAIL bar: " + after.privacyRows);
  assert.ok(after.spent > 0, "the budgets' spend rose");
  assert.equal(after.requestsKpi, "6");
  // nothing of the requests' text on the page
  const html = await page.content();
  assert.ok(!html.includes("jane.doe") && !html.includes("weather"), "request text on the page");

  fs.mkdirSync(shotDir, { recursive: true });
  const desk = path.join(shotDir, "dashboard-desktop.png");
  await page.screenshot({ path: desk, fullPage: true });
  assert.ok(fs.statSync(desk).size > 5000, "desktop screenshot not written");
  console.log("screenshot " + desk);

  await page.setViewportSize({ width: 375, height: 740 });
  const polls = Number(await page.evaluate(() => document.body.dataset.polls));
  await page.waitForFunction((n) => Number(document.body.dataset.polls) > n, polls, { timeout: 10000 });
  await page.waitForTimeout(300); // the resize redraw
  const fit = await page.evaluate(() => ({
    page: document.documentElement.scrollWidth,
    svg: Math.max(...[...document.querySelectorAll(".chart svg")].map((s) => s.getBoundingClientRect().right)),
  }));
  assert.ok(fit.page <= 375 && fit.svg <= 375, "wider than a phone: " + JSON.stringify(fit));
  const phone = path.join(shotDir, "dashboard-phone.png");
  await page.screenshot({ path: phone, fullPage: true });
  assert.ok(fs.statSync(phone).size > 5000, "phone screenshot not written");
  console.log("screenshot " + phone);

  // a longer window: whole-minute steps (the per-minute sums), the same counts
  const urls = [];
  page.on("request", (r) => urls.push(r.url()));
  await page.selectOption("#window", "24h");
  await page.waitForFunction(() => Number(document.body.dataset.polls) > 0 &&
                             document.getElementById("share").dataset.edge === "3", null, { timeout: 10000 });
  const n = Number(await page.evaluate(() => document.body.dataset.polls));
  await page.waitForFunction((k) => Number(document.body.dataset.polls) > k, n, { timeout: 10000 });
  assert.ok(urls.some((u) => u.includes("/v1/edgeagent/stats/series?since=24h&step=15m")), "24h series asked");
  const day = await state(page);
  assert.deepEqual([day.edge, day.cloud, day.latency, day.privacy.email], [3, 3, 6, 1]);

  assert.deepEqual(seen.outside, [], "requests outside the server");
  assert.deepEqual(seen.errors, [], "console errors");
  await page.close();
});

await check("the JSON endpoints behind the charts", async () => {
  const get = async (url, opts) => {
    const r = await fetch(url, opts);
    const text = await r.text();
    return { status: r.status, body: text.startsWith("{") ? JSON.parse(text) : text };
  };
  let r = await get(base + "/v1/edgeagent/stats/series?since=15m&step=15s");
  assert.equal(r.status, 200);
  const pts = r.body.points;
  assert.ok(pts.length === 60 || pts.length === 61, "points: " + pts.length);
  assert.equal(r.body.step_ms, 15000);
  assert.equal(r.body.since_ms % 15000, 0);
  const sum = (k) => pts.reduce((a, p) => a + p.requests[k], 0);
  assert.equal(sum("device"), 3);
  assert.equal(sum("cloud"), 3);
  assert.equal(pts.reduce((a, p) => a + p.fallbacks, 0), 1);
  r = await get(base + "/v1/edgeagent/stats/series?since=1h");
  assert.equal(r.status, 200);
  assert.equal(r.body.step_ms, 60000);
  for (const bad of ["step=abc", "step=0s", "since=7d&step=1s", "since=soon"]) {
    r = await get(base + "/v1/edgeagent/stats/series?" + bad);
    assert.equal(r.status, 400, bad);
    assert.ok(r.body.error && r.body.error.message, bad);
  }
  r = await get(base + "/v1/edgeagent/ledger");
  assert.equal(r.status, 200);
  assert.equal(r.body.enabled, true);
  assert.equal(r.body.reference_model, "stub-model");
  assert.equal(r.body.rows.written, 6);
  assert.deepEqual(r.body.budgets.map((b) => [b.task, b.period, b.action, b.cap_usd]),
                   [[null, "daily", "reject", 5], ["cloud", "daily", "edge", 1]]);
  const key = { headers: { Authorization: "Bearer " + offKey } };
  r = await get(offBase + "/v1/edgeagent/ledger");
  assert.equal(r.status, 401, "the data needs the key");
  r = await get(offBase + "/v1/edgeagent/ledger", key);
  assert.deepEqual([r.status, r.body], [200, { enabled: false }]);
  r = await get(offBase + "/v1/edgeagent/stats/series", key);
  assert.equal(r.status, 503);
  r = await get(offBase + "/dashboard");
  assert.equal(r.status, 200, "the page itself holds no data: no key");
});

await check("the chat page links to the dashboard", async () => {
  const page = await ctx.newPage();
  const seen = watch(page, base);
  await page.goto(base + "/");
  assert.equal(await page.getAttribute('a[href="/dashboard"]', "href"), "/dashboard");
  await page.click('a[href="/dashboard"]');
  await page.waitForFunction(() => Number(document.body.dataset.polls) >= 1, null, { timeout: 20000 });
  assert.deepEqual(seen.errors, [], "console errors");
  await page.close();
});

await check("without a ledger the dashboard loads and says so (after its API key is given)", async () => {
  const page = await ctx.newPage();
  const seen = watch(page, offBase);
  await page.goto(offBase + "/dashboard?every=700");
  await page.waitForFunction(() => /API key/.test(document.getElementById("status").textContent), null, { timeout: 20000 });
  assert.equal(await page.getAttribute("body", "data-polls"), "0");
  // before the key: only the browser's own notes of the 401 answers
  assert.ok(seen.errors.every((e) => /401/.test(e)), "console errors: " + seen.errors);
  seen.errors.length = 0;
  await page.click("summary");
  await page.fill("#apikey", offKey);
  await page.dispatchEvent("#apikey", "change");
  await page.waitForFunction(() => document.body.dataset.ledger === "off" && Number(document.body.dataset.polls) >= 2,
                             null, { timeout: 20000 });
  assert.ok(await page.isVisible("#banner"), "the ledger-off banner");
  assert.match(await page.textContent("#banner"), /ledger is off/);
  assert.match(await page.textContent("#share-chart"), /ledger is off/);
  const s = await state(page);
  assert.deepEqual(s.breakers, { local: "closed" });
  const shot = path.join(shotDir, "dashboard-no-ledger.png");
  await page.screenshot({ path: shot, fullPage: true });
  console.log("screenshot " + shot);
  assert.deepEqual(seen.outside, [], "requests outside the server");
  assert.deepEqual(seen.errors, [], "console errors");
  await page.close();
});

await ctx.close();
fs.rmSync(userDir, { recursive: true, force: true });
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
