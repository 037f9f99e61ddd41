/* model.h - model architectures over GGUF files: synthetic model generation
 * (gen-model presets) and, with the engine issue, loading and the forward pass.
 *
 * Holds: the preset table of real model shapes and ea_model_generate, which
 * writes a deterministic random-weight GGUF with the tensor names, shapes and
 * metadata of the real model.
 * Does not hold: tokenization (tokenizer.h), scheduling (engine.h).
 */
#ifndef EDGEAGENT_MODEL_H
#define EDGEAGENT_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "edgeagent/error.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ea_model_preset {
    const char *name;         /* "smollm2-135m" */
    const char *arch;         /* GGUF general.architecture: "llama", "qwen2", "qwen3" */
    const char *display_name; /* general.name */
    const char *size_label;   /* general.size_label */
    uint32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx;
    float rope_base, rms_eps;
    bool tied_embeddings; /* no output.weight: logits use token_embd */
    bool qkv_bias;        /* qwen2 */
    bool qk_norm;         /* qwen3 */
    /* Llama 3 rope scaling (rope_freqs tensor); factor 0 = none */
    float rope_factor, rope_low_freq, rope_high_freq;
    uint32_t rope_orig_ctx;
    const char *tokenizer_pre; /* tokenizer.ggml.pre of the built-in vocabulary */
};

/* The preset named name, or NULL. */
const struct ea_model_preset *ea_model_preset_find(const char *name);
/* Presets in table order; NULL past the end. */
const struct ea_model_preset *ea_model_preset_at(unsigned i);

struct ea_gen_params {
    const char *preset;     /* ea_model_preset name */
    uint32_t type;          /* ea_type of 2-D weights (ea_quant_can_encode) */
    uint64_t seed;
    const char *vocab_path; /* GGUF whose tokenizer.* keys are copied; NULL = built-in */
};

/* Writes the model to out_path. The same params give byte-identical files. */
ea_status ea_model_generate(const struct ea_gen_params *p, const char *out_path,
                            struct ea_error *err);

#ifdef __cplusplus
}
#endif
#endif
