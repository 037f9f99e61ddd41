/* arch_llama.c - the `llama` architecture: Llama 2/3.x, TinyLlama, SmolLM,
 * Mistral 7B (no sliding window). Standard pre-norm decoder, RoPE on
 * adjacent pairs, optional Llama 3 rope scaling via rope_freqs (bound at
 * load). Does not hold: the building blocks (blocks.c). */
#include "model/model_int.h"

const struct ea__arch ea__arch_llama = {
    .name = "llama",
    .rope_neox = false,
    .bind_layer = ea__bind_std_layer,
    .layer_forward = ea__std_layer_forward,
};
