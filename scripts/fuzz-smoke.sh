#!/usr/bin/env bash
# fuzz-smoke.sh BUILD_DIR SECONDS - runs each libFuzzer target in
# BUILD_DIR/fuzz for SECONDS from fuzz/corpus/<target> (read-only seeds; new
# inputs go to a scratch dir). Fails on any crash, leak or sanitizer report.
# FUZZ_SECONDS_<target> (e.g. FUZZ_SECONDS_fuzz_gguf=60) overrides SECONDS.
# FUZZ_JOBS targets run at a time (default: the number of cores; each
# target is one single-threaded process).
set -euo pipefail
build=${1:?build dir}
secs=${2:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=${FUZZ_JOBS:-$(nproc)}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# one target: exit status 0 when clean; its log and figures under $out
run_one() {
  local bin=$1 name seeds work override t
  name=$(basename "$bin")
  seeds="$root/fuzz/corpus/${name#fuzz_}"
  work=$(mktemp -d)
  override="FUZZ_SECONDS_$name"
  t=${!override:-$secs}
  echo "fuzz-smoke: $name for ${t}s"
  if "$bin" -artifact_prefix="$build/fuzz/$name-" -max_total_time="$t" -timeout=10 -rss_limit_mb=2048 \
       -print_final_stats=1 "$work" "$seeds" >"$out/$name.log" 2>&1; then
    echo "$name: $(grep -E '^stat::number_of_executed_units' "$out/$name.log" || true)" >"$out/$name.ok"
  fi
  rm -rf "$work"
}
export -f run_one
export build secs root out

targets=()
for bin in "$build"/fuzz/fuzz_*; do
  [ -x "$bin" ] && targets+=("$bin")
done
# the long targets first, so that the last ones to start are short
printf '%s\n' "${targets[@]}" | while read -r b; do
  n=$(basename "$b"); o="FUZZ_SECONDS_$n"; echo "${!o:-$secs} $b"
done | sort -rn -k1,1 | cut -d' ' -f2- | xargs -P "$jobs" -I{} bash -c 'run_one "$1"' _ {}

status=0
for bin in "${targets[@]}"; do
  name=$(basename "$bin")
  if [ -f "$out/$name.ok" ]; then
    cat "$out/$name.ok"
  else
    echo "fuzz-smoke: $name FAILED"
    tail -n 60 "$out/$name.log"
    status=1
  fi
done
exit $status
