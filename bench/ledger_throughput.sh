#!/usr/bin/env bash
# ledger_throughput.sh [ROUNDS=5] [SECONDS=10] [CONCURRENCY=16] [MODEL] -
# issue 13's target: serving throughput with the ledger on against off.
# Each round starts `edgeagent serve` twice, in alternating order, once with
# --data-dir (a fresh ledger) and once with --no-ledger, and drives each with
# bench/stream_load.mjs (CONCURRENCY streamed chat clients for SECONDS,
# max_tokens 32 unless MAX_TOKENS is set: short requests, one ledger row per ~32 tokens, the
# ledger's worst case). Prints each run, then the medians and the ratio
# on/off of tokens/s and requests/s. Default model: the tiny generated one
# (the server's own costs weigh most; its end-of-text token is banned, BAN
# overrides). BUILD (default ./build) holds the binary.
set -euo pipefail
rounds=${1:-5}; secs=${2:-10}; conc=${3:-16}; model=${4:-}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
tmp=$(mktemp -d)
srv=; trap 'kill $srv 2>/dev/null || true; rm -rf "$tmp"' EXIT
ban=${BAN:-}
if [ -z "$model" ]; then
  ban=${BAN:-2} # the generated model's end-of-text: every request runs to max_tokens
  model=$tmp/tiny.gguf
  "$build/edgeagent" gen-model --preset tiny --type F16 --seed 1 -o "$model" >/dev/null
fi
run() { # run on|off -> prints one JSON line
  local mode=$1 args
  if [ "$mode" = on ]; then rm -rf "$tmp/data"; args=(--data-dir "$tmp/data"); else args=(--no-ledger); fi
  rm -f "$tmp/out" # not the last run's port
  "$build/edgeagent" serve -m "$model" --port 0 --parallel "$conc" "${args[@]}" >"$tmp/out" 2>"$tmp/err" &
  srv=$!
  for _ in $(seq 200); do grep -qs "ready:" "$tmp/out" && break; sleep 0.05; done
  local port
  port=$(sed -n 's|.*http://127.0.0.1:\([0-9]*\).*|\1|p' "$tmp/out" | head -1)
  node "$root/bench/stream_load.mjs" "http://127.0.0.1:$port" "$conc" "$secs" "${MAX_TOKENS:-32}" "$ban"
  kill -TERM "$srv"; wait "$srv" || true; srv=
}
: >"$tmp/on"; : >"$tmp/off"
for r in $(seq "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then order="on off"; else order="off on"; fi
  for m in $order; do
    line=$(run "$m")
    echo "round $r ledger $m: $line"
    echo "$line" >>"$tmp/$m"
  done
done
node -e '
const fs = require("fs");
const read = (f) => fs.readFileSync(f, "utf8").trim().split("\n").map((l) => JSON.parse(l));
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor((s.length - 1) / 2)]; };
const on = read(process.argv[1]), off = read(process.argv[2]);
for (const k of ["tok_s", "req_s"]) {
  const a = med(on.map((x) => x[k])), b = med(off.map((x) => x[k]));
  console.log(`median ${k}: ledger on ${a.toFixed(1)}, off ${b.toFixed(1)}, on/off ${(a / b * 100).toFixed(1)}%`);
}
const errs = [...on, ...off].reduce((s, x) => s + x.errors, 0);
console.log(`errors: ${errs}`);
if (errs) process.exit(1);
' "$tmp/on" "$tmp/off"
