#!/usr/bin/env bash
# compare_llamacpp.sh - edgeagent vs llama.cpp (prebuilt, from npm
# node-llama-cpp@3.21.1) on the same GGUF files and thread count, run
# alternately in one invocation; prints tokens/s of both and the ratio
# (medians over ROUNDS), plus this machine's memory read bandwidth.
#
#   NLC_DIR=/path/with/node_modules bash bench/compare_llamacpp.sh [ROUNDS]
#
# With LLAMA_BENCH=/path/to/llama-bench (llama.cpp built from source outside
# this repo, never committed) a third engine joins every round: llama.cpp's
# own llama-bench, which has no per-token JavaScript round trip.
#
# Models are gen-model presets written to $EA_BENCH_MODELS (default
# build/bench-models). Needs node-llama-cpp installed outside the repo:
#   mkdir -p ~/.cache/nlc && cd ~/.cache/nlc && npm i -E node-llama-cpp@3.21.1
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${EA_BIN:-$root/build/edgeagent}
rounds=${1:-3}
threads=${THREADS:-2}
pp=${PP:-128}
tg=${TG:-64}
nlc=${NLC_DIR:-$HOME/.cache/nlc}
models=${EA_BENCH_MODELS:-$root/build/bench-models}
if [ ! -d "$nlc/node_modules/node-llama-cpp" ]; then
  echo "compare_llamacpp: node-llama-cpp not found in $nlc/node_modules (set NLC_DIR); nothing to compare against" >&2
  exit 2
fi
[ -x "$bin" ] || { echo "compare_llamacpp: build edgeagent first ($bin)" >&2; exit 2; }
mkdir -p "$models"

rows=("smollm2-135m Q8_0" "smollm2-135m Q4_0" "tinyllama-1.1b Q4_0" "tinyllama-1.1b Q4_K_M" "tinyllama-1.1b Q8_0")
[ -n "${ROWS:-}" ] && IFS=';' read -r -a rows <<<"$ROWS"

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print 0; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
"$bin" bench --mem-bandwidth -t "$threads" || true
echo "threads $threads, pp$pp / tg$tg, $rounds alternating rounds, medians"
lb=${LLAMA_BENCH:-}
if [ -n "$lb" ] && [ ! -x "$lb" ]; then echo "compare_llamacpp: LLAMA_BENCH=$lb is not executable" >&2; exit 2; fi
printf '| %-22s | %-7s | %10s | %10s | %6s | %10s | %10s | %6s |' model type "ea pp" "nlc pp" ratio "ea tg" "nlc tg" ratio
[ -n "$lb" ] && printf ' %10s | %6s | %10s | %6s |' "lbench pp" ratio "lbench tg" ratio
printf '\n|%s|' "------------------------|---------|------------|------------|--------|------------|------------|--------"
[ -n "$lb" ] && printf '%s|' "------------|--------|------------|--------"
printf '\n'
ratio() { python3 -c "print($1/$2 if $2 else 0)"; }
for row in "${rows[@]}"; do
  set -- $row
  preset=$1 type=$2
  f="$models/$preset-$type.gguf"
  [ -f "$f" ] || "$bin" gen-model --preset "$preset" --type "$type" --seed 1 -o "$f"
  ea_pp=() ea_tg=() lc_pp=() lc_tg=() lb_pp=() lb_tg=()
  for ((r = 0; r < rounds; r++)); do
    j=$("$bin" bench -m "$f" -p "$pp" -n "$tg" -t "$threads" -r 1 --json)
    ea_pp+=("$(echo "$j" | python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["tokens_per_s"])')")
    ea_tg+=("$(echo "$j" | python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][1]["tokens_per_s"])')")
    j=$(NODE_PATH="$nlc/node_modules" node "$root/bench/llamacpp_bench.mjs" "$f" "$pp" "$tg" "$threads")
    lc_pp+=("$(echo "$j" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pp"])')")
    lc_tg+=("$(echo "$j" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tg"])')")
    if [ -n "$lb" ]; then
      j=$("$lb" -m "$f" -p "$pp" -n "$tg" -t "$threads" -r 1 -o json 2>/dev/null)
      lb_pp+=("$(echo "$j" | python3 -c 'import json,sys; print([x["avg_ts"] for x in json.load(sys.stdin) if x["n_prompt"]>0][0])')")
      lb_tg+=("$(echo "$j" | python3 -c 'import json,sys; print([x["avg_ts"] for x in json.load(sys.stdin) if x["n_gen"]>0][0])')")
    fi
  done
  a=$(printf '%s\n' "${ea_pp[@]}" | median) b=$(printf '%s\n' "${lc_pp[@]}" | median)
  c=$(printf '%s\n' "${ea_tg[@]}" | median) d=$(printf '%s\n' "${lc_tg[@]}" | median)
  printf '| %-22s | %-7s | %10.1f | %10.1f | %5.2fx | %10.1f | %10.1f | %5.2fx |' "$preset" "$type" \
    "$a" "$b" "$(ratio "$a" "$b")" "$c" "$d" "$(ratio "$c" "$d")"
  if [ -n "$lb" ]; then
    e=$(printf '%s\n' "${lb_pp[@]}" | median) g=$(printf '%s\n' "${lb_tg[@]}" | median)
    printf ' %10.1f | %5.2fx | %10.1f | %5.2fx |' "$e" "$(ratio "$a" "$e")" "$g" "$(ratio "$c" "$g")"
  fi
  printf '\n'
done
