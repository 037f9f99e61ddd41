// stream_load.mjs URL CONCURRENCY SECONDS [MAX_TOKENS] [BAN] - CONCURRENCY
// clients, each sending streamed /v1/chat/completions (stream_options
// include_usage) one after another for SECONDS against edgeagent at URL.
// Prints JSON: {requests, errors, completion_tokens, tok_s, req_s, p50_ms,
// p99_ms} (p50/p99: a request's time from sending to its last byte). Counts
// only requests that ended with [DONE] and a usage chunk; any other end is
// an error. BAN: token ids (comma-separated) given logit_bias -100, e.g. the
// end-of-text token of a random-weight model so that every request runs to
// MAX_TOKENS. Used by bench/ledger_throughput.sh.
const [base, concArg, secsArg, maxArg, banArg] = process.argv.slice(2);
const logitBias = Object.fromEntries((banArg || "").split(",").filter(Boolean).map((id) => [id, -100]));
const conc = Number(concArg), secs = Number(secsArg), maxTokens = Number(maxArg || 32);
const end = performance.now() + secs * 1000;
let requests = 0, errors = 0, tokens = 0;
const lat = [];

async function one(k, i) {
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      messages: [{ role: "user", content: `client ${k} request ${i}: say something` }],
      max_tokens: maxTokens, logit_bias: logitBias, stream: true, stream_options: { include_usage: true }, seed: k * 100000 + i,
    }),
  });
  const text = await res.text();
  const usage = text.split("\n\n").filter((e) => e.startsWith("data: {")).map((e) => JSON.parse(e.slice(6))).find((d) => d.usage);
  if (res.status !== 200 || !text.includes("data: [DONE]") || !usage) throw new Error(`status ${res.status}`);
  return usage.usage.completion_tokens;
}

async function client(k) {
  for (let i = 0; performance.now() < end; i++) {
    try {
      const t = performance.now();
      const n = await one(k, i); // (not `tokens += await ...`: that reads tokens before the wait)
      lat.push(performance.now() - t);
      tokens += n;
      requests++;
    } catch {
      errors++;
    }
  }
}

const t0 = performance.now();
await Promise.all(Array.from({ length: conc }, (_, k) => client(k)));
const wall = (performance.now() - t0) / 1000;
lat.sort((a, b) => a - b);
const pct = (q) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(q * lat.length))] : 0);
console.log(JSON.stringify({ requests, errors, completion_tokens: tokens, tok_s: tokens / wall, req_s: requests / wall,
                             p50_ms: pct(0.5), p99_ms: pct(0.99) }));
