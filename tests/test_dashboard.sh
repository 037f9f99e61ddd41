#!/usr/bin/env bash
# test_dashboard.sh (EA_TEST_NEEDS_NET) - the live dashboard at /dashboard in
# headless Chromium (Debian `chromium` + npm playwright-core): starts the
# OpenAI stub (tests/node/openai_stub.mjs --faults-in-messages) as the cloud,
# `edgeagent serve` with a generated tiny model as the local upstream, that
# cloud, a redact task and a ledger in a temporary --data-dir, and a second
# `edgeagent serve --no-ledger --api-key`; runs tests/node/dashboard_browser.mjs (the
# charts change after edge, cloud, redacted and fallback requests; no
# console errors; no request outside the server; the page without a ledger
# asks for the API key, then says the ledger is off) and keeps the screenshots in BUILD/test-tmp/dashboard-*.png.
# Skips (77) when chromium, node or playwright-core is missing.
set -uo pipefail
build=${EA_BUILD_DIR:-build}
src=${EA_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
bin="${EA_TEST_BINARY:-$build/edgeagent}"
chromium=${EA_CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || { echo "SKIP: $chromium not installed (apt-get install chromium)"; exit 77; }
command -v node >/dev/null || { echo "SKIP: node not installed"; exit 77; }
[ -d "$src/tests/node/node_modules/playwright-core" ] || { echo "SKIP: playwright-core not installed (scripts/install-deps.sh)"; exit 77; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT

# the cloud: the stub on a free loopback port ("PORT n" on its first line)
node "$src/tests/node/openai_stub.mjs" --faults-in-messages >"$tmp/stub.out" 2>"$tmp/stub.err" &
stub_pid=$!
pids+=("$stub_pid")
stub_port=""
for _ in $(seq 1 200); do
  stub_port=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$tmp/stub.out" 2>/dev/null)
  [ -n "$stub_port" ] && break
  sleep 0.05
done
[ -n "$stub_port" ] || { echo "the stub did not start"; cat "$tmp/stub.out" "$tmp/stub.err"; exit 1; }

cat >"$tmp/edgeagent.yaml" <<YAML
upstreams:
  - {name: local, kind: local}
  - name: cloud
    kind: openai
    base_url: http://127.0.0.1:$stub_port/v1
    model: stub-model
    price: {input_per_mtok: 2, output_per_mtok: 8}
tasks:
  - {name: edge, mode: edge_only}
  - {name: cloud, mode: cloud_only}
  - {name: red, mode: cloud_only, privacy: redact}
  - {name: fall, mode: prefer_cloud}
routing:
  default_task: edge
  retries: {max: 0}
ledger:
  budgets:
    daily: 5
    tasks:
      cloud: {daily: 1, action: edge}
YAML

"$bin" gen-model --preset tiny --type F16 --seed 1 -o "$tmp/tiny.gguf" >/dev/null || exit 1

# serve NAME ARGS...: starts `edgeagent serve` and sets port_NAME
serve() {
  local name=$1; shift
  "$bin" serve -m "$tmp/tiny.gguf" --port 0 --model-id tiny-chat "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pids+=("$!")
  eval "pid_$name=$!"
  local port=""
  for _ in $(seq 1 400); do
    grep -q "ready:" "$tmp/$name.out" 2>/dev/null && { port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/$name.out"); break; }
    sleep 0.05
  done
  [ -n "$port" ] || { echo "serve ($name) did not start"; cat "$tmp/$name.out" "$tmp/$name.err"; exit 1; }
  eval "port_$name=$port"
}
serve main --config "$tmp/edgeagent.yaml" --data-dir "$tmp/data"
serve off --no-ledger --api-key k-dashboard-test

shots="$(mkdir -p "$build/test-tmp" && cd "$build/test-tmp" && pwd)"
(cd "$src/tests/node" && timeout 300 node dashboard_browser.mjs "http://127.0.0.1:$port_main" \
   "http://127.0.0.1:$port_off" k-dashboard-test "$shots")
rc=$?
kill -TERM "$stub_pid"; wait "$stub_pid" 2>/dev/null
for name in main off; do
  eval "p=\$pid_$name"
  kill -TERM "$p"; wait "$p"; st=$?
  [ $st = 0 ] || { echo "serve ($name) exited with $st"; cat "$tmp/$name.err"; rc=1; }
done
# no request text in the servers' logs
if grep -l "jane.doe" "$tmp"/main.out "$tmp"/main.err >/dev/null 2>&1; then
  echo "a request's text reached the log"; rc=1
fi
exit $rc
