#!/usr/bin/env bash
# fuzz-smoke.sh BUILD_DIR SECONDS - runs each libFuzzer target in
# BUILD_DIR/fuzz for SECONDS from fuzz/corpus/<target> (read-only seeds; new
# inputs go to a scratch dir). Fails on any crash, leak or sanitizer report.
# FUZZ_SECONDS_<target> (e.g. FUZZ_SECONDS_fuzz_gguf=60) overrides SECONDS.
set -euo pipefail
build=${1:?build dir}
secs=${2:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
status=0
for bin in "$build"/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  seeds="$root/fuzz/corpus/${name#fuzz_}"
  work=$(mktemp -d)
  override="FUZZ_SECONDS_$name"
  t=${!override:-$secs}
  echo "fuzz-smoke: $name for ${t}s"
  if ! "$bin" -artifact_prefix="$build/fuzz/$name-" -max_total_time="$t" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       "$work" "$seeds" >"$work.log" 2>&1; then
    tail -n 60 "$work.log"
    status=1
  else
    grep -E '^stat::number_of_executed_units' "$work.log" || true
  fi
  rm -rf "$work" "$work.log"
done
exit $status
