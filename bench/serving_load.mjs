// serving_load.mjs - concurrent streaming completions against an
// OpenAI-style /completion endpoint of llama-server (or /v1/completions), to
// compare its continuous batching with edgeagent's engine under the same
// load. Prints JSON: [{concurrency, gen_tok_s, ttft_p50_ms}].
//   node bench/serving_load.mjs http://127.0.0.1:8080 1,4,16 PROMPT_TOKENS GEN
const [base, levelsArg, promptArg, genArg] = process.argv.slice(2);
const levels = levelsArg.split(",").map(Number), promptTokens = Number(promptArg), gen = Number(genArg);
// The prompt is PROMPT random token ids (10..999), as edgeagent's bench
// sends, so both engines prefill exactly the same number of tokens.
let seed = 7;
const prompt = () => Array.from({ length: promptTokens }, () => 10 + ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 990));

async function one() {
  const t0 = performance.now();
  const res = await fetch(`${base}/completion`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt: prompt(), n_predict: gen, ignore_eos: true, temperature: 0, stream: true, cache_prompt: false }),
  });
  let ttft = -1, n = 0;
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (!ev.startsWith("data: ")) continue;
      const d = JSON.parse(ev.slice(6));
      if (d.content !== undefined && !d.stop) {
        if (ttft < 0) ttft = performance.now() - t0;
        n++;
      }
    }
  }
  return { ttft, n };
}

const out = [];
for (const c of levels) {
  const t0 = performance.now();
  const rs = await Promise.all(Array.from({ length: c }, one));
  const wall = (performance.now() - t0) / 1000;
  const ttfts = rs.map((r) => r.ttft).sort((a, b) => a - b);
  out.push({ concurrency: c, gen_tok_s: rs.reduce((s, r) => s + r.n, 0) / wall, ttft_p50_ms: ttfts[Math.floor((c - 1) / 2)] });
}
console.log(JSON.stringify(out));
