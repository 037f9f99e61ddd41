/* kv_cache.c - paged KV memory: one slab per cache holding, for every layer,
 * n_blocks blocks of block_size tokens of K and of V; a LIFO free list and
 * per-block reference counts (prefix sharing takes extra references).
 * Does not hold: which sequence owns what beyond ea_kv_seq tables, prefix
 * hashing or scheduling (scheduler files).
 */
#include <inttypes.h>
#include <string.h>

#include "edgeagent/engine.h"

struct ea_kv_cache {
    struct ea_kv_store store;
    void *slab;
    uint32_t *refcount;
    int32_t *free_list;
    uint32_t n_free;
};

uint64_t ea_kv_cache_bytes_per_token(const ea_model *m, uint32_t type)
{
    const struct ea_model_info *h = ea_model_get_info(m);
    uint64_t es = type == EA_TYPE_F16 ? 2 : 4;
    return 2ull * h->n_layer * h->n_head_kv * h->head_dim * es;
}

ea_status ea_kv_cache_create(const ea_model *m, const struct ea_kv_cache_params *p,
                             ea_kv_cache **out, struct ea_error *err)
{
    *out = NULL;
    const struct ea_model_info *h = ea_model_get_info(m);
    if (p->type != EA_TYPE_F16 && p->type != EA_TYPE_F32)
        return ea_error_set(err, EA_EUNSUPPORTED, "kv cache: type must be F16 or F32");
    uint32_t bs = p->block_size ? p->block_size : 16;
    if (bs > 4096)
        return ea_error_set(err, EA_EINVAL, "kv cache: block size %u is too large", bs);
    uint64_t per_block = ea_kv_cache_bytes_per_token(m, p->type) * bs;
    uint64_t n = p->mem_bytes / per_block;
    if (n == 0)
        return ea_error_set(err, EA_EINVAL,
                            "kv cache: %" PRIu64 " bytes hold no %u-token block (%" PRIu64
                            " bytes each)",
                            p->mem_bytes, bs, per_block);
    if (n > INT32_MAX / 2)
        n = INT32_MAX / 2;
    ea_kv_cache *c = ea_calloc(1, sizeof *c);
    if (!c)
        return ea_error_set(err, EA_ENOMEM, "kv cache: out of memory");
    c->store.type = p->type;
    c->store.block_size = bs;
    c->store.n_blocks = (uint32_t)n;
    c->store.k = ea_calloc(h->n_layer, sizeof(void *));
    c->store.v = ea_calloc(h->n_layer, sizeof(void *));
    c->refcount = ea_calloc(n, sizeof *c->refcount);
    c->free_list = ea_malloc(n * sizeof *c->free_list);
    c->slab = ea_malloc(per_block * n);
    if (!c->store.k || !c->store.v || !c->refcount || !c->free_list || !c->slab) {
        ea_kv_cache_destroy(c);
        return ea_error_set(err, EA_ENOMEM, "kv cache: cannot allocate %" PRIu64 " bytes",
                            per_block * n);
    }
    uint64_t layer_bytes = per_block * n / (2ull * h->n_layer);
    for (uint32_t l = 0; l < h->n_layer; l++) {
        c->store.k[l] = (char *)c->slab + (2ull * l) * layer_bytes;
        c->store.v[l] = (char *)c->slab + (2ull * l + 1) * layer_bytes;
    }
    /* free list pops low block ids first */
    for (uint64_t i = 0; i < n; i++)
        c->free_list[i] = (int32_t)(n - 1 - i);
    c->n_free = (uint32_t)n;
    *out = c;
    return EA_OK;
}

void ea_kv_cache_destroy(ea_kv_cache *c)
{
    if (!c)
        return;
    ea_free(c->slab);
    ea_free(c->store.k);
    ea_free(c->store.v);
    ea_free(c->refcount);
    ea_free(c->free_list);
    ea_free(c);
}

const struct ea_kv_store *ea_kv_cache_store(const ea_kv_cache *c) { return &c->store; }
uint32_t ea_kv_cache_n_blocks(const ea_kv_cache *c) { return c->store.n_blocks; }
uint32_t ea_kv_cache_n_free(const ea_kv_cache *c) { return c->n_free; }
uint32_t ea_kv_cache_block_size(const ea_kv_cache *c) { return c->store.block_size; }

int32_t ea_kv_block_alloc(ea_kv_cache *c)
{
    if (c->n_free == 0)
        return -1;
    int32_t b = c->free_list[--c->n_free];
    c->refcount[b] = 1;
    return b;
}

void ea_kv_block_ref(ea_kv_cache *c, int32_t b) { c->refcount[b]++; }

void ea_kv_block_unref(ea_kv_cache *c, int32_t b)
{
    if (c->refcount[b] == 0)
        return; /* programmer error; never double-free into the list */
    if (--c->refcount[b] == 0)
        c->free_list[c->n_free++] = b;
}

uint32_t ea_kv_block_refcount(const ea_kv_cache *c, int32_t b) { return c->refcount[b]; }

ea_status ea_kv_seq_reserve(ea_kv_cache *c, struct ea_kv_seq *s, int32_t n_total,
                            struct ea_error *err)
{
    int32_t bs = (int32_t)c->store.block_size;
    int32_t need = (n_total + bs - 1) / bs;
    if (need <= s->n_blocks)
        return EA_OK;
    if (need > s->cap_blocks) {
        int32_t cap = s->cap_blocks ? s->cap_blocks : 8;
        while (cap < need)
            cap *= 2;
        int32_t *nb = ea_realloc(s->blocks, (size_t)cap * sizeof *nb);
        if (!nb)
            return ea_error_set(err, EA_ENOMEM, "kv cache: out of memory");
        s->blocks = nb;
        s->cap_blocks = cap;
    }
    if ((uint32_t)(need - s->n_blocks) > c->n_free)
        return ea_error_set(err, EA_EOVERLOADED,
                            "kv cache: %d more blocks needed, %u free", need - s->n_blocks,
                            c->n_free);
    while (s->n_blocks < need)
        s->blocks[s->n_blocks++] = ea_kv_block_alloc(c);
    return EA_OK;
}

void ea_kv_seq_release(ea_kv_cache *c, struct ea_kv_seq *s)
{
    for (int32_t i = 0; i < s->n_blocks; i++)
        ea_kv_block_unref(c, s->blocks[i]);
    ea_free(s->blocks);
    memset(s, 0, sizeof *s);
}

ea_status ea_kv_seq_eval(ea_model *m, ea_kv_cache *c, struct ea_kv_seq *s, const int32_t *tokens,
                         int32_t n, enum ea_logits_mode mode, float *logits, struct ea_error *err)
{
    if (n < 0 || s->n_tokens > INT32_MAX - n)
        return ea_error_set(err, EA_EINVAL, "kv cache: bad token count %d", n);
    ea_status st = ea_kv_seq_reserve(c, s, s->n_tokens + n, err);
    if (st)
        return st;
    struct ea_batch_seg seg = {s->n_tokens, n, tokens, s->blocks, mode};
    struct ea_batch b = {1, &seg};
    st = ea_model_forward(m, &c->store, &b, logits, err);
    if (!st)
        s->n_tokens += n;
    return st;
}
