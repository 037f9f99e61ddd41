#!/usr/bin/env bash
# ledger_throughput.sh [ROUNDS=5] [SECONDS=10] [CONCURRENCY=16] [MODEL] -
# issue 13's target: serving throughput with the ledger on against off.
# Each round starts `edgeagent serve` twice, in alternating order, once with
# --data-dir (a fresh ledger) and once with --no-ledger, and drives each with
# bench/stream_load.mjs (CONCURRENCY streamed chat clients for SECONDS,
# max_tokens 32 unless MAX_TOKENS is set: short requests, one ledger row per ~32 tokens, the
# ledger's worst case). Prints each run, then the medians and the ratio
# on/off of tokens/s and requests/s, the median of each round's on/off (its
# two runs are back to back), request latency p50/p99, and the server's CPU
# time per 1000 tokens (/proc, user + system). Default model: the tiny generated one
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
  local line ticks
  line=$(node "$root/bench/stream_load.mjs" "http://127.0.0.1:$port" "$conc" "$secs" "${MAX_TOKENS:-32}" "$ban")
  # the server's CPU time (user + system) during the run, before it stops
  ticks=$(awk '{ print $14 + $15 }' "/proc/$srv/stat")
  kill -TERM "$srv"; wait "$srv" || true; srv=
  echo "${line%\}},\"cpu_s\":$(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { print t / hz }')}"
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
for (const k of ["tok_s", "req_s", "p50_ms", "p99_ms"]) {
  const a = med(on.map((x) => x[k])), b = med(off.map((x) => x[k]));
  console.log(`median ${k}: ledger on ${a.toFixed(1)}, off ${b.toFixed(1)}, on/off ${(a / b * 100).toFixed(1)}%`);
}
// server CPU time per 1000 tokens: what the ledger costs in CPU,
// less sensitive to other load on the machine than tokens/s
const cpk = (a) => med(a.map((x) => x.cpu_s / x.completion_tokens * 1000));
console.log(`median server CPU per 1000 tokens: ledger on ${cpk(on).toFixed(3)} s, ` +
            `off ${cpk(off).toFixed(3)} s, off/on ${(cpk(off) / cpk(on) * 100).toFixed(1)}%`);
// on/off within each round (its two runs are back to back)
const pairs = on.map((x, i) => x.tok_s / off[i].tok_s * 100);
console.log(`median of tok_s on/off per round: ${med(pairs).toFixed(1)}% ` +
            `(rounds: ${pairs.map((p) => p.toFixed(0)).join(" ")})`);
const errs = [...on, ...off].reduce((s, x) => s + x.errors, 0);
console.log(`errors: ${errs}`);
if (errs) process.exit(1);
' "$tmp/on" "$tmp/off"
