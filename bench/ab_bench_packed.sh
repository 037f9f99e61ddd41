#!/usr/bin/env bash
# ab_bench_packed.sh - compares two builds of bench/bench_packed (e.g. before
# and after a kernel change) on this noisy machine: runs them alternately,
# ROUNDS times, each `bench_packed -t THREADS -r 3 -c NC TYPE`, and prints
# the median GMAC/s of each with all samples.
#   bench/ab_bench_packed.sh BIN_A BIN_B [NC=16] [TYPE=Q4_0] [ROUNDS=5] [THREADS=2]
# Build the "before" binary from an older tree, e.g.
#   git worktree add /tmp/before <commit> && cmake -S /tmp/before -B /tmp/before/build \
#     && cmake --build /tmp/before/build --target bench_packed
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,9p' "$0"; exit 2; }
a=$1 b=$2 nc=${3:-16} ty=${4:-Q4_0} rounds=${5:-5} th=${6:-2}
ra=() rb=()
for _ in $(seq 1 "$rounds"); do
  ra+=("$("$a" -t "$th" -r 3 -c "$nc" "$ty" | awk '/^  nc/ {print $5}')")
  rb+=("$("$b" -t "$th" -r 3 -c "$nc" "$ty" | awk '/^  nc/ {print $5}')")
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
echo "nc=$nc $ty threads=$th: A $(median "${ra[@]}")  B $(median "${rb[@]}") GMAC/s (medians of $rounds)"
echo "  A: ${ra[*]}"
echo "  B: ${rb[*]}"
