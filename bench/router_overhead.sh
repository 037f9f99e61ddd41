#!/usr/bin/env bash
# router_overhead.sh [REQUESTS] [ROUNDS] - issue 11's router-path target:
# a canned OpenAI-compatible upstream (bench/bench_stub_upstream; UPSTREAM=node:
# the test suite's tests/node/openai_stub.mjs) as the upstream,
# `edgeagent serve --config` routing every request to it (cloud_only), and
# bench/bench_router_path sending REQUESTS non-streamed requests at
# concurrency 10 to the stub directly and through edgeagent, alternating,
# ROUNDS times. The figure is the added latency (routed minus direct): the
# stub's own time is in both. DIRECT_STREAM=1 streams the direct requests
# as edgeagent streams from its upstream (the router's own work alone). BUILD (default ./build) holds the binaries.
set -euo pipefail
n=${1:-500}; rounds=${2:-7}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
tmp=$(mktemp -d)
stub=; srv=; trap 'kill $stub $srv 2>/dev/null || true; rm -rf "$tmp"' EXIT
# UPSTREAM=node: the test suite's stub; default: bench_stub_upstream (C,
# libmicrohttpd, canned replies: its own cost small and steady)
if [ "${UPSTREAM:-c}" = node ]; then
  node "$root/tests/node/openai_stub.mjs" >"$tmp/stub" 2>"$tmp/stub.log" &
else
  "$build/bench/bench_stub_upstream" 0 1 >"$tmp/stub" 2>"$tmp/stub.log" &
fi
stub=$!
for _ in $(seq 100); do grep -q PORT "$tmp/stub" && break; sleep 0.1; done
sport=$(sed -n 's/^PORT \([0-9]*\).*/\1/p' "$tmp/stub" | head -1)
cat >"$tmp/c.yaml" <<YAML
upstreams:
  - {name: local, kind: local}
  - {name: cloud, kind: openai, base_url: 'http://127.0.0.1:$sport/v1', model: stub-model}
routing:
  defaults: {mode: cloud_only}
YAML
"$build/edgeagent" gen-model --preset tiny --type f16 --seed 1 -o "$tmp/tiny.gguf" >/dev/null
"$build/edgeagent" serve -m "$tmp/tiny.gguf" --port 0 --config "$tmp/c.yaml" >"$tmp/out" 2>"$tmp/log" &
srv=$!
for _ in $(seq 100); do grep -q ready "$tmp/out" && break; sleep 0.1; done
port=$(sed -n 's/.*http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/out" | head -1)
echo "stub on $sport, edgeagent on $port"
"$build/bench/bench_router_path" "http://127.0.0.1:$sport/v1/chat/completions" \
  "http://127.0.0.1:$port/v1/chat/completions" --requests "$n" --rounds "$rounds" --model auto \
  --direct-stream "${DIRECT_STREAM:-0}" --concurrency "${CONC:-10}"
