/* gen_model.c - `gen-model`: deterministic random-weight GGUF models with the
 * tensor names, shapes and metadata of real models (see presets.c).
 *
 * Every value is a pure function of (seed, tensor name, row, column), so the
 * file is byte-identical for the same arguments however it is chunked.
 * Weight scale follows ../shared/reference's recipe: std gain/sqrt(fan_in),
 * gain 1.5 for attn_q/attn_k and 0.5 elsewhere; norms 1 + 0.1 N(0,1); so
 * that outputs are spread but informative.
 * Does not hold: quantization (kernels.h provides the row encoders).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "edgeagent/gguf.h"
#include "edgeagent/model.h"
#include "edgeagent/kernels.h"
#include "model/model_int.h"

enum fill_kind { FILL_GAUSS, FILL_NORM, FILL_ROPE_FREQS };

struct gen_tensor {
    char name[EA_GGUF_MAX_NAME];
    uint32_t type;
    uint32_t n_dims;
    uint64_t ne[2];
    enum fill_kind kind;
    float std;
    uint64_t stream; /* seed ^ hash(name) */
    const struct ea_model_preset *p;
    float *row_f32;  /* scratch of ne[0] floats, owned by the generator */
};

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

/* Approximately normal values: each is the sum of four 16-bit uniforms from
 * one 64-bit hash (Irwin-Hall, rescaled to unit variance). Integer work
 * only, so it is fast everywhere (including under emulation); the tails are
 * bounded at +-3.46 std, which random test weights do not miss. */
static void gauss_row(uint64_t stream, uint64_t row, uint64_t n, float std, float *out)
{
    const float scale = std * 1.7320508f / 65536.0f; /* sqrt(3) / 2^16 */
    uint64_t base = stream + row * 0xD1B54A32D192ED03ull;
    for (uint64_t k = 0; k < n; k++) {
        uint64_t h = mix64(base + k * 0x9E3779B97F4A7C15ull);
        int64_t sum = (int64_t)(h & 0xFFFF) + (int64_t)((h >> 16) & 0xFFFF) +
                      (int64_t)((h >> 32) & 0xFFFF) + (int64_t)(h >> 48) - 2 * 65535;
        out[k] = (float)sum * scale;
    }
}

/* Llama 3.1 rope scaling: per-pair frequency divisors. */
static float llama3_rope_factor(const struct ea_model_preset *p, uint64_t i)
{
    double n_rot = p->head_dim;
    double freq = pow(p->rope_base, -2.0 * (double)i / n_rot);
    double wavelen = 2.0 * 3.141592653589793 / freq;
    double low_wavelen = p->rope_orig_ctx / p->rope_low_freq;
    double high_wavelen = p->rope_orig_ctx / p->rope_high_freq;
    if (wavelen < high_wavelen)
        return 1.0f;
    if (wavelen > low_wavelen)
        return p->rope_factor;
    double smooth = (p->rope_orig_ctx / wavelen - p->rope_low_freq) /
                    (p->rope_high_freq - p->rope_low_freq);
    return (float)(1.0 / ((1.0 - smooth) / p->rope_factor + smooth));
}

static ea_status fill_rows(void *ctx, uint64_t row0, uint64_t n_rows, void *dst,
                           struct ea_error *err)
{
    struct gen_tensor *t = ctx;
    uint64_t n = t->ne[0];
    uint64_t row_bytes;
    ea_type_bytes(t->type, n, &row_bytes);
    for (uint64_t r = 0; r < n_rows; r++) {
        float *row = t->row_f32;
        switch (t->kind) {
        case FILL_GAUSS: gauss_row(t->stream, row0 + r, n, t->std, row); break;
        case FILL_NORM:
            gauss_row(t->stream, row0 + r, n, 0.1f, row);
            for (uint64_t k = 0; k < n; k++)
                row[k] += 1.0f;
            break;
        case FILL_ROPE_FREQS:
            for (uint64_t k = 0; k < n; k++)
                row[k] = llama3_rope_factor(t->p, k);
            break;
        }
        ea_status s = ea_quant_from_f32(t->type, row, (uint8_t *)dst + r * row_bytes, (int64_t)n,
                                        err);
        if (s)
            return s;
    }
    return EA_OK;
}

struct gen {
    const struct ea_model_preset *p;
    const struct ea_gen_params *params;
    uint32_t n_vocab;
    struct gen_tensor *tensors;
    uint32_t n_tensors, cap;
};

static ea_status add(struct gen *g, const char *name, uint32_t type, uint64_t ne0, uint64_t ne1,
                     enum fill_kind kind, float std)
{
    if (g->n_tensors == g->cap)
        return EA_EINTERNAL;
    struct gen_tensor *t = &g->tensors[g->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = type;
    t->n_dims = ne1 > 1 ? 2 : 1;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->kind = kind;
    t->std = std;
    t->stream = mix64(g->params->seed ^ hash_str(name));
    t->p = g->p;
    return EA_OK;
}

static ea_status write_builtin_vocab(ea_gguf_writer *w, const struct ea_model_preset *p,
                                     struct ea__builtin_vocab *v, struct ea_error *err)
{
    ea_status s = ea__builtin_vocab_build(p, v, err);
    if (s)
        return s;
    struct ea_gguf_str *strs = ea_malloc((v->n_tokens + 1) * sizeof *strs);
    if (!strs)
        return ea_error_set(err, EA_ENOMEM, "gen-model: out of memory");
    for (uint32_t i = 0; i < v->n_tokens; i++)
        strs[i] = (struct ea_gguf_str){v->tokens[i], strlen(v->tokens[i])};
    ea_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2");
    ea_gguf_writer_add_str(w, "tokenizer.ggml.pre", p->tokenizer_pre);
    ea_gguf_writer_add_str_arr(w, "tokenizer.ggml.tokens", v->n_tokens, strs);
    ea_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", EA_GGUF_INT32, v->n_tokens, v->types);
    for (uint32_t i = 0; i < v->n_merges; i++)
        strs[i] = (struct ea_gguf_str){v->merges[i], strlen(v->merges[i])};
    ea_gguf_writer_add_str_arr(w, "tokenizer.ggml.merges", v->n_merges, strs);
    ea_free(strs);
    if (v->bos >= 0)
        ea_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)v->bos);
    if (v->eos >= 0)
        ea_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)v->eos);
    if (v->unk >= 0)
        ea_gguf_writer_add_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)v->unk);
    if (v->pad >= 0)
        ea_gguf_writer_add_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)v->pad);
    ea_gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", v->add_bos);
    ea_gguf_writer_add_bool(w, "tokenizer.ggml.add_eos_token", false);
    ea_gguf_writer_add_str(w, "tokenizer.chat_template", v->chat_template);
    return EA_OK;
}

static ea_status copy_vocab(ea_gguf_writer *w, const char *path, uint32_t *n_vocab,
                            ea_gguf **keep, struct ea_error *err)
{
    ea_status s = ea_gguf_open(path, keep, err);
    if (s)
        return ea_error_prefix(err, "gen-model: --vocab");
    const struct ea_gguf_value *tokens;
    if ((s = ea_gguf_get_arr(*keep, "tokenizer.ggml.tokens", EA_GGUF_STRING, &tokens, err)))
        return ea_error_prefix(err, "gen-model: --vocab %s", path);
    if (tokens->v.arr.n == 0 || tokens->v.arr.n > (1u << 24))
        return ea_error_set(err, EA_EFORMAT, "gen-model: --vocab %s has %" PRIu64 " tokens", path,
                            tokens->v.arr.n);
    *n_vocab = (uint32_t)tokens->v.arr.n;
    for (uint64_t i = 0; i < ea_gguf_n_kv(*keep); i++) {
        const struct ea_gguf_kv *kv = ea_gguf_kv_at(*keep, i);
        if (strncmp(kv->key, "tokenizer.", 10) == 0 &&
            (s = ea_gguf_writer_add_value(w, kv->key, &kv->value)))
            return ea_error_set(err, s, "gen-model: copying %s", kv->key);
    }
    return EA_OK;
}

ea_status ea_model_generate(const struct ea_gen_params *params, const char *out_path,
                            struct ea_error *err)
{
    const struct ea_model_preset *p = ea_model_preset_find(params->preset);
    if (!p) {
        char names[256] = "";
        for (unsigned i = 0; ea_model_preset_at(i); i++) {
            strncat(names, i ? ", " : "", sizeof names - strlen(names) - 1);
            strncat(names, ea_model_preset_at(i)->name, sizeof names - strlen(names) - 1);
        }
        return ea_error_set(err, EA_EINVAL, "gen-model: unknown preset '%s' (known: %s)",
                            params->preset ? params->preset : "", names);
    }
    const struct ea_ftype *ft = ea_ftype_find(params->ftype);
    if (!ft)
        return ea_error_set(err, EA_EUNSUPPORTED, "gen-model: unknown type '%s'",
                            params->ftype ? params->ftype : "");
    ea_status s = EA_OK;
    struct ea__builtin_vocab vocab = {0};
    ea_gguf *vocab_file = NULL;
    struct gen g = {p, params, p->n_vocab, NULL, 0, 0};
    ea_gguf_writer *w = ea_gguf_writer_create();
    if (!w)
        return ea_error_set(err, EA_ENOMEM, "gen-model: out of memory");

    const char *a = p->arch;
    char key[128];
#define K(suffix) (snprintf(key, sizeof key, "%s.%s", a, suffix), key)
    ea_gguf_writer_add_str(w, "general.architecture", a);
    ea_gguf_writer_add_str(w, "general.type", "model");
    ea_gguf_writer_add_str(w, "general.name", p->display_name);
    ea_gguf_writer_add_str(w, "general.size_label", p->size_label);
    ea_gguf_writer_add_u32(w, "general.file_type", ft->file_type);
    ea_gguf_writer_add_u32(w, "general.quantization_version", 2);
    ea_gguf_writer_add_str(w, "edgeagent.gen_model.preset", p->name);
    ea_gguf_writer_add_u64(w, "edgeagent.gen_model.seed", params->seed);
    ea_gguf_writer_add_u32(w, K("block_count"), p->n_layer);
    ea_gguf_writer_add_u32(w, K("context_length"), p->n_ctx);
    ea_gguf_writer_add_u32(w, K("embedding_length"), p->n_embd);
    ea_gguf_writer_add_u32(w, K("feed_forward_length"), p->n_ff);
    ea_gguf_writer_add_u32(w, K("attention.head_count"), p->n_head);
    ea_gguf_writer_add_u32(w, K("attention.head_count_kv"), p->n_head_kv);
    ea_gguf_writer_add_f32(w, K("rope.freq_base"), p->rope_base);
    ea_gguf_writer_add_f32(w, K("attention.layer_norm_rms_epsilon"), p->rms_eps);
    ea_gguf_writer_add_u32(w, K("attention.key_length"), p->head_dim);
    ea_gguf_writer_add_u32(w, K("attention.value_length"), p->head_dim);
    ea_gguf_writer_add_u32(w, K("rope.dimension_count"), p->head_dim);

    if (params->vocab_path)
        s = copy_vocab(w, params->vocab_path, &g.n_vocab, &vocab_file, err);
    else
        s = write_builtin_vocab(w, p, &vocab, err);
    if (s)
        goto out;
    ea_gguf_writer_add_u32(w, K("vocab_size"), g.n_vocab);
#undef K

    g.cap = 16 + p->n_layer * 16;
    g.tensors = ea_calloc(g.cap, sizeof *g.tensors);
    if (!g.tensors) {
        s = ea_error_set(err, EA_ENOMEM, "gen-model: out of memory");
        goto out;
    }
    uint32_t wt = ft->base_type, e = p->n_embd, qd = p->n_head * p->head_dim,
             kvd = p->n_head_kv * p->head_dim;
    float emb_std = p->tied_embeddings ? 3.0f / sqrtf((float)e) : 1.0f;
    if (p->rope_factor > 0)
        add(&g, "rope_freqs.weight", EA_TYPE_F32, p->head_dim / 2, 1, FILL_ROPE_FREQS, 0);
    add(&g, "token_embd.weight", wt, e, g.n_vocab, FILL_GAUSS, emb_std);
    add(&g, "output_norm.weight", EA_TYPE_F32, e, 1, FILL_NORM, 0);
    if (!p->tied_embeddings)
        add(&g, "output.weight", wt, e, g.n_vocab, FILL_GAUSS, 4.0f / sqrtf((float)e));
    for (uint32_t l = 0; l < p->n_layer; l++) {
        char n[EA_GGUF_MAX_NAME];
#define B(suffix) (snprintf(n, sizeof n, "blk.%u.%s", l, suffix), n)
        add(&g, B("attn_norm.weight"), EA_TYPE_F32, e, 1, FILL_NORM, 0);
        add(&g, B("attn_q.weight"), wt, e, qd, FILL_GAUSS, 1.5f / sqrtf((float)e));
        add(&g, B("attn_k.weight"), wt, e, kvd, FILL_GAUSS, 1.5f / sqrtf((float)e));
        add(&g, B("attn_v.weight"), wt, e, kvd, FILL_GAUSS, 0.5f / sqrtf((float)e));
        if (p->qkv_bias) {
            add(&g, B("attn_q.bias"), EA_TYPE_F32, qd, 1, FILL_GAUSS, 0.2f);
            add(&g, B("attn_k.bias"), EA_TYPE_F32, kvd, 1, FILL_GAUSS, 0.2f);
            add(&g, B("attn_v.bias"), EA_TYPE_F32, kvd, 1, FILL_GAUSS, 0.2f);
        }
        if (p->qk_norm) {
            add(&g, B("attn_q_norm.weight"), EA_TYPE_F32, p->head_dim, 1, FILL_NORM, 0);
            add(&g, B("attn_k_norm.weight"), EA_TYPE_F32, p->head_dim, 1, FILL_NORM, 0);
        }
        add(&g, B("attn_output.weight"), wt, qd, e, FILL_GAUSS, 0.5f / sqrtf((float)qd));
        add(&g, B("ffn_norm.weight"), EA_TYPE_F32, e, 1, FILL_NORM, 0);
        add(&g, B("ffn_gate.weight"), wt, e, p->n_ff, FILL_GAUSS, 0.5f / sqrtf((float)e));
        add(&g, B("ffn_up.weight"), wt, e, p->n_ff, FILL_GAUSS, 0.5f / sqrtf((float)e));
        add(&g, B("ffn_down.weight"), wt, p->n_ff, e, FILL_GAUSS, 0.5f / sqrtf((float)p->n_ff));
#undef B
    }
    for (uint32_t i = 0; i < g.n_tensors; i++) {
        struct gen_tensor *t = &g.tensors[i];
        int layer = -1;
        sscanf(t->name, "blk.%d.", &layer);
        t->type = ea_ftype_tensor_type(ft, false, t->name, t->type, t->ne[0], t->n_dims,
                                       p->tied_embeddings, layer, p->n_layer,
                                       p->n_head / p->n_head_kv);
        if (t->ne[0] % ea_type_info(t->type)->block_size != 0) {
            s = ea_error_set(err, EA_EINVAL,
                             "gen-model: tensor '%s' has rows of %" PRIu64
                             ", not a multiple of the %s block size",
                             t->name, t->ne[0], ea_type_info(t->type)->name);
            goto out;
        }
        if (!(t->row_f32 = ea_malloc(t->ne[0] * sizeof(float)))) {
            s = ea_error_set(err, EA_ENOMEM, "gen-model: out of memory");
            goto out;
        }
        if ((s = ea_gguf_writer_add_tensor_fill(w, t->name, t->type, t->n_dims, t->ne, fill_rows,
                                                t))) {
            ea_error_set(err, s, "gen-model: adding tensor '%s'", t->name);
            goto out;
        }
    }
    s = ea_gguf_writer_write_file(w, out_path, err);
out:
    if (g.tensors)
        for (uint32_t i = 0; i < g.n_tensors; i++)
            ea_free(g.tensors[i].row_f32);
    ea_free(g.tensors);
    ea_gguf_writer_destroy(w);
    ea_gguf_close(vocab_file);
    ea__builtin_vocab_release(&vocab);
    return s;
}
