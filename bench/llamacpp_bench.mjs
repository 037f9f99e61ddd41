// llamacpp_bench.mjs - llama.cpp's prompt-processing and generation speed on
// a GGUF, through the prebuilt llama.cpp in npm node-llama-cpp (installed
// outside this repository). Prints one JSON line: {"pp": tok/s, "tg": tok/s}.
// Methodology as llama-bench: pp = N random tokens in one batch from an empty
// context; tg = M tokens decoded one at a time after 4 warm-up tokens; the
// better of two runs of each is reported.
//   NODE_PATH=/cache/node_modules node bench/llamacpp_bench.mjs MODEL PP TG THREADS
import { createRequire } from "module";
const require = createRequire(process.env.NODE_PATH ? process.env.NODE_PATH + "/" : import.meta.url);
const { getLlama, LlamaLogLevel } = await import(require.resolve("node-llama-cpp"));

const [path, ppArg, tgArg, thArg] = process.argv.slice(2);
const pp = Number(ppArg ?? 128), tg = Number(tgArg ?? 64), threads = Number(thArg ?? 2);
const llama = await getLlama({ gpu: false, logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath: path });
const nVocab = model.tokens ? 1000 : 1000;
let seed = 1234;
const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), 10 + (seed % (nVocab - 10)));

async function timePP() {
  const ctx = await model.createContext({ contextSize: Math.max(pp, tg) + 64, batchSize: pp, threads });
  const seq = ctx.getSequence();
  const toks = Array.from({ length: pp }, rnd);
  const t0 = process.hrtime.bigint();
  await seq.evaluateWithoutGeneratingNewTokens(toks);
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  await ctx.dispose();
  return pp / dt;
}

async function timeTG() {
  const ctx = await model.createContext({ contextSize: Math.max(pp, tg) + 64, batchSize: 512, threads });
  const seq = ctx.getSequence();
  let tok = rnd();
  for (let i = 0; i < 4; i++) { // warm-up: first decode graphs and buffers
    await seq.evaluateWithoutGeneratingNewTokens([tok]);
    tok = rnd();
  }
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < tg; i++) {
    await seq.evaluateWithoutGeneratingNewTokens([tok]);
    tok = rnd();
  }
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  await ctx.dispose();
  return tg / dt;
}

await timePP(); // warm-up: page in the weights
// best of two runs each: the baseline gets every benefit of the doubt
const best = async (f) => Math.max(await f(), await f());
const out = { pp: pp > 0 ? await best(timePP) : 0, tg: tg > 0 ? await best(timeTG) : 0 };
console.log(JSON.stringify(out));
await model.dispose();
