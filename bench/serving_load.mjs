// serving_load.mjs - concurrent streaming completions against an
// OpenAI-style /completion endpoint of llama-server (or /v1/completions), to
// compare its continuous batching with edgeagent's engine under the same
// load. Prints JSON: [{concurrency, gen_tok_s, ttft_p50_ms}].
//   node bench/serving_load.mjs http://127.0.0.1:8080 1,4,16 PROMPT_TOKENS GEN [MODEL.gguf]
//
// llama-server parses every streamed completion as text and fails the request
// ("output that does not match the expected Content-only format") when a
// random-weight model starts with a byte that is not valid UTF-8. Given the
// GGUF of a byte-level BPE vocabulary, tokens that decode to anything but
// ASCII are banned with logit_bias, so every request runs to its end.
import { readFileSync } from "fs";
const [base, levelsArg, promptArg, genArg, modelPath] = process.argv.slice(2);

// Minimal GGUF metadata walk: returns tokenizer.ggml.tokens (strings).
function ggufTokens(path) {
  const b = readFileSync(path);
  let o = 8; // magic, version
  const u32 = () => ((o += 4), b.readUInt32LE(o - 4));
  const u64 = () => ((o += 8), Number(b.readBigUInt64LE(o - 8)));
  const str = () => { const n = u64(); o += n; return b.toString("utf8", o - n, o); };
  const size = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const skip = (t) => { if (t === 8) str(); else if (t === 9) { const et = u32(), n = u64(); for (let i = 0; i < n; i++) skip(et); } else o += size[t]; };
  u64(); // tensor count
  const nkv = u64();
  for (let i = 0; i < nkv; i++) {
    const key = str(), t = u32();
    if (key === "tokenizer.ggml.tokens" && t === 9) {
      u32();
      const n = u64(), out = [];
      for (let j = 0; j < n; j++) out.push(str());
      return out;
    }
    skip(t);
  }
  return [];
}
// GPT-2 byte-to-unicode: printable ASCII is itself; bytes 0-32 and 127 are
// U+0100..U+0121; everything else is a byte >= 0x80.
const asciiSafe = (tok) => [...tok].every((c) => { const u = c.codePointAt(0); return (u >= 0x21 && u <= 0x7e) || (u >= 0x100 && u <= 0x121); });
const banned = modelPath ? ggufTokens(modelPath).flatMap((t, i) => (asciiSafe(t) ? [] : [[i, false]])) : [];
if (process.env.VERBOSE) console.error(`banned ${banned.length} tokens`);
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
    body: JSON.stringify({ prompt: prompt(), n_predict: gen, ignore_eos: true, temperature: 0, stream: true, cache_prompt: false, logit_bias: banned }),
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
