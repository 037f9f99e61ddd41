#!/usr/bin/env python3
"""gen-template-fuzz-seeds.py - writes the seed corpus of fuzz/fuzz_template.c
into fuzz/corpus/template/: a few real chat templates (../shared/templates)
each followed by a NUL byte and one golden conversation, plus language
snippets from tests/data/templates/snippets.json.

Usage (from the repository root): python3 scripts/gen-template-fuzz-seeds.py
"""
import json
import os
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
shared = os.environ.get("EA_SHARED_DIR", os.path.join(root, "..", "shared"))
out = os.path.join(root, "fuzz", "corpus", "template")
os.makedirs(out, exist_ok=True)
cases = os.path.join(root, "tests", "data", "templates", "cases")

# (template, conversation): small templates that between them use most of the language
PAIRS = [
    ("Qwen-Qwen2.5-7B-Instruct", "tool_call_object"),
    ("meta-llama-Llama-3.1-8B-Instruct", "tools_offered"),
    ("google-gemma-2-2b-it", "no_system_no_gen"),
    ("mistralai-Mistral-Nemo-Instruct-2407", "tool_call_string"),
    ("moonshotai-Kimi-K2", "parallel_calls"),
    ("Qwen-Qwen3-0.6B", "thinking_on"),
    ("fireworks-ai-llama-3-firefunction-v2", "tools_offered"),
    ("CohereForAI-c4ai-command-r7b-12-2024-tool_use", "tool_call_object"),
    ("llama-cpp-rwkv-world", "multi_turn"),
    ("microsoft-Phi-3.5-mini-instruct", "basic"),
]
SNIPPETS = ["macro_spread2", "call_block_args", "filter_block", "for_break_continue", "tojson_indent",
            "f_selectattr", "slices", "ws_lstrip_blocks", "namespace_init", "m_split", "lex_nested_braces",
            "f_sort", "loose_eq", "number_json"]

n = 0
for tpl, case in PAIRS:
    path = os.path.join(shared, "templates", tpl + ".jinja")
    if not os.path.exists(path):
        sys.exit(f"missing {path} (set EA_SHARED_DIR)")
    with open(path, "rb") as f, open(os.path.join(cases, case + ".json"), "rb") as c:
        data = f.read() + b"\0" + c.read()
    with open(os.path.join(out, f"{tpl}.bin"), "wb") as f:
        f.write(data)
    n += 1
with open(os.path.join(root, "tests", "data", "templates", "snippets.json"), encoding="utf-8") as f:
    snippets = {s["name"]: s for s in json.load(f)}
for name in SNIPPETS:
    s = snippets[name]
    with open(os.path.join(out, f"snippet-{name}.bin"), "wb") as f:
        f.write(s["template"].encode() + b"\0" + s["context"].encode())
    n += 1
print(f"{n} seeds in {out}")
