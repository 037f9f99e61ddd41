/* arch_qwen3.c - the `qwen3` architecture: the standard decoder plus a
 * per-head RMSNorm of Q and K (before RoPE), no biases, NeoX RoPE. */
#include <stdio.h>

#include "model/model_int.h"

static ea_status bind_layer(ea_model *m, uint32_t l, struct ea__layer *ly, struct ea_error *err)
{
    ea_status s = ea__bind_std_layer(m, l, ly, err);
    if (s)
        return s;
    char n[EA_GGUF_MAX_NAME];
    snprintf(n, sizeof n, "blk.%u.attn_q_norm.weight", l);
    if ((s = ea__bind_tensor(m, n, m->info.head_dim, 0, EA_USE_VECTOR, false, &ly->q_norm, err)))
        return s;
    snprintf(n, sizeof n, "blk.%u.attn_k_norm.weight", l);
    return ea__bind_tensor(m, n, m->info.head_dim, 0, EA_USE_VECTOR, false, &ly->k_norm, err);
}

const struct ea__arch ea__arch_qwen3 = {
    .name = "qwen3",
    .rope_neox = true,
    .bind_layer = bind_layer,
    .layer_forward = ea__std_layer_forward,
};
