// llamacpp_check.mjs - loads GGUF files with llama.cpp (npm node-llama-cpp,
// installed outside the repo) and evaluates a few tokens, to check that files
// edgeagent writes are accepted by llama.cpp. Not a test: needs the package.
//   NODE_PATH=/path/to/cache/node_modules node bench/llamacpp_check.mjs a.gguf [b.gguf ...]
import { createRequire } from "module";
const require = createRequire(process.env.NODE_PATH ? process.env.NODE_PATH + "/" : import.meta.url);
const { getLlama, LlamaLogLevel } = await import(require.resolve("node-llama-cpp"));

const llama = await getLlama({ gpu: false, logLevel: LlamaLogLevel.warn });
let failed = 0;
for (const path of process.argv.slice(2)) {
  try {
    const model = await llama.loadModel({ modelPath: path });
    const ctx = await model.createContext({ contextSize: 256, threads: 2 });
    const seq = ctx.getSequence();
    const tokens = model.tokenize("Hello world, this is a test.");
    let n = 0;
    for await (const t of seq.evaluate(tokens, { temperature: 0 })) {
      if (++n >= 4) break;
    }
    console.log(`OK   ${path}: ${model.trainContextSize} ctx, ${tokens.length} prompt tokens, generated ${n}`);
    await ctx.dispose();
    await model.dispose();
  } catch (e) {
    failed++;
    console.log(`FAIL ${path}: ${e.message}`);
  }
}
process.exit(failed ? 1 : 0);
