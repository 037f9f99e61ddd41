// openai_stub.mjs [--port N] [--tls CERT KEY] [--keep-alive-ms MS]
//                 [--faults-in-messages] - a
// small OpenAI-compatible server that fails on demand, standing in for "the
// cloud" in the cloud client and router tests (node built-ins only). Binds
// 127.0.0.1 on a free
// port (or N) and prints "PORT <n>" as the first line on stdout; with --tls
// it speaks HTTPS with that certificate and key (PEM files); an idle
// kept-alive connection is closed after MS (default 30000).
//
// Serves
//   POST /v1/chat/completions, /v1/completions  streamed (SSE, with
//        stream_options.include_usage a last chunk with usage, then
//        "data: [DONE]") or one JSON object, in OpenAI's shapes. The reply
//        is "stub:<L>" (L = length in characters of the last user message,
//        or of the prompt) unless a reply is configured; streamed as
//        `chunks` content chunks (default 3). n and prompt lists give more
//        choices (index = prompt * n + i). usage: prompt_tokens =
//        ceil(prompt characters / 4), completion_tokens = content chunks.
//   GET  /v1/models
// Faults, per request from the header X-Stub-Fault ("key=value; key=value",
// a bare key meaning true) or for every request from the default set with
// POST /_stub/config (a JSON object with the same keys; {} clears it; with
// "count": N it applies to the next N model requests only):
//   delay_ms=N       wait N ms before the response head (combines with any)
//   status=N         answer N with an OpenAI error body; retry_after=V adds
//                    Retry-After: V (seconds or an HTTP date), retry_after_ms=V
//                    adds retry-after-ms: V (Azure's); message=T;
//                    with text=T the body is that plain text, with html a page
//   reset            destroy the socket (RST) before sending any byte
//   malformed[=N]    N good chunks (default 0), then a data line that is not JSON
//   error_first      an SSE `event: error` as the first chunk, then the end
//   cut_after=N      N content chunks, then end the response cleanly, no [DONE]
//   silence_after=N  N content chunks, then nothing: the connection stays open
//   html             200 with a text/html page
//   chunk_delay_ms=N wait N ms between chunks
//   reply=T          the content (instead of "stub:<L>"); chunks=N
//   echo             the content is the last user message (or the prompt) itself
//   tool_call=NAME   (streamed chat) one tool call of NAME per choice, with the
//                    arguments args=JSON (default {"room":"kitchen","on":true})
//   no_index         streamed choices without their "index" (some servers)
//   no_usage         no usage anywhere (an upstream that ignores include_usage)
//   require_key=K    401 unless "Authorization: Bearer K"
// (non-streamed requests: delay, status, reset, html and malformed apply;
// cut_after/silence_after send half the body then close/stay silent.)
// Control (never logged, never faulted):
//   GET  /_stub/log    {"connections": N (connections that carried a
//                      non-control request), "requests": [{"method", "path",
//                      "headers" (Authorization's value replaced by "<set>"),
//                      "auth": bool, "body" (parsed JSON, or text), "conn"
//                      (connection number), "fault"}]}
//   POST /_stub/reset  clears the log, the connection count and the default set
//   POST /_stub/config sets the default fault set (see above)
import fs from "node:fs";
import http from "node:http";
import https from "node:https";

const state = { log: [], connections: 0, config: {}, remaining: null };
const silent = new Set(); // responses kept open by silence_after

function parseFault(h) {
  const f = {};
  if (!h) return f;
  for (const part of h.split(";")) {
    const p = part.trim();
    if (!p) continue;
    const eq = p.indexOf("=");
    const k = eq < 0 ? p : p.slice(0, eq).trim();
    let v = eq < 0 ? true : p.slice(eq + 1).trim();
    if (typeof v === "string" && /^-?\d+$/.test(v)) v = Number(v);
    f[k] = v;
  }
  return f;
}

// With --faults-in-messages, a request whose last user message (or prompt)
// starts with "#fault SPEC" takes SPEC as its fault set (the header's
// syntax): a test behind a router, which forwards no client headers, picks
// a fault per request.
let faultsInMessages = false;

function messageFault(body) {
  if (!faultsInMessages || !body || typeof body !== "object") return null;
  let t = typeof body.prompt === "string" ? body.prompt : "";
  if (Array.isArray(body.messages))
    for (const m of body.messages) if (m && m.role === "user") t = textOf(m.content);
  const m = /^#fault ([^\n]*)/.exec(t);
  return m ? parseFault(m[1]) : null;
}

function faultFor(req, body) {
  const mf = messageFault(body);
  if (mf) return mf;
  const h = parseFault(req.headers["x-stub-fault"]);
  if (Object.keys(h).length) return h;
  if (state.remaining !== null) {
    if (state.remaining <= 0) return {};
    state.remaining--;
  }
  const { count, ...rest } = state.config;
  return rest;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function textOf(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((p) => (p && p.type === "text" ? p.text : "")).join("");
  return "";
}

function plan(kind, body, fault) {
  let prompts, promptChars;
  if (kind === "chat") {
    const msgs = Array.isArray(body.messages) ? body.messages : [];
    const users = msgs.filter((m) => m && m.role === "user");
    const last = users.length ? textOf(users[users.length - 1].content) : "";
    prompts = [last];
    promptChars = msgs.reduce((a, m) => a + textOf(m && m.content).length, 0);
  } else {
    const p = body.prompt;
    prompts = Array.isArray(p) && p.length && typeof p[0] === "string" ? p : [typeof p === "string" ? p : ""];
    promptChars = prompts.reduce((a, s) => a + s.length, 0);
  }
  const n = Number.isInteger(body.n) && body.n > 0 ? body.n : 1;
  const nChunks = Number.isInteger(fault.chunks) && fault.chunks > 0 ? fault.chunks : 3;
  const choices = [];
  for (let p = 0; p < prompts.length; p++)
    for (let i = 0; i < n; i++) {
      const reply = fault.echo ? prompts[p] : typeof fault.reply === "string" ? fault.reply : `stub:${[...prompts[p]].length}`;
      const cps = [...reply];
      const pieces = [];
      for (let k = 0; k < nChunks; k++)
        pieces.push(cps.slice(Math.floor((k * cps.length) / nChunks), Math.floor(((k + 1) * cps.length) / nChunks)).join(""));
      choices.push({ index: p * n + i, reply, pieces });
    }
  const promptTokens = Math.ceil(promptChars / 4);
  return { choices, nChunks, usage: { prompt_tokens: promptTokens, completion_tokens: nChunks * choices.length,
    total_tokens: promptTokens + nChunks * choices.length, prompt_tokens_details: { cached_tokens: 0 } } };
}

let nextId = 1;

async function model(req, res, kind, body, fault) {
  const stream = body.stream === true;
  const pl = plan(kind, body, fault);
  const id = `${kind === "chat" ? "chatcmpl" : "cmpl"}-stub${nextId++}`;
  const created = Math.floor(Date.now() / 1000);
  const modelName = typeof body.model === "string" ? body.model : "stub-model";
  const object = kind === "chat" ? (stream ? "chat.completion.chunk" : "chat.completion") : "text_completion";
  const head = { id, object, created, model: modelName, system_fingerprint: "fp_stub" };
  const gap = Number(fault.chunk_delay_ms) || 0;

  if (!stream) {
    const choices = pl.choices.map((c) =>
      kind === "chat"
        ? { index: c.index, message: { role: "assistant", content: c.reply, refusal: null }, logprobs: null, finish_reason: "stop" }
        : { index: c.index, text: c.reply, logprobs: null, finish_reason: "stop" });
    let text = JSON.stringify({ ...head, choices, ...(fault.no_usage ? {} : { usage: pl.usage }) });
    if (fault.malformed) text = text.slice(0, Math.floor(text.length / 2));
    if (fault.cut_after !== undefined || fault.silence_after !== undefined) {
      res.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
      res.write(text.slice(0, Math.floor(text.length / 2)));
      if (fault.cut_after !== undefined) res.socket.destroy();
      else silent.add(res);
      return;
    }
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(text);
    return;
  }

  const wantsUsage = body.stream_options && body.stream_options.include_usage && !fault.no_usage;
  res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
  if (fault.tool_call && kind === "chat") {
    // one tool call per choice, streamed as OpenAI does: id, type and name
    // first, then the arguments in pieces, then finish_reason tool_calls
    const args = typeof fault.args === "string" ? fault.args : '{"room":"kitchen","on":true}';
    for (const c of pl.choices) {
      res.write(`data: ${JSON.stringify({ ...head, choices: [{ index: c.index, delta: { role: "assistant", content: null, tool_calls: [{ index: 0, id: "call_stub", type: "function", function: { name: fault.tool_call, arguments: "" } }] }, finish_reason: null }] })}\n\n`);
      for (let k = 0; k < args.length; k += 7)
        res.write(`data: ${JSON.stringify({ ...head, choices: [{ index: c.index, delta: { tool_calls: [{ index: 0, function: { arguments: args.slice(k, k + 7) } }] }, finish_reason: null }] })}\n\n`);
      res.write(`data: ${JSON.stringify({ ...head, choices: [{ index: c.index, delta: {}, finish_reason: "tool_calls" }] })}\n\n`);
    }
    if (wantsUsage) res.write(`data: ${JSON.stringify({ ...head, choices: [], usage: pl.usage })}\n\n`);
    res.write("data: [DONE]\n\n");
    res.end();
    return;
  }
  const send = (obj) => {
    if (fault.no_index) for (const c of obj.choices) delete c.index;
    res.write(`data: ${JSON.stringify(obj)}\n\n`);
  };
  if (fault.error_first) {
    res.write(`event: error\ndata: ${JSON.stringify({ error: { message: fault.message || "stub: error event", type: "server_error", code: "stub_error" } })}\n\n`);
    res.end();
    return;
  }
  const limit = fault.cut_after ?? fault.silence_after ?? (fault.malformed !== undefined ? (fault.malformed === true ? 0 : fault.malformed) : Infinity);
  let sent = 0;
  for (let k = 0; k < pl.nChunks; k++) {
    if (sent >= limit) break;
    if (k && gap) await sleep(gap);
    if (res.destroyed) return;
    const choices = pl.choices.map((c) =>
      kind === "chat"
        ? { index: c.index, delta: k === 0 ? { role: "assistant", content: c.pieces[k] } : { content: c.pieces[k] }, logprobs: null, finish_reason: null }
        : { index: c.index, text: c.pieces[k], logprobs: null, finish_reason: null });
    send({ ...head, choices, usage: null });
    sent++;
  }
  if (sent >= limit) {
    if (fault.malformed !== undefined && fault.cut_after === undefined && fault.silence_after === undefined) {
      res.write("data: {\"id\": \"broken\", \"choices\": [\n\n");
      res.end();
    } else if (fault.cut_after !== undefined) {
      res.end();
    } else {
      silent.add(res);
      res.on("close", () => silent.delete(res));
    }
    return;
  }
  if (gap) await sleep(gap);
  const fin = pl.choices.map((c) =>
    kind === "chat" ? { index: c.index, delta: {}, logprobs: null, finish_reason: "stop" } : { index: c.index, text: "", logprobs: null, finish_reason: "stop" });
  send({ ...head, choices: fin, usage: null });
  if (wantsUsage) send({ ...head, choices: [], usage: pl.usage });
  res.write("data: [DONE]\n\n");
  res.end();
}

function json(res, status, obj, extra = {}) {
  const text = JSON.stringify(obj);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text), ...extra });
  res.end(text);
}

const args = process.argv.slice(2);
let port = 0, tls = null, keepAliveMs = 30000;
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--port") port = Number(args[++i]);
  else if (args[i] === "--keep-alive-ms") keepAliveMs = Number(args[++i]);
  else if (args[i] === "--faults-in-messages") faultsInMessages = true;
  else if (args[i] === "--tls") { tls = { cert: fs.readFileSync(args[i + 1]), key: fs.readFileSync(args[i + 2]) }; i += 2; }
}

const onRequest = (req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => handle(req, res, Buffer.concat(chunks).toString("utf8")).catch((e) => {
    process.stderr.write(`openai_stub: ${e.stack}\n`);
    if (!res.headersSent) json(res, 500, { error: { message: "stub crashed", type: "server_error" } });
    else res.destroy();
  }));
};
const server = tls ? https.createServer(tls, onRequest) : http.createServer(onRequest);

async function handle(req, res, raw) {
  const url = new URL(req.url, "http://stub");
  const path = url.pathname;
  if (path.startsWith("/_stub/")) {
    if (path === "/_stub/log" && req.method === "GET") return json(res, 200, { connections: state.connections, requests: state.log });
    if (path === "/_stub/reset" && req.method === "POST") {
      state.log = [];
      state.connections = 0;
      state.config = {};
      state.remaining = null;
      return json(res, 200, { ok: true });
    }
    if (path === "/_stub/config" && req.method === "POST") {
      let cfg;
      try { cfg = raw ? JSON.parse(raw) : {}; } catch { return json(res, 400, { error: { message: "bad JSON" } }); }
      state.config = cfg && typeof cfg === "object" ? cfg : {};
      state.remaining = Number.isInteger(state.config.count) ? state.config.count : null;
      return json(res, 200, { ok: true });
    }
    return json(res, 404, { error: { message: "no such control endpoint" } });
  }

  if (!req.socket.stubConn) req.socket.stubConn = ++state.connections; // model connections only
  let body = raw;
  try { body = raw ? JSON.parse(raw) : null; } catch { /* logged as text */ }
  const headers = { ...req.headers };
  const auth = headers.authorization;
  if (auth !== undefined) headers.authorization = "<set>";
  const fault = faultFor(req, body);
  state.log.push({ method: req.method, path, headers, auth: auth !== undefined, body, conn: req.socket.stubConn, fault });

  if (fault.delay_ms) await sleep(Number(fault.delay_ms));
  if (res.destroyed) return;
  if (fault.reset) {
    if (typeof req.socket.resetAndDestroy === "function") req.socket.resetAndDestroy();
    else req.socket.destroy();
    return;
  }
  if (fault.require_key && auth !== `Bearer ${fault.require_key}`)
    return json(res, 401, { error: { message: "Incorrect API key provided", type: "invalid_request_error", code: "invalid_api_key" } });
  if (fault.status) {
    if (fault.html || fault.text !== undefined) {
      res.writeHead(Number(fault.status), { "Content-Type": fault.html ? "text/html" : "text/plain" });
      res.end(fault.html ? "<html><body><h1>502 Bad Gateway</h1></body></html>" : String(fault.text));
      return;
    }
    const extra = fault.retry_after !== undefined ? { "Retry-After": String(fault.retry_after) } : {};
    if (fault.retry_after_ms !== undefined) extra["retry-after-ms"] = String(fault.retry_after_ms);
    const type = fault.status === 429 ? "rate_limit_error" : fault.status >= 500 ? "server_error" : "invalid_request_error";
    return json(res, Number(fault.status), { error: { message: fault.message || `stub: status ${fault.status}`, type, param: null, code: type === "rate_limit_error" ? "rate_limit_exceeded" : null } }, extra);
  }
  if (fault.html) {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end("<!doctype html><html><body><h1>Captive portal</h1></body></html>");
    return;
  }
  if (req.method === "GET" && path === "/v1/models")
    return json(res, 200, { object: "list", data: [{ id: "stub-model", object: "model", created: 0, owned_by: "stub" }] });
  if (req.method === "POST" && (path === "/v1/chat/completions" || path === "/v1/completions")) {
    if (!body || typeof body !== "object")
      return json(res, 400, { error: { message: "the body must be a JSON object", type: "invalid_request_error" } });
    return model(req, res, path === "/v1/chat/completions" ? "chat" : "completion", body, fault);
  }
  return json(res, 404, { error: { message: `no route ${req.method} ${path}`, type: "invalid_request_error" } });
}

server.keepAliveTimeout = keepAliveMs;
server.listen(port, "127.0.0.1", () => {
  process.stdout.write(`PORT ${server.address().port}\n`);
});
for (const sig of ["SIGTERM", "SIGINT"])
  process.on(sig, () => {
    for (const r of silent) r.destroy();
    server.closeAllConnections?.();
    process.exit(0);
  });
