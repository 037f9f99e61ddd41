/* arch_qwen2.c - the `qwen2` architecture (Qwen1.5/2/2.5): the standard
 * decoder plus Q/K/V biases, RoPE in NeoX order. */
#include <stdio.h>

#include "model/model_int.h"

static ea_status bind_layer(ea_model *m, uint32_t l, struct ea__layer *ly, struct ea_error *err)
{
    ea_status s = ea__bind_std_layer(m, l, ly, err);
    if (s)
        return s;
    uint64_t qd = (uint64_t)m->info.n_head * m->info.head_dim,
             kvd = (uint64_t)m->info.n_head_kv * m->info.head_dim;
    char n[EA_GGUF_MAX_NAME];
    snprintf(n, sizeof n, "blk.%u.attn_q.bias", l);
    if ((s = ea__bind_tensor(m, n, qd, 0, EA_USE_VECTOR, false, &ly->bq, err)))
        return s;
    snprintf(n, sizeof n, "blk.%u.attn_k.bias", l);
    if ((s = ea__bind_tensor(m, n, kvd, 0, EA_USE_VECTOR, false, &ly->bk, err)))
        return s;
    snprintf(n, sizeof n, "blk.%u.attn_v.bias", l);
    return ea__bind_tensor(m, n, kvd, 0, EA_USE_VECTOR, false, &ly->bv, err);
}

const struct ea__arch ea__arch_qwen2 = {
    .name = "qwen2",
    .rope_neox = true,
    .bind_layer = bind_layer,
    .layer_forward = ea__std_layer_forward,
};
