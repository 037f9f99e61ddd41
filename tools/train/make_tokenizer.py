#!/usr/bin/env python3
"""make_tokenizer.py - trains the BPE merges (bpe.py) on the rendered train
split and writes them as JSON ([[a, b], ...]).

Usage: make_tokenizer.py DATA_DIR TOOLS.json OUT.json [--vocab N] [--n EXAMPLES]
                         [--call-format hermes|compact]
"""
import argparse
import json

import bpe
import render


def texts(path, tools, n):
    out = []
    with open(path) as f:
        for i, line in enumerate(f):
            if i >= n:
                break
            ex = json.loads(line)
            out.append(render.render(ex["messages"], tools) + render.answer(ex) + render.IM_END + "\n")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data_dir")
    ap.add_argument("tools")
    ap.add_argument("out")
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--n", type=int, default=30000)
    ap.add_argument("--call-format", choices=["hermes", "compact"], default="hermes",
                    help="tool-call framing of the texts (render.CALL_FORMAT)")
    a = ap.parse_args()
    render.CALL_FORMAT = a.call_format
    tools = json.load(open(a.tools))
    merges = bpe.train(texts(a.data_dir + "/train.jsonl", tools, a.n), a.vocab)
    with open(a.out, "w") as f:
        json.dump([list(m) for m in merges], f)
    print("make_tokenizer: %d merges, vocabulary %d" % (len(merges), 256 + len(merges) + len(render.SPECIALS)))


if __name__ == "__main__":
    main()
