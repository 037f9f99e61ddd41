#!/usr/bin/env bash
# compare_llamacpp_server.sh - the same concurrent load on edgeagent's engine
# and on llama.cpp's llama-server (continuous batching, -np slots, the same
# total KV memory), on the same GGUF, printed side by side with ratios.
#
#   LLAMA_SERVER=/path/to/llama-server bash bench/compare_llamacpp_server.sh MODEL.gguf
#
# llama-server must be built outside this repository from a llama.cpp source
# tree (never commit it or a script that builds it). Without one this script
# says so and stops. Load: for each concurrency C in $LEVELS, C streaming
# requests of PROMPT random token ids, GEN tokens each (ignore_eos), at once.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
model=${1:?usage: compare_llamacpp_server.sh MODEL.gguf}
bin=${EA_BIN:-$root/build/edgeagent}
server=${LLAMA_SERVER:-}
threads=${THREADS:-2}
levels=${LEVELS:-1,4,16}
prompt=${PROMPT:-256}
gen=${GEN:-128}
kv_tokens=${KV_TOKENS:-8192}
if [ -z "$server" ] || [ ! -x "$server" ]; then
  echo "compare_llamacpp_server: set LLAMA_SERVER to a llama-server binary built outside the repo; nothing to compare against" >&2
  exit 2
fi
bytes_per_token=$("$bin" inspect --json "$model" | python3 -c '
import json,sys
d=json.load(sys.stdin); s=d["summary"]; hd=None
for kv in d["metadata"]:
    if kv["key"].endswith(".attention.key_length"): hd=kv["value"]
hd = hd or s["n_embd"]//s["n_head"]
print(2*s["n_layer"]*s["n_head_kv"]*hd*2)')
kv_mb=$(( (kv_tokens * bytes_per_token + (1<<20) - 1) >> 20 ))
echo "model $model, $threads threads, KV $kv_tokens tokens ($kv_mb MiB f16) for both, prompt $prompt, gen $gen"

echo "== edgeagent engine"
"$bin" bench -m "$model" -t "$threads" --concurrency "$levels" --prompt "$prompt" --gen "$gen" \
  --kv-mem "$kv_mb" --json > /tmp/ea_serving.json
python3 - <<PY
import json
d=json.load(open("/tmp/ea_serving.json"))
for l in d["levels"]:
    print(f"  C={l['concurrency']:3d}: {l['gen_tok_s']:8.1f} gen tok/s, TTFT p50 {l['ttft_p50_ms']:.0f} ms, ITL p50 {l['itl_p50_ms']:.1f} ms")
PY

echo "== llama-server (-np 16, continuous batching, -c $kv_tokens)"
port=$((20000 + RANDOM % 20000))
"$server" -m "$model" -t "$threads" -np 16 -cb -c "$kv_tokens" --port "$port" --host 127.0.0.1 >/tmp/llama-server.log 2>&1 &
spid=$!
trap 'kill $spid 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.5; done
node "$root/bench/serving_load.mjs" "http://127.0.0.1:$port" "$levels" "$prompt" "$gen" "$model" > /tmp/lcpp_serving.json
python3 - <<PY
import json
a=json.load(open("/tmp/ea_serving.json"))["levels"]; b=json.load(open("/tmp/lcpp_serving.json"))
print("| concurrency | edgeagent tok/s | llama-server tok/s | ratio | ea TTFT p50 | lcpp TTFT p50 |")
print("|---|---|---|---|---|---|")
for x in a:
    y=[z for z in b if z["concurrency"]==x["concurrency"]][0]
    print(f"| {x['concurrency']} | {x['gen_tok_s']:.1f} | {y['gen_tok_s']:.1f} | {x['gen_tok_s']/y['gen_tok_s']:.2f}x | {x['ttft_p50_ms']:.0f} ms | {y['ttft_p50_ms']:.0f} ms |")
PY
