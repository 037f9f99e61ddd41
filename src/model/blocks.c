/* blocks.c - building blocks of the forward pass shared by architectures:
 * RMSNorm, parallel matmul over the kernel table, bias, RoPE, paged causal
 * attention, and the standard pre-norm decoder layer built from them.
 * Does not hold: kernels (src/kernels), batch bookkeeping (forward.c).
 */
#include <math.h>
#include <string.h>

#include "model/model_int.h"
#include "util/fp16.h"

void ea__rmsnorm(const float *x, const float *w, float *y, int64_t n_rows, int64_t width,
                 float eps)
{
    for (int64_t r = 0; r < n_rows; r++) {
        const float *xr = x + r * width;
        float *yr = y + r * width;
        /* 8 float partial sums (the compiler vectorizes them), then double */
        float part[8] = {0};
        int64_t i = 0;
        for (; i + 8 <= width; i += 8)
            for (int l = 0; l < 8; l++)
                part[l] += xr[i + l] * xr[i + l];
        double sum = 0;
        for (int l = 0; l < 8; l++)
            sum += part[l];
        for (; i < width; i++)
            sum += (double)(xr[i] * xr[i]);
        float scale = 1.0f / sqrtf((float)(sum / width) + eps);
        for (i = 0; i < width; i++)
            yr[i] = xr[i] * scale * w[i];
    }
}

/* ---- row-parallel elementwise work (prefill) ------------------------------- */

/* Below this many values a pass over rows runs on the calling thread: the
 * region would cost more than it saves (decode). */
#define PAR_MIN_VALUES (1 << 16)

struct rows_ctx {
    void (*fn)(void *arg, int64_t r0, int64_t r1);
    void *arg;
    int64_t n;
};

static void rows_worker(void *p, int ith, int nth)
{
    struct rows_ctx *c = p;
    int64_t b, e;
    ea__split(c->n, ith, nth, 1, &b, &e);
    if (b < e)
        c->fn(c->arg, b, e);
}

/* fn(arg, r0, r1) over rows [0, n) of `width` values each, split across the
 * pool when the pass is big enough. */
static void parallel_rows(ea_model *m, int64_t n, int64_t width, void (*fn)(void *, int64_t, int64_t), void *arg)
{
    if (n < 2 || n * width < PAR_MIN_VALUES) {
        fn(arg, 0, n);
        return;
    }
    struct rows_ctx c = {fn, arg, n};
    int64_t parts = (int64_t)ea__pool_size(m->pool) * EA__PARTS_PER_THREAD;
    ea__pool_run_parts(m->pool, rows_worker, &c, (int)(parts < n ? parts : n));
}

struct norm_args {
    const float *x, *w;
    float *y;
    int64_t width;
    float eps;
};

static void norm_rows(void *p, int64_t r0, int64_t r1)
{
    struct norm_args *a = p;
    ea__rmsnorm(a->x + r0 * a->width, a->w, a->y + r0 * a->width, r1 - r0, a->width, a->eps);
}

void ea__rmsnorm_rows(struct ea__fwd *f, const float *x, const float *w, float *y, int64_t n_rows, int64_t width,
                      float eps)
{
    struct norm_args a = {x, w, y, width, eps};
    parallel_rows(f->m, n_rows, width, norm_rows, &a);
}

struct silu_args {
    float *g;
    const float *u;
    int64_t width;
};

static void silu_rows(void *p, int64_t r0, int64_t r1)
{
    struct silu_args *a = p;
    ea_kernels_vec()->silu_mul((r1 - r0) * a->width, a->g + r0 * a->width, a->u + r0 * a->width);
}

struct add_args {
    float *x;
    const float *d;
    int64_t width;
};

static void add_rows(void *p, int64_t r0, int64_t r1)
{
    struct add_args *a = p;
    float *restrict x = a->x;
    const float *restrict d = a->d;
    for (int64_t i = r0 * a->width; i < r1 * a->width; i++)
        x[i] += d[i];
}

struct act_args {
    const struct ea_matmul_ops *ops;
    const float *x;
    char *dst;
    int64_t k;
    size_t row_bytes;
};

static void act_rows(void *p, int64_t r0, int64_t r1)
{
    struct act_args *a = p;
    for (int64_t t = r0; t < r1; t++)
        a->ops->quantize_act(a->x + t * a->k, a->dst + (size_t)t * a->row_bytes, a->k);
}

/* ---- matmul ---------------------------------------------------------------- */

#define MM_MAX 4
#define MM_ROW_ALIGN 16 /* rows per split unit: kernels tile a few rows at a time */

struct mm_job {
    const struct ea__mat *w;
    const void *packed; /* w->packed as it was when the call began (or NULL) */
    const struct ea_matmul_ops *ops;
    const void *act;
    size_t act_stride;
    float *y;
    size_t row_bytes;
    int64_t unit;  /* rows per split unit (a packed tile, or MM_ROW_ALIGN) */
    int64_t units; /* split units of this weight */
};

struct mm_ctx {
    int n;
    struct mm_job jobs[MM_MAX];
    int64_t n_tokens;
    int64_t total_units;
};

/* Thread ith takes a contiguous range of the weights' split units (rows of
 * the weights one after the other); a unit never straddles two weights, so
 * packed matrices are entered at a tile boundary. */
static void mm_worker(void *p, int ith, int nth)
{
    struct mm_ctx *c = p;
    int64_t b, e;
    ea__split(c->total_units, ith, nth, 1, &b, &e);
    int64_t base = 0;
    for (int j = 0; j < c->n && b < e; j++) {
        const struct mm_job *jb = &c->jobs[j];
        const struct ea_gguf_tensor *t = jb->w->t;
        int64_t rows = (int64_t)t->ne[1], k = (int64_t)t->ne[0];
        int64_t ulo = b > base ? b - base : 0, uhi = e - base < jb->units ? e - base : jb->units;
        int64_t lo = ulo * jb->unit, hi = uhi * jb->unit < rows ? uhi * jb->unit : rows;
        if (lo < hi) {
            if (jb->packed)
                jb->w->pack->gemm(k, lo, hi - lo, c->n_tokens, jb->packed, jb->act, jb->act_stride,
                                  jb->y + lo, (size_t)rows);
            else
                jb->ops->gemm(k, hi - lo, c->n_tokens, (const char *)t->data + lo * jb->row_bytes,
                              jb->row_bytes, jb->act, jb->act_stride, jb->y + lo, (size_t)rows);
        }
        base += jb->units;
    }
}

void ea__matmul_multi(struct ea__fwd *f, int n, const struct ea__mat *const *ws, const float *x,
                      int64_t n_tokens, float *const *ys)
{
    struct ea__scratch *s = &f->m->s;
    struct mm_ctx c = {.n = n, .n_tokens = n_tokens};
    int64_t k = (int64_t)ws[0]->t->ne[0], total_rows = 0;
    /* one conversion of x per distinct activation type (slots in s->act) */
    uint32_t conv_type[MM_MAX];
    const void *conv_ptr[MM_MAX];
    size_t conv_stride[MM_MAX];
    int n_conv = 0;
    size_t slot_bytes = s->act_bytes / MM_MAX;
    for (int j = 0; j < n; j++) {
        struct mm_job *jb = &c.jobs[j];
        const struct ea_gguf_tensor *t = ws[j]->t;
        jb->w = ws[j];
        jb->ops = ea_kernels_matmul(t->type);
        jb->y = ys[j];
        uint64_t rb;
        ea_type_bytes(t->type, (uint64_t)k, &rb);
        jb->row_bytes = (size_t)rb;
        /* one read for the whole call: the packing thread may publish it meanwhile */
        jb->packed = atomic_load_explicit(&ws[j]->packed, memory_order_acquire);
        jb->unit = jb->packed ? ws[j]->pack->rows : MM_ROW_ALIGN;
        jb->units = ((int64_t)t->ne[1] + jb->unit - 1) / jb->unit;
        int found = -1;
        for (int i = 0; i < n_conv; i++)
            if (conv_type[i] == jb->ops->act_type)
                found = i;
        if (found < 0) {
            found = n_conv++;
            uint64_t ab;
            ea_type_bytes(jb->ops->act_type, (uint64_t)k, &ab);
            char *dst = (char *)s->act + (size_t)found * slot_bytes;
            struct act_args aa = {jb->ops, x, dst, k, (size_t)ab};
            parallel_rows(f->m, n_tokens, k, act_rows, &aa);
            conv_type[found] = jb->ops->act_type;
            conv_ptr[found] = dst;
            conv_stride[found] = (size_t)ab;
        }
        jb->act = conv_ptr[found];
        jb->act_stride = conv_stride[found];
        c.total_units += jb->units;
        total_rows += (int64_t)t->ne[1];
    }
    /* a thread gets at least ~64K multiply-adds per token, or it costs more
     * to wake than it saves; each thread's share comes in a few parts, so
     * that one slowed down by another process is relieved by the others */
    int64_t work = total_rows * k * n_tokens;
    int64_t want = work / (1 << 16), nth = ea__pool_size(f->m->pool);
    if (want > nth)
        want = nth;
    int64_t parts = want > 1 ? want * EA__PARTS_PER_THREAD : 1;
    if (parts > c.total_units)
        parts = c.total_units;
    ea__pool_run_parts(f->m->pool, mm_worker, &c, (int)parts);
}

void ea__matmul(struct ea__fwd *f, const struct ea__mat *w, const float *x, int64_t n_tokens,
                float *y)
{
    ea__matmul_multi(f, 1, &w, x, n_tokens, &y);
}

void ea__add_bias(float *y, const struct ea_gguf_tensor *b, int64_t n_rows, int64_t width)
{
    const float *bv = b->data;
    for (int64_t r = 0; r < n_rows; r++)
        for (int64_t i = 0; i < width; i++)
            y[r * width + i] += bv[i];
}

/* ---- RoPE ------------------------------------------------------------------ */

void ea__rope_table(const ea_model *m, int64_t n_tokens, const int32_t *pos, float *cs)
{
    const uint32_t half = m->info.n_rot / 2;
    for (int64_t t = 0; t < n_tokens; t++)
        for (uint32_t i = 0; i < half; i++) {
            double theta = (double)pos[t] * m->rope_inv_freq[i];
            cs[(t * half + i) * 2] = (float)cos(theta);
            cs[(t * half + i) * 2 + 1] = (float)sin(theta);
        }
}

void ea__rope(const ea_model *m, float *x, int64_t n_tokens, uint32_t n_heads, const float *cs)
{
    const struct ea_model_info *h = &m->info;
    uint32_t hd = h->head_dim, half = h->n_rot / 2;
    for (int64_t t = 0; t < n_tokens; t++) {
        for (uint32_t i = 0; i < half; i++) {
            float c = cs[(t * half + i) * 2], s = cs[(t * half + i) * 2 + 1];
            for (uint32_t hh = 0; hh < n_heads; hh++) {
                float *v = x + (t * n_heads + hh) * hd;
                uint32_t a = h->rope_neox ? i : 2 * i, b = h->rope_neox ? i + half : 2 * i + 1;
                float x0 = v[a], x1 = v[b];
                v[a] = x0 * c - x1 * s;
                v[b] = x0 * s + x1 * c;
            }
        }
    }
}

/* ---- attention ----------------------------------------------------------- */

struct att_ctx {
    struct ea__fwd *f;
    uint32_t layer;
    int64_t n_tiles; /* F16 stores: tiles in s->tile_row */
};

/* Bytes of n K or V values in the store's type (n a multiple of 32 for Q8_0). */
static inline size_t kv_bytes(uint32_t type, size_t n)
{
    return type == EA_TYPE_F16 ? 2 * n : type == EA_TYPE_Q8_0 ? n / 32 * 34 : 4 * n;
}

static inline const void *kv_row(const struct ea_kv_store *kv, void *base, const int32_t *table,
                                 int32_t p, uint32_t kvd)
{
    size_t slot = (size_t)table[p / (int32_t)kv->block_size] * kv->block_size +
                  (size_t)(p % (int32_t)kv->block_size);
    return (const char *)base + slot * kv_bytes(kv->type, kvd);
}

/* F16 stores: attention runs over tiles of up to ATT_TILE_TOKENS consecutive
 * query tokens of one segment times the group of query heads sharing a KV
 * head, so each chunk of key and value rows is read and converted once for
 * the whole tile (rows: token-major, then head). The softmax is online: keys
 * go in chunks of ATT_CHUNK starting at multiples of ATT_CHUNK, and each row
 * keeps a running max and sum, rescaling its output when the max grows.
 * Causality: the chunks cover the keys of the tile's last token; a row's
 * probabilities past its own position are exact zeros, which the value
 * accumulation adds without changing anything (0 * v = 0 for the finite
 * values of a store; an infinite one spoils its own token anyway). The
 * kernels compute each score and output the same way whatever the rows
 * around them (tests/test_kernels_batch.c). A row's arithmetic thus depends
 * only on its own position, never on the tile around it: a token's output
 * is the same alone or batched (batch invariance).
 * Shared prefixes: decode tokens of different sequences whose block tables
 * start with the same physical block (a cached prompt prefix) share a tile:
 * a run of keys whose block is the same for all of them is read and
 * converted once for all their rows; elsewhere each token reads its own
 * blocks with its own rows. Key runs end at the same block and chunk
 * boundaries as alone, so every row's arithmetic is unchanged. With 16
 * streams over a 1024-token system prompt this reads the prefix's K/V
 * once per tile instead of once per sequence. */
#define ATT_TILE_TOKENS 16
#define ATT_TILE_ROWS 64 /* fewer tokens per tile for large groups: bounds the scratch */
#define ATT_CHUNK 64

static int att_tile_tokens(const struct ea_model_info *h)
{
    const int group = (int)(h->n_head / h->n_head_kv), tt = ATT_TILE_ROWS / group;
    return tt < 1 ? 1 : tt > ATT_TILE_TOKENS ? ATT_TILE_TOKENS : tt;
}

int64_t ea__att_tile_floats(const struct ea_model_info *h)
{
    /* q and output (rows x hd each), scores (rows x ATT_CHUNK), max and sum */
    const int64_t rows = (int64_t)att_tile_tokens(h) * (h->n_head / h->n_head_kv);
    return rows * (2 * (int64_t)h->head_dim + ATT_CHUNK + 2);
}

/* Whether keys [j, j + jn) (within one block) are in the same physical
 * block for every token of the tile, all of which see them; always for a
 * one-segment tile (its last token sees every key of the loop). */
static bool att_run_common(const struct ea__fwd *f, int64_t t0, int nt, bool cross, const int32_t *table0,
                           int32_t j, int32_t jn)
{
    const struct ea__scratch *s = &f->m->s;
    const int32_t bs = (int32_t)f->kv->block_size;
    if (!cross)
        return true;
    for (int tt = 0; tt < nt; tt++)
        if (s->row_pos[t0 + tt] < j + jn - 1 || f->b->segs[s->row_seg[t0 + tt]].block_table[j / bs] != table0[j / bs])
            return false;
    return true;
}

/* Tile `tile` of the batch for KV head kvh; buf: ea__att_tile_floats. A
 * tile is either consecutive tokens of one segment or single decode tokens
 * of segments sharing their first block (see ea__attention). */
static void att_tile_f16(struct ea__fwd *f, uint32_t layer, int64_t tile, uint32_t kvh, float *buf)
{
    ea_model *m = f->m;
    struct ea__scratch *s = &m->s;
    const struct ea_kv_store *kv = f->kv;
    const struct ea_model_info *h = &m->info;
    const struct ea_vec_ops *vec = ea_kernels_vec();
    const uint32_t hd = h->head_dim, qd = h->n_head * hd, kvd = h->n_head_kv * hd;
    const int group = (int)(h->n_head / h->n_head_kv);
    const float scale = 1.0f / sqrtf((float)hd);
    const int64_t t0 = s->tile_row[tile];
    const int nt = (int)(s->tile_row[tile + 1] - t0), rows = nt * group;
    const bool cross = s->row_seg[t0] != s->row_seg[t0 + nt - 1]; /* one token per segment */
    const int32_t bs = (int32_t)kv->block_size;
    int32_t n_ctx = 0;
    for (int tt = 0; tt < nt; tt++)
        n_ctx = s->row_pos[t0 + tt] + 1 > n_ctx ? s->row_pos[t0 + tt] + 1 : n_ctx;
    const int32_t *table0 = f->b->segs[s->row_seg[t0]].block_table;
    const size_t span = sizeof(float) * (size_t)group * hd; /* one token's rows */
    float *q = buf, *out = q + (size_t)rows * hd;           /* rows x hd */
    float *sc = out + (size_t)rows * hd;                     /* rows x ATT_CHUNK */
    float *mx = sc + (size_t)rows * ATT_CHUNK, *sum = mx + rows;
    for (int tt = 0; tt < nt; tt++)
        memcpy(q + (size_t)tt * group * hd, s->q + (t0 + tt) * qd + (size_t)kvh * group * hd, span);
    memset(out, 0, (size_t)rows * hd * sizeof *out);
    for (int r = 0; r < rows; r++) {
        mx[r] = -INFINITY;
        sum[r] = 0;
    }
    for (int32_t j0 = 0; j0 < n_ctx; j0 += ATT_CHUNK) {
        const int32_t n = n_ctx - j0 < ATT_CHUNK ? n_ctx - j0 : ATT_CHUNK;
        /* the chunk's rows a KV block at a time (a block's rows are contiguous) */
        for (int32_t j = j0, jn; j < j0 + n; j += jn) {
            jn = bs - j % bs < j0 + n - j ? bs - j % bs : j0 + n - j;
            if (att_run_common(f, t0, nt, cross, table0, j, jn)) {
                const uint16_t *kr = (const uint16_t *)kv_row(kv, kv->k[layer], table0, j, kvd) + kvh * hd;
                vec->att_scores_f16(hd, rows, q, kr, kvd, jn, scale, sc + (j - j0), ATT_CHUNK);
                continue;
            }
            for (int tt = 0; tt < nt; tt++) { /* each token over its own blocks, up to its position */
                const int32_t kn = s->row_pos[t0 + tt] + 1 - j < jn ? s->row_pos[t0 + tt] + 1 - j : jn;
                if (kn <= 0)
                    continue;
                const int32_t *table = f->b->segs[s->row_seg[t0 + tt]].block_table;
                const uint16_t *kr = (const uint16_t *)kv_row(kv, kv->k[layer], table, j, kvd) + kvh * hd;
                vec->att_scores_f16(hd, group, q + (size_t)tt * group * hd, kr, kvd, kn, scale,
                                    sc + (size_t)tt * group * ATT_CHUNK + (j - j0), ATT_CHUNK);
            }
        }
        for (int r = 0; r < rows; r++) {
            float *row = sc + (size_t)r * ATT_CHUNK;
            const int32_t seen = s->row_pos[t0 + r / group] + 1 - j0; /* keys of the chunk row r sees */
            const int32_t nv = seen < n ? (seen > 0 ? seen : 0) : n;
            float part[8], cm = mx[r]; /* 8 independent maxima, not one long chain */
            for (int l = 0; l < 8; l++)
                part[l] = cm;
            int32_t j = 0;
            for (; j + 8 <= nv; j += 8)
                for (int l = 0; l < 8; l++)
                    part[l] = row[j + l] > part[l] ? row[j + l] : part[l];
            for (; j < nv; j++)
                cm = row[j] > cm ? row[j] : cm;
            for (int l = 0; l < 8; l++)
                cm = part[l] > cm ? part[l] : cm;
            if (cm > mx[r]) { /* rescale what the row has so far to the new max */
                const float c = expf(mx[r] - cm);
                float *o = out + (size_t)r * hd;
                for (uint32_t d = 0; d < hd; d++)
                    o[d] *= c;
                sum[r] *= c;
                mx[r] = cm;
            }
            if (nv > 0)
                sum[r] += vec->exp_sum(nv, row, mx[r]);
            memset(row + nv, 0, sizeof(float) * (size_t)(n - nv));
        }
        for (int32_t j = j0, jn; j < j0 + n; j += jn) {
            jn = bs - j % bs < j0 + n - j ? bs - j % bs : j0 + n - j;
            if (att_run_common(f, t0, nt, cross, table0, j, jn)) {
                const uint16_t *vr = (const uint16_t *)kv_row(kv, kv->v[layer], table0, j, kvd) + kvh * hd;
                vec->att_accum_f16(hd, rows, sc + (j - j0), ATT_CHUNK, vr, kvd, jn, out);
                continue;
            }
            for (int tt = 0; tt < nt; tt++) {
                const int32_t kn = s->row_pos[t0 + tt] + 1 - j < jn ? s->row_pos[t0 + tt] + 1 - j : jn;
                if (kn <= 0)
                    continue;
                const int32_t *table = f->b->segs[s->row_seg[t0 + tt]].block_table;
                const uint16_t *vr = (const uint16_t *)kv_row(kv, kv->v[layer], table, j, kvd) + kvh * hd;
                vec->att_accum_f16(hd, group, sc + (size_t)tt * group * ATT_CHUNK + (j - j0), ATT_CHUNK, vr, kvd,
                                   kn, out + (size_t)tt * group * hd);
            }
        }
    }
    for (int r = 0; r < rows; r++) {
        const float inv = 1.0f / sum[r];
        float *dst = s->att + (t0 + r / group) * qd + ((size_t)kvh * group + (size_t)(r % group)) * hd;
        const float *o = out + (size_t)r * hd;
        for (uint32_t d = 0; d < hd; d++)
            dst[d] = o[d] * inv;
    }
}

/* One (token, head) item over an F32 or Q8_0 store, a row at a time.
 * scores: n_ctx. */
static void att_item_rows(struct ea__fwd *f, uint32_t layer, int64_t t, uint32_t head, float *scores)
{
    ea_model *m = f->m;
    struct ea__scratch *s = &m->s;
    const struct ea_kv_store *kv = f->kv;
    const struct ea_model_info *h = &m->info;
    const struct ea_vec_ops *vec = ea_kernels_vec();
    const uint32_t hd = h->head_dim, qd = h->n_head * hd, kvd = h->n_head_kv * hd;
    const uint32_t kvh = head / (h->n_head / h->n_head_kv);
    const size_t off = kv_bytes(kv->type, (size_t)kvh * hd);
    const bool q8 = kv->type == EA_TYPE_Q8_0;
    const float scale = 1.0f / sqrtf((float)hd);
    const struct ea_batch_seg *seg = &f->b->segs[s->row_seg[t]];
    const int32_t n_ctx = s->row_pos[t] + 1;
    const float *q = s->q + t * qd + head * hd;
    float *out = s->att + t * qd + head * hd;
    float mx = -INFINITY;
    for (int32_t j = 0; j < n_ctx; j++) {
        const char *kr = (const char *)kv_row(kv, kv->k[layer], seg->block_table, j, kvd) + off;
        scores[j] = (q8 ? vec->dot_q8_0_f32(hd, kr, q) : vec->dot_f32(hd, (const float *)kr, q)) * scale;
        mx = scores[j] > mx ? scores[j] : mx;
    }
    const float inv = 1.0f / vec->exp_sum(n_ctx, scores, mx);
    memset(out, 0, hd * sizeof *out);
    for (int32_t j = 0; j < n_ctx; j++) {
        const char *vr = (const char *)kv_row(kv, kv->v[layer], seg->block_table, j, kvd) + off;
        if (q8)
            vec->axpy_q8_0(hd, scores[j] * inv, vr, out);
        else
            vec->axpy_f32(hd, scores[j] * inv, (const float *)vr, out);
    }
}

/* First item whose work begins at or after `cost` (items: n_tiles * n_kv). */
static int64_t att_item_at(const struct ea__scratch *s, int64_t n_tiles, int64_t n_kv, int64_t cost)
{
    int64_t lo = 0, hi = n_tiles * n_kv; /* answer in [lo, hi] */
    while (lo < hi) {
        const int64_t it = lo + (hi - lo) / 2, t = it / n_kv;
        const int64_t begin = s->tile_cost[t] * n_kv + (it % n_kv) * (s->tile_cost[t + 1] - s->tile_cost[t]);
        if (begin >= cost)
            hi = it;
        else
            lo = it + 1;
    }
    return lo;
}

/* F16: part ith takes the (tile, KV head) items whose work starts in its
 * share of the total (keys attended to, summed over the rows), so parts are
 * even although late tokens of a prefill see many more keys than early
 * ones. F32 and Q8_0: (token, head) items, split by count. */
static void att_worker(void *p, int ith, int nth)
{
    struct att_ctx *c = p;
    struct ea__fwd *f = c->f;
    struct ea__scratch *s = &f->m->s;
    const struct ea_model_info *h = &f->m->info;
    float *scores = s->scores + (int64_t)ith * s->scores_per_thread;
    int64_t b, e;
    if (f->kv->type == EA_TYPE_F16) {
        const int64_t n_kv = h->n_head_kv, total = s->tile_cost[c->n_tiles] * n_kv;
        b = att_item_at(s, c->n_tiles, n_kv, total / nth * ith + total % nth * ith / nth);
        e = ith + 1 == nth ? c->n_tiles * n_kv
                           : att_item_at(s, c->n_tiles, n_kv, total / nth * (ith + 1) + total % nth * (ith + 1) / nth);
        for (int64_t it = b; it < e; it++)
            att_tile_f16(f, c->layer, it / n_kv, (uint32_t)(it % n_kv), scores);
        return;
    }
    ea__split(f->n_tokens * h->n_head, ith, nth, 1, &b, &e);
    for (int64_t it = b; it < e; it++)
        att_item_rows(f, c->layer, it / h->n_head, (uint32_t)(it % h->n_head), scores);
}

void ea__attention(struct ea__fwd *f, uint32_t layer)
{
    ea_model *m = f->m;
    struct ea__scratch *s = &m->s;
    const struct ea_kv_store *kv = f->kv;
    uint32_t kvd = m->info.n_head_kv * m->info.head_dim;
    const struct ea_vec_ops *vec = ea_kernels_vec();
    /* store this batch's K/V first: a token attends to itself and to earlier
     * tokens of its segment, all of which are then in the store */
    for (int64_t t = 0; t < f->n_tokens; t++) {
        const struct ea_batch_seg *seg = &f->b->segs[s->row_seg[t]];
        void *kd = (void *)kv_row(kv, kv->k[layer], seg->block_table, s->row_pos[t], kvd);
        void *vd = (void *)kv_row(kv, kv->v[layer], seg->block_table, s->row_pos[t], kvd);
        if (kv->type == EA_TYPE_F16) {
            vec->f32_to_f16(s->k + t * kvd, kd, kvd);
            vec->f32_to_f16(s->v + t * kvd, vd, kvd);
        } else if (kv->type == EA_TYPE_Q8_0) {
            vec->f32_to_q8_0(s->k + t * kvd, kd, kvd);
            vec->f32_to_q8_0(s->v + t * kvd, vd, kvd);
        } else {
            memcpy(kd, s->k + t * kvd, kvd * sizeof(float));
            memcpy(vd, s->v + t * kvd, kvd * sizeof(float));
        }
    }
    /* tiles: runs of up to att_tile_tokens rows of one segment (its rows
     * are consecutive, at consecutive positions), or of single decode
     * tokens of consecutive segments whose first block is the same
     * physical block (a shared cached prefix; F16 only) */
    struct att_ctx c = {f, layer, 0};
    const int tt = att_tile_tokens(&m->info);
    const int32_t bs = (int32_t)kv->block_size;
    int64_t ctx_total = 0;
    for (int64_t t = 0; t < f->n_tokens; t++) {
        bool join = t > 0 && t - s->tile_row[c.n_tiles - 1] < tt;
        if (join && s->row_seg[t] != s->row_seg[t - 1]) {
            const struct ea_batch_seg *a = &f->b->segs[s->row_seg[s->tile_row[c.n_tiles - 1]]];
            const struct ea_batch_seg *b = &f->b->segs[s->row_seg[t]];
            join = kv->type == EA_TYPE_F16 && a->n_new == 1 && b->n_new == 1 && a->n_past >= bs &&
                   b->n_past >= bs && a->block_table[0] == b->block_table[0];
            if (join && t - s->tile_row[c.n_tiles - 1] == 1)
                m->n_att_shared_tiles++;
        }
        if (!join) {
            s->tile_row[c.n_tiles] = (int32_t)t;
            s->tile_cost[c.n_tiles++] = ctx_total;
        }
        ctx_total += s->row_pos[t] + 1;
    }
    s->tile_row[c.n_tiles] = (int32_t)f->n_tokens;
    s->tile_cost[c.n_tiles] = ctx_total;
    int64_t work = ctx_total * m->info.n_head * m->info.head_dim * 2;
    int64_t want = work / (1 << 16), nth = ea__pool_size(m->pool);
    if (want > nth)
        want = nth;
    int64_t parts = want > 1 ? want * EA__PARTS_PER_THREAD : 1;
    int64_t items = kv->type == EA_TYPE_F16 ? c.n_tiles * m->info.n_head_kv : f->n_tokens * m->info.n_head;
    if (parts > items)
        parts = items;
    if (parts > s->scores_parts)
        parts = s->scores_parts;
    ea__pool_run_parts(m->pool, att_worker, &c, (int)parts); /* scratch: one slot per part */
}

/* ---- the standard decoder layer ---------------------------------------------- */

static void head_rmsnorm(struct ea__fwd *f, float *x, const struct ea_gguf_tensor *w, int64_t n_rows, uint32_t hd,
                         float eps)
{
    ea__rmsnorm_rows(f, x, w->data, x, n_rows, hd, eps);
}

void ea__std_layer_forward(struct ea__fwd *f, uint32_t l)
{
    ea_model *m = f->m;
    const struct ea_model_info *h = &m->info;
    const struct ea__layer *ly = &m->layers[l];
    struct ea__scratch *s = &m->s;
    int64_t T = f->n_tokens;
    uint32_t e = h->n_embd, qd = h->n_head * h->head_dim, kvd = h->n_head_kv * h->head_dim;

    ea__rmsnorm_rows(f, s->x, ly->attn_norm->data, s->h, T, e, h->rms_eps);
    const struct ea__mat *qkv[3] = {&ly->wq, &ly->wk, &ly->wv};
    float *const qkv_out[3] = {s->q, s->k, s->v};
    ea__matmul_multi(f, 3, qkv, s->h, T, qkv_out);
    if (ly->bq) {
        ea__add_bias(s->q, ly->bq, T, qd);
        ea__add_bias(s->k, ly->bk, T, kvd);
        ea__add_bias(s->v, ly->bv, T, kvd);
    }
    if (ly->q_norm) {
        head_rmsnorm(f, s->q, ly->q_norm, T * h->n_head, h->head_dim, h->rms_eps);
        head_rmsnorm(f, s->k, ly->k_norm, T * h->n_head_kv, h->head_dim, h->rms_eps);
    }
    ea__rope(m, s->q, T, h->n_head, s->rope_cs);
    ea__rope(m, s->k, T, h->n_head_kv, s->rope_cs);
    ea__attention(f, l);
    ea__matmul(f, &ly->wo, s->att, T, s->tmp);
    struct add_args res = {s->x, s->tmp, e};
    parallel_rows(m, T, e, add_rows, &res);

    ea__rmsnorm_rows(f, s->x, ly->ffn_norm->data, s->h, T, e, h->rms_eps);
    const struct ea__mat *gu[2] = {&ly->w_gate, &ly->w_up};
    float *const gu_out[2] = {s->gate, s->up};
    ea__matmul_multi(f, 2, gu, s->h, T, gu_out);
    struct silu_args sa = {s->gate, s->up, h->n_ff};
    parallel_rows(m, T, h->n_ff, silu_rows, &sa);
    ea__matmul(f, &ly->w_down, s->gate, T, s->tmp);
    parallel_rows(m, T, e, add_rows, &res);
}
