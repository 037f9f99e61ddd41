/* model_load.c - from a GGUF file to an ea_model: hyper-parameters from
 * metadata, the architecture's tensors bound and checked (shape, type),
 * rope frequencies precomputed, the thread pool started. Weights stay in the
 * file mapping (no copy).
 * Does not hold: the forward pass (forward.c, blocks.c) or per-architecture
 * tensor lists (arch_*.c).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_int.h"

static const struct ea__arch *const arches[] = {&ea__arch_llama, &ea__arch_qwen2, &ea__arch_qwen3};

ea_status ea__bind_tensor(ea_model *m, const char *name, uint64_t ne0, uint64_t ne1,
                          enum ea__tensor_use use, bool optional,
                          const struct ea_gguf_tensor **out, struct ea_error *err)
{
    const struct ea_gguf_tensor *t = ea_gguf_find_tensor(m->gguf, name);
    *out = NULL;
    if (!t) {
        if (optional)
            return EA_OK;
        return ea_error_set(err, EA_EFORMAT, "model: required tensor '%s' is missing", name);
    }
    uint32_t want_dims = ne1 ? 2 : 1;
    bool shape_ok = t->ne[0] == ne0 && t->ne[2] == 1 && t->ne[3] == 1 &&
                    (ne1 ? t->ne[1] == ne1 : t->ne[1] == 1);
    if (!shape_ok || t->n_dims > want_dims) {
        char want[64];
        if (ne1)
            snprintf(want, sizeof want, "%" PRIu64 " x %" PRIu64, ne0, ne1);
        else
            snprintf(want, sizeof want, "%" PRIu64, ne0);
        return ea_error_set(err, EA_EFORMAT,
                            "model: tensor '%s' has shape %" PRIu64 " x %" PRIu64 " x %" PRIu64
                            " x %" PRIu64 ", expected %s (inconsistent hyper-parameters?)",
                            name, t->ne[0], t->ne[1], t->ne[2], t->ne[3], want);
    }
    const char *tname = ea_type_info(t->type)->name;
    switch (use) {
    case EA_USE_MATMUL:
        if (!ea_kernels_matmul(t->type))
            return ea_error_set(err, EA_EUNSUPPORTED,
                                "model: tensor '%s' has type %s, which this build cannot compute",
                                name, tname);
        break;
    case EA_USE_EMBED:
        if (!ea_quant_can_decode(t->type))
            return ea_error_set(err, EA_EUNSUPPORTED,
                                "model: tensor '%s' has type %s, which this build cannot decode",
                                name, tname);
        break;
    case EA_USE_VECTOR:
        if (t->type != EA_TYPE_F32)
            return ea_error_set(err, EA_EUNSUPPORTED,
                                "model: tensor '%s' has type %s; 1-D tensors must be F32", name,
                                tname);
        break;
    }
    *out = t;
    return EA_OK;
}

ea_status ea__bind_std_layer(ea_model *m, uint32_t l, struct ea__layer *ly, struct ea_error *err)
{
    const struct ea_model_info *h = &m->info;
    uint64_t e = h->n_embd, qd = (uint64_t)h->n_head * h->head_dim,
             kvd = (uint64_t)h->n_head_kv * h->head_dim;
    char n[EA_GGUF_MAX_NAME];
    ea_status s;
#define BIND(field, suffix, a, b, use)                                                     \
    do {                                                                                   \
        snprintf(n, sizeof n, "blk.%u.%s", l, suffix);                                     \
        if ((s = ea__bind_tensor(m, n, a, b, use, false, &ly->field, err)))                \
            return s;                                                                      \
    } while (0)
    BIND(attn_norm, "attn_norm.weight", e, 0, EA_USE_VECTOR);
    BIND(wq.t, "attn_q.weight", e, qd, EA_USE_MATMUL);
    BIND(wk.t, "attn_k.weight", e, kvd, EA_USE_MATMUL);
    BIND(wv.t, "attn_v.weight", e, kvd, EA_USE_MATMUL);
    BIND(wo.t, "attn_output.weight", qd, e, EA_USE_MATMUL);
    BIND(ffn_norm, "ffn_norm.weight", e, 0, EA_USE_VECTOR);
    BIND(w_gate.t, "ffn_gate.weight", e, h->n_ff, EA_USE_MATMUL);
    BIND(w_up.t, "ffn_up.weight", e, h->n_ff, EA_USE_MATMUL);
    BIND(w_down.t, "ffn_down.weight", h->n_ff, e, EA_USE_MATMUL);
#undef BIND
    return EA_OK;
}

static ea_status get_u32(const ea_model *m, const char *suffix, uint32_t *out, bool required,
                         uint32_t def, struct ea_error *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", m->info.arch, suffix);
    ea_status s = ea_gguf_get_u32(m->gguf, key, out, err);
    if (s == EA_ENOTFOUND && !required) {
        *out = def;
        return EA_OK;
    }
    if (s)
        return ea_error_prefix(err, "model");
    return EA_OK;
}

static ea_status get_f32(const ea_model *m, const char *suffix, float *out, bool required,
                         float def, struct ea_error *err)
{
    char key[128];
    double v;
    snprintf(key, sizeof key, "%s.%s", m->info.arch, suffix);
    ea_status s = ea_gguf_get_f64(m->gguf, key, &v, err);
    if (s == EA_ENOTFOUND && !required) {
        *out = def;
        return EA_OK;
    }
    if (s)
        return ea_error_prefix(err, "model");
    *out = (float)v;
    return EA_OK;
}

static ea_status read_hparams(ea_model *m, struct ea_error *err)
{
    struct ea_model_info *h = &m->info;
    ea_status s;
    if ((s = get_u32(m, "block_count", &h->n_layer, true, 0, err)) ||
        (s = get_u32(m, "embedding_length", &h->n_embd, true, 0, err)) ||
        (s = get_u32(m, "feed_forward_length", &h->n_ff, true, 0, err)) ||
        (s = get_u32(m, "attention.head_count", &h->n_head, true, 0, err)) ||
        (s = get_u32(m, "attention.head_count_kv", &h->n_head_kv, false, h->n_head, err)) ||
        (s = get_u32(m, "context_length", &h->n_ctx_train, false, 2048, err)) ||
        (s = get_f32(m, "rope.freq_base", &h->rope_base, false, 10000.0f, err)) ||
        (s = get_f32(m, "attention.layer_norm_rms_epsilon", &h->rms_eps, true, 0, err)))
        return s;
    if (h->n_layer == 0 || h->n_layer > 1024 || h->n_embd == 0 || h->n_embd > 65536 ||
        h->n_ff == 0 || h->n_ff > 1u << 20 || h->n_head == 0 || h->n_head > 1024)
        return ea_error_set(err, EA_EFORMAT,
                            "model: implausible hyper-parameters (layers %u, n_embd %u, n_ff %u, "
                            "heads %u)",
                            h->n_layer, h->n_embd, h->n_ff, h->n_head);
    if (h->n_head_kv == 0 || h->n_head % h->n_head_kv != 0)
        return ea_error_set(err, EA_EFORMAT,
                            "model: %u attention heads cannot be grouped over %u KV heads",
                            h->n_head, h->n_head_kv);
    uint32_t def_hd = h->n_embd % h->n_head == 0 ? h->n_embd / h->n_head : 0;
    if ((s = get_u32(m, "attention.key_length", &h->head_dim, def_hd == 0, def_hd, err)))
        return s;
    uint32_t vlen;
    if ((s = get_u32(m, "attention.value_length", &vlen, false, h->head_dim, err)))
        return s;
    if (vlen != h->head_dim)
        return ea_error_set(err, EA_EUNSUPPORTED,
                            "model: key length %u differs from value length %u", h->head_dim,
                            vlen);
    if (h->head_dim == 0 || h->head_dim > 1024 || h->head_dim % 2)
        return ea_error_set(err, EA_EFORMAT, "model: head dimension %u is not usable",
                            h->head_dim);
    if ((s = get_u32(m, "rope.dimension_count", &h->n_rot, false, h->head_dim, err)))
        return s;
    if (h->n_rot == 0 || h->n_rot > h->head_dim || h->n_rot % 2)
        return ea_error_set(err, EA_EFORMAT,
                            "model: rope dimension %u does not fit head dimension %u", h->n_rot,
                            h->head_dim);
    if (!(h->rms_eps > 0 && h->rms_eps < 1) || !(h->rope_base > 0) || !isfinite(h->rope_base))
        return ea_error_set(err, EA_EFORMAT, "model: bad rms epsilon %g or rope base %g",
                            h->rms_eps, h->rope_base);
    return EA_OK;
}

static ea_status bind_globals(ea_model *m, struct ea_error *err)
{
    struct ea_model_info *h = &m->info;
    const struct ea_gguf_tensor *t = ea_gguf_find_tensor(m->gguf, "token_embd.weight");
    if (!t)
        return ea_error_set(err, EA_EFORMAT, "model: required tensor 'token_embd.weight' is missing");
    if (t->ne[1] == 0 || t->ne[1] > (1u << 24))
        return ea_error_set(err, EA_EFORMAT, "model: token_embd.weight has %" PRIu64 " rows",
                            t->ne[1]);
    h->n_vocab = (uint32_t)t->ne[1];
    ea_status s;
    if ((s = ea__bind_tensor(m, "token_embd.weight", h->n_embd, h->n_vocab, EA_USE_EMBED, false,
                             &m->tok_embd, err)) ||
        (s = ea__bind_tensor(m, "output_norm.weight", h->n_embd, 0, EA_USE_VECTOR, false,
                             &m->output_norm, err)) ||
        (s = ea__bind_tensor(m, "output.weight", h->n_embd, h->n_vocab, EA_USE_MATMUL, true,
                             &m->output.t, err)))
        return s;
    if (!m->output.t) {
        /* tied embeddings: the output projection reads token_embd */
        h->tied_embeddings = true;
        if ((s = ea__bind_tensor(m, "token_embd.weight", h->n_embd, h->n_vocab, EA_USE_MATMUL,
                                 false, &m->output.t, err)))
            return s;
    }
    const struct ea_gguf_tensor *rf;
    if ((s = ea__bind_tensor(m, "rope_freqs.weight", h->n_rot / 2, 0, EA_USE_VECTOR, true, &rf,
                             err)))
        return s;
    uint32_t half = h->n_rot / 2;
    m->rope_inv_freq = ea_malloc(half * sizeof *m->rope_inv_freq);
    if (!m->rope_inv_freq)
        return ea_error_set(err, EA_ENOMEM, "model: out of memory");
    for (uint32_t i = 0; i < half; i++) {
        double f = pow((double)h->rope_base, -2.0 * i / (double)h->n_rot);
        if (rf) {
            float div;
            memcpy(&div, (const char *)rf->data + 4 * i, 4);
            if (!(div > 0) || !isfinite(div))
                return ea_error_set(err, EA_EFORMAT,
                                    "model: rope_freqs.weight[%u] = %g is not a positive number",
                                    i, div);
            f /= div;
        }
        m->rope_inv_freq[i] = f;
    }
    return EA_OK;
}

ea_status ea_model_load(const char *path, const struct ea_model_load_params *params,
                        ea_model **out, struct ea_error *err)
{
    *out = NULL;
    ea_model *m = ea_calloc(1, sizeof *m);
    if (!m)
        return ea_error_set(err, EA_ENOMEM, "model: out of memory");
    pthread_mutex_init(&m->pack.lock, NULL);
    pthread_mutex_init(&m->pack.join_lock, NULL);
    pthread_cond_init(&m->pack.cond, NULL);
    ea_status s = ea_gguf_open(path, &m->gguf, err);
    if (s)
        goto fail;
    struct ea_gguf_str arch;
    if ((s = ea_gguf_get_str(m->gguf, "general.architecture", &arch, err)))
        goto fail_prefix;
    for (size_t i = 0; i < sizeof arches / sizeof arches[0]; i++)
        if (ea_gguf_str_eq(arch, arches[i]->name))
            m->arch = arches[i];
    if (!m->arch) {
        s = ea_error_set(err, EA_EUNSUPPORTED,
                         "model: architecture '%.*s' is not supported (llama, qwen2, qwen3 are)",
                         (int)(arch.len > 40 ? 40 : arch.len), arch.ptr);
        goto fail_prefix;
    }
    snprintf(m->info.arch, sizeof m->info.arch, "%s", m->arch->name);
    m->info.rope_neox = m->arch->rope_neox;
    struct ea_gguf_str name;
    if (ea_gguf_get_str(m->gguf, "general.name", &name, NULL) == EA_OK)
        snprintf(m->info.name, sizeof m->info.name, "%.*s", (int)(name.len > 90 ? 90 : name.len),
                 name.ptr);
    else {
        const char *base = strrchr(path, '/');
        snprintf(m->info.name, sizeof m->info.name, "%s", base ? base + 1 : path);
    }
    if ((s = read_hparams(m, err)) || (s = bind_globals(m, err)))
        goto fail_prefix;
    m->layers = ea_calloc(m->info.n_layer, sizeof *m->layers);
    if (!m->layers) {
        s = ea_error_set(err, EA_ENOMEM, "model: out of memory");
        goto fail_prefix;
    }
    for (uint32_t l = 0; l < m->info.n_layer; l++)
        if ((s = m->arch->bind_layer(m, l, &m->layers[l], err)))
            goto fail_prefix;
    /* size facts and the dominant weight type */
    uint64_t bytes_by_type[EA_TYPE_ID_LIMIT] = {0};
    for (uint64_t i = 0; i < ea_gguf_n_tensors(m->gguf); i++) {
        const struct ea_gguf_tensor *t = ea_gguf_tensor_at(m->gguf, i);
        m->info.n_params += t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        m->info.weight_bytes += t->size;
        if (t->n_dims >= 2)
            bytes_by_type[t->type] += t->size;
    }
    for (uint32_t t = 0; t < EA_TYPE_ID_LIMIT; t++)
        if (bytes_by_type[t] > bytes_by_type[m->info.file_type_major])
            m->info.file_type_major = t;
    int nt = params && params->n_threads > 0 ? params->n_threads : ea__cpu_count();
    if ((s = ea__pool_create(nt, &m->pool, err)))
        goto fail_prefix;
    if (!(params && params->no_repack) && (s = ea__pack_start(m, err)))
        goto fail_prefix;
    *out = m;
    return EA_OK;
fail_prefix:
    ea_error_prefix(err, "%s", path);
fail:
    ea_model_destroy(m);
    return s;
}

void ea__scratch_release(struct ea__scratch *s);

void ea_model_destroy(ea_model *m)
{
    if (!m)
        return;
    ea__pack_release(m); /* before the mapping it reads goes */
    ea__pool_destroy(m->pool);
    ea__scratch_release(&m->s);
    ea_free(m->layers);
    ea_free(m->rope_inv_freq);
    ea_gguf_close(m->gguf);
    ea_free(m);
}

const struct ea_model_info *ea_model_get_info(const ea_model *m) { return &m->info; }
const struct ea_gguf *ea_model_gguf(const ea_model *m) { return m->gguf; }
int ea_model_threads(const ea_model *m) { return ea__pool_size(m->pool); }

uint64_t ea_model_shared_attention_tiles(const ea_model *m) { return m->n_att_shared_tiles; }
