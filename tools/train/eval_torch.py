#!/usr/bin/env python3
"""eval_torch.py - greedy answers of a checkpoint in torch on a split (val
during development; tests/test_home_model.c measures the committed GGUF on
heldout through the server), scored as that test scores them. With --dump,
writes the answers one a line, to compare with edgeagent's for the same
examples (an exporter check).

Usage: eval_torch.py CHECKPOINT.pt SPLIT.jsonl TOOLS.json [--n N] [--dump FILE]
"""
import argparse
import json
import re
import sys

import torch

import render
from bpe import Tokenizer
from model import Model

CALL_RE = re.compile(re.escape(render.CALL_OPEN) + "(.*?)" + re.escape(render.CALL_CLOSE), re.S)


def greedy(model, tok, ids, max_new, stop):
    out = []
    with torch.no_grad():
        for _ in range(max_new):
            x = torch.tensor([ids + out])
            nxt = int(model(x)[0, -1].argmax())
            if nxt in stop:
                break
            out.append(nxt)
    return out


def same(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def score(model, tok, tools, rows, quiet=False, answers=False):
    """Greedy answers to rows, scored as tests/eval_home_model.c scores them:
    {"call"|"handoff"|"reply": [right, of], "false_handoff": n, "in": n}
    (and the answers, with answers=True)."""
    stop = {tok.special_id(render.IM_END), tok.special_id(render.ENDOFTEXT)}
    st = {"call": [0, 0], "handoff": [0, 0], "reply": [0, 0], "false_handoff": 0, "in": 0}
    dump = []
    for ex in rows:
        ids = tok.encode(render.render(ex["messages"], tools))
        text = tok.decode(greedy(model, tok, ids, 160, stop))
        dump.append(text)
        handoff = text.startswith(render.HANDOFF)
        k = ex["kind"]
        if k == "call":
            got = []
            for m in CALL_RE.findall(text):
                try:
                    got.append(json.loads(m))
                except ValueError:
                    got.append(None)
            want = ex["expected"]["calls"]
            ok = len(got) == len(want) and all(
                g and g.get("name") == w["name"] and same(g.get("arguments"), w["arguments"])
                for g, w in zip(got, want))
        elif k == "handoff":
            ok = handoff
        else:
            ok = text == ex["expected"]["content"]
        st[k][0] += ok
        st[k][1] += 1
        if k != "handoff":
            st["in"] += 1
            st["false_handoff"] += handoff
        if not ok and not quiet and st[k][1] - st[k][0] <= 4:
            print("miss %s: %s\n  want %s\n  got  %s" % (k, ex["messages"][-1]["content"],
                                                          json.dumps(ex["expected"]), text))
    return (st, dump) if answers else st


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ckpt")
    ap.add_argument("split")
    ap.add_argument("tools")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--dump")
    a = ap.parse_args()
    torch.set_num_threads(1)
    ck = torch.load(a.ckpt)
    model = Model(ck["config"])
    model.load_state_dict(ck["model"])
    model.eval()
    tok = Tokenizer([tuple(m) for m in ck["merges"]])
    tools = json.load(open(a.tools))
    rows = [json.loads(l) for l in open(a.split)][:a.n]
    st, dump = score(model, tok, tools, rows, answers=True)
    for k in ("call", "handoff", "reply"):
        print("%-8s %d/%d = %.1f%%" % (k, st[k][0], st[k][1], 100.0 * st[k][0] / max(1, st[k][1])))
    print("false handoffs %d/%d" % (st["false_handoff"], st["in"]))
    if a.dump:
        with open(a.dump, "w") as f:
            for t in dump:
                f.write(json.dumps(t) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
