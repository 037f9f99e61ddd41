#!/usr/bin/env bash
# load_test.sh [SECONDS=300] [CONNECTIONS=64] [MODEL] - starts `edgeagent serve`
# on a free loopback port (tiny generated model unless MODEL is given), runs
# bench/load_test.mjs against it, stops it with SIGTERM and reports the exit
# status. Results and the exact command go in docs/BENCHMARKS.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
secs=${1:-300}; conns=${2:-64}; model=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -z "$model" ]; then
  model=$tmp/tiny.gguf
  "$build/edgeagent" gen-model --preset tiny --type F16 --seed 1 -o "$model" >/dev/null
fi
"$build/edgeagent" serve -m "$model" --port 0 ${SERVE_ARGS:-} >"$tmp/out" 2>"$tmp/err" &
pid=$!
for _ in $(seq 1 200); do grep -q "ready:" "$tmp/out" && break; sleep 0.05; done
port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/out")
head -2 "$tmp/out"
rc=0
node "$root/bench/load_test.mjs" "http://127.0.0.1:$port" "$pid" "$secs" "$conns" || rc=$?
kill -TERM "$pid"; wait "$pid"; src=$?
echo "load generator exit $rc, server exit $src"
grep -c " 200 " "$tmp/err" | sed 's/^/server log: 200 responses: /'
grep -c " 429 " "$tmp/err" | sed 's/^/server log: 429 responses: /' || true
exit $(( rc || src ))
