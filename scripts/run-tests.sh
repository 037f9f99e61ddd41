#!/usr/bin/env bash
# run-tests.sh BUILD_DIR [ctest args] - runs the ctest suite and prints the
# ctest summary line last, whatever happened before it.
set -uo pipefail
build=${1:?build dir}
shift
log=$(mktemp)
ctest --test-dir "$build" --output-on-failure -j "${EA_TEST_JOBS:-2}" "$@" 2>&1 | tee "$log" |
  grep -v -E '^(Total Test time|[0-9]+% tests passed)'
rc=${PIPESTATUS[0]}
summary=$(grep -E '^[0-9]+% tests passed' "$log" | tail -1)
rm -f "$log"
[ -n "$summary" ] || summary="ctest produced no summary (exit $rc)"
echo "$summary"
exit "$rc"
