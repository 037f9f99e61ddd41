#!/usr/bin/env bash
# membw_vs_decode.sh - does decode run at the memory's speed? Runs, in
# alternation, `bench --mem-bandwidth` (the decode-pattern probe and the
# naive stream) and single-stream decode of MODEL (tgN from an empty
# cache), and prints the medians over ROUNDS: GB/s of both probes, decode
# tokens/s, the weight bytes one token reads (the packed weights, or the
# file's weights when nothing is packed: an upper bound, the token
# embedding is read one row at a time) and decode's GB/s as a share of each
# probe.
#
#   bash bench/membw_vs_decode.sh build/bench-models/tinyllama-1.1b-Q4_K_M.gguf [ROUNDS]
#
# THREADS (default 2) and TG (default 128) pass through; EA_BIN picks the
# binary. The model is a gen-model preset, e.g.
#   build/edgeagent gen-model --preset tinyllama-1.1b --type Q4_K_M -o build/bench-models/tinyllama-1.1b-Q4_K_M.gguf
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${EA_BIN:-$root/build/edgeagent}
model=${1:?usage: membw_vs_decode.sh MODEL.gguf [ROUNDS]}
rounds=${2:-5}
threads=${THREADS:-2}
tg=${TG:-128}
[ -x "$bin" ] || { echo "membw_vs_decode: build edgeagent first ($bin)" >&2; exit 2; }

field() { grep -o "\"$1\":[0-9.]*" | head -1 | cut -d: -f2; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print 0; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

probe=() naive=() tps=()
bytes=0
for r in $(seq "$rounds"); do
  j=$("$bin" bench --mem-bandwidth -t "$threads" --json)
  probe+=("$(field read_gb_s <<<"$j")")
  naive+=("$(field naive_read_gb_s <<<"$j")")
  j=$("$bin" bench -m "$model" -p 0 -n "$tg" -r 3 -t "$threads" --json)
  tps+=("$(field tokens_per_s <<<"$j")")
  packed=$(field packed_bytes <<<"$j")
  size=$(field size_bytes <<<"$j")
  bytes=$([ "$packed" -gt 0 ] && echo "$packed" || echo "$size")
  echo "round $r: probe ${probe[-1]} GB/s, naive ${naive[-1]} GB/s, tg$tg ${tps[-1]} tok/s (load $(cut -d' ' -f1 /proc/loadavg))"
done
p=$(printf '%s\n' "${probe[@]}" | median)
n=$(printf '%s\n' "${naive[@]}" | median)
t=$(printf '%s\n' "${tps[@]}" | median)
awk -v p="$p" -v n="$n" -v t="$t" -v b="$bytes" -v m="$(basename "$model")" -v r="$rounds" -v th="$threads" 'BEGIN {
  d = t * b / 1e9
  printf "%s, %d threads, medians of %d rounds:\n", m, th, r
  printf "  probe (decode pattern) %.1f GB/s, naive stream %.1f GB/s\n", p, n
  printf "  decode %.1f tok/s x %.3f GB per token = %.1f GB/s: %.0f%% of the probe, %.0f%% of the naive stream\n", t, b / 1e9, d, 100 * d / p, 100 * d / n
}'
