#!/usr/bin/env python3
"""check_tokenizer.py - checks that edgeagent tokenizes the training text
exactly as bpe.py does: writes a vocabulary-only GGUF, runs
`edgeagent tokenize --ids --parse-special` on N rendered examples of each
split (heldout included: its words are new to the merges) and compares the
ids. Exit status 1 on the first difference.

Usage: check_tokenizer.py EDGEAGENT DATA_DIR TOOLS.json MERGES.json [--n N]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import export_gguf
import gguf_writer as gw
import render
from bpe import Tokenizer


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("edgeagent")
    ap.add_argument("data_dir")
    ap.add_argument("tools")
    ap.add_argument("merges")
    ap.add_argument("--n", type=int, default=200)
    a = ap.parse_args()
    tok = Tokenizer([tuple(m) for m in json.load(open(a.merges))])
    tools = json.load(open(a.tools))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "vocab.gguf")
        w = gw.Writer()
        w.add_str("general.architecture", "llama")
        export_gguf.add_vocab(w, tok)
        w.write(path)
        n = 0
        for split in ("train", "val", "heldout"):
            with open(os.path.join(a.data_dir, split + ".jsonl")) as f:
                rows = [json.loads(l) for _, l in zip(range(a.n), f)]
            for ex in rows:
                text = render.render(ex["messages"], tools) + render.answer(ex) + render.IM_END + "\n"
                want = tok.encode(text)
                got = subprocess.run([a.edgeagent, "tokenize", "-m", path, "--ids", "--parse-special",
                                      "--no-bos", "--file", "-"], input=text.encode(),
                                     capture_output=True, check=True).stdout.decode()
                got = json.loads(got)
                if got != want:
                    print("check_tokenizer: %s differs on %r\n  python    %s\n  edgeagent %s"
                          % (split, text, want, got))
                    return 1
                n += 1
    print("check_tokenizer: %d texts tokenized identically" % n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
