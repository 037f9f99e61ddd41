/* presets.c - shapes and hyper-parameters of the real models gen-model
 * imitates (from their published configs), plus the test-sized `tiny`.
 * Does not hold: weights or vocabularies (gen_model.c builds those).
 */
#include <string.h>

#include "edgeagent/model.h"

static const struct ea_model_preset presets[] = {
    /* name, arch, display, size, vocab, embd, layer, head, head_kv, head_dim, ff, ctx,
       rope_base, eps, tied, qkv_bias, qk_norm, rope factor/low/high/orig, pre */
    {"tiny", "llama", "edgeagent tiny test model", "2M", 1024, 256, 2, 4, 2, 64, 512, 2048,
     10000.0f, 1e-5f, false, false, false, 0, 0, 0, 0, "smollm"},
    {"smollm2-135m", "llama", "SmolLM2 135M", "135M", 49152, 576, 30, 9, 3, 64, 1536, 8192,
     100000.0f, 1e-5f, true, false, false, 0, 0, 0, 0, "smollm"},
    {"qwen2.5-0.5b", "qwen2", "Qwen2.5 0.5B", "0.5B", 151936, 896, 24, 14, 2, 64, 4864, 32768,
     1000000.0f, 1e-6f, true, true, false, 0, 0, 0, 0, "qwen2"},
    {"qwen3-0.6b", "qwen3", "Qwen3 0.6B", "0.6B", 151936, 1024, 28, 16, 8, 128, 3072, 40960,
     1000000.0f, 1e-6f, true, false, true, 0, 0, 0, 0, "qwen2"},
    {"llama-3.2-1b", "llama", "Llama 3.2 1B", "1B", 128256, 2048, 16, 32, 8, 64, 8192, 131072,
     500000.0f, 1e-5f, true, false, false, 32.0f, 1.0f, 4.0f, 8192, "llama-bpe"},
    {"tinyllama-1.1b", "llama", "TinyLlama 1.1B Chat v1.0", "1.1B", 32000, 2048, 22, 32, 4, 64,
     5632, 2048, 10000.0f, 1e-5f, false, false, false, 0, 0, 0, 0, "default"},
};

const struct ea_model_preset *ea_model_preset_at(unsigned i)
{
    return i < sizeof presets / sizeof presets[0] ? &presets[i] : NULL;
}

const struct ea_model_preset *ea_model_preset_find(const char *name)
{
    for (unsigned i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (name && strcmp(presets[i].name, name) == 0)
            return &presets[i];
    return NULL;
}
