#!/usr/bin/env bash
# test_server_structured.sh (EA_TEST_NEEDS_NET) - structured output and tool
# calls through a real `edgeagent serve` process (stories260K from ../shared,
# on a free loopback port), checked by tests/node/server_structured.mjs with
# the official openai SDK and Ajv: every schema of
# tests/data/grammar_schemas.json at temperature 1, strict errors, the
# X-EdgeAgent-Unenforced header, guided_regex/choice, tool_choice required
# and named (streamed and not), tool messages in the history.
# Exit 77 (skip) when ../shared, node or tests/node/node_modules is missing.
set -uo pipefail
build=${EA_BUILD_DIR:-build}
src=${EA_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
bin="${EA_TEST_BINARY:-$build/edgeagent}"
shared=${EA_SHARED_DIR:-$src/../shared}
model="$shared/models/stories260K.gguf"
[ -f "$model" ] || { echo "SKIP: $model missing"; exit 77; }
command -v node >/dev/null || { echo "SKIP: node not installed"; exit 77; }
[ -d "$src/tests/node/node_modules/openai" ] && [ -d "$src/tests/node/node_modules/ajv-formats" ] ||
  { echo "SKIP: tests/node/node_modules (openai, ajv-formats) missing"; exit 77; }
tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

"$bin" serve -m "$model" --port 0 --parallel 8 -t 1 >"$tmp/out" 2>"$tmp/err" &
pid=$!
port=""
for _ in $(seq 1 200); do
  if grep -q "ready:" "$tmp/out" 2>/dev/null; then
    port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/out" | head -1)
    break
  fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
[ -n "$port" ] || { echo "server did not start:"; cat "$tmp/out" "$tmp/err"; exit 1; }

# generations per schema: 3, 1 when EA_TEST_LOAD_N shrinks runs (sanitizers)
per=3
[ -n "${EA_TEST_LOAD_N:-}" ] && per=1
(cd "$src/tests/node" && node server_structured.mjs "http://127.0.0.1:$port" "$src/tests/data/grammar_schemas.json" "$per")
rc=$?
kill -TERM "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
pid=""
exit $rc
