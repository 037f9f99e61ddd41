#!/usr/bin/env bash
# test_server_clients.sh (EA_TEST_NEEDS_NET) - `edgeagent serve` as a real
# process on a free loopback port, driven by real clients:
#   - the official openai npm SDK (tests/node/server_openai.mjs),
#   - curl for each error status (400 400-field 401 404 405 413 429 500 503)
#     with OpenAI's error shape, the 500's id found in the server log,
#   - a corpus of malformed requests (bad JSON, wrong types, huge numbers,
#     deep nesting, invalid UTF-8, a 10 MB body), after which /health is 200,
#   - SIGTERM and SIGINT: in-flight stream finishes, exit status 0,
#   - the binary refuses a non-loopback --host without a key.
# Prints "N passed, N failed"; exit 77 (skip) only when curl is missing.
set -uo pipefail
build=${EA_BUILD_DIR:-build}
src=${EA_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
bin="${EA_TEST_BINARY:-$build/edgeagent}"
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }
tmp=$(mktemp -d)
export XDG_DATA_HOME=$tmp/xdg # the ledger of the servers started here
pids=()
cleanup() { for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "[  OK  ] $1"; }
bad() { failed=$((failed + 1)); echo "[ FAIL ] $1"; }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }

model="$tmp/tiny.gguf"
"$bin" gen-model --preset tiny --type F16 --seed 1 -o "$model" >/dev/null || { echo "gen-model failed"; exit 1; }

# start_server NAME ARGS... : starts serve on port 0, sets $port and $pid
start_server() {
  local name=$1; shift
  local idarg=(--model-id tiny)
  case " $* " in *" --config "*) idarg=();; esac
  "$bin" serve -m "$model" --port 0 "${idarg[@]}" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pid=$!
  pids+=("$pid")
  port=""
  for _ in $(seq 1 200); do
    if grep -q "ready:" "$tmp/$name.out" 2>/dev/null; then
      port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/$name.out" | head -1)
      break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  [ -n "$port" ] || { echo "server $name did not start:"; cat "$tmp/$name.out" "$tmp/$name.err"; exit 1; }
}

# req METHOD PATH BODY_FILE [curl args...] : prints "STATUS" and leaves the body in $tmp/body
req() {
  local m=$1 p=$2 f=$3; shift 3
  if [ -n "$f" ]; then
    curl -s -o "$tmp/body" -w '%{http_code}' -X "$m" -H 'Content-Type: application/json' -H 'Expect:' \
      --data-binary "@$f" "$@" "http://127.0.0.1:$port$p"
  else
    curl -s -o "$tmp/body" -w '%{http_code}' -X "$m" "$@" "http://127.0.0.1:$port$p"
  fi
}

# err_shape [PARAM]: the body is {"error":{message,type,param,code}} (param checked when given)
err_shape() {
  python3 - "$tmp/body" "${1-}" <<'EOF'
import json, sys
e = json.load(open(sys.argv[1], encoding="utf-8", errors="replace"))["error"]
assert isinstance(e["message"], str) and e["message"], e
assert isinstance(e["type"], str), e
assert "param" in e and "code" in e, e
if len(sys.argv) > 2 and sys.argv[2]:
    assert e["param"] == sys.argv[2], (e["param"], sys.argv[2])
EOF
}

body() { printf '%s' "$1" >"$tmp/req.json"; echo "$tmp/req.json"; }
KEY=sekrit-test-key
AUTH=(-H "Authorization: Bearer $KEY")

# ---- server A: with a key, small output cap for the 500 case -------------------
start_server a --api-key "$KEY" --grace 120
A_PID=$pid
A_PORT=$port

if command -v node >/dev/null && [ -d "$src/tests/node/node_modules/openai" ]; then
  if (cd "$src/tests/node" && node server_openai.mjs "http://127.0.0.1:$port" "$KEY" tiny) >"$tmp/node.log" 2>&1; then
    ok "openai SDK: $(tail -1 "$tmp/node.log")"
  else
    cat "$tmp/node.log"; bad "openai SDK"
  fi
else
  echo "    (node or tests/node/node_modules/openai missing: SDK tests not run)"
fi

s=$(req POST /v1/chat/completions "$(body '{"messages":[{"role":"user","content":"hi"}],"max_tokens":4}')" "${AUTH[@]}")
check "curl 200 chat" '[ "$s" = 200 ] && grep -q "\"chat.completion\"" "$tmp/body"'
s=$(req POST /v1/chat/completions "$(body '{"messages":[{"role":"user","content":"hi"}],"max_tokens":4,"stream":true}')" -N "${AUTH[@]}")
check "curl 200 SSE stream ends with [DONE]" '[ "$s" = 200 ] && tail -c 20 "$tmp/body" | grep -q "data: \[DONE\]"'
s=$(req POST /v1/chat/completions "$(body '{"messages":[{"role":"user","content":"hi"}]')" "${AUTH[@]}")
check "curl 400 malformed JSON" '[ "$s" = 400 ] && err_shape'
s=$(req POST /v1/chat/completions "$(body '{"messages":[{"role":"user","content":"hi"}],"top_p":"x"}')" "${AUTH[@]}")
check "curl 400 names the field" '[ "$s" = 400 ] && err_shape top_p'
s=$(req GET /v1/models "")
check "curl 401 without key" '[ "$s" = 401 ] && err_shape && grep -q invalid_api_key "$tmp/body"'
s=$(req GET /v1/models "" -H "Authorization: Bearer wrong")
check "curl 401 wrong key" '[ "$s" = 401 ] && err_shape'
s=$(req GET /v1/embeddings "" "${AUTH[@]}")
check "curl 404" '[ "$s" = 404 ] && err_shape'
s=$(req PUT /v1/chat/completions "" "${AUTH[@]}")
check "curl 405" '[ "$s" = 405 ] && err_shape'
head -c $((10 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$tmp/big.json"
s=$(req POST /v1/chat/completions "$tmp/big.json" "${AUTH[@]}")
check "curl 413 for a 10 MB body" '[ "$s" = 413 ] && err_shape'
s=$(req POST /v1/chat/completions "$tmp/big.json" -H "Transfer-Encoding: chunked" "${AUTH[@]}")
check "curl 413 for a 10 MB chunked body" '[ "$s" = 413 ] && err_shape'
s=$(req GET /health "")
check "curl health 200 without key" '[ "$s" = 200 ] && grep -q "\"ok\"" "$tmp/body"'
s=$(req GET / "")
check "curl chat page" '[ "$s" = 200 ] && grep -q "<title>edgeagent chat</title>" "$tmp/body"'
s=$(req GET /metrics "" "${AUTH[@]}")
check "curl metrics" '[ "$s" = 200 ] && grep -q "^gen_ai_server_time_to_first_token_seconds_bucket" "$tmp/body" && grep -q "^edgeagent_http_requests_total{endpoint=\"/v1/chat/completions\",code=\"400\"}" "$tmp/body"'

# ---- malformed corpus: each gets a 4xx with the error shape; the server stays up
python3 - "$tmp/corpus" <<'EOF'
import os, sys
d = sys.argv[1]; os.makedirs(d)
msg = '"messages":[{"role":"user","content":"x"}]'
cases = {
  "empty": b"", "trunc": b'{"messages":[', "garbage": b"\x00\x01\x02garbage", "array": b"[]",
  "string": b'"hello"', "trailing_comma": b'{' + msg.encode() + b',}',
  "wrong_messages": b'{"messages":{"role":"user"}}', "wrong_content": b'{"messages":[{"role":"user","content":5}]}',
  "wrong_n": b'{' + msg.encode() + b',"n":"2"}', "neg_tokens": b'{' + msg.encode() + b',"max_tokens":-5}',
  "huge_int": b'{' + msg.encode() + b',"max_tokens":184467440737095516150}',
  "huge_real": b'{' + msg.encode() + b',"temperature":1e999}',
  "huge_seed": b'{' + msg.encode() + b',"seed":99999999999999999999999}',
  "nan": b'{' + msg.encode() + b',"temperature":NaN}',
  "deep_array": b'{"messages":' + b"[" * 200000 + b"]" * 200000 + b"}",
  "deep_object": b'{"a":' * 50000 + b"1" + b"}" * 50000,
  "bad_utf8": b'{"messages":[{"role":"user","content":"\xc3\x28\xa0\xa1\xff"}]}',
  "overlong_utf8": b'{"messages":[{"role":"user","content":"\xc0\xaf"}]}',
  "lone_surrogate": b'{"messages":[{"role":"user","content":"\\udc00"}]}',
  "nul_in_role": b'{"messages":[{"role":"user\\u0000","content":"a"}]}',
  "bias_type": b'{' + msg.encode() + b',"logit_bias":[1,2]}',
  "stop_type": b'{' + msg.encode() + b',"stop":{"a":1}}',
  "many_stops": b'{' + msg.encode() + b',"stop":["a","b","c","d","e"]}',
}
for k, v in cases.items():
    open(os.path.join(d, k + ".json"), "wb").write(v)
EOF
corpus_ok=1
for f in "$tmp"/corpus/*.json; do
  s=$(req POST /v1/chat/completions "$f" "${AUTH[@]}")
  if ! { [ "$s" = 400 ] || [ "$s" = 413 ]; } || ! err_shape 2>/dev/null; then
    echo "    malformed $(basename "$f"): status $s: $(head -c 200 "$tmp/body")"; corpus_ok=0
  fi
done
s=$(req GET /health "")
check "malformed corpus: every case 400/413 with the error shape, server still up" '[ $corpus_ok = 1 ] && [ "$s" = 200 ] && kill -0 $A_PID'

# ---- 503 on a kept-alive connection during the grace period; SIGTERM exits 0 ---
# a long stream in flight and a kept-alive connection; SIGTERM; then a new
# request on the kept-alive connection gets 503 while the stream finishes
# a logit_bias object banning the end-of-generation tokens, so generations run long
bias=$(python3 - "$port" "$KEY" <<'EOF2'
import json, sys, urllib.request
b = {}
for t in ["<|im_end|>", "<|endoftext|>", "<|im_start|>", "</s>"]:
    rq = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/tokenize", json.dumps({"content": t}).encode(),
                                {"Authorization": "Bearer " + sys.argv[2], "Content-Type": "application/json"})
    ids = json.load(urllib.request.urlopen(rq))["tokens"]
    if len(ids) == 1:
        b[str(ids[0])] = -100
print(json.dumps(b))
EOF2
)
# The tiny model streams 1000 tokens in ~150 ms on a quiet machine: rather
# than sleep a fixed time after SIGTERM, the client asks again as soon as the
# server logs that it is draining.
python3 - "$port" "$KEY" "$A_PID" "$bias" "$tmp/a.err" >"$tmp/drain.out" 2>&1 <<'EOF2'
import http.client, json, os, signal, sys, threading, time
port, key, pid, bias = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
log = sys.argv[5]
H = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
out = {}
started = threading.Event()
def stream():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    body = {"messages": [{"role": "user", "content": "long"}], "max_tokens": 1000, "stream": True,
            "logit_bias": bias}
    c.request("POST", "/v1/chat/completions", json.dumps(body), H)
    r = c.getresponse()
    first = r.readline()  # the stream is in flight once its first event arrived
    started.set()
    out["stream"] = (first + r.read()).decode("utf-8", "replace")
ka = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
ka.request("GET", "/health"); r = ka.getresponse(); r.read()
t = threading.Thread(target=stream); t.start()
started.wait(60)
os.kill(pid, signal.SIGTERM)
for _ in range(2000):  # up to 10 s
    if "shutdown: waiting" in open(log, errors="replace").read():
        break
    time.sleep(0.005)
ka.request("GET", "/v1/models", headers=H); r = ka.getresponse(); body = r.read()
print("status", r.status)
print("body", body.decode())
t.join()
print("done", out.get("stream", "").rstrip().endswith("data: [DONE]"))
EOF2
[ $? = 0 ] || { cat "$tmp/drain.out"; kill -KILL $A_PID; } # never wait for a server nobody stopped
wait $A_PID; rc=$?
check "SIGTERM: exit status 0 (got $rc)" '[ $rc = 0 ]'; [ $rc = 0 ] || grep -A30 "WARNING" "$tmp/a.err" | head -60
check "SIGTERM: the in-flight stream finished within the grace period" 'grep -q "^done True" "$tmp/drain.out"'
check "503 on a kept-alive connection while draining" 'grep -q "^status 503" "$tmp/drain.out" && grep -q server_shutting_down "$tmp/drain.out"'; grep -q "^status 503" "$tmp/drain.out" || cat "$tmp/drain.out"

# ---- server B: no key, tiny output cap (500); SIGINT ----------------------------
start_server b --max-output 8 --parallel 1 --max-queue 1
B_PID=$pid
# (the end-of-text token banned: 60 tokens always pass the 8-byte cap)
s=$(req POST /v1/completions "$(body '{"prompt":"x","max_tokens":60,"logit_bias":{"2":-100}}')")
id=$(python3 -c 'import json,sys,re; m=re.search(r"err-[0-9a-f]+", json.load(open(sys.argv[1]))["error"]["message"]); print(m.group(0) if m else "")' "$tmp/body")
check "curl 500 carries an error id that is in the log" '[ "$s" = 500 ] && err_shape && [ -n "$id" ] && grep -q "$id" "$tmp/b.err"'
kill -INT $B_PID
wait $B_PID; rc=$?
check "SIGINT: exit status 0 (got $rc)" '[ $rc = 0 ]'; [ $rc = 0 ] || grep -A30 "WARNING" "$tmp/b.err" | head -60

# ---- server E: 1 slot + 1 queued: the rest get 429 ------------------------------
# One long stream (end-of-generation tokens banned, as long as the context
# allows) holds the slot; once its first bytes arrived, five more requests
# come at once: one may wait in the queue, the others are refused with 429.
start_server e --parallel 1 --max-queue 1
E_PID=$pid
printf '{"prompt":"x","max_tokens":4096,"stream":true,"logit_bias":%s}' "$bias" >"$tmp/slow.json"
curl -s -N -o "$tmp/c1" -D "$tmp/h1" -w '%{http_code}' -H 'Content-Type: application/json' \
  --data-binary "@$tmp/slow.json" "http://127.0.0.1:$port/v1/completions" >"$tmp/code1" &
cpids=($!)
for _ in $(seq 1 400); do [ -s "$tmp/c1" ] && break; sleep 0.025; done
for i in 2 3 4 5 6; do
  curl -s -o "$tmp/c$i" -D "$tmp/h$i" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "@$tmp/slow.json" "http://127.0.0.1:$port/v1/completions" >"$tmp/code$i" &
  cpids+=($!)
done
wait "${cpids[@]}"
n429=0 n200=0 other=0
for i in 1 2 3 4 5 6; do
  c=$(cat "$tmp/code$i")
  if [ "$c" = 429 ]; then n429=$((n429+1)); grep -qi '^Retry-After: 1' "$tmp/h$i" || other=$((other+1));
  elif [ "$c" = 200 ]; then n200=$((n200+1)); else other=$((other+1)); fi
done
check "curl 429 with Retry-After when overloaded ($n200 done, $n429 refused)" '[ $n429 -ge 1 ] && [ $n200 -ge 1 ] && [ $other = 0 ]'
kill -TERM $E_PID; wait $E_PID

# ---- --config file, EDGEAGENT_API_KEY and --api-key-file ---------------------------
printf '# serve settings\nserver:\n  model-id: from-config\n  parallel: 2\n  log-content: false\n' >"$tmp/serve.yaml"
EDGEAGENT_API_KEY=env-key start_server c --config "$tmp/serve.yaml"
C_PID=$pid
s=$(req GET /v1/models "" -H "Authorization: Bearer env-key")
check "--config sets options (model-id) and EDGEAGENT_API_KEY the key" '[ "$s" = 200 ] && grep -q "\"from-config\"" "$tmp/body"'
kill -TERM $C_PID; wait $C_PID
printf 'file-key\n' >"$tmp/key"
start_server d --api-key-file "$tmp/key"
D_PID=$pid
s=$(req GET /v1/models "" -H "Authorization: Bearer file-key")
s2=$(req GET /v1/models "" -H "Authorization: Bearer env-key")
check "--api-key-file" '[ "$s" = 200 ] && [ "$s2" = 401 ]'
kill -TERM $D_PID; wait $D_PID

# ---- security defaults of the binary ---------------------------------------------
"$bin" serve -m "$model" --host 0.0.0.0 --port 0 >"$tmp/c.out" 2>"$tmp/c.err" &
cp=$!; pids+=("$cp")
for _ in $(seq 1 100); do kill -0 $cp 2>/dev/null || break; sleep 0.05; done
wait $cp; rc=$?
check "non-loopback --host without a key is refused" '[ $rc != 0 ] && grep -q "API key" "$tmp/c.err"'

echo "$passed passed, $failed failed"
if [ "$failed" != 0 ]; then # what the servers said: sanitizer reports, errors
  for f in "$tmp"/*.err; do
    echo "--- $(basename "$f") (last lines, and any sanitizer report)"
    tail -n 15 "$f"
    grep -E -A60 "ERROR: [A-Za-z]*Sanitizer|runtime error|WARNING: ThreadSanitizer" "$f" | head -n 120
  done
fi
[ "$failed" = 0 ]
