/* forward.c - ea_model_forward: validates a batch, lays its tokens out as
 * rows (position and segment per row), embeds them, runs the layers of the
 * architecture and projects the requested rows to logits. Scratch buffers
 * live in the model and grow to the largest batch seen (capped).
 * Does not hold: layer math (blocks.c, arch_*.c).
 */
#include <inttypes.h>
#include <string.h>

#include "model/model_int.h"

#define MAX_BATCH_TOKENS 16384

void ea__scratch_release(struct ea__scratch *s)
{
    void *ptrs[] = {s->x, s->h, s->q, s->k, s->v, s->att, s->gate, s->up, s->tmp, s->act,
                    s->scores, s->row_pos, s->row_seg, s->tile_row, s->tile_cost, s->rope_cs};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++)
        ea_free(ptrs[i]);
    memset(s, 0, sizeof *s);
}

static ea_status scratch_ensure(ea_model *m, int64_t T, int64_t max_ctx, struct ea_error *err)
{
    struct ea__scratch *s = &m->s;
    const struct ea_model_info *h = &m->info;
    int nth = ea__pool_size(m->pool) * EA__PARTS_PER_THREAD; /* attention parts */
    if (T > s->cap_tokens) {
        struct ea__scratch n = {0};
        int64_t qd = (int64_t)h->n_head * h->head_dim, kvd = (int64_t)h->n_head_kv * h->head_dim;
        int64_t widest = h->n_embd;
        if (h->n_ff > widest)
            widest = h->n_ff;
        if (qd > widest)
            widest = qd;
        n.cap_tokens = T;
        n.x = ea_malloc(sizeof(float) * T * h->n_embd);
        n.h = ea_malloc(sizeof(float) * T * h->n_embd);
        n.tmp = ea_malloc(sizeof(float) * T * h->n_embd);
        n.q = ea_malloc(sizeof(float) * T * qd);
        n.att = ea_malloc(sizeof(float) * T * qd);
        n.k = ea_malloc(sizeof(float) * T * kvd);
        n.v = ea_malloc(sizeof(float) * T * kvd);
        n.gate = ea_malloc(sizeof(float) * T * h->n_ff);
        n.up = ea_malloc(sizeof(float) * T * h->n_ff);
        /* up to 4 conversions of T rows of the widest input, f32 worst case */
        n.act_bytes = (size_t)4 * T * widest * sizeof(float) + 4 * 64;
        n.act = ea_malloc(n.act_bytes);
        n.row_pos = ea_malloc(sizeof(int32_t) * T);
        n.row_seg = ea_malloc(sizeof(int32_t) * T);
        n.tile_row = ea_malloc(sizeof(int32_t) * (T + 1));
        n.tile_cost = ea_malloc(sizeof(int64_t) * (T + 1));
        n.rope_cs = ea_malloc(sizeof(float) * T * h->n_rot);
        if (!n.x || !n.h || !n.tmp || !n.q || !n.att || !n.k || !n.v || !n.gate || !n.up ||
            !n.act || !n.row_pos || !n.row_seg || !n.tile_row || !n.tile_cost || !n.rope_cs) {
            ea__scratch_release(&n);
            return ea_error_set(err, EA_ENOMEM, "model: out of memory for a %" PRId64
                                                "-token batch", T);
        }
        n.scores = s->scores;
        n.scores_per_thread = s->scores_per_thread;
        n.scores_parts = s->scores_parts;
        s->scores = NULL;
        ea__scratch_release(s);
        *s = n;
    }
    /* attention, per part: a tile's working set (F16 stores) or one head's
     * scores over the context (F32 and Q8_0 stores) */
    if (max_ctx < ea__att_tile_floats(h))
        max_ctx = ea__att_tile_floats(h);
    if (max_ctx > s->scores_per_thread) {
        float *sc = ea_malloc(sizeof(float) * (size_t)max_ctx * nth);
        if (!sc)
            return ea_error_set(err, EA_ENOMEM, "model: out of memory for a %" PRId64
                                                "-token context", max_ctx);
        ea_free(s->scores);
        s->scores = sc;
        s->scores_per_thread = max_ctx;
        s->scores_parts = nth;
    }
    return EA_OK;
}

int64_t ea_batch_n_logits(const struct ea_batch *b)
{
    int64_t n = 0;
    for (int32_t i = 0; i < b->n_segs; i++) {
        const struct ea_batch_seg *g = &b->segs[i];
        if (g->logits == EA_LOGITS_ALL)
            n += g->n_new;
        else if (g->logits == EA_LOGITS_LAST && g->n_new > 0)
            n += 1;
    }
    return n;
}

static void embed(ea_model *m, const int32_t *tokens, int64_t n, float *x)
{
    const struct ea_gguf_tensor *t = m->tok_embd;
    uint64_t row_bytes;
    ea_type_bytes(t->type, t->ne[0], &row_bytes);
    for (int64_t i = 0; i < n; i++)
        ea_quant_to_f32(t->type, (const char *)t->data + (size_t)tokens[i] * row_bytes,
                        x + i * m->info.n_embd, (int64_t)m->info.n_embd, NULL);
}

ea_status ea_model_forward(ea_model *m, const struct ea_kv_store *kv, const struct ea_batch *b,
                           float *logits, struct ea_error *err)
{
    const struct ea_model_info *h = &m->info;
    if (!kv || !b || b->n_segs < 0 || (b->n_segs > 0 && !b->segs))
        return ea_error_set(err, EA_EINVAL, "forward: missing KV store or batch");
    if (kv->type != EA_TYPE_F16 && kv->type != EA_TYPE_F32 && kv->type != EA_TYPE_Q8_0)
        return ea_error_set(err, EA_EUNSUPPORTED, "forward: KV type %u is not supported",
                            kv->type);
    if (kv->type == EA_TYPE_Q8_0 && h->head_dim % 32 != 0)
        return ea_error_set(err, EA_EUNSUPPORTED,
                            "forward: a Q8_0 KV cache needs a head dimension that is a multiple of 32 (%u)",
                            h->head_dim);
    int64_t T = 0, max_ctx = 0;
    for (int32_t i = 0; i < b->n_segs; i++) {
        const struct ea_batch_seg *g = &b->segs[i];
        if (g->n_new < 0 || g->n_past < 0 || (g->n_new > 0 && (!g->tokens || !g->block_table)))
            return ea_error_set(err, EA_EINVAL, "forward: segment %d is malformed", i);
        int64_t end = (int64_t)g->n_past + g->n_new;
        if (end > h->n_ctx_train)
            return ea_error_set(err, EA_ERANGE,
                                "forward: segment %d reaches position %" PRId64
                                ", past the model's %u-token context",
                                i, end, h->n_ctx_train);
        int64_t n_blocks_used = (end + kv->block_size - 1) / kv->block_size;
        for (int64_t j = 0; j < n_blocks_used && g->n_new > 0; j++)
            if (g->block_table[j] < 0 || (uint32_t)g->block_table[j] >= kv->n_blocks)
                return ea_error_set(err, EA_EINVAL,
                                    "forward: segment %d block table entry %" PRId64
                                    " = %d is outside the %u-block store",
                                    i, j, g->block_table[j], kv->n_blocks);
        for (int32_t j = 0; j < g->n_new; j++)
            if (g->tokens[j] < 0 || (uint32_t)g->tokens[j] >= h->n_vocab)
                return ea_error_set(err, EA_EINVAL,
                                    "forward: token id %d is outside the %u-token vocabulary",
                                    g->tokens[j], h->n_vocab);
        T += g->n_new;
        if (end > max_ctx)
            max_ctx = end;
    }
    if (T == 0)
        return EA_OK;
    if (T > MAX_BATCH_TOKENS)
        return ea_error_set(err, EA_ETOOBIG, "forward: %" PRId64 " tokens exceed the %d-token batch cap",
                            T, MAX_BATCH_TOKENS);
    ea_status s = scratch_ensure(m, T, max_ctx, err);
    if (s)
        return s;
    struct ea__scratch *sc = &m->s;
    int64_t row = 0;
    for (int32_t i = 0; i < b->n_segs; i++) {
        const struct ea_batch_seg *g = &b->segs[i];
        embed(m, g->tokens, g->n_new, sc->x + row * h->n_embd);
        for (int32_t j = 0; j < g->n_new; j++, row++) {
            sc->row_pos[row] = g->n_past + j;
            sc->row_seg[row] = i;
        }
    }
    ea__rope_table(m, T, sc->row_pos, sc->rope_cs);
    struct ea__fwd f = {m, kv, b, T};
    for (uint32_t l = 0; l < h->n_layer; l++)
        m->arch->layer_forward(&f, l);

    /* gather rows that need logits, normalize, project */
    int64_t n_out = 0;
    row = 0;
    for (int32_t i = 0; i < b->n_segs; i++) {
        const struct ea_batch_seg *g = &b->segs[i];
        for (int32_t j = 0; j < g->n_new; j++, row++) {
            bool want = g->logits == EA_LOGITS_ALL || (g->logits == EA_LOGITS_LAST && j == g->n_new - 1);
            if (want) {
                if (n_out != row)
                    memcpy(sc->x + n_out * h->n_embd, sc->x + row * h->n_embd,
                           sizeof(float) * h->n_embd);
                n_out++;
            }
        }
    }
    if (n_out == 0) {
        ea__pack_forward_done(m);
        return EA_OK;
    }
    ea__rmsnorm_rows(&f, sc->x, m->output_norm->data, sc->h, n_out, h->n_embd, h->rms_eps);
    ea__matmul(&f, &m->output, sc->h, n_out, logits);
    ea__pack_forward_done(m);
    return EA_OK;
}
