#!/usr/bin/env bash
# burst_load.sh [ROUNDS] [CONNS] [MODEL] - issue 17's acceptance load: a fresh
# `edgeagent serve` (default options) on a free loopback port, another process
# keeping both cores busy, and ROUNDS bursts of CONNS simultaneous chat
# requests (bench/bench_burst.c); every request must be answered 200 or 429.
# BUILD (default ./build) holds the binary and bench/bench_burst.
set -euo pipefail
rounds=${1:-10}; conns=${2:-300}; model=${3:-}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
tmp=$(mktemp -d)
hog=; trap 'kill $hog $srv 2>/dev/null || true; rm -rf "$tmp"' EXIT
if [ -z "$model" ]; then
  model=$tmp/tiny.gguf
  "$build/edgeagent" gen-model --preset tiny --type f16 --seed 1 -o "$model" >/dev/null
fi
"$build/edgeagent" serve -m "$model" --port 0 >"$tmp/out" 2>"$tmp/log" &
srv=$!
for _ in $(seq 100); do grep -q ready "$tmp/out" && break; sleep 0.1; done
port=$(sed -n 's/.*http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/out" | head -1)
# the CPU kept busy by another process (HOGS of them, default 1; bounded by timeout)
hog=
for _ in $(seq "${HOGS:-1}"); do timeout 3600 sh -c 'while :; do :; done' & hog="$hog $!"; done
echo "server port $port, $rounds bursts of $conns, ${HOGS:-1} busy-loop process(es)"
rc=0
"$build/bench/bench_burst" "$port" --rounds "$rounds" --conns "$conns" || rc=$?
kill $hog 2>/dev/null || true
kill -TERM $srv; src=0; wait $srv || src=$?
echo "server exit: $src ($(grep -c ' 200 ' "$tmp/log") requests logged 200, $(grep -c ' 429 ' "$tmp/log") logged 429)"
[ $src = 0 ] || rc=1
exit $rc
