#!/usr/bin/env node
// template-difftest.mjs - random differential test of the chat-template
// interpreter against the reference (@huggingface/jinja). Generates random
// templates from a small grammar of the language, renders each with the
// reference and writes a snippets file that tests/test_template.c replays:
//
//   node scripts/template-difftest.mjs [COUNT] [SEED] > /tmp/diff.json
//   EA_SNIPPETS=/tmp/diff.json build/tests/test_template golden_snippets
//
// A render the reference refuses with a message that one of edgeagent's
// extensions may turn into output is marked maybe_ext, and one whose output
// holds lone UTF-16 surrogates is marked skip (a documented divergence);
// either outcome passes for those.
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { Template } = await import(path.join(root, "tests/node/node_modules/@huggingface/jinja/dist/index.js"));

const COUNT = Number(process.argv[2] ?? 2000);
let seed = Number(process.argv[3] ?? 1) >>> 0 || 1;
function rnd() {
	// xorshift32: the same seed gives the same cases
	seed ^= seed << 13;
	seed >>>= 0;
	seed ^= seed >>> 17;
	seed ^= seed << 5;
	seed >>>= 0;
	return seed / 4294967296;
}
const pick = (a) => a[Math.floor(rnd() * a.length)];
const chance = (p) => rnd() < p;

const CONTEXT = {
	s: "Héllo wörld",
	e: "",
	u: "  Mixed Case\tand 🙂 spaces ",
	n: 3,
	z: 0,
	neg: -7,
	f: 2.5,
	g: 1e21,
	t: true,
	no: false,
	nn: null,
	l: [3, 1, 2],
	sl: ["b", "A", "c", "a"],
	ml: [1, "x", null, 2.5, [4]],
	el: [],
	d: { b: 2, a: 1, "2": "two", c: { x: [1, 2] } },
	ed: {},
	m: [
		{ role: "system", content: "Sys" },
		{ role: "user", content: "Hi there" },
		{ role: "assistant", content: "Yo", tool_calls: [{ function: { name: "f", arguments: { q: 1 } } }] },
	],
};
const VARS = Object.keys(CONTEXT).concat(["undef", "loop"]); // functions print as source in JS

const STRINGS = ["''", "'a'", "'ab,cd'", "'A b'", "' x '", "'é'", "'🙂'", "'\\n'", "'1'", "'2.5'", "'true'", "\"q'\""];
const NUMS = ["0", "1", "2", "-1", "3", "10", "0.5", "-2.5", "1.0", "100"];

function literal(depth) {
	switch (Math.floor(rnd() * 7)) {
		case 0:
			return pick(STRINGS);
		case 1:
		case 2:
			return pick(NUMS);
		case 3:
			return pick(["true", "false", "none", "True", "None"]);
		case 4:
			return depth > 0 ? `[${Array.from({ length: Math.floor(rnd() * 3) }, () => expr(depth - 1)).join(", ")}]` : "[]";
		case 5:
			return depth > 0 ? `{${pick(["'a'", "'b'", "'k'"])}: ${expr(depth - 1)}}` : "{}";
		default:
			return depth > 0 ? `(${expr(depth - 1)}, ${expr(depth - 1)})` : "()";
	}
}

const FILTERS0 = ["length", "upper", "lower", "trim", "title", "capitalize", "first", "last", "reverse", "sort", "unique",
	"list", "join", "string", "int", "float", "abs", "items", "tojson", "safe", "indent", "dictsort", "keys", "values", "bool"];
function filter(depth) {
	if (chance(0.6)) return pick(FILTERS0);
	switch (Math.floor(rnd() * 12)) {
		case 0:
			return `join(${pick(STRINGS)})`;
		case 1:
			return `default(${expr(0)}${chance(0.5) ? ", true" : ""})`;
		case 2:
			return `replace(${pick(STRINGS)}, ${pick(STRINGS)}${chance(0.3) ? ", 1" : ""})`;
		case 3:
			return `tojson(indent=${pick(["2", "0", "none"])}${chance(0.3) ? ", ensure_ascii=true" : ""})`;
		case 4:
			return `int(${pick(NUMS)})`;
		case 5:
			return `sort(reverse=${pick(["true", "false"])}${chance(0.3) ? ", case_sensitive=true" : ""})`;
		case 6:
			return `indent(${pick(["2", "0"])}${chance(0.5) ? ", true" : ""})`;
		case 7:
			return `map(attribute=${pick(["'role'", "'content'", "'a'", "'x.0'"])})`;
		case 8:
			return `selectattr(${pick(["'role'", "'content'", "'tool_calls'"])}${chance(0.5) ? ", 'defined'" : ""})`;
		case 9:
			return `rejectattr('role', 'equalto', ${pick(["'user'", "'system'"])})`;
		case 10:
			return `dictsort(${pick(["", "true", "by='value'", "reverse=true"])})`;
		default:
			return `float(${pick(NUMS)})`;
	}
}
const TESTS = ["defined", "undefined", "none", "string", "number", "integer", "boolean", "mapping", "iterable",
	"sequence", "callable", "odd", "even", "true", "false", "lower", "upper"];
const METHODS = ["upper()", "lower()", "strip()", "lstrip()", "rstrip()", "title()", "capitalize()", "split()",
	"split(',')", "split(' ', 1)", "startswith('H')", "endswith(('d', 'x'))", "replace('l', 'L')", "length", "items()",
	"keys()", "values()", "get('a')", "get('zz', 5)", "role", "content", "a", "c", "0", "x"];
const BINOPS = ["+", "-", "*", "/", "//", "%", "**", "~", "==", "!=", "<", ">", "<=", ">=", "and", "or", "in", "not in"];

function primary(depth) {
	let e = chance(0.55) ? pick(VARS) : literal(depth);
	// member access and slices
	while (chance(0.3)) {
		const k = Math.floor(rnd() * 4);
		if (k === 0) e = `${e}[${pick(["0", "1", "-1", "'a'", "'role'", "n", "5"])}]`;
		else if (k === 1) e = `${e}[${pick(["1:", ":2", "::-1", "::2", "1:-1", "-2:"])}]`;
		else e = `${e}.${pick(METHODS)}`;
	}
	return e;
}

function expr(depth) {
	if (depth <= 0) return primary(0);
	switch (Math.floor(rnd() * 9)) {
		case 0:
		case 1: {
			const op = pick(BINOPS);
			// V8's pow is not correctly rounded for fractional exponents (a
			// documented divergence): keep exponents integral
			if (op === "**") return `${expr(depth - 1)} ** ${pick(["0", "1", "2", "3", "-1", "n", "z"])}`;
			return `${expr(depth - 1)} ${op} ${expr(depth - 1)}`;
		}
		case 2:
			return `${primary(depth)}|${filter(depth)}`;
		case 3:
			return `${primary(depth)} is ${chance(0.3) ? "not " : ""}${pick(TESTS)}`;
		case 4:
			return `${pick(["not ", "-", "(", ""])}${expr(depth - 1)}${""}`.replace(/^\((.*)$/, "($1)");
		case 5:
			return `${expr(depth - 1)} if ${expr(depth - 1)} else ${expr(depth - 1)}`;
		case 6:
			return `(${expr(depth - 1)})`;
		default:
			return primary(depth);
	}
}

const TEXTS = ["", " ", "  ", "\n", " \n ", "\n\n", "\t", "a", " b ", "\n  c\n", "\u00a0", "x\r\n", "{", "}", "%"];
const OPEN_S = ["{%", "{%-"];
const CLOSE_S = ["%}", "-%}"];
const OPEN_E = ["{{", "{{-"];
const CLOSE_E = ["}}", "-}}"];
const ws = () => pick(TEXTS);

function statement(depth) {
	if (chance(0.35)) return wsStatement(depth);
	switch (Math.floor(rnd() * 8)) {
		case 0:
			return `{% if ${expr(depth)} %}[Y]{% else %}[N]{% endif %}`;
		case 1:
			return `{% for x in ${pick(["l", "sl", "ml", "el", "m", "d", "range(3)", "s", "undef"])}${chance(0.3) ? " if x" : ""} %}{{ ${chance(0.5) ? "x" : expr(depth - 1)} }}{{ loop.index }}{% if loop.last %}.{% endif %}{% else %}E{% endfor %}`;
		case 2:
			return `{% set v = ${expr(depth)} %}[{{ v }}]`;
		case 3:
			return `{%- set ns = namespace(a=${expr(depth - 1)}) -%}{{ ns.a }}`;
		case 4:
			return `{% macro mm(a, b=${literal(0)}) %}<{{ a }}|{{ b }}>{% endmacro %}{{ mm(${expr(depth - 1)}) }}`;
		default:
			return `{{${pick([" ", "- ", " "])}${expr(depth)}${pick([" ", " -", " "])}}}${pick(["", " ", "\n", "  \n"])}`;
	}
}

// Statements with whitespace control and text around them.
function wsStatement(depth) {
	const os = () => pick(OPEN_S), cs = () => pick(CLOSE_S), oe = () => pick(OPEN_E), ce = () => pick(CLOSE_E);
	switch (Math.floor(rnd() * 10)) {
		case 0:
			return `${ws()}${os()} if ${expr(depth)} ${cs()}${ws()}A${ws()}${os()} elif ${expr(depth)} ${cs()}${ws()}B${ws()}${os()} else ${cs()}${ws()}C${ws()}${os()} endif ${cs()}${ws()}`;
		case 1:
			return `${ws()}${os()} for x in ${pick(["l", "sl", "m", "range(4)"])} ${cs()}${ws()}${oe()} x ${ce()}${ws()}${os()} if loop.index ${pick(["== 2", "is odd", "> 1"])} ${cs()}${os()} ${pick(["break", "continue"])} ${cs()}${os()} endif ${cs()}${ws()}|${ws()}${os()} else ${cs()}none${os()} endfor ${cs()}${ws()}`;
		case 2:
			return `${ws()}{#${pick(["", "-"])} comment ${pick(["", "-"])}#}${ws()}${oe()} ${expr(depth)} ${ce()}${ws()}`;
		case 3:
			return `${os()} macro w(${pick(["", "a", "a, b=2"])}) ${cs()}${ws()}<${oe()} caller() ${ce()}>${ws()}${os()} endmacro ${cs()}${ws()}${os()} call w(${pick(["", "1", "1, 3"])}) ${cs()}${ws()}${oe()} ${expr(depth - 1)} ${ce()}${ws()}${os()} endcall ${cs()}`;
		case 4:
			return `${os()} filter ${pick(["upper", "trim", "lower", "replace('a', 'b')", "indent(2)", "title"])} ${cs()}${ws()}abc ${oe()} ${expr(depth - 1)} ${ce()}${ws()}${os()} endfilter ${cs()}${ws()}`;
		case 5:
			return `${os()} for k, v in ${pick(["d.items()", "d|items", "d|dictsort", "[[1, 2], [3, 4]]", "ed.items()"])} ${cs()}${ws()}${oe()} k ${ce()}=${oe()} v ${ce()}${pick([",", "\n", ""])}${os()} endfor ${cs()}${ws()}`;
		case 6:
			return `${os()} set ${pick(["a, b", "a"])} = ${pick(["[1, 2]", "(3, 4)", expr(depth - 1)])} ${cs()}${ws()}${oe()} a ${ce()}`;
		case 7:
			return `${os()} set blk ${cs()}${ws()}in${oe()} ${expr(depth - 1)} ${ce()}${ws()}${os()} endset ${cs()}[${oe()} blk ${ce()}]`;
		case 8:
			return `${os()} for x in m ${cs()}${oe()} loop.previtem.role if loop.previtem else '-' ${ce()}>${oe()} x.role ${ce()}>${oe()} loop.nextitem is defined ${ce()};${os()} endfor ${cs()}`;
		default:
			return `${ws()}${oe()} ${expr(depth)} ${ce()}${ws()}`;
	}
}

// Reference messages that an edgeagent extension may turn into a render.
const EXT_RE = [
	/^Unknown operator "\*" between (StringValue|IntegerValue|ArrayValue|TupleValue) and (StringValue|IntegerValue|ArrayValue|TupleValue)$/,
	/^Unknown operator "(<|>|<=|>=)" between StringValue and StringValue$/,
	/^Cannot apply filter "(default|count)" to type/,
	/^Unknown \w+ filter: (default|d|count|list|first|last|reverse|sum|min|max|round|wordcount|e|escape|select|reject|map|trim|upper|lower|length|title|capitalize|join|string|int|float|abs|items|unique|sort|indent|tojson|safe|bool|keys|values|dictsort)$/,
	/^`map` expressions without `attribute`/,
	/^Cannot call something that is not a function: got UndefinedValue$/,
	/^Unknown test: /,
];

const out = [];
for (let i = 0; i < COUNT; i++) {
	const n = 1 + Math.floor(rnd() * 3);
	const template = Array.from({ length: n }, () => statement(1 + Math.floor(rnd() * 2))).join(pick(["", "\n", " "]));
	const rec = { name: `random-${i}`, template, context: JSON.stringify(CONTEXT) };
	let t;
	try {
		t = new Template(template);
	} catch (e) {
		rec.compile_error = String(e.message);
		out.push(rec);
		continue;
	}
	try {
		const text = t.render(JSON.parse(rec.context));
		rec.out = text.toWellFormed();
		// edgeagent holds lone surrogates as U+FFFD at once; JS keeps them
		// until output, so tojson or re-pairing can differ (docs/TEMPLATES.md)
		if (!text.isWellFormed() || /\\ud[89a-f][0-9a-f]{2}/i.test(text)) rec.skip = "lone surrogate";
	} catch (e) {
		rec.error = String(e.message);
		if (EXT_RE.some((re) => re.test(rec.error))) rec.maybe_ext = true;
	}
	out.push(rec);
}
process.stdout.write(JSON.stringify(out, null, 1) + "\n");
