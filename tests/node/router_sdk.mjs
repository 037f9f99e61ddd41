// router_sdk.mjs EDGEAGENT_URL STUB_URL - the official `openai` npm SDK,
// unchanged, against `edgeagent serve --config` routing between its local
// model and the fault stub (tests/node/openai_stub.mjs) as the cloud:
// every path streamed and not — the cloud answering, the cloud failing
// (500, reset, an error event first) and the edge answering instead, the
// edge-only task, allow_cloud: false sent the SDK way (an extra body
// field), a 400 from the cloud surfacing as the SDK's BadRequestError, and
// a stream broken after output surfacing as an error. Prints "N passed,
// N failed" (run by tests/test_routing.c).
import OpenAI from "openai";
import assert from "node:assert/strict";

const [base, stubBase] = process.argv.slice(2);
const client = new OpenAI({ baseURL: base + "/v1", apiKey: "unused", maxRetries: 0, timeout: 60000 });
const results = [];

async function test(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push(true);
    console.log(`[  OK  ] ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push(false);
    console.log(`[ FAIL ] ${name}: ${e && e.stack ? e.stack : e}`);
  }
}

async function stubFault(cfg) {
  const r = await fetch(stubBase + "/_stub/config", { method: "POST", body: JSON.stringify(cfg) });
  assert.equal(r.status, 200);
}

const msgs = [{ role: "user", content: "hi" }];

async function nonStream(model, extra = {}) {
  const { data, response } = await client.chat.completions
    .create({ model, messages: msgs, max_tokens: 6, ...extra })
    .withResponse();
  assert.equal(data.object, "chat.completion");
  assert.equal(typeof data.choices[0].message.content, "string");
  assert.ok(data.usage.completion_tokens >= 1);
  assert.equal(data.edgeagent.source, response.headers.get("x-edgeagent-source"));
  return data;
}

async function stream(model, extra = {}) {
  const s = await client.chat.completions.create({
    model, messages: msgs, max_tokens: 6, stream: true, stream_options: { include_usage: true }, ...extra,
  });
  let text = "", finish = null, usage = null, route = null;
  for await (const chunk of s) {
    for (const c of chunk.choices) {
      text += c.delta.content ?? "";
      if (c.finish_reason) finish = c.finish_reason;
    }
    if (chunk.usage) usage = chunk.usage;
    if (chunk.edgeagent) route = chunk.edgeagent;
  }
  assert.ok(finish, "a finish reason");
  assert.ok(usage && usage.completion_tokens >= 1, "usage");
  assert.ok(route, "the edgeagent object in the last chunk");
  return { text, route };
}

await stubFault({});
await test("cloud answers (non-streamed)", async () => {
  const d = await nonStream("task:cloudfirst");
  assert.equal(d.choices[0].message.content, "stub:2");
  assert.equal(d.edgeagent.source, "cloud:cloud");
});
await test("cloud answers (streamed)", async () => {
  const { text, route } = await stream("task:cloudfirst");
  assert.equal(text, "stub:2");
  assert.equal(route.source, "cloud:cloud");
});
await test("edge-only task", async () => {
  assert.equal((await nonStream("task:edge")).edgeagent.source, "edge");
  assert.equal((await stream("task:edge")).route.source, "edge");
});
for (const fault of [{ status: 500 }, { reset: true }, { error_first: true }]) {
  await test(`cloud fails ${JSON.stringify(fault)}: the edge answers`, async () => {
    await stubFault(fault);
    const d = await nonStream("task:cloudfirst");
    assert.equal(d.edgeagent.source, "edge");
    assert.ok(d.edgeagent.attempts[0].upstream === "cloud" && d.edgeagent.attempts[0].outcome !== "ok");
    const s = await stream("task:cloudfirst");
    assert.equal(s.route.source, "edge");
    await stubFault({});
  });
}
await test("allow_cloud: false as an extra body field", async () => {
  const d = await nonStream("task:cloudfirst", { edgeagent: { allow_cloud: false } });
  assert.equal(d.edgeagent.source, "edge");
  assert.equal(d.edgeagent.attempts.length, 1);
});
await test("a 400 from the cloud is the SDK's BadRequestError", async () => {
  await stubFault({ status: 400, message: "stub says no" });
  await assert.rejects(
    client.chat.completions.create({ model: "cloud", messages: msgs, max_tokens: 4 }),
    (e) => e instanceof OpenAI.BadRequestError && /stub says no/.test(e.message),
  );
  await stubFault({});
});
await test("a stream broken after output is an error, not a clean end", async () => {
  await stubFault({ cut_after: 1, chunks: 3 });
  await assert.rejects(async () => {
    const s = await client.chat.completions.create({ model: "cloud", messages: msgs, max_tokens: 6, stream: true });
    for await (const chunk of s) void chunk;
  }, (e) => e instanceof OpenAI.APIError);
  await stubFault({});
});

const passed = results.filter(Boolean).length;
console.log(`${passed} passed, ${results.length - passed} failed`);
process.exit(passed === results.length ? 0 : 1);
