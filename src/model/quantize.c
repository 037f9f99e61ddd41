/* quantize.c - file types (llama-quantize's names and mixes) and
 * `quantize`: every tensor of a GGUF converted to the type its mix gives,
 * in parallel over rows, streamed to the output file.
 *
 * The mix rules follow llama.cpp's for the non-MoE, non-Falcon models we
 * run (facts from its quantizer): output (and token_embd when tied) get Q6_K
 * (Q8_0 if rows are not whole K-blocks); attn_v and ffn_down get more bits in
 * the first/last eighth and every third layer between (Q4_K_M, Q5_K_M);
 * Q3_K_M and Q2_K raise attn_v, attn_output and ffn_down; a tensor whose
 * rows are not whole blocks of its type falls back to a 32-block type.
 * Does not hold: the block encoders (src/kernels).
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeagent/gguf.h"
#include "edgeagent/kernels.h"
#include "edgeagent/model.h"
#include "util/threadpool.h"

static const struct ea_ftype ftypes[] = {
    {"F32", 0, EA_TYPE_F32},     {"F16", 1, EA_TYPE_F16},     {"BF16", 32, EA_TYPE_BF16},
    {"Q8_0", 7, EA_TYPE_Q8_0},   {"Q4_0", 2, EA_TYPE_Q4_0},   {"Q4_1", 3, EA_TYPE_Q4_1},
    {"Q5_0", 8, EA_TYPE_Q5_0},   {"Q5_1", 9, EA_TYPE_Q5_1},   {"Q2_K", 10, EA_TYPE_Q2_K},
    {"Q3_K_M", 12, EA_TYPE_Q3_K}, {"Q4_K_M", 15, EA_TYPE_Q4_K}, {"Q5_K_M", 17, EA_TYPE_Q5_K},
    {"Q6_K", 18, EA_TYPE_Q6_K},
};

const struct ea_ftype *ea_ftype_at(unsigned i)
{
    return i < sizeof ftypes / sizeof ftypes[0] ? &ftypes[i] : NULL;
}

const struct ea_ftype *ea_ftype_find(const char *name)
{
    for (unsigned i = 0; name && i < sizeof ftypes / sizeof ftypes[0]; i++) {
        const char *a = ftypes[i].name, *b = name;
        while (*a && *b && *a == toupper((unsigned char)*b))
            a++, b++;
        if (!*a && !*b)
            return &ftypes[i];
    }
    return NULL;
}

static bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool is_float_type(uint32_t t) { return t == EA_TYPE_F32 || t == EA_TYPE_F16 || t == EA_TYPE_BF16; }

static uint32_t fallback(uint32_t t, uint64_t ne0)
{
    if (ne0 % ea_type_info(t)->block_size == 0)
        return t;
    uint32_t r;
    switch (t) {
    case EA_TYPE_Q2_K:
    case EA_TYPE_Q3_K: r = EA_TYPE_Q4_0; break;
    case EA_TYPE_Q4_K: r = EA_TYPE_Q5_0; break;
    case EA_TYPE_Q5_K: r = EA_TYPE_Q5_1; break;
    case EA_TYPE_Q6_K: r = EA_TYPE_Q8_0; break;
    default: r = EA_TYPE_F16; break;
    }
    return ne0 % ea_type_info(r)->block_size == 0 ? r : EA_TYPE_F16;
}

uint32_t ea_ftype_tensor_type(const struct ea_ftype *f, bool pure, const char *name,
                              uint32_t src_type, uint64_t ne0, uint32_t n_dims, bool tied,
                              int i_layer, uint32_t n_layer, uint32_t n_gqa)
{
    if (n_dims < 2 || !ends_with(name, "weight") || strstr(name, "_norm.weight"))
        return src_type;
    uint32_t base = f->base_type, t = base;
    if (is_float_type(base))
        return base;
    if (pure)
        return fallback(base, ne0);
    int n = (int)n_layer, i = i_layer;
    const char *ft = f->name;
    bool q2 = !strcmp(ft, "Q2_K"), q3m = !strcmp(ft, "Q3_K_M"), q4m = !strcmp(ft, "Q4_K_M"),
         q5m = !strcmp(ft, "Q5_K_M");
    if (!strcmp(name, "output.weight") || (tied && !strcmp(name, "token_embd.weight"))) {
        if (ne0 % ea_type_info(base)->block_size != 0)
            t = EA_TYPE_Q8_0;
        else if (base != EA_TYPE_Q8_0)
            t = EA_TYPE_Q6_K;
    } else if (!strcmp(name, "token_embd.weight")) {
        t = base;
    } else if (strstr(name, "attn_v.weight")) {
        if (q2)
            t = n_gqa >= 4 ? EA_TYPE_Q4_K : EA_TYPE_Q3_K;
        else if (q3m)
            t = i < 2 ? EA_TYPE_Q5_K : EA_TYPE_Q4_K;
        else if ((q4m || q5m) && use_more_bits(i, n))
            t = EA_TYPE_Q6_K;
    } else if (strstr(name, "ffn_down.weight")) {
        if (q2)
            t = EA_TYPE_Q3_K;
        else if (q3m)
            t = i < n / 16 ? EA_TYPE_Q5_K : EA_TYPE_Q4_K;
        else if ((q4m || q5m) && use_more_bits(i, n))
            t = EA_TYPE_Q6_K;
    } else if (strstr(name, "attn_output.weight")) {
        if (q2)
            t = EA_TYPE_Q3_K;
        else if (q3m)
            t = EA_TYPE_Q4_K;
    }
    return fallback(t, ne0);
}

/* ---- quantize a file -------------------------------------------------------- */

/* Bytes of source tensors converted so far, for the caller's progress. */
struct qprogress {
    const struct ea_quantize_params *p;
    uint64_t done, total;
};

struct qtensor {
    const struct ea_gguf_tensor *src;
    uint32_t type;
    ea_pool *pool;
    struct qprogress *prog;
};

static void advance(struct qprogress *q, uint64_t bytes)
{
    q->done += bytes;
    if (q->p->progress)
        q->p->progress(q->p->progress_ud, q->done, q->total);
}

struct qjob {
    const struct qtensor *t;
    uint64_t row0, n_rows;
    void *dst;
    size_t src_row, dst_row;
    float *scratch; /* per thread: one row of floats */
    ea_status status;
};

static void qworker(void *p, int ith, int nth)
{
    struct qjob *j = p;
    int64_t b, e;
    ea__split((int64_t)j->n_rows, ith, nth, 1, &b, &e);
    uint64_t ne0 = j->t->src->ne[0];
    float *row = j->scratch + (size_t)ith * ne0;
    for (int64_t r = b; r < e; r++) {
        const char *src = (const char *)j->t->src->data + (j->row0 + (uint64_t)r) * j->src_row;
        if (ea_quant_to_f32(j->t->src->type, src, row, (int64_t)ne0, NULL) ||
            ea_quant_from_f32(j->t->type, row, (char *)j->dst + (size_t)r * j->dst_row,
                              (int64_t)ne0, NULL))
            j->status = EA_EINTERNAL;
    }
}

static ea_status fill(void *ctx, uint64_t row0, uint64_t n_rows, void *dst, struct ea_error *err)
{
    const struct qtensor *t = ctx;
    uint64_t src_row, dst_row;
    ea_type_bytes(t->src->type, t->src->ne[0], &src_row);
    ea_type_bytes(t->type, t->src->ne[0], &dst_row);
    if (t->type == t->src->type) {
        memcpy(dst, (const char *)t->src->data + row0 * src_row, (size_t)(n_rows * src_row));
        advance(t->prog, n_rows * src_row);
        return EA_OK;
    }
    int nth = ea__pool_size(t->pool);
    struct qjob j = {t, row0, n_rows, dst, (size_t)src_row, (size_t)dst_row, NULL, EA_OK};
    j.scratch = ea_malloc(sizeof(float) * t->src->ne[0] * (size_t)nth);
    if (!j.scratch)
        return ea_error_set(err, EA_ENOMEM, "quantize: out of memory");
    ea__pool_run(t->pool, qworker, &j);
    ea_free(j.scratch);
    if (j.status)
        return ea_error_set(err, j.status, "quantize: converting %s to %s failed",
                            ea_type_info(t->src->type)->name, ea_type_info(t->type)->name);
    advance(t->prog, n_rows * src_row);
    return EA_OK;
}

static int layer_of(const char *name)
{
    int l;
    return sscanf(name, "blk.%d.", &l) == 1 ? l : -1;
}

ea_status ea_model_quantize(const char *in_path, const char *out_path,
                            const struct ea_quantize_params *p, struct ea_error *err)
{
    const struct ea_ftype *f = ea_ftype_find(p->ftype);
    if (!f)
        return ea_error_set(err, EA_EINVAL, "quantize: unknown type '%s'", p->ftype ? p->ftype : "");
    ea_gguf *g = NULL;
    ea_status s = ea_gguf_open(in_path, &g, err);
    if (s)
        return s;
    ea_gguf_writer *w = ea_gguf_writer_create();
    ea_pool *pool = NULL;
    struct qtensor *qt = ea_calloc(ea_gguf_n_tensors(g) + 1, sizeof *qt);
    if (!w || !qt) {
        s = ea_error_set(err, EA_ENOMEM, "quantize: out of memory");
        goto out;
    }
    if ((s = ea__pool_create(p->n_threads > 0 ? p->n_threads : ea__cpu_count(), &pool, err)))
        goto out;
    struct ea_gguf_str arch;
    char key[96];
    uint32_t n_layer = 0, n_head = 1, n_head_kv = 1;
    if (ea_gguf_get_str(g, "general.architecture", &arch, err) == EA_OK) {
        snprintf(key, sizeof key, "%.*s.block_count", (int)(arch.len > 40 ? 40 : arch.len), arch.ptr);
        ea_gguf_get_u32(g, key, &n_layer, NULL);
        snprintf(key, sizeof key, "%.*s.attention.head_count", (int)(arch.len > 40 ? 40 : arch.len), arch.ptr);
        ea_gguf_get_u32(g, key, &n_head, NULL);
        snprintf(key, sizeof key, "%.*s.attention.head_count_kv", (int)(arch.len > 40 ? 40 : arch.len),
                 arch.ptr);
        ea_gguf_get_u32(g, key, &n_head_kv, NULL);
    }
    uint32_t n_gqa = n_head_kv ? n_head / n_head_kv : 1;
    struct qprogress prog = {p, 0, 0};
    for (uint64_t i = 0; i < ea_gguf_n_tensors(g); i++)
        prog.total += ea_gguf_tensor_at(g, i)->size;
    bool tied = !ea_gguf_find_tensor(g, "output.weight");
    for (uint64_t i = 0; i < ea_gguf_n_kv(g); i++) {
        const struct ea_gguf_kv *kv = ea_gguf_kv_at(g, i);
        if (!strcmp(kv->key, "general.file_type") || !strcmp(kv->key, "general.quantization_version"))
            continue;
        ea_gguf_writer_add_value(w, kv->key, &kv->value);
    }
    ea_gguf_writer_add_u32(w, "general.quantization_version", 2);
    ea_gguf_writer_add_u32(w, "general.file_type", f->file_type);
    for (uint64_t i = 0; i < ea_gguf_n_tensors(g); i++) {
        const struct ea_gguf_tensor *t = ea_gguf_tensor_at(g, i);
        qt[i].src = t;
        qt[i].pool = pool;
        qt[i].prog = &prog;
        qt[i].type = ea_ftype_tensor_type(f, p->pure, t->name, t->type, t->ne[0], t->n_dims, tied,
                                          layer_of(t->name), n_layer, n_gqa);
        if (qt[i].type != t->type &&
            (!ea_quant_can_decode(t->type) || !ea_quant_can_encode(qt[i].type))) {
            s = ea_error_set(err, EA_EUNSUPPORTED, "quantize: tensor '%s': cannot convert %s to %s",
                             t->name, ea_type_info(t->type)->name, ea_type_info(qt[i].type)->name);
            goto out;
        }
        if ((s = ea_gguf_writer_add_tensor_fill(w, t->name, qt[i].type, t->n_dims, t->ne, fill,
                                                &qt[i]))) {
            ea_error_set(err, s, "quantize: tensor '%s'", t->name);
            goto out;
        }
    }
    s = ea_gguf_writer_write_file(w, out_path, err);
out:
    ea__pool_destroy(pool);
    ea_free(qt);
    ea_gguf_writer_destroy(w);
    ea_gguf_close(g);
    return s;
}
