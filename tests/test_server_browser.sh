#!/usr/bin/env bash
# test_server_browser.sh (EA_TEST_NEEDS_NET) - the chat page at / in headless
# Chromium (Debian `chromium` + npm playwright-core): starts `edgeagent
# serve` on a free loopback port with a generated tiny model, runs
# tests/node/server_browser.mjs (sends two messages, checks the streamed
# answers, model name and tokens/s, no outside requests, no console errors)
# and keeps the screenshot in BUILD/test-artifacts/chat-page.png.
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
pid=""
cleanup() { [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
"$bin" gen-model --preset tiny --type F16 --seed 1 -o "$tmp/tiny.gguf" >/dev/null || exit 1
"$bin" serve -m "$tmp/tiny.gguf" --port 0 --model-id tiny-chat >"$tmp/out" 2>"$tmp/err" &
pid=$!
port=""
for _ in $(seq 1 200); do
  grep -q "ready:" "$tmp/out" 2>/dev/null && { port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/out"); break; }
  sleep 0.05
done
[ -n "$port" ] || { echo "server did not start"; cat "$tmp/out" "$tmp/err"; exit 1; }
shot="$(cd "$build" && pwd)/test-artifacts/chat-page.png"
(cd "$src/tests/node" && timeout 300 node server_browser.mjs "http://127.0.0.1:$port" tiny-chat "$shot")
rc=$?
kill -TERM "$pid"; wait "$pid"; src_rc=$?; pid=""
[ $src_rc = 0 ] || { echo "serve exited with $src_rc"; rc=1; }
exit $rc
