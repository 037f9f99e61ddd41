// server_openai.mjs BASE_URL API_KEY MODEL_ID - drives a running `edgeagent
// serve` with the official `openai` npm SDK, unchanged: models, non-streaming
// and streaming chat, completions, usage (stream_options.include_usage), n,
// logprobs, stop, error classes the SDK maps from status codes, a client that
// aborts mid-stream (KV blocks back to zero, read from /metrics) and
// concurrent streaming clients. Prints "N passed, N failed".
import OpenAI from "openai";
import assert from "node:assert/strict";

const [base, apiKey, modelId] = process.argv.slice(2);
const client = new OpenAI({ baseURL: base + "/v1", apiKey, maxRetries: 0, timeout: 60000 });
const results = [];

async function test(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push([name, true]);
    console.log(`[  OK  ] ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push([name, false]);
    console.log(`[ FAIL ] ${name}: ${e && e.stack ? e.stack : e}`);
  }
}

async function metric(name) {
  const r = await fetch(base + "/metrics", { headers: { Authorization: "Bearer " + apiKey } });
  const text = await r.text();
  const line = text.split("\n").find((l) => l.startsWith(name + " "));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

const msgs = [
  { role: "system", content: "You are terse." },
  { role: "user", content: "Say something." },
];

await test("models.list", async () => {
  const page = await client.models.list();
  const ids = page.data.map((m) => m.id);
  /* the local model first, then the router's names: "auto" and the
   * built-in configuration's one upstream, "local" */
  assert.deepEqual(ids, [modelId, "auto", "local"]);
  for (const id of ids) {
    const m = await client.models.retrieve(id);
    assert.equal(m.object, "model");
    assert.equal(m.id, id);
  }
});

await test("chat non-streaming", async () => {
  const r = await client.chat.completions.create({ model: modelId, messages: msgs, max_tokens: 12, seed: 1 });
  assert.equal(r.object, "chat.completion");
  assert.equal(r.model, modelId);
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, "assistant");
  assert.equal(typeof r.choices[0].message.content, "string");
  assert.ok(["stop", "length"].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

await test("chat streaming with include_usage equals non-streaming", async () => {
  const req = { model: modelId, messages: msgs, max_tokens: 16, seed: 9, temperature: 0.8 };
  const stream = await client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
  let text = "", finish = null, usage = null, chunks = 0, role = null;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.object, "chat.completion.chunk");
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta.role) role = c.delta.role;
      if (c.delta.content) text += c.delta.content;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.equal(role, "assistant");
  assert.ok(chunks >= 3);
  assert.ok(finish === "stop" || finish === "length");
  assert.ok(usage && usage.completion_tokens > 0 && usage.completion_tokens <= 16);
  const whole = await client.chat.completions.create(req);
  assert.equal(whole.choices[0].message.content, text);
  assert.equal(whole.usage.completion_tokens, usage.completion_tokens);
});

await test("chat n=2, logprobs, stop", async () => {
  const r = await client.chat.completions.create({
    model: modelId, messages: msgs, max_tokens: 8, n: 2, temperature: 0, logprobs: true, top_logprobs: 2,
  });
  assert.equal(r.choices.length, 2);
  assert.equal(r.choices[0].message.content, r.choices[1].message.content);
  const lp = r.choices[0].logprobs.content;
  assert.ok(lp.length >= 1);
  assert.equal(typeof lp[0].logprob, "number");
  assert.equal(lp[0].top_logprobs.length, 2);
  const s = await client.chat.completions.create({ model: modelId, messages: msgs, max_tokens: 40, temperature: 0, stop: ["e", "o"] });
  assert.ok(!/[eo]/.test(s.choices[0].message.content));
});

await test("completions non-streaming and streaming", async () => {
  const r = await client.completions.create({ model: modelId, prompt: "Once upon a time", max_tokens: 8, seed: 4 });
  assert.equal(r.object, "text_completion");
  assert.equal(typeof r.choices[0].text, "string");
  assert.ok(r.usage.completion_tokens > 0);
  const stream = await client.completions.create({
    model: modelId, prompt: "Once upon a time", max_tokens: 8, seed: 4, stream: true, stream_options: { include_usage: true },
  });
  let text = "", usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) text += c.text;
  }
  assert.equal(text, r.choices[0].text);
  assert.equal(usage.completion_tokens, r.usage.completion_tokens);
});

await test("errors map to the SDK's classes", async () => {
  await assert.rejects(
    client.chat.completions.create({ model: modelId, messages: msgs, temperature: 5 }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === "temperature" && e.type === "invalid_request_error",
  );
  await assert.rejects(
    client.chat.completions.create({ model: modelId, messages: [] }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === "messages",
  );
  await assert.rejects(
    client.chat.completions.create({ model: modelId, messages: msgs, tools: [{ type: "function", function: { name: "bad name", parameters: {} } }] }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === "tools[0]",
  );
  await assert.rejects(
    client.chat.completions.create({ model: modelId, messages: msgs, stream: true, max_tokens: "x" }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === "max_tokens",
  );
  await assert.rejects(client.models.retrieve("no-such-model"), (e) => e instanceof OpenAI.NotFoundError);
  const bad = new OpenAI({ baseURL: base + "/v1", apiKey: apiKey + "x", maxRetries: 0 });
  await assert.rejects(bad.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
  await assert.rejects(
    client.completions.create({ model: modelId, prompt: "word ".repeat(20000), max_tokens: 4 }),
    (e) => e instanceof OpenAI.BadRequestError && e.code === "context_length_exceeded",
  );
});

// logit_bias banning end-of-generation tokens, so a generation runs long
async function banEog() {
  const bias = {};
  for (const t of ["<|im_end|>", "<|endoftext|>", "</s>", "<|im_start|>"]) {
    const r = await fetch(base + "/tokenize", {
      method: "POST", headers: { Authorization: "Bearer " + apiKey, "Content-Type": "application/json" }, body: JSON.stringify({ content: t }),
    });
    const j = await r.json();
    if (j.tokens.length === 1) bias[String(j.tokens[0])] = -100;
  }
  return bias;
}

await test("client abort mid-stream frees its KV blocks", async () => {
  const ac = new AbortController();
  const stream = await client.chat.completions.create(
    { model: modelId, messages: msgs, max_tokens: 1500, stream: true, logit_bias: await banEog() },
    { signal: ac.signal },
  );
  let n = 0;
  try {
    for await (const chunk of stream) {
      if (chunk.choices.length && ++n === 5) ac.abort();
    }
  } catch (e) {
    assert.ok(e.name === "APIUserAbortError" || e.name === "AbortError", String(e));
  }
  let used = await metric('edgeagent_kv_blocks{state="used"}');
  for (let i = 0; i < 300 && used !== 0; i++) {
    await new Promise((r) => setTimeout(r, 20));
    used = await metric('edgeagent_kv_blocks{state="used"}');
  }
  assert.equal(used, 0);
  assert.ok((await metric("edgeagent_client_disconnects_total")) >= 1);
});

await test("8 concurrent streaming clients all finish", async () => {
  const one = async (i) => {
    const s = await client.chat.completions.create({
      model: modelId, messages: [{ role: "user", content: `client ${i}` }], max_tokens: 10 + i, seed: i,
      stream: true, stream_options: { include_usage: true },
    });
    let usage = null;
    for await (const c of s) if (c.usage) usage = c.usage;
    return usage;
  };
  const all = await Promise.all([...Array(8).keys()].map(one));
  for (const u of all) assert.ok(u && u.completion_tokens > 0);
});

const passed = results.filter((r) => r[1]).length;
console.log(`${passed} passed, ${results.length - passed} failed`);
process.exit(passed === results.length ? 0 : 1);
