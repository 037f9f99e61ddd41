#!/usr/bin/env python3
"""compare_serve.py - an exporter check: the chat template as `edgeagent
serve` renders it (POST /apply-template) against render.py, and the answers it gives
for a split (temperature 0, the tools file passed as `tools`), written back
as the model's text (calls in the hermes syntax), compared one by one with
eval_torch.py's --dump of the same checkpoint.

Usage: compare_serve.py EDGEAGENT MODEL.gguf SPLIT.jsonl TOOLS.json TORCH_DUMP [--n N]
"""
import argparse
import json
import subprocess
import sys
import time
import urllib.request

import render


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("edgeagent")
    ap.add_argument("model")
    ap.add_argument("split")
    ap.add_argument("tools")
    ap.add_argument("dump")
    ap.add_argument("--port", type=int, default=18931)
    a = ap.parse_args()
    tools = json.load(open(a.tools))
    want = [json.loads(l) for l in open(a.dump)]
    rows = [json.loads(l) for l in open(a.split)][:len(want)]
    srv = subprocess.Popen([a.edgeagent, "serve", "-m", a.model, "--host", "127.0.0.1", "--port",
                            str(a.port), "-t", "1", "--model-id", "edgeagent-home"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = "http://127.0.0.1:%d" % a.port
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "/health", timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        diff = 0
        # the chat template as edgeagent renders it (/apply-template has no tools)
        for ex in rows:
            body = json.dumps({"model": "edgeagent-home", "messages": ex["messages"]}).encode()
            req = urllib.request.Request(url + "/apply-template", body, {"Content-Type": "application/json"})
            got = json.load(urllib.request.urlopen(req, timeout=60))["prompt"]
            if got != render.render(ex["messages"], None):
                diff += 1
                print("template differs:\n  python    %r\n  edgeagent %r" % (render.render(ex["messages"], None), got))
        for ex, w in zip(rows, want):
            body = json.dumps({"model": "edgeagent-home", "messages": ex["messages"], "tools": tools,
                               "temperature": 0, "max_tokens": 160}).encode()
            req = urllib.request.Request(url + "/v1/chat/completions", body,
                                         {"Content-Type": "application/json"})
            msg = json.load(urllib.request.urlopen(req, timeout=60))["choices"][0]["message"]
            got = msg.get("content") or ""
            got += render.calls_text([(tc["function"]["name"], json.loads(tc["function"]["arguments"]))
                                      for tc in msg.get("tool_calls") or []])
            if got != w:
                diff += 1
                print("differs: %r\n  torch     %r\n  edgeagent %r" % (ex["messages"][-1]["content"], w, got))
        print("compare_serve: %d of %d answers differ" % (diff, len(rows)))
        return 1 if diff else 0
    finally:
        srv.terminate()
        srv.wait()


if __name__ == "__main__":
    sys.exit(main())
