#!/usr/bin/env node
// gen-template-golden.mjs - renders every chat template in ../shared/templates
// on a fixed set of conversations with the reference renderer
// (@huggingface/jinja, installed in tests/node/node_modules) and writes the
// expected outputs that tests/test_template.c compares against byte for byte.
//
// Writes, under tests/data/templates/:
//   cases/<case>.json       the render context of each conversation (JSON
//                           object: messages, tools, add_generation_prompt,
//                           bos_token, eos_token, extras)
//   <template>/<case>.out   the reference output, when the reference renders
//   <template>/<case>.err   the reference error message, when it raises
//   <template>/<case>.ext   when the reference raises only because it lacks a
//                           construct that edgeagent implements as a
//                           documented extension (docs/TEMPLATES.md): the
//                           output of the reference with that construct added
//                           by the small patches below (never our C code).
//
// The clock is fixed (strftime_now) at FIXED_NOW in UTC; test_template.c
// passes the same instant. Usage (from the repository root):
//   node scripts/gen-template-golden.mjs [TEMPLATES_DIR] [OUT_DIR]
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

process.env.TZ = "UTC";
const FIXED_NOW = Date.UTC(2025, 0, 15, 10, 30, 0); // 2025-01-15 10:30:00 UTC
{
	const RealDate = Date;
	class FixedDate extends RealDate {
		constructor(...args) {
			super(...(args.length ? args : [FIXED_NOW]));
		}
		static now() {
			return FIXED_NOW;
		}
	}
	globalThis.Date = FixedDate;
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const templatesDir = process.argv[2] ?? path.resolve(root, "../shared/templates");
const outDir = process.argv[3] ?? path.join(root, "tests/data/templates");
const jinja = await import(path.join(root, "tests/node/node_modules/@huggingface/jinja/dist/index.js"));
const { Template, Environment, Interpreter } = jinja;

// ---------------------------------------------------------------- conversations
const TOOLS = [
	{
		type: "function",
		function: {
			name: "get_weather",
			description: "Get the current weather in a city",
			parameters: {
				type: "object",
				properties: {
					location: { type: "string", description: "City name, e.g. Paris" },
					unit: { type: "string", enum: ["celsius", "fahrenheit"], description: "Temperature unit" },
				},
				required: ["location"],
			},
		},
	},
	{
		type: "function",
		function: {
			name: "search_web",
			description: "Search the web and return the top results",
			parameters: {
				type: "object",
				properties: {
					query: { type: "string", description: "Search terms" },
					max_results: { type: "integer", description: "How many results", default: 5 },
					sites: { type: "array", items: { type: "string" }, description: "Restrict to these sites" },
				},
				required: ["query"],
			},
		},
	},
];

const base = { bos_token: "<s>", eos_token: "</s>" };
const SYS = { role: "system", content: "You are a helpful assistant." };
const weatherArgs = { location: "Paris", unit: "celsius" };
const searchArgs = { query: "edge AI runtimes", max_results: 3 };

function toolTurn(argsAsString) {
	const a = argsAsString ? JSON.stringify(weatherArgs) : weatherArgs;
	return [
		SYS,
		{ role: "user", content: "What is the weather in Paris?" },
		{
			role: "assistant",
			content: "",
			tool_calls: [{ id: "call00001", type: "function", function: { name: "get_weather", arguments: a } }],
		},
		{ role: "tool", tool_call_id: "call00001", name: "get_weather", content: '{"temperature": 22, "unit": "celsius"}' },
		{ role: "assistant", content: "It is 22 °C in Paris." },
		{ role: "user", content: "Thanks! And tomorrow?" },
	];
}

const CASES = {
	// one system + one user turn, asking for the assistant's turn
	basic: { ...base, messages: [SYS, { role: "user", content: "Hello!" }], add_generation_prompt: true },
	// several turns with a system message
	multi_turn: {
		...base,
		messages: [
			SYS,
			{ role: "user", content: "What is 2+2?" },
			{ role: "assistant", content: "2+2 is 4." },
			{ role: "user", content: "And 3+3?" },
		],
		add_generation_prompt: true,
	},
	// no system message, ends with the assistant, no generation prompt
	no_system_no_gen: {
		...base,
		messages: [
			{ role: "user", content: "Say hi." },
			{ role: "assistant", content: "Hi!" },
		],
		add_generation_prompt: false,
	},
	// tool definitions offered, no call yet
	tools_offered: {
		...base,
		messages: [SYS, { role: "user", content: "What is the weather in Paris?" }],
		tools: TOOLS,
		add_generation_prompt: true,
	},
	// a call with arguments as an object, its result and a final answer
	tool_call_object: { ...base, messages: toolTurn(false), tools: TOOLS, add_generation_prompt: true },
	// the same with arguments as a JSON string (as OpenAI clients send them)
	tool_call_string: { ...base, messages: toolTurn(true), tools: TOOLS, add_generation_prompt: true },
	// two calls in one assistant turn and two results
	parallel_calls: {
		...base,
		messages: [
			{ role: "user", content: "Weather in Paris, and search for edge AI runtimes." },
			{
				role: "assistant",
				content: null,
				tool_calls: [
					{ id: "call00001", type: "function", function: { name: "get_weather", arguments: weatherArgs } },
					{ id: "call00002", type: "function", function: { name: "search_web", arguments: searchArgs } },
				],
			},
			{ role: "tool", tool_call_id: "call00001", name: "get_weather", content: "22 C, sunny" },
			{ role: "tool", tool_call_id: "call00002", name: "search_web", content: "1. llama.cpp\n2. edgeagent" },
		],
		tools: TOOLS,
		add_generation_prompt: true,
	},
	// thinking switched on, with an earlier assistant turn carrying reasoning
	thinking_on: {
		...base,
		messages: [
			{ role: "user", content: "Is 17 prime?" },
			{ role: "assistant", content: "Yes, 17 is prime.", reasoning_content: "17 has no divisors between 2 and 4." },
			{ role: "user", content: "And 21?" },
		],
		add_generation_prompt: true,
		enable_thinking: true,
	},
	// thinking switched off
	thinking_off: {
		...base,
		messages: [SYS, { role: "user", content: "Be brief: capital of France?" }],
		add_generation_prompt: true,
		enable_thinking: false,
	},
	// non-ASCII, quotes, backslashes and newlines in contents
	unicode: {
		...base,
		messages: [
			{ role: "system", content: "Réponds en français. 日本語もOK 🙂" },
			{ role: "user", content: '  Quote "this" \\ and\nthat\ttab  ' },
		],
		add_generation_prompt: true,
	},
	// OpenAI content parts instead of a plain string
	content_parts: {
		...base,
		messages: [
			{ role: "user", content: [{ type: "text", text: "Describe this picture." }] },
			{ role: "assistant", content: [{ type: "text", text: "A cat on a mat." }] },
			{ role: "user", content: [{ type: "text", text: "What colour is the cat?" }] },
		],
		add_generation_prompt: true,
	},
	// Llama-3.1-style built-in tools and other template extras
	extras: {
		...base,
		messages: [SYS, { role: "user", content: "Look this up." }],
		tools: [TOOLS[1]],
		builtin_tools: ["brave_search", "code_interpreter", "wolfram_alpha"],
		reasoning_effort: "high",
		add_generation_prompt: true,
	},
};

// ---------------------------------------------------------------- extensions
// Constructs the reference lacks but real templates use and edgeagent
// implements (docs/TEMPLATES.md lists them). They are applied only to re-render
// a pair that the plain reference refused, never to produce a `.out` file.
const EXT = { on: false, used: new Set() };
{
	// Reach the runtime classes through values the public Environment makes.
	const env = new Environment();
	const ArrayValue = env.set("a", []).constructor;
	const ObjectValue = env.set("o", {}).constructor;
	const StringValue = env.set("s", "").constructor;
	const FunctionValue = env.set("f", () => 0).constructor;
	const NullValue = env.set("n", null).constructor;
	const BooleanValue = env.set("b", true).constructor;
	const conv = (v) => new Environment().set("x", v);

	// list.append(x) / list.pop([i]) mutate the list in place (Python list).
	const arrBuiltins = Object.getOwnPropertyDescriptor(ArrayValue.prototype, "builtins").get;
	Object.defineProperty(ArrayValue.prototype, "builtins", {
		get() {
			const m = arrBuiltins.call(this);
			if (!EXT.on || m.has("append")) return m;
			const self = this;
			m.set(
				"append",
				new FunctionValue((args) => {
					EXT.used.add("list.append");
					self.value.push(args[0]);
					return new NullValue();
				}),
			);
			m.set(
				"pop",
				new FunctionValue((args) => {
					EXT.used.add("list.pop");
					if (self.value.length === 0) throw new Error("pop from empty list");
					let i = args.length ? args[0].value : self.value.length - 1;
					if (i < 0) i += self.value.length;
					if (i < 0 || i >= self.value.length) throw new Error("pop index out of range");
					return self.value.splice(i, 1)[0];
				}),
			);
			return m;
		},
	});

	// |reject(test, arg) / |select(test, arg) with the built-in tests, and
	// |from_json (a llama.cpp/vLLM filter some templates rely on).
	const origApply = Interpreter.prototype.applyFilter;
	Interpreter.prototype.applyFilter = function (operand, filterNode, environment) {
		if (EXT.on) {
			const name = filterNode.type === "Identifier" ? filterNode.value : filterNode.callee?.value;
			if ((name === "reject" || name === "select") && operand instanceof ArrayValue) {
				EXT.used.add(name);
				const args = (filterNode.args ?? []).map((a) => this.evaluate(a, environment));
				const out = operand.value.filter((item) => {
					let r;
					if (args.length === 0) r = item.__bool__().value;
					else if (args[0].value === "equalto" || args[0].value === "eq" || args[0].value === "==")
						r = item.value === args[1].value;
					else r = environment.tests.get(args[0].value)(item);
					return name === "select" ? r : !r;
				});
				return new ArrayValue(out);
			}
			if (name === "from_json" && operand instanceof StringValue) {
				EXT.used.add("from_json");
				return conv(JSON.parse(operand.value));
			}
		}
		return origApply.call(this, operand, filterNode, environment);
	};
	void ObjectValue;
	void BooleanValue;
}

function render(src, ctx) {
	// A fresh parse of a fresh copy per render: templates mutate their inputs.
	const t = new Template(src);
	return t.render(JSON.parse(JSON.stringify(ctx)));
}

// ---------------------------------------------------------------- main
fs.mkdirSync(path.join(outDir, "cases"), { recursive: true });
for (const [name, ctx] of Object.entries(CASES)) {
	fs.writeFileSync(path.join(outDir, "cases", `${name}.json`), JSON.stringify(ctx, null, 2) + "\n");
}

const templates = fs
	.readdirSync(templatesDir)
	.filter((f) => f.endsWith(".jinja"))
	.sort();
const summary = { rendered: 0, raised: 0, extension: 0 };
for (const file of templates) {
	const stem = file.replace(/\.jinja$/, "");
	const src = fs.readFileSync(path.join(templatesDir, file), "utf8");
	const dir = path.join(outDir, stem);
	fs.rmSync(dir, { recursive: true, force: true });
	fs.mkdirSync(dir, { recursive: true });
	const notes = [];
	for (const name of Object.keys(CASES)) {
		const ctx = JSON.parse(fs.readFileSync(path.join(outDir, "cases", `${name}.json`), "utf8"));
		try {
			fs.writeFileSync(path.join(dir, `${name}.out`), render(src, ctx));
			summary.rendered++;
			continue;
		} catch (e) {
			fs.writeFileSync(path.join(dir, `${name}.err`), String(e.message));
			summary.raised++;
		}
		EXT.on = true;
		EXT.used.clear();
		try {
			const out = render(src, ctx);
			if (EXT.used.size > 0) {
				fs.writeFileSync(path.join(dir, `${name}.ext`), out);
				notes.push(`${name}: ${[...EXT.used].sort().join(", ")}`);
				summary.extension++;
			}
		} catch {
			// still refused with the extensions: the .err stands
		} finally {
			EXT.on = false;
		}
	}
	if (notes.length) console.log(`${stem}: extension renders: ${notes.join("; ")}`);
}
console.log(
	`${templates.length} templates x ${Object.keys(CASES).length} cases: ` +
		`${summary.rendered} rendered, ${summary.raised} raised (${summary.extension} of them render with extensions)`,
);
