#!/usr/bin/env bash
# pull_vs_curl.sh [BUILD_DIR] [ROUNDS] - download throughput of `edgeagent
# pull` against curl on the same loopback transfer: a ~1 GB GGUF
# (gen-model qwen2.5-0.5b F16) served by tests/node/hf_mock.mjs, fetched
# through the Hub's resolve URL (302 then the bytes) ROUNDS times each,
# alternating. Three figures per round:
#   curl           curl -sSL -o FILE (no verification)
#   curl+sha256sum curl, then sha256sum of the file (what pull verifies)
#   pull           edgeagent pull --quiet into a fresh store: file list,
#                  download with the sha256 computed as bytes arrive, fsync,
#                  model check, registration
# Prints MB/s per round and the medians. Figures, never assertions.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
rounds=${2:-3}
ea="$build/edgeagent"
work="$build/bench-pull"
repo="$work/repos/org/big-GGUF"
file="$repo/big-F16.gguf"
mkdir -p "$repo"
if [ ! -f "$file" ]; then
  echo "generating $file (qwen2.5-0.5b shape, F16)..." >&2
  "$ea" gen-model --preset qwen2.5-0.5b --type F16 --seed 1 -o "$file.tmp"
  mv "$file.tmp" "$file"
fi
size=$(stat -c %s "$file")
rm -f "$work/mode.json" "$work/log.jsonl"
coproc SERVER { exec node "$root/tests/node/hf_mock.mjs" "$work"; }
trap 'kill $SERVER_PID 2>/dev/null || true; rm -rf "$work/out" "$work/store"' EXIT
read -r _ port <&"${SERVER[0]}"
ep="http://127.0.0.1:$port"
url="$ep/org/big-GGUF/resolve/main/big-F16.gguf"
# the mock hashes the file for the file list once; not part of any timing
curl -sS "$ep/api/models/org/big-GGUF?blobs=true" >/dev/null

now() { date +%s.%N; }
mbps() { awk -v s="$size" -v t="$1" 'BEGIN { printf "%.0f", s / t / 1e6 }'; }
declare -a c1 c2 p1
for r in $(seq 1 "$rounds"); do
  rm -rf "$work/out" "$work/store"; mkdir -p "$work/out"; sync
  t0=$(now); curl -sSL -o "$work/out/f.gguf" "$url"; t1=$(now)
  a=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  rm -f "$work/out/f.gguf"; sync
  t0=$(now); curl -sSL -o "$work/out/f.gguf" "$url"; sha256sum "$work/out/f.gguf" >/dev/null; t1=$(now)
  b=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  rm -rf "$work/out"; sync
  t0=$(now); HF_ENDPOINT="$ep" "$ea" pull hf.co/org/big-GGUF:F16 --models-dir "$work/store" --quiet; t1=$(now)
  c=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  rm -rf "$work/store"; sync
  c1+=("$(mbps "$a")"); c2+=("$(mbps "$b")"); p1+=("$(mbps "$c")")
  echo "round $r: curl $(mbps "$a") MB/s, curl+sha256sum $(mbps "$b") MB/s, edgeagent pull $(mbps "$c") MB/s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "median over $rounds rounds, $size bytes: curl $(median "${c1[@]}") MB/s," \
     "curl+sha256sum $(median "${c2[@]}") MB/s, edgeagent pull $(median "${p1[@]}") MB/s"
