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

// ---------------------------------------------------------------- snippets
// Small templates that pin down the language itself (operators, filters,
// tests, whitespace control, printing, errors). Each is rendered with its
// context; the reference's output or error goes to snippets.json.
// ext: the reference raises, edgeagent renders (a documented extension; its
// exact output is asserted by test_template.c's unit tests).
// diverge: both raise, with a different message (the reason is given).
const S = (name, template, context = {}, extra = {}) => ({ name, template, context, ...extra });
const EXTENSION = { ext: true };
const SNIPPETS = [
	// printing of values
	S("print_none", "[{{ none }}][{{ None }}][{{ undefined_var }}]"),
	S("print_bools", "{{ true }} {{ false }} {{ True }} {{ 1 == 1 }}"),
	S("print_numbers", "{{ 1 }} {{ 1.0 }} {{ -0.0 }} {{ 2.50 }} {{ 1e3 if false else 1000000 * 1000000 }} {{ 0.1 + 0.2 }} {{ 1 / 3 }} {{ 10 / 2 }}"),
	S("print_big", "{{ 1000000000 * 1000000000000 }} {{ 1000000000.0 * 1000000000000.0 }} {{ 123456789012345678901234 }} {{ 2 ** 70 }}"),
	S("print_numbers2", "{{ 1 }} {{ 1.0 }} {{ -0.0 }} {{ 2.50 }} {{ 1000000 * 1000000 }} {{ 0.1 + 0.2 }} {{ 1 / 3 }} {{ 10 / 2 }} {{ 100.0 * 3 }} {{ 12.75 }}"),
	S("print_small2", "{{ 1 / 1000000 }} {{ 1 / 10000000 }} {{ 0.000001 }} {{ -0.0000000015 }} {{ 0.1 * 3 }} {{ 123.456 }} {{ 1 / 3 * 3 }}"),
	S("print_small", "{{ 1 / 1000000 }} {{ 1 / 10000000 }} {{ 0.000001 }} {{ -1.5e-9 if false else -0.0000000015 }}"),
	S("print_list", "{{ [1, 'a', none, true, 1.5, [2], {'k': 'v'}] }}"),
	S("print_dict", "{{ {'a': 1, 'b': [1, 2], 'c': {'d': none}} }}"),
	S("print_ctx", "{{ x }}|{{ y }}|{{ z }}", { x: [1, 2.5, "s"], y: { b: 1, a: 2 }, z: 3.0 }),
	S("print_undef_in_list", "{{ [undefined_var] }} {{ {'a': undefined_var} }}"),
	S("print_tuple", "{{ (1, 2) }}"),
	S("print_namespace", "{% set ns = namespace(a=1, b='x') %}{{ ns }}"),
	S("print_func", "{{ namespace is defined }} {{ range is defined }}"),
	S("int_keys_order", "{% for k in d %}{{ k }},{% endfor %}|{{ d | tojson }}", '{"d": {"b": 1, "10": 2, "2": 3, "a": 4, "01": 5, "-1": 6, "4294967295": 7, "4294967294": 8}}'),
	S("dup_keys_json", "{{ d|tojson }}", '{"d": {"a": 1, "b": 2, "a": 3}}'),
	S("number_json", "{{ v }}|{{ v|tojson }}", '{"v": [1.0, -0, 1e2, 2.5, 1e21, 12345678901234567890, 0.1]}'),
	S("unicode_passthrough", "{{ s }}|{{ s|length }}|{{ s|upper }}|{{ s|lower }}", { s: "Zürich ÉTÉ straße 東京 🙂" }),
	// arithmetic
	S("arith_int", "{{ 7 + 3 }} {{ 7 - 10 }} {{ 7 * 3 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 2 ** -1 }}"),
	S("arith_float", "{{ 7.5 + 1 }} {{ 1.5 * 2 }} {{ 7.0 // 2 }} {{ 7.5 % 2 }} {{ 2.0 ** 2 }} {{ 3 - 0.5 }}"),
	S("arith_div_zero", "{{ 1 / 0 }} {{ -1 / 0 }} {{ 1 // 0 }} {{ 1 % 0 }} {{ 0 / 0 }}"),
	S("arith_bool", "{{ true ** 2 }} {{ 2 ** false }}"),
	S("arith_bool_add", "{{ true + 1 }}"),
	S("pow_left_assoc", "{{ 2 ** 3 ** 2 }}"),
	S("unary", "{{ -5 }} {{ +5 }} {{ -x }} {{ - - 3 }} {{ -true }} {{ -(2.5) }} {{ 3 - -2 }}", { x: 4 }),
	S("unary_str_err", "{{ -'a' }}"),
	S("precedence", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 2 * 3 ** 2 }} {{ 10 - 2 - 3 }} {{ 1 + 2 ~ 3 }} {{ 'a' ~ 1 + 2 }}"),
	// strings and concatenation
	S("concat", "{{ 'a' ~ 1 ~ 1.0 ~ true ~ [1, 2] ~ {'a': 1} }}"),
	S("concat_none_err", "{{ 'a' ~ none }}"),
	S("concat_undef_err", "{{ 'a' ~ nothing }}"),
	S("plus_strings", "{{ 'a' + 'b' }} {{ 'a' + 1 }} {{ 1 + 'a' }} {{ 'x' + 2.0 }} {{ 'x' + [1] }}"),
	S("plus_lists", "{{ [1] + [2, 3] }}"),
	S("plus_dict_err", "{{ {'a': 1} + {'b': 2} }}"),
	S("str_mul_err", "{{ 'ab' * 3 }}", {}, EXTENSION),
	S("string_escapes", "{{ 'a\\nb\\tc\\\\d\\'e\"f' }}|{{ \"x\\u00e9y\\x41\" }}|{{ 'adj' 'acent' }}"),
	S("string_index", "{{ s[0] }}{{ s[-1] }}{{ s[1:3] }}{{ s[::-1] }}{{ s[10] }}|{{ e[0] }}|{{ e[1:] }}", { s: "hello", e: "🙂ab" }),
	// comparisons and logic
	S("compare", "{{ 1 < 2 }} {{ 2 <= 2 }} {{ 3 > 4 }} {{ 1.5 >= 1 }} {{ 1 == 1.0 }} {{ 1 != 2 }}"),
	S("compare_str_err", "{{ 'a' < 'b' }}", {}, EXTENSION),
	S("loose_eq", "{{ 1 == '1' }} {{ 0 == '' }} {{ true == 1 }} {{ none == undefined_var }} {{ 'a' == 'a' }} {{ [] == [] }} {{ x == x }} {{ 1 == ' 1 ' }} {{ 'true' == true }}", { x: [1] }),
	S("eq_objects", "{{ m[0] == m[0] }} {{ m[0] == m[1] }} {{ m == m }}", { m: [{ a: 1 }, { a: 1 }] }),
	S("and_or_values", "[{{ 0 or 'x' }}][{{ 'a' and 'b' }}][{{ '' and 'b' }}][{{ [] or {} }}][{{ none or 0 }}][{{ 1 and none }}]"),
	S("not", "{{ not true }} {{ not 0 }} {{ not [] }} {{ not 'x' }} {{ not not 1 }}"),
	S("chained_compare", "{{ 1 < 2 < 3 }} {{ 3 > 2 > 1 }}"),
	S("in_ops", "{{ 'a' in 'cat' }} {{ 'z' not in 'cat' }} {{ 1 in [1, 2] }} {{ '1' in [1] }} {{ 'k' in {'k': 1} }} {{ 'k' in undefined_var }} {{ 'k' not in undefined_var }} {{ 1.0 in [1] }}"),
	S("in_err", "{{ 1 in 5 }}"),
	S("in_none_err", "{{ 'a' in none }}"),
	S("undef_op_err", "{{ undefined_var + 1 }}"),
	S("undef_in_err", "{{ undefined_var in [1] }}"),
	S("null_op_err", "{{ none + 1 }}"),
	S("ternary", "{{ 'y' if true else 'n' }} {{ 'y' if 0 else 'n' }} {{ 'a' if false else 'b' if true else 'c' }} [{{ 'x' if false }}]"),
	// member access
	S("member", "{{ d.a }} {{ d['a'] }} {{ d.b.c }} {{ d.missing }} {{ l[1] }} {{ l[-1] }} {{ l[5] }} {{ l.0 }} [{{ none.x }}] [{{ 5.x }}]", { d: { a: 1, b: { c: 2 } }, l: [10, 20, 30] }),
	S("member_builtin_shadow", "{{ d.items }} {{ d.get('x', 'dflt') }}", { d: { items: "own" } }),
	S("member_nonstring_err", "{{ d[0] }}", { d: { a: 1 } }),
	S("member_float_index_err", "{{ l[1.0] }}", { l: [1, 2] }),
	S("slices", "{{ l[1:] }} {{ l[:2] }} {{ l[::2] }} {{ l[::-1] }} {{ l[-2:] }} {{ l[1:-1] }} {{ l[3:0:-1] }} {{ l[3:-1:-1] }} {{ l[:] }} {{ l[10:] }} {{ l[::-2] }}", { l: [0, 1, 2, 3, 4] }),
	S("slice_err", "{{ l['a':] }}", { l: [1] }),
	S("slice_obj_err", "{{ d[1:] }}", { d: { a: 1 } }),
	// literals
	S("literals", "{{ [] }} {{ {} }} {{ [1,] }} {{ {'a': 1,} }} {{ ('a') }} {{ (1, 2)[1] }}"),
	S("dict_int_key_err", "{{ {1: 'a'} }}"),
	S("dict_dup_key", "{{ {'a': 1, 'b': 2, 'a': 3} }}"),
	// tests
	S("tests_types", "{{ 1 is number }} {{ 1.5 is integer }} {{ 1 is integer }} {{ 'a' is string }} {{ [1] is iterable }} {{ 'a' is iterable }} {{ {} is iterable }} {{ (1,2) is iterable }} {{ {} is mapping }} {{ [] is sequence }} {{ {} is sequence }} {{ none is none }} {{ true is boolean }} {{ range is callable }}"),
	S("tests_defined", "{{ x is defined }} {{ y is defined }} {{ y is undefined }} {{ x is not defined }} {{ none is defined }} {{ d.k is defined }} {{ d.z is defined }}", { x: 1, d: { k: null } }),
	S("tests_bool", "{{ true is true }} {{ 1 is true }} {{ false is false }} {{ 0 is false }} {{ none is false }}"),
	S("tests_oddeven", "{{ 3 is odd }} {{ 4 is even }} {{ 0 is even }} {{ -3 is odd }}"),
	S("tests_odd_err", "{{ 1.5 is odd }}"),
	S("tests_case", "{{ 'abc' is lower }} {{ 'aBc' is lower }} {{ 'ABC' is upper }} {{ 1 is lower }} {{ 'éa' is lower }}"),
	S("tests_unknown_err", "{{ 1 is foo }}"),
	S("tests_chain", "{{ 1 is number is boolean }} {{ not 1 is string }}"),
	S("test_eq_noarg_err", "{{ 1 is eq }}"),
	// filters: strings
	S("f_trim", "[{{ '  a b \\n'|trim }}][{{ s|trim }}]", { s: "\u00a0\u3000x\ufeff\u2028" }),
	S("f_case", "{{ 'hello wORLD'|upper }} {{ 'HeLLo'|lower }} {{ 'hello wORLD-foo_bar x1y'|title }} {{ 'hello World'|capitalize }} {{ 'élan vital'|title }} {{ 'ßa'|upper }} {{ 'ÀÉÎ'|lower }}"),
	S("f_length", "{{ 'abc'|length }} {{ [1,2]|length }} {{ {'a':1}|length }} {{ '🙂'|length }} {{ 'é'|length }} {{ 'x'|count if false else 1 }}"),
	S("f_length_undef_err", "{{ nothing|length }}"),
	S("f_indent", "[{{ 'a\\nb\\n\\nc'|indent }}][{{ 'a\\nb'|indent(2) }}][{{ 'a\\nb\\n\\nc'|indent(2, true) }}][{{ 'a\\n\\nb'|indent(width=1, first=true, blank=true) }}][{{ 'a\\nb'|indent(2, first='') }}]"),
	S("f_indent_err", "{{ 'a'|indent('x') }}"),
	S("f_replace", "{{ 'aaa'|replace('a', 'b') }} {{ 'aaa'|replace('a', 'b', 2) }} {{ 'abc'|replace('', '-') }} {{ 'a.b'|replace('.', '$&') }} {{ 'aaa'|replace('a','c',count=1) }} {{ '🙂x'|replace('', '|') }}"),
	S("f_int_float", "{{ '42'|int }} {{ ' 42abc'|int }} {{ 'x'|int }} {{ '3.9'|int }} {{ 3.9|int }} {{ -3.9|int }} {{ '2.5e3'|float }} {{ 'x'|float }} {{ 5|float }} {{ true|int }} {{ 'x'|int(7) }} {{ 'x'|float(default=1.5) }} {{ 3.7|int(0) }} {{ '0x1A'|int }} {{ '.5'|float }} {{ 'Infinity'|float }}"),
	S("f_string", "{{ 1|string }} {{ 1.0|string }} {{ true|string }} {{ [1, 'a']|string }} {{ 'x'|string }} {{ [nothing]|string }}"),
	S("f_string_dict_err", "{{ {'a': 1}|string }}"),
	S("f_string_none_err", "{{ none|string }}"),
	S("f_join", "{{ [1, 'a', none, 2.0, true]|join }} {{ ['a','b']|join(', ') }} {{ 'abc'|join('-') }} {{ [[1, 2], [3]]|join('|') }} {{ [{'a': 1}]|join }} {{ ['x']|join(separator='+') }} {{ '🙂é'|join('.') }}"),
	S("f_join_err", "{{ 5|join(',') }}"),
	S("f_abs", "{{ -3|abs }} {{ -3.5|abs }} {{ 3|abs }}"),
	S("f_safe", "{{ '<b>'|safe }} {{ none|safe }}"),
	S("f_unknown_err", "{{ 'a'|nosuchfilter }}"),
	S("f_unknown_arr_err", "{{ [1]|nosuchfilter }}"),
	S("f_unknown_none_err", "{{ none|upper }}"),
	S("f_bool", "{{ true|bool }} {{ false|int }} {{ true|float }} {{ false|string }}"),
	S("f_default", "[{{ nothing|default('d') }}][{{ none|default('d') }}][{{ ''|default('d') }}][{{ ''|default('d', true) }}][{{ 0|default('d', boolean=true) }}][{{ 'x'|default() }}][{{ nothing|default() }}][{{ none|default('d', true) }}][{{ [1]|default([2], true) }}]"),
	S("f_default_flag_err", "{{ nothing|default('d', 1) }}"),
	S("f_default_noparen_err", "{{ nothing|default }}", {}, EXTENSION),
	// filters: lists and dicts
	S("f_list_basics", "{{ [3,1,2]|first }} {{ [3,1,2]|last }} {{ [3,1,2]|reverse }} {{ [3,1,2]|sort }} {{ [3,1,2]|list }} {{ [1,2,1,'1',1.0]|unique }} {{ (1,2)|list }}"),
	S("f_first_empty_err", "{{ []|first }}"),
	S("f_first_empty_set", "{% set x = []|first %}{{ x is defined }}"),
	S("f_sort", "{{ ['b','A','a','B']|sort }} {{ ['b','A','a','B']|sort(case_sensitive=true) }} {{ [3,1,2]|sort(reverse=true) }} {{ [true, 2, 0.5]|sort }} {{ items|sort(attribute='n')|map(attribute='n')|list }} {{ items|sort(attribute='d.x', reverse=true)|map(attribute='n')|join(',') }}", { items: [{ n: 2, d: { x: 1 } }, { n: 1, d: { x: 3 } }, { n: 3, d: { x: 2 } }] }),
	S("f_sort_mixed_err", "{{ [1, 'a']|sort }}"),
	S("f_sort_none_err", "{{ [none, 1]|sort }}"),
	S("f_selectattr", "{{ u|selectattr('admin')|map(attribute='name')|join(',') }}|{{ u|rejectattr('admin')|map(attribute='name')|join(',') }}|{{ u|selectattr('role', 'equalto', 'x')|map(attribute='name')|join(',') }}|{{ u|selectattr('role', 'defined')|list|length }}|{{ u|selectattr('admin', 'false')|map(attribute='name')|join }}", { u: [{ name: "a", admin: true, role: "x" }, { name: "b", admin: false }, { name: "c", admin: true, role: "y" }] }),
	S("f_selectattr_notobj_err", "{{ [1]|selectattr('a') }}"),
	S("f_selectattr_nonliteral_err", "{{ [{'a': 1}]|selectattr(x) }}", { x: "a" }),
	S("f_selectattr_unknown_test_err", "{{ [{'a': 1}]|selectattr('a', 'nope') }}"),
	S("f_map", "{{ u|map(attribute='name')|list }} {{ u|map(attribute='missing', default='?')|list }} {{ u|map(attribute='tags.0')|list }} {{ u|map(attribute='missing')|list }}", { u: [{ name: "a", tags: ["t1"] }, { name: "b", tags: [] }] }),
	S("f_map_noattr_err", "{{ ['a']|map('upper')|list }}", {}, EXTENSION),
	S("f_map_notobj_err", "{{ [1]|map(attribute='a')|list }}"),
	S("f_dict", "{{ d|items }} {{ d|length }} {{ d|keys }} {{ d|values }} {{ d|dictsort }} {{ d|dictsort(reverse=true) }} {{ d|dictsort(by='value') }} {{ d|dictsort(false, 'value', true) }}", { d: { b: 2, a: 3, C: 1 } }),
	S("f_dictsort_cs", "{{ d|dictsort(true) }} {{ d|dictsort }}", { d: { b: 1, B: 2, a: 3 } }),
	S("f_dict_unknown_err", "{{ {'a': 1}|upper }}"),
	S("f_dict_get_filter_err", "{{ {'a': 1}|get }}"),
	// tojson
	S("tojson_basic", "{{ v|tojson }}", { v: { a: [1, 2.5, "x\"y\\z\n\t\u0001\u007f", null, true], "é": "日本", e: {}, l: [] } }),
	S("tojson_indent", "{{ v|tojson(indent=2) }}|{{ v|tojson(indent=0) }}|{{ []|tojson(indent=2) }}|{{ {}|tojson(indent=4) }}", { v: { a: [1, { b: [] }], c: "d" } }),
	S("tojson_ascii", "{{ v|tojson(ensure_ascii=true) }}|{{ v|tojson(ensure_ascii=false) }}", { v: { "ké": "日本 🙂 \u007f é" } }),
	S("tojson_separators", "{{ v|tojson(separators=(',', ':')) }}|{{ v|tojson(indent=2, separators=(', ', ' = ')) }}", { v: { a: [1, 2], b: 3 } }),
	S("tojson_sort_keys", "{{ v|tojson(sort_keys=true) }}", { v: { b: 1, a: 2, c: { z: 1, y: 2 } } }),
	S("tojson_scalars", "{{ 1|tojson }} {{ 1.0|tojson }} {{ 1.5|tojson }} {{ 'x'|tojson }} {{ none|tojson }} {{ nothing|tojson }} {{ true|tojson }} {{ (1/0)|tojson }}"),
	S("tojson_ns", "{% set ns = namespace(a=[1]) %}{{ ns|tojson }}"),
	S("tojson_tuple_err", "{{ (1, 2)|tojson }}"),
	S("tojson_func_err", "{{ range|tojson }}"),
	S("tojson_indent_err", "{{ 1|tojson(indent='x') }}"),
	S("tojson_positional", "{{ {'a': 1}|tojson(4) }}"),
	// string methods
	S("m_strip", "[{{ '  x  '.strip() }}][{{ '  x  '.lstrip() }}][{{ '  x  '.rstrip() }}][{{ 'xxaxx'.strip('x') }}]"),
	S("m_case", "{{ 'ab'.upper() }} {{ 'AB'.lower() }} {{ 'ab cd'.title() }} {{ 'ab cd'.capitalize() }} {{ 'abc'.length }}"),
	S("m_startswith", "{{ 'hello'.startswith('he') }} {{ 'hello'.endswith('lo') }} {{ 'hello'.startswith(('x', 'h')) }} {{ 'hello'.endswith(['x']) }} {{ 'hello'.startswith('') }}"),
	S("m_startswith_err", "{{ 'hello'.startswith(1) }}"),
	S("m_split", "{{ 'a,b,,c'.split(',') }} {{ '  a  b c '.split() }} {{ 'a b c'.split(' ', 1) }} {{ '  a b  c  '.split(none, 1) }} {{ 'abc'.split('x') }} {{ ''.split(',') }} {{ ''.split() }} {{ 'a,b,c'.split(',', 0) }}"),
	S("m_split_err", "{{ 'a'.split('') }}"),
	S("m_replace", "{{ 'a-b-c'.replace('-', '+') }} {{ 'a-b-c'.replace('-', '+', 1) }} {{ 'aaa'.replace('a', '', -1) }}"),
	S("m_replace_err", "{{ 'a'.replace('a') }}"),
	S("m_unknown", "[{{ 'a'.nosuch }}]"),
	S("m_unknown_call_err", "{{ 'a'.nosuch() }}"),
	S("m_list_append_err", "{% set l = [1] %}{{ l.append(2) }}", {}, EXTENSION),
	S("m_dict", "{{ d.get('a') }} {{ d.get('x') }} {{ d.get('x', 5) }} {{ d.items() }} {{ d.keys() }} {{ d.values() }} {{ d.get('a', default=9) }}", { d: { a: 1, b: [2] } }),
	S("m_dict_get_err", "{{ d.get(1) }}", { d: { a: 1 } }),
	S("m_ns_no_builtins", "{% set ns = namespace(a=1) %}[{{ ns.get }}][{{ ns.a }}][{{ ns.items is defined }}]"),
	// statements
	S("for_basic", "{% for x in [1, 2, 3] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}"),
	S("for_prevnext", "{% for x in 'abc'|list if false else ['a','b','c'] %}[{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }}]{% endfor %}"),
	S("for_else", "{% for x in [] %}x{% else %}empty{% endfor %}|{% for x in [1] %}x{% else %}empty{% endfor %}"),
	S("for_dict", "{% for k in d %}{{ k }}{% endfor %}|{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{% for k, v in d|items %}{{ k }}{{ v }}{% endfor %}|{% for k, v in d|dictsort %}{{ k }}{% endfor %}", { d: { b: 1, a: 2 } }),
	S("for_filter", "{% for x in range(10) if x is odd %}{{ x }}{{ loop.index }}{{ loop.length }},{% endfor %}"),
	S("for_nested_loop", "{% for a in [1,2] %}{% for b in [3,4] %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}{{ loop.index }}|{% endfor %}"),
	S("for_break_continue", "{% for x in range(6) %}<{{ x }}{% if x == 1 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}>{% endfor %}"),
	S("for_all_continue_else", "{% for x in [1,2] %}{% continue %}{% else %}else-ran{% endfor %}|{% for x in [1,2] %}{% break %}{% else %}else-ran2{% endfor %}|{% for x in [1,2] %}{{ x }}{% if x == 2 %}{% break %}{% endif %}{% else %}else-ran3{% endfor %}"),
	S("for_scope", "{% set x = 'outer' %}{% for i in [1] %}{% set x = 'inner' %}{% set y = 1 %}{{ x }}{% endfor %}{{ x }}[{{ y }}]"),
	S("for_tuple_unpack", "{% for a, b in [[1, 2], [3, 4]] %}{{ a }}{{ b }}{% endfor %}"),
	S("for_tuple_literal_err", "{% for a, b in [(1, 2)] %}{{ a }}{% endfor %}"),
	S("for_unpack_len_err", "{% for a, b in [[1, 2, 3]] %}{{ a }}{% endfor %}"),
	S("for_string_err", "{% for c in 'abc' %}{{ c }}{% endfor %}"),
	S("for_none_err", "{% for c in none %}{{ c }}{% endfor %}"),
	S("for_undef_err", "{% for c in nothing %}{{ c }}{% endfor %}"),
	S("for_snapshot", "{% set ns = namespace(l=[1, 2]) %}{% for x in ns.l %}{{ x }}{% set ns.l = ns.l + [9] %}{% endfor %}{{ ns.l }}"),
	S("for_loop_after", "{% for x in [1] %}{% endfor %}[{{ loop }}][{{ x }}]"),
	S("break_outside_err", "a{% break %}b", {}, { diverge: "the reference's message is empty; ours names the statement" }),
	S("if_elif", "{% for v in [1, 2, 3, 4] %}{% if v == 1 %}one{% elif v == 2 %}two{% elif v == 3 %}three{% else %}other{% endif %},{% endfor %}"),
	S("set_forms", "{% set a = 1 %}{% set b, c = [2, 3] %}{% set d = 4, 5 %}{% set e %}block {{ a }}{% endset %}{{ a }}{{ b }}{{ c }}{{ d }}[{{ e }}]"),
	S("set_tuple_err", "{% set a, b = 1 %}"),
	S("set_tuple_len_err", "{% set a, b = [1, 2, 3] %}"),
	S("set_attr_err", "{% set d = {} %}{% set d.x = 1 %}"),
	S("set_in_if", "{% if true %}{% set x = 5 %}{% endif %}{{ x }}"),
	S("set_globals", "{% set true = 'T' %}{{ true }}{% set range = 1 %}{{ range }}"),
	S("namespace", "{% set ns = namespace(a=1) %}{% set ns.a = ns.a + 1 %}{% set ns.b = 'x' %}{% for i in [1,2] %}{% set ns.a = ns.a * 10 %}{% endfor %}{{ ns.a }}{{ ns.b }}"),
	S("namespace_init", "{{ namespace({'a': 1}, b=2) }} {{ namespace([['x', 1], 'yz']) }} {{ namespace() }}"),
	S("namespace_err", "{{ namespace(1) }}"),
	S("namespace_args_err", "{{ namespace({}, {}) }}"),
	S("namespace_shadow", "{% set namespace = 5 %}{{ namespace }}{% for x in [1] %}[{{ namespace is callable }}]{% endfor %}"),
	S("macro_basic", "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', '?') }} {{ greet(name='C') }} {{ greet(punct='.', name='D') }}"),
	S("macro_undef_arg", "{% macro m(a, b='d') %}[{{ a }}][{{ b }}]{% endmacro %}{{ m() }}{{ m(nothing) }}{{ m(1, nothing) }}"),
	S("macro_defaults_refer", "{% macro m(a, b=a * 2) %}{{ a }}-{{ b }}{% endmacro %}{{ m(3) }}"),
	S("macro_kwargs", "{% macro m(a) %}{{ a }}{{ kwargs }}{% endmacro %}{{ m(1, x=2, y=3) }}"),
	S("macro_varargs", "{% macro m(a) %}{{ a }}{{ varargs }}{% endmacro %}{{ m(1, 2, 3) }}"),
	S("macro_too_many_err", "{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, 2) }}"),
	S("macro_bad_kw_err", "{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, z=2) }}"),
	S("macro_dynamic_scope", "{% macro m() %}{{ v }}{% endmacro %}{% set v = 'global' %}{{ m() }}{% for v in ['loop'] %}{{ m() }}{% endfor %}"),
	S("macro_recursive", "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * (fact(n - 1)|int) }}{% endif %}{% endmacro %}{{ fact(6) }}"),
	S("macro_returns_string", "{% macro m() %}5{% endmacro %}{{ m() + 1 }}"),
	S("macro_spread2", "{% macro m(a, b, c) %}{{ a }}{{ b }}{{ c }}{% endmacro %}{{ m(1, *[2, 3]) }}{{ m(1, **{'b': 2, 'c': 3}) }}"),
	S("macro_spread", "{% macro m(a, b, c) %}{{ a }}{{ b }}{{ c }}{% endmacro %}{{ m(*[1, 2], 3) }}{{ m(1, **{'b': 2, 'c': 3}) }}"),
	S("call_block", "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}inside {{ 1 + 1 }}{% endcall %}"),
	S("call_block_args", "{% macro each(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}{% call(x) each([1, 2]) %}[{{ x }}]{% endcall %}"),
	S("filter_block", "{% filter upper %}hello {{ 'world' }}{% endfilter %}|{% filter replace('a', 'o') %}banana{% endfilter %}|{%- filter trim -%}   x   {%- endfilter -%}|"),
	S("comments", "a{# comment #}b{#- strip -#}  c  {# keep #} d"),
	// whitespace control
	S("ws_dash", "a  {{- 'b' -}}  c  {%- if true -%}  d  {%- endif -%}  e"),
	S("ws_trim_blocks", "{% if true %}\nline1\n{% endif %}\nline2\n{# c #}\nline3\n"),
	S("ws_lstrip_blocks", "  {% if true %}\n    x\n  {% endif %}\n  {{ 'y' }}\n\t{# c #}z\n"),
	S("ws_lstrip_not_after_text", "a  {% if true %}b{% endif %}"),
	S("ws_expr_newline", "{{ 'a' }}\nb\n{{ 'c' -}}\n\nd"),
	S("ws_crlf", "{% if true %}\r\nx\r\n{% endif %}\r\ny"),
	S("ws_trailing_newline", "x\n"),
	S("ws_two_trailing_newlines", "x\n\n"),
	S("ws_generation", "a {% generation %} b {% endgeneration %} c|{%- generation -%}  d  {%- endgeneration -%}|"),
	S("ws_in_string", "{{ '%}\n' }}|{{ 'x  ' }}"),
	S("ws_unicode", "a\u00a0{{- 'b' -}}\u3000c"),
	// globals
	S("raise_str", "{{ raise_exception('boom: ' ~ 1) }}"),
	S("raise_num", "{{ raise_exception(42) }}"),
	S("raise_none", "{{ raise_exception() }}"),
	S("raise_null", "{{ raise_exception(none) }}"),
	S("raise_list", "{{ raise_exception([1, 'a']) }}"),
	S("raise_dict", "{{ raise_exception({'a': 1}) }}"),
	S("range", "{{ range(3) }} {{ range(1, 4) }} {{ range(0, 10, 3) }} {{ range(5, 0, -2) }} {{ range(0) }} {{ range(-2) }}"),
	S("range_step_err", "{{ range(1, 2, 0) }}"),
	S("strftime", "{{ strftime_now('%Y-%m-%d %H:%M') }}|{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%B %% %A %y') }}"),
	S("not_callable_err", "{{ 'a'() }}"),
	S("call_undef_err", "{{ nothing() }}"),
	S("dup_kwarg_err", "{{ namespace(a=1, **{'a': 2}) }}"),
	S("spread_err", "{{ range(*5) }}"),
	S("context_conflict_err", "x", { namespace: 1 }),
	S("context_conflict_true_err", "x", { true: 1 }),
	S("context_dict_ok", "{{ dict }}", { dict: "mine" }),
	S("loop_captured", "{% set ns = namespace(l=[]) %}{% for x in [1, 2, 3] %}{% set ns.l = ns.l + [loop] %}{% endfor %}{{ ns.l|map(attribute='index')|list }}|{% for x in 'ab'|list if false else ['a', 'b'] %}{% set saved = loop %}{% for y in [1] %}{{ saved.index }}{{ loop.index }}{% endfor %}{% endfor %}"),
	S("loop_captured_macro", "{% macro keep(l) %}{{ l.index }}{% endmacro %}{% for x in [1, 2] %}{{ keep(loop) }}{% endfor %}{% for x in [1, 2] %}{{ loop == loop }}{% endfor %}"),
	S("range_edge", "{{ range() }}{{ range(0, 1, 0.25) }}{{ range(2.5) }}{{ range(true) }}"),
	S("loop_var_leak", "{% for x in [1] %}{% set loop = 5 %}{{ loop }}{% endfor %}"),
	S("long_output", "{% for i in range(300) %}{{ i }},{% endfor %}"),
	// lexer and whitespace corners
	S("lex_lstrip_dash_text", "a\n   {- not a tag\n  {{ 'x' }}"),
	S("lex_trim_dash_text", "a-}\nb%}\nc#}\nd}}\ne"),
	S("lex_lstrip_cr", "a\r  {% if true %}x{% endif %}"),
	S("lex_lstrip_u2028", "a\u2028  {% if true %}x{% endif %}"),
	S("lex_dash_unicode_ws", "a\u00a0\u2003{%- if true -%}\u3000\u00a0b{%- endif %}"),
	S("lex_comment_dash", "a  {#- c -#}  b {#-x#} c {#y-#} d"),
	S("lex_comment_in_expr_order", "{# {{ x }} #}ok"),
	S("lex_nested_braces", "{{ {'a': {'b': {'c': 1}}} }}|{{ {'a': {'b': 1}}['a'] }}"),
	S("lex_set_nested_braces", "{% set d = {'a': {'b': 1}} %}{{ d.a.b }}"),
	S("lex_braces_text", "a { b } {x} }} %} #} c"),
	S("lex_string_with_tags", "{{ '{{ x }}' }}{{ \"{% if %}\" }}{{ '{#' }}"),
	S("lex_negative_literals", "{{ 5-3 }} {{ [1,-1] }} {{ (-1) }} {{ -1|abs }} {{ - 1|abs }} {{ 2*-1 }} {{ x-1 }} {{ -x|abs }}", { x: 4 }),
	S("lex_float_member", "{{ l.0 }} {{ l.1.0 if false else l[1][0] }}", { l: [5, [6]] }),
	S("lex_keywords_as_names", "{{ d.if }} {{ d.for }} {{ d.in }}", { d: { if: 1, for: 2, in: 3 } }),
	S("lex_adjacent_strings", "{{ 'a' \"b\" 'c' }}"),
	S("lex_unicode_escape_pair", "{{ '\\ud83d\\ude00' }}|{{ '\\u00e9' }}"),
	S("lex_only_text", "just text with {single} braces"),
	S("lex_empty", ""),
	S("lex_only_newline", "\n"),
	S("lex_tag_at_end_ws", "{% if true %}a{% endif %}  \n"),
	S("lex_dash_inside_expr", "{{ 'a' -}}\n  b{{- 'c' }}"),
	S("lex_generation_multi", "x {%- generation %} y {% endgeneration -%} z {% generation %}{% endgeneration %}w"),
	// precedence and parsing corners
	S("prec_not_in", "{{ not 'a' in 'abc' }} {{ not ('a' in 'abc') }} {{ 'a' not in 'xyz' and true }}"),
	S("prec_filter_vs_unary", "{{ -3|abs }} {{ -(3)|abs }} {{ 'ab'|upper ~ 'c' }} {{ 1 + 2|string }}"),
	S("prec_test_vs_filter", "{{ 'a'|upper is string }} {{ 3 + 1 is odd }} {{ [1]|length is even }}"),
	S("prec_ternary_nested", "{{ 1 if true else 2 if true else 3 }} {{ (1 if false else 2) + 10 }}"),
	S("prec_and_or", "{{ true or false and false }} {{ (true or false) and false }} {{ false and true or 'x' }}"),
	S("prec_compare_chain_in", "{{ 'a' in 'apple' == true }}"),
	S("call_chains", "{{ 'a,b'.split(',')[1].upper() }} {{ d.get('l')[0] }} {{ ' x '.strip().upper().lower() }}", { d: { l: ["q"] } }),
	S("call_kwargs_to_builtin", "{{ 'a b c'.split(maxsplit=1) }}"),
	S("set_multi_target_member", "{% set ns = namespace() %}{% set ns.a, ns.b = 1, 2 %}{{ ns.a }}"),
	S("set_ns_computed", "{% set ns = namespace(x=0) %}{% set ns['x'] = 1 %}{{ ns.x }}"),
	S("elif_deep", "{% set v = 5 %}{% if v == 1 %}a{% elif v == 2 %}b{% elif v == 3 %}c{% elif v == 4 %}d{% elif v == 5 %}e{% else %}f{% endif %}"),
	S("if_whitespace_chain", "{%- if true -%}\n  A\n{%- elif false -%}\n  B\n{%- else -%}\n  C\n{%- endif -%}\n"),
	S("macro_caller_loop", "{% macro list(items) %}{% for i in items %}<{{ caller(i, loop.index) }}>{% endfor %}{% endmacro %}{% call(item, n) list(['a', 'b']) %}{{ n }}:{{ item|upper }}{% endcall %}"),
	S("macro_in_macro", "{% macro outer(x) %}{% macro inner(y) %}[{{ y }}]{% endmacro %}{{ inner(x) }}{{ inner(x ~ x) }}{% endmacro %}{{ outer('a') }}"),
	S("macro_call_kwonly", "{% macro m(a=1, b=2) %}{{ a }}{{ b }}{% endmacro %}{{ m(b=5) }}{{ m(7) }}"),
	S("macro_defined_later", "{{ m is defined }}{% macro m() %}x{% endmacro %}{{ m is defined }}{{ m() }}"),
	S("macro_print_call", "{% macro m() %}  spaced  {% endmacro %}[{{ m() }}][{{ m()|trim }}]"),
	S("loop_in_macro_from_loop", "{% macro m() %}{{ loop.index }}{% endmacro %}{% for x in [1, 2] %}{{ m() }}{% endfor %}"),
	S("nested_loop_else_continue", "{% for a in [1, 2] %}{% for b in [] %}x{% else %}E{{ a }}{% endfor %}{% if a == 1 %}{% continue %}{% endif %}A{% endfor %}"),
	// more filters and methods
	S("f_trim_types_err", "{{ 5|trim }}"),
	S("f_upper_list_err", "{{ ['a']|upper }}"),
	S("f_items_list_err", "{{ [1]|items }}"),
	S("f_join_nested", "{{ [[1, [2, 3]], {'a': 1}, none, 1.5]|join(';') }}"),
	S("f_string_float", "{{ 1.0|string }} {{ 2.50|string }} {{ (1/3)|string }} {{ -0.0|string }} {{ [1.0, 2.5]|string }}"),
	S("f_tojson_floats", "{{ [1.0, -0.0, 2.5, 1e300 * 10 if false else 3.0]|tojson }}"),
	S("f_tojson_control", "{{ s|tojson }}", { s: "\u0000\u0008\u000b\u000c\u001f\u2028\u2029\ud7ff\ue000" }),
	S("f_tojson_kwargs_obj_err", "{% macro m() %}{{ kwargs|tojson }}{% endmacro %}{{ m(a=1) }}"),
	S("f_int_edge", "{{ '-0'|int }} {{ '+5'|int }} {{ '  -12.7'|int }} {{ '1e5'|int }} {{ '99999999999999999999'|int }} {{ ''|int }} {{ '\u00a0 7'|int }}"),
	S("f_float_edge", "{{ '1.'|float }} {{ '-.5e-2x'|float }} {{ 'e5'|float }} {{ '-Infinity'|float }} {{ 'infinity'|float }} {{ '1e400'|float }} {{ '  3.25  '|float }}"),
	S("f_unique_types", "{{ [1, 1.0, '1', true, none, nothing, none]|unique|length }} {{ [[1], [1]]|unique|length }}"),
	S("f_sort_stability", "{{ l|sort(attribute='k')|map(attribute='v')|join }}", { l: [{ k: 1, v: "a" }, { k: 0, v: "b" }, { k: 1, v: "c" }, { k: 0, v: "d" }] }),
	S("f_sort_big", "{{ l|sort|join(',') }}", { l: Array.from({ length: 100 }, (_, i) => (i * 37) % 101) }),
	S("f_sort_strings_unicode", "{{ ['é', 'e', 'z', 'É', 'Z', '\ue000', '🙂']|sort|join(',') }}"),
	S("f_dictsort_mixed_err", "{{ {'a': 1, 'b': 'x'}|dictsort(by='value') }}"),
	S("f_selectattr_ns", "{% set ns = namespace(a=1) %}{{ [ns]|selectattr('a')|list|length }}"),
	S("f_map_ns", "{% set ns = namespace(a=1) %}{{ [ns, {'a': 2}]|map(attribute='a')|list }}"),
	S("m_split_unicode_ws", "{{ '\u00a0a\u3000b\u2028c '.split() }}"),
	S("m_title_capitalize", "{{ 'o\'neil mcDonald'.title() }} {{ 'ábc'.capitalize() }} {{ '1abc'.capitalize() }} {{ ''.capitalize() }}"),
	S("m_strip_unicode", "[{{ '\ufeff x \u200b'.strip() }}]"),
	S("m_replace_overlap", "{{ 'aaaa'.replace('aa', 'b') }} {{ 'abab'.replace('ab', '') }}"),
	S("m_startswith_tuple_err", "{{ 'a'.startswith(('a', 1)) }}"),
	S("m_dictsort_method", "{{ d.dictsort() }}", { d: { b: 1, a: 2 } }),
	S("m_get_kwargs_default", "{{ d.get('z', default=1) }}", { d: {} }),
	S("test_mapping_kinds", "{% set ns = namespace() %}{{ ns is mapping }} {{ {} is mapping }} {{ [] is mapping }}"),
	S("test_string_on_ns", "{{ nothing is string }} {{ none is string }}"),
	S("obj_in_ns_err", "{% set ns = namespace(a=1) %}{{ 'a' in ns }}"),
	S("eq_ns", "{% set ns = namespace() %}{{ ns == ns }} {{ ns == namespace() }}"),
	S("truthiness", "{% set ns = namespace() %}{{ 'y' if ns else 'n' }}{{ 'y' if {} else 'n' }}{{ 'y' if [] else 'n' }}{{ 'y' if range else 'n' }}{{ 'y' if 0.0 else 'n' }}{{ 'y' if ' ' else 'n' }}"),
	S("raise_in_loop", "{% for m in messages %}{% if m.role == 'bad' %}{{ raise_exception('bad role at ' ~ loop.index) }}{% endif %}{% endfor %}", { messages: [{ role: "user" }, { role: "bad" }] }),
	S("messages_slice", "{% for m in messages[1:] %}{{ m.content }}{% endfor %}|{{ messages[-1]['content'] }}", { messages: [{ content: "a" }, { content: "b" }, { content: "c" }] }),
	S("big_context", "{{ messages|length }} {{ messages[499].content|length }}", { messages: Array.from({ length: 500 }, (_, i) => ({ role: i % 2 ? "assistant" : "user", content: "x".repeat(i) })) }),
];

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
// edgeagent's own ChatML fallback (ea_template_default_chatml) is checked too
const extraTemplates = { "_default-chatml.jinja": path.join(outDir, "default-chatml.jinja") };
templates.push(...Object.keys(extraTemplates));
const summary = { rendered: 0, raised: 0, extension: 0 };
for (const file of templates) {
	const stem = file.replace(/\.jinja$/, "");
	const src = fs.readFileSync(extraTemplates[file] ?? path.join(templatesDir, file), "utf8");
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
const snippetResults = [];
for (const sn of SNIPPETS) {
	// contexts are kept as JSON text so key order reaches the C side as written
	const ctxText = typeof sn.context === "string" ? sn.context : JSON.stringify(sn.context);
	const rec = { name: sn.name, template: sn.template, context: ctxText };
	if (sn.ext) rec.ext = true;
	if (sn.diverge) rec.diverge = sn.diverge;
	let t;
	try {
		t = new Template(sn.template);
	} catch (e) {
		rec.compile_error = String(e.message);
		snippetResults.push(rec);
		continue;
	}
	try {
		// what Node would write to a file: lone surrogates become U+FFFD
		rec.out = t.render(JSON.parse(ctxText)).toWellFormed();
	} catch (e) {
		rec.error = String(e.message);
	}
	snippetResults.push(rec);
}
fs.writeFileSync(path.join(outDir, "snippets.json"), JSON.stringify(snippetResults, null, 1) + "\n");
console.log(`${snippetResults.length} snippets`);
console.log(
	`${templates.length} templates x ${Object.keys(CASES).length} cases: ` +
		`${summary.rendered} rendered, ${summary.raised} raised (${summary.extension} of them render with extensions)`,
);
