"""render.py - the chat format of the home model: the Jinja chat template
written into the GGUF, and the same rendering in Python for training.

The template renders `tools` as a short system turn that says tools are
available, without their names or schemas: the model knows its fixed
toolset, and a ten-tool listing would be a third of every training
sequence for a model trained on one shared core. Assistant tool calls are
rendered in the hermes syntax that
edgeagent's tool-call parser reads (ea_tool_syntax_detect finds
"<tool_call>" in the source):
  <tool_call>\n{"name":"N","arguments":{...}}\n</tool_call>   (calls joined by \n)
Tool results are turns of role `tool`. The assistant's answer after the
generation prompt is one of: tool calls, the marker <handoff>, or text;
it ends with <|im_end|>.

Python 3 standard library only.
"""
import json

IM_START, IM_END = "<|im_start|>", "<|im_end|>"
CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
HANDOFF = "<handoff>"
ENDOFTEXT = "<|endoftext|>"
# (text, GGUF token type): 3 control (never printed), 4 user-defined (printed)
SPECIALS = [(ENDOFTEXT, 3), (IM_START, 3), (IM_END, 3), (CALL_OPEN, 4), (CALL_CLOSE, 4), (HANDOFF, 4)]

# One line of Jinja; "\n" in it are newlines of the output.
CHAT_TEMPLATE = (
    "{% if tools %}<|im_start|>system\ntools<|im_end|>\n{% endif %}"
    "{% for m in messages %}"
    "{% if m.role == 'assistant' %}<|im_start|>assistant\n"
    "{% if m.content %}{{ m.content }}{% endif %}"
    "{% if m.tool_calls %}{% for tc in m.tool_calls %}{% if loop.index0 > 0 %}{{ '\\n' }}{% endif %}"
    "<tool_call>\n{\"name\":\"{{ tc.function.name }}\",\"arguments\":"
    "{% if tc.function.arguments is string %}{{ tc.function.arguments }}"
    "{% else %}{{ tc.function.arguments | tojson(separators=(',', ':')) }}{% endif %}}\n</tool_call>"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% else %}<|im_start|>{{ m.role }}\n{{ m.content if m.content else '' }}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def args_json(args):
    return json.dumps(args, separators=(",", ":"))


# "hermes": the framing edgeagent's hermes grammar enforces under
# tool_choice auto (src/chat/toolcall.c: "<tool_call>\n", "\n</tool_call>",
# calls separated by "\n"). "compact" (no newlines) is what the first
# training stages used (train.py --call-format; tools/train/README.md).
CALL_FORMAT = "hermes"


def call_text(name, args):
    body = '{"name":"%s","arguments":%s}' % (name, args_json(args))
    if CALL_FORMAT == "compact":
        return CALL_OPEN + body + CALL_CLOSE
    return CALL_OPEN + "\n" + body + "\n" + CALL_CLOSE


def calls_text(calls):
    """[(name, args)] as the assistant writes them."""
    sep = "" if CALL_FORMAT == "compact" else "\n"
    return sep.join(call_text(n, a) for n, a in calls)


def render(messages, tools, add_generation_prompt=True):
    """What CHAT_TEMPLATE renders (arguments given as objects or JSON text)."""
    out = []
    if tools:
        out.append(IM_START + "system\ntools" + IM_END + "\n")
    for m in messages:
        if m["role"] == "assistant":
            s = IM_START + "assistant\n" + (m.get("content") or "")
            calls = []
            for tc in m.get("tool_calls") or []:
                a = tc["function"]["arguments"]
                if isinstance(a, str):
                    a = json.loads(a)  # the server parses argument text into a value
                calls.append((tc["function"]["name"], a))
            s += calls_text(calls)
            out.append(s + IM_END + "\n")
        else:
            out.append(IM_START + m["role"] + "\n" + (m.get("content") or "") + IM_END + "\n")
    if add_generation_prompt:
        out.append(IM_START + "assistant\n")
    return "".join(out)


def answer(ex):
    """The assistant answer the model learns for an example (without <|im_end|>)."""
    e = ex["expected"]
    if ex["kind"] == "call":
        return calls_text([(c["name"], c["arguments"]) for c in e["calls"]])
    if ex["kind"] == "handoff":
        return HANDOFF
    return e["content"]
