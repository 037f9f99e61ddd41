// server_structured.mjs BASE_URL SCHEMAS.json GEN_PER - drives a running
// `edgeagent serve` (a random or tiny model: the hardest client there is)
// with structured output and tool calls, and checks every answer
// independently with Ajv (draft 2020-12 + ajv-formats):
//   - GEN_PER generations per schema of SCHEMAS.json at temperature 1, through
//     response_format json_schema and vLLM's guided_json alternately: every
//     answer that finished ("stop") is JSON valid under its schema (GEN_PER
//     below 3, a sanitizer build: every other schema);
//   - strict: an unenforceable keyword is a 400 naming it; without strict the
//     X-EdgeAgent-Unenforced header names it; json_object, guided_regex,
//     guided_choice hold;
//   - the object schemas as tool parameters through the openai SDK with
//     tool_choice "required" (20 per schema, over 1,000 calls; streamed one
//     time in four): every finished call's arguments are valid;
//   - tools through the official openai SDK: tool_choice "required" and a
//     named function, streamed and not: finish_reason "tool_calls", unique
//     call ids, arguments valid under the tool's parameters, the stream's
//     first delta of a call carries index/id/type/name and the arguments
//     follow in pieces, no content mixed in; the SDK's stream helper
//     (chat.completions.stream) assembles the same calls, runTools calls the
//     function with valid arguments, parse() gives the parsed JSON (also with
//     zodResponseFormat: the zod schema accepts what comes back); a history with an
//     assistant tool_calls message and a tool message is accepted.
// Prints "N passed, N failed"; exit 1 on any failure.
import { z } from "zod";
import { zodResponseFormat } from "openai/helpers/zod";
import OpenAI from "openai";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const [base, schemasPath, genPerArg] = process.argv.slice(2);
const genPer = Number(genPerArg || 3);
const schemas = JSON.parse(readFileSync(schemasPath, "utf8"));
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
// GEN_PER 1 means a slow build (sanitizers: the test script passes 1): longer timeouts
const slow = genPer < 3;
const client = new OpenAI({ baseURL: base + "/v1", apiKey: "none", maxRetries: 0, timeout: slow ? 900000 : 120000 });
const results = [];

async function test(name, fn) {
  const t0 = Date.now();
  try {
    const note = await fn();
    results.push([name, true]);
    console.log(`[  OK  ] ${name}${note ? ": " + note : ""} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push([name, false]);
    console.log(`[ FAIL ] ${name}: ${e && e.stack ? e.stack : e}`);
  }
}

async function post(body) {
  const r = await fetch(base + "/v1/chat/completions", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: r.status, headers: r.headers, json: await r.json() };
}

const msgs = [{ role: "user", content: "Answer in JSON." }];

// runs fns with at most n at once
async function pool(n, jobs) {
  const out = new Array(jobs.length);
  let next = 0;
  async function worker() {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]();
    }
  }
  await Promise.all(Array.from({ length: n }, worker));
  return out;
}

await test(`${slow ? Math.ceil(schemas.length / 2) : schemas.length} schemas x ${genPer} generations at temperature 1 validate`, async () => {
  const jobs = [];
  schemas.forEach((schema, si) => {
    if (slow && si % 2) return; // a slow build: every other schema (memory and thread errors are the point there)
    for (let k = 0; k < genPer; k++) {
      const body = { messages: msgs, temperature: 1, max_tokens: 600, seed: si * 100 + k };
      if (k % 2 === 0) body.response_format = { type: "json_schema", json_schema: { name: "s" + si, schema } };
      else body.guided_json = schema;
      jobs.push(async () => ({ si, r: await post(body) }));
    }
  });
  const validators = schemas.map((s) => ajv.compile(s));
  const outs = await pool(8, jobs);
  let finished = 0;
  for (const { si, r } of outs) {
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const c = r.json.choices[0];
    if (c.finish_reason !== "stop") continue;
    finished++;
    let v;
    try {
      v = JSON.parse(c.message.content);
    } catch (e) {
      throw new Error(`schema ${si}: not JSON: ${JSON.stringify(c.message.content)}`);
    }
    if (!validators[si](v))
      throw new Error(`schema ${si}: invalid ${c.message.content} ${JSON.stringify(validators[si].errors)}`);
  }
  assert.ok(finished * 10 >= outs.length * 8, `only ${finished} of ${outs.length} finished`);
  return `${finished} of ${outs.length} finished, all valid`;
});

// The same schemas as function parameters, through the SDK with tool_choice
// "required" (streamed one time in four): every call that finished parses
// and validates. TOOL_PER generations per object schema (20: over 1,000).
const toolPer = Number(process.env.EA_TOOL_PER || (slow ? 1 : 20));
// a slow build (sanitizers: memory and thread errors are the point there):
// every tenth object schema, once, with shorter answers
const objectSchemas = schemas.map((schema, si) => ({ schema, si })).filter(({ schema }) => schema.type === "object")
  .filter((_, k) => !slow || k % 10 === 0);
await test(`${objectSchemas.length} schemas x ${toolPer} tool calls, tool_choice required (openai SDK)`, async () => {
  const jobs = [];
  for (const { schema, si } of objectSchemas) {
    const tool = { type: "function", function: { name: "tool_" + si, description: "a tool", parameters: schema } };
    const validate = ajv.compile(schema);
    for (let k = 0; k < toolPer; k++) {
      const stream = k % 4 === 3;
      jobs.push(async () => {
        const req = { model: "default", messages: msgs, tools: [tool], tool_choice: "required", parallel_tool_calls: false,
                      temperature: 1, max_tokens: slow ? 300 : 600, seed: si * 1000 + k };
        let finish, calls;
        if (stream) {
          const st = client.chat.completions.stream(req);
          const done = await st.finalChatCompletion();
          finish = done.choices[0].finish_reason;
          calls = done.choices[0].message.tool_calls;
        } else {
          const r = await client.chat.completions.create(req);
          finish = r.choices[0].finish_reason;
          calls = r.choices[0].message.tool_calls;
          assert.equal(r.choices[0].message.content, null);
        }
        if (finish === "length") return false;
        assert.equal(finish, "tool_calls", `schema ${si}: finish ${finish}`);
        assert.equal(calls.length, 1, `schema ${si}: ${calls.length} calls`);
        assert.equal(calls[0].function.name, "tool_" + si);
        assert.match(calls[0].id, /^call_/);
        let args;
        try {
          args = JSON.parse(calls[0].function.arguments);
        } catch {
          throw new Error(`schema ${si}: arguments not JSON: ${calls[0].function.arguments}`);
        }
        if (!validate(args))
          throw new Error(`schema ${si}: invalid arguments ${calls[0].function.arguments} ${JSON.stringify(validate.errors)}`);
        return true;
      });
    }
  }
  const outs = await pool(8, jobs);
  const finished = outs.filter(Boolean).length;
  assert.ok(slow ? finished >= 1 : finished * 10 >= outs.length * 8, `only ${finished} of ${outs.length} finished`);
  return `${finished} of ${outs.length} finished, all valid`;
});

await test("strict: an unenforceable keyword is a 400 naming it", async () => {
  const schema = { type: "object", properties: { x: { type: "number", multipleOf: 0.25 } } };
  const r = await post({ messages: msgs, response_format: { type: "json_schema", json_schema: { name: "x", strict: true, schema } } });
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /multipleOf/);
  assert.equal(r.json.error.param, "response_format.json_schema");
  const sdk = await client.chat.completions
    .create({ model: "default", messages: msgs, response_format: { type: "json_schema", json_schema: { name: "x", strict: true, schema } } })
    .then(() => null, (e) => e);
  assert.ok(sdk instanceof OpenAI.BadRequestError);
});

await test("not strict: X-EdgeAgent-Unenforced names the keyword", async () => {
  const schema = { type: "object", properties: { x: { type: "number", multipleOf: 0.25 } }, required: ["x"] };
  const r = await post({ messages: msgs, guided_json: schema, max_tokens: 200 });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-edgeagent-unenforced"), "multipleOf");
  const ok = await post({ messages: msgs, guided_json: { type: "object", properties: { a: { type: "integer" } } }, max_tokens: 200 });
  assert.equal(ok.headers.get("x-edgeagent-unenforced"), null);
});

await test("json_object, guided_regex, guided_choice", async () => {
  for (let i = 0; i < 6; i++) {
    const a = await post({ messages: msgs, response_format: { type: "json_object" }, max_tokens: 400, seed: i });
    const c = a.json.choices[0];
    if (c.finish_reason === "stop") {
      const v = JSON.parse(c.message.content);
      assert.ok(v !== null && typeof v === "object" && !Array.isArray(v));
    }
    const b = await post({ messages: msgs, guided_regex: "[A-Z][a-z]{2,5} [0-9]{1,3}", max_tokens: 50, seed: i });
    assert.match(b.json.choices[0].message.content, /^[A-Z][a-z]{2,5} [0-9]{1,3}$/);
    const ch = await post({ messages: msgs, guided_choice: ["red", "green", "blue sky"], max_tokens: 50, seed: i });
    assert.ok(["red", "green", "blue sky"].includes(ch.json.choices[0].message.content));
  }
  const bad = await post({ messages: msgs, guided_regex: "(" });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.param, "guided_regex");
  const two = await post({ messages: msgs, guided_regex: "a", guided_choice: ["a"] });
  assert.equal(two.status, 400);
});

const tools = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "Current weather",
      parameters: {
        type: "object",
        properties: {
          city: { type: "string", minLength: 1, maxLength: 20 },
          unit: { enum: ["celsius", "fahrenheit"] },
          days: { type: "integer", minimum: 1, maximum: 7 },
        },
        required: ["city", "unit"],
        additionalProperties: false,
      },
    },
  },
  {
    type: "function",
    function: {
      name: "create_event",
      parameters: {
        type: "object",
        properties: {
          title: { type: "string", maxLength: 30 },
          date: { type: "string", format: "date" },
          attendees: { type: "array", items: { type: "object", properties: { email: { type: "string", format: "email" } }, required: ["email"] }, maxItems: 3 },
        },
        required: ["title", "date"],
      },
    },
  },
];
const toolValidators = Object.fromEntries(tools.map((t) => [t.function.name, ajv.compile(t.function.parameters)]));

function checkCalls(calls, only) {
  assert.ok(Array.isArray(calls) && calls.length >= 1, "no tool calls");
  const ids = new Set();
  for (const c of calls) {
    assert.equal(c.type, "function");
    assert.match(c.id, /^call_[0-9a-f]+$/);
    assert.ok(!ids.has(c.id), "duplicate id");
    ids.add(c.id);
    if (only) assert.equal(c.function.name, only);
    const v = toolValidators[c.function.name];
    assert.ok(v, "unknown tool " + c.function.name);
    const args = JSON.parse(c.function.arguments);
    if (!v(args)) throw new Error(`${c.function.name} ${c.function.arguments} ${JSON.stringify(v.errors)}`);
  }
}

await test("tool_choice required / named, not streamed (openai SDK)", async () => {
  let n = 0;
  for (let i = 0; i < 10; i++) {
    const only = i % 2 ? "create_event" : undefined;
    const r = await client.chat.completions.create({
      model: "default",
      messages: [{ role: "user", content: "What is the weather in Paris?" }],
      tools,
      tool_choice: only ? { type: "function", function: { name: only } } : "required",
      parallel_tool_calls: i % 4 === 0, // a tiny model rarely stops calling on its own
      temperature: 1,
      seed: i,
      max_tokens: 1500,
    });
    const c = r.choices[0];
    if (c.finish_reason === "length") continue;
    assert.equal(c.finish_reason, "tool_calls");
    assert.equal(c.message.content, null);
    checkCalls(c.message.tool_calls, only);
    if (i % 4 !== 0) assert.equal(c.message.tool_calls.length, 1);
    n++;
  }
  assert.ok(n >= 6, `only ${n} of 10 finished`);
  return `${n} of 10 finished`;
});

await test("tool_choice required, streamed: delta.tool_calls shape (openai SDK)", async () => {
  let n = 0;
  for (let i = 0; i < 10; i++) {
    const only = i % 2 ? "get_weather" : undefined;
    const stream = await client.chat.completions.create({
      model: "default",
      messages: [{ role: "user", content: "Plan a meeting." }],
      tools,
      tool_choice: only ? { type: "function", function: { name: only } } : "required",
      temperature: 1,
      seed: 100 + i,
      max_tokens: 1500,
      parallel_tool_calls: i % 4 === 0,
      stream: true,
    });
    const calls = [];
    let finish = null;
    let pieces = 0;
    for await (const chunk of stream) {
      const ch = chunk.choices[0];
      if (!ch) continue;
      if (ch.finish_reason) finish = ch.finish_reason;
      const d = ch.delta || {};
      assert.ok(!d.content, "content mixed with tool calls: " + JSON.stringify(d.content));
      for (const tc of d.tool_calls || []) {
        if (!calls[tc.index]) {
          assert.equal(tc.index, calls.length);
          assert.ok(tc.id && tc.type === "function" && tc.function.name, "first delta: " + JSON.stringify(tc));
          calls[tc.index] = { id: tc.id, type: tc.type, function: { name: tc.function.name, arguments: tc.function.arguments || "" } };
        } else {
          assert.equal(tc.id, undefined);
          calls[tc.index].function.arguments += tc.function.arguments;
          pieces++;
        }
      }
    }
    if (finish === "length") continue;
    assert.equal(finish, "tool_calls");
    assert.ok(pieces >= calls.length);
    checkCalls(calls, only);
    n++;
  }
  assert.ok(n >= 6, `only ${n} of 10 finished`);
  return `${n} of 10 finished`;
});

await test("SDK stream helper assembles the calls", async () => {
  const runner = client.chat.completions.stream({
    model: "default",
    messages: [{ role: "user", content: "Weather?" }],
    tools,
    tool_choice: { type: "function", function: { name: "get_weather" } },
    temperature: 1,
    seed: 7,
    max_tokens: 1500,
  });
  const done = await runner.finalChatCompletion();
  const c = done.choices[0];
  assert.equal(c.finish_reason, "tool_calls");
  checkCalls(c.message.tool_calls, "get_weather");
});

await test("runTools calls the function with valid arguments (openai SDK)", async () => {
  const seen = [];
  const runner = client.chat.completions.runTools(
    {
      model: "default",
      messages: [{ role: "user", content: "Weather in Rome?" }],
      temperature: 1,
      seed: 3,
      max_tokens: 1500,
      tool_choice: { type: "function", function: { name: "get_weather" } },
      tools: [
        {
          type: "function",
          function: {
            name: "get_weather",
            parameters: tools[0].function.parameters,
            parse: JSON.parse,
            function: (a) => {
              seen.push(a);
              return { temp: 3 };
            },
          },
        },
      ],
    },
    { maxChatCompletions: 3 },
  );
  await runner.done();
  assert.ok(seen.length >= 1, "the function was not called");
  for (const a of seen) assert.ok(toolValidators.get_weather(a), JSON.stringify(a));
  return `${seen.length} call(s)`;
});

await test("zodResponseFormat and parse (openai SDK helpers, zod)", async () => {
  const Light = z.object({
    room: z.string().max(12),
    on: z.boolean(),
    brightness: z.number().int().min(0).max(100),
  });
  let parsed = 0;
  for (let i = 0; i < 6; i++) {
    const r = await client.chat.completions
      .parse({
        model: "default",
        messages: msgs,
        response_format: zodResponseFormat(Light, "light"),
        temperature: 1,
        seed: 100 + i,
        max_tokens: 300,
      })
      .catch((e) => {
        if (e && e.constructor && e.constructor.name === "LengthFinishReasonError") return null;
        throw e;
      });
    if (!r || r.choices[0].finish_reason !== "stop") continue;
    const p = r.choices[0].message.parsed;
    assert.ok(Light.safeParse(p).success, JSON.stringify(p)); // the zod schema itself agrees
    parsed++;
  }
  assert.ok(parsed >= 4, `only ${parsed} of 6 finished`);
  return `${parsed} parsed`;
});

await test("chat.completions.parse with a json_schema response_format (openai SDK)", async () => {
  let parsed = 0;
  for (let i = 0; i < 6; i++) {
    const schema = schemas[i];
    const r = await client.chat.completions
      .parse({
        model: "default",
        messages: msgs,
        response_format: { type: "json_schema", json_schema: { name: "p" + i, schema } },
        temperature: 1,
        seed: i,
        max_tokens: 600,
      })
      .catch((e) => {
        if (e && e.constructor && e.constructor.name === "LengthFinishReasonError") return null; // cut by max_tokens
        throw e;
      });
    if (!r) continue;
    const c = r.choices[0];
    if (c.finish_reason !== "stop") continue;
    assert.deepEqual(c.message.parsed, JSON.parse(c.message.content));
    assert.ok(ajv.compile(schema)(c.message.parsed));
    parsed++;
  }
  assert.ok(parsed >= 4, `only ${parsed} of 6 finished`);
});

await test("history: assistant tool_calls and a tool message", async () => {
  const r = await client.chat.completions.create({
    model: "default",
    messages: [
      { role: "user", content: "Weather in Oslo?" },
      { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Oslo","unit":"celsius"}' } }] },
      { role: "tool", tool_call_id: "call_1", content: '{"temp": 3}' },
    ],
    tools,
    max_tokens: 8,
    tool_choice: "none",
  });
  assert.equal(typeof r.choices[0].message.content, "string");
  assert.equal(r.choices[0].message.tool_calls, undefined);
  const bad = await post({ messages: [{ role: "tool", content: "x", tool_calls: [] }], tools });
  assert.equal(bad.status, 400);
  const strictTools = [{ type: "function", function: { name: "f", strict: true, parameters: { type: "object", properties: { x: { type: "number", multipleOf: 0.5 } } } } }];
  const st = await post({ messages: msgs, tools: strictTools, tool_choice: "required" });
  assert.equal(st.status, 400);
  assert.equal(st.json.error.param, "tools");
  assert.match(st.json.error.message, /multipleOf/);
  const lax = await post({ messages: msgs, tools: [{ ...strictTools[0], function: { ...strictTools[0].function, strict: false } }], tool_choice: "required", max_tokens: 300 });
  assert.equal(lax.status, 200);
  assert.equal(lax.headers.get("x-edgeagent-unenforced"), "multipleOf");
  const unknown = await post({ messages: msgs, tools, tool_choice: { type: "function", function: { name: "nope" } } });
  assert.equal(unknown.status, 400);
  assert.equal(unknown.json.error.param, "tool_choice");
});

await test("/metrics counts grammar time and tokens", async () => {
  const text = await (await fetch(base + "/metrics")).text();
  const val = (name) => Number((text.split("\n").find((l) => l.startsWith(name + " ")) || "").slice(name.length + 1));
  assert.ok(val("edgeagent_grammar_tokens_total") > 1000, "grammar tokens");
  assert.ok(val("edgeagent_grammar_seconds_total") > 0, "grammar seconds");
});

const failed = results.filter((r) => !r[1]).length;
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
