/* kv_cache.c - paged KV memory and its prefix cache.
 *
 * One slab holds, for every layer, n_blocks blocks of block_size tokens of K
 * and of V. Every block is in one of three states:
 *   in use        refcount > 0 (a sequence's table points at it; shared
 *                 prefix blocks have several references)
 *   cached-free   refcount 0 but registered: its content is a known token
 *                 block (hash chain: parent hash + tokens), kept on an LRU
 *                 list so a later request with the same prefix can reuse it
 *   free          refcount 0, content meaningless
 * Allocation takes a free block first, then evicts the least recently used
 * cached-free block. Registered blocks are found through a hash table and
 * verified token by token, so hash collisions cannot alias content.
 * Does not hold: scheduling (scheduler.c).
 */
#include <inttypes.h>
#include <string.h>

#include "engine/engine_int.h"

struct block_meta {
    uint32_t refcount;
    bool registered;
    uint64_t hash, parent;
    int32_t lru_prev, lru_next; /* valid while cached-free */
    int32_t hnext;              /* bucket chain while registered */
};

struct ea_kv_cache {
    struct ea_kv_store store;
    void *slab;
    struct block_meta *meta;
    int32_t *block_tokens; /* n_blocks * block_size: content of registered blocks */
    int32_t *free_list;
    uint32_t n_free;
    int32_t lru_head, lru_tail; /* head = least recently used */
    uint32_t n_cached_free;
    int32_t *buckets;
    uint32_t n_buckets; /* power of two */
};

uint64_t ea_kv_cache_bytes_per_token(const ea_model *m, uint32_t type)
{
    const struct ea_model_info *h = ea_model_get_info(m);
    uint64_t n = (uint64_t)h->n_head_kv * h->head_dim;
    uint64_t row = type == EA_TYPE_F16 ? 2 * n : type == EA_TYPE_Q8_0 ? n / 32 * 34 : 4 * n;
    return 2ull * h->n_layer * row;
}

ea_status ea_kv_cache_create(const ea_model *m, const struct ea_kv_cache_params *p,
                             ea_kv_cache **out, struct ea_error *err)
{
    *out = NULL;
    const struct ea_model_info *h = ea_model_get_info(m);
    if (p->type != EA_TYPE_F16 && p->type != EA_TYPE_F32 && p->type != EA_TYPE_Q8_0)
        return ea_error_set(err, EA_EUNSUPPORTED, "kv cache: type must be F16, Q8_0 or F32");
    if (p->type == EA_TYPE_Q8_0 && h->head_dim % 32 != 0)
        return ea_error_set(err, EA_EUNSUPPORTED,
                            "kv cache: Q8_0 needs a head dimension that is a multiple of 32 (this "
                            "model has %u)",
                            h->head_dim);
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
    if (n > (1u << 24))
        n = 1u << 24;
    ea_kv_cache *c = ea_calloc(1, sizeof *c);
    if (!c)
        return ea_error_set(err, EA_ENOMEM, "kv cache: out of memory");
    c->store.type = p->type;
    c->store.block_size = bs;
    c->store.n_blocks = (uint32_t)n;
    c->n_buckets = 16;
    while (c->n_buckets < n)
        c->n_buckets <<= 1;
    c->store.k = ea_calloc(h->n_layer, sizeof(void *));
    c->store.v = ea_calloc(h->n_layer, sizeof(void *));
    c->meta = ea_calloc(n, sizeof *c->meta);
    c->block_tokens = ea_malloc(n * bs * sizeof(int32_t));
    c->free_list = ea_malloc(n * sizeof *c->free_list);
    c->buckets = ea_malloc(c->n_buckets * sizeof *c->buckets);
    c->slab = ea_malloc(per_block * n);
    if (!c->store.k || !c->store.v || !c->meta || !c->block_tokens || !c->free_list ||
        !c->buckets || !c->slab) {
        ea_kv_cache_destroy(c);
        return ea_error_set(err, EA_ENOMEM, "kv cache: cannot allocate %" PRIu64 " bytes",
                            per_block * n);
    }
    uint64_t layer_bytes = per_block * n / (2ull * h->n_layer);
    for (uint32_t l = 0; l < h->n_layer; l++) {
        c->store.k[l] = (char *)c->slab + (2ull * l) * layer_bytes;
        c->store.v[l] = (char *)c->slab + (2ull * l + 1) * layer_bytes;
    }
    for (uint32_t i = 0; i < c->n_buckets; i++)
        c->buckets[i] = -1;
    for (uint64_t i = 0; i < n; i++) /* pops low block ids first */
        c->free_list[i] = (int32_t)(n - 1 - i);
    c->n_free = (uint32_t)n;
    c->lru_head = c->lru_tail = -1;
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
    ea_free(c->meta);
    ea_free(c->block_tokens);
    ea_free(c->free_list);
    ea_free(c->buckets);
    ea_free(c);
}

const struct ea_kv_store *ea_kv_cache_store(const ea_kv_cache *c) { return &c->store; }
uint32_t ea_kv_cache_n_blocks(const ea_kv_cache *c) { return c->store.n_blocks; }
uint32_t ea_kv_cache_n_free(const ea_kv_cache *c) { return c->n_free + c->n_cached_free; }
uint32_t ea_kv_cache_n_cached(const ea_kv_cache *c) { return c->n_cached_free; }
uint32_t ea_kv_cache_block_size(const ea_kv_cache *c) { return c->store.block_size; }

/* ---- LRU of cached-free blocks -------------------------------------------- */

static void lru_remove(ea_kv_cache *c, int32_t b)
{
    struct block_meta *m = &c->meta[b];
    if (m->lru_prev >= 0)
        c->meta[m->lru_prev].lru_next = m->lru_next;
    else
        c->lru_head = m->lru_next;
    if (m->lru_next >= 0)
        c->meta[m->lru_next].lru_prev = m->lru_prev;
    else
        c->lru_tail = m->lru_prev;
    c->n_cached_free--;
}

static void lru_push(ea_kv_cache *c, int32_t b)
{
    struct block_meta *m = &c->meta[b];
    m->lru_prev = c->lru_tail;
    m->lru_next = -1;
    if (c->lru_tail >= 0)
        c->meta[c->lru_tail].lru_next = b;
    else
        c->lru_head = b;
    c->lru_tail = b;
    c->n_cached_free++;
}

/* ---- hash table ------------------------------------------------------------- */

static void unregister(ea_kv_cache *c, int32_t b)
{
    struct block_meta *m = &c->meta[b];
    int32_t *link = &c->buckets[m->hash & (c->n_buckets - 1)];
    while (*link != b)
        link = &c->meta[*link].hnext;
    *link = m->hnext;
    m->registered = false;
}

uint64_t ea__kv_block_hash(uint64_t parent, const int32_t *tokens, uint32_t n)
{
    uint64_t h = parent ^ 0x9E3779B97F4A7C15ull;
    for (uint32_t i = 0; i < n; i++) {
        h ^= (uint32_t)tokens[i];
        h *= 0x100000001B3ull;
        h ^= h >> 29;
    }
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 31);
}

static bool same_block(const ea_kv_cache *c, int32_t b, uint64_t parent, uint64_t hash,
                       const int32_t *tokens)
{
    const struct block_meta *m = &c->meta[b];
    uint32_t bs = c->store.block_size;
    return m->hash == hash && m->parent == parent &&
           memcmp(c->block_tokens + (size_t)b * bs, tokens, bs * sizeof *tokens) == 0;
}

int32_t ea__kv_prefix_lookup(ea_kv_cache *c, uint64_t parent, uint64_t hash, const int32_t *tokens)
{
    for (int32_t b = c->buckets[hash & (c->n_buckets - 1)]; b >= 0; b = c->meta[b].hnext)
        if (same_block(c, b, parent, hash, tokens)) {
            ea_kv_block_ref(c, b);
            return b;
        }
    return -1;
}

bool ea__kv_prefix_register(ea_kv_cache *c, int32_t block, uint64_t parent, uint64_t hash,
                            const int32_t *tokens)
{
    struct block_meta *m = &c->meta[block];
    if (m->registered)
        return false;
    for (int32_t b = c->buckets[hash & (c->n_buckets - 1)]; b >= 0; b = c->meta[b].hnext)
        if (same_block(c, b, parent, hash, tokens))
            return false;
    uint32_t bs = c->store.block_size;
    memcpy(c->block_tokens + (size_t)block * bs, tokens, bs * sizeof *tokens);
    m->hash = hash;
    m->parent = parent;
    m->registered = true;
    int32_t *head = &c->buckets[hash & (c->n_buckets - 1)];
    m->hnext = *head;
    *head = block;
    return true;
}

void ea__kv_prefix_clear(ea_kv_cache *c)
{
    while (c->lru_head >= 0) {
        int32_t b = c->lru_head;
        lru_remove(c, b);
        unregister(c, b);
        c->free_list[c->n_free++] = b;
    }
}

/* ---- blocks ------------------------------------------------------------------ */

int32_t ea_kv_block_alloc(ea_kv_cache *c)
{
    int32_t b;
    if (c->n_free > 0) {
        b = c->free_list[--c->n_free];
    } else if (c->lru_head >= 0) {
        b = c->lru_head; /* evict the least recently used cached block */
        lru_remove(c, b);
        unregister(c, b);
    } else {
        return -1;
    }
    c->meta[b].refcount = 1;
    return b;
}

void ea_kv_block_ref(ea_kv_cache *c, int32_t b)
{
    if (c->meta[b].refcount == 0 && c->meta[b].registered)
        lru_remove(c, b);
    c->meta[b].refcount++;
}

void ea_kv_block_unref(ea_kv_cache *c, int32_t b)
{
    struct block_meta *m = &c->meta[b];
    if (m->refcount == 0)
        return; /* programmer error; never double-free into the lists */
    if (--m->refcount > 0)
        return;
    if (m->registered)
        lru_push(c, b);
    else
        c->free_list[c->n_free++] = b;
}

uint32_t ea_kv_block_refcount(const ea_kv_cache *c, int32_t b) { return c->meta[b].refcount; }

/* ---- one-sequence helpers -------------------------------------------------- */

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
    if ((uint32_t)(need - s->n_blocks) > ea_kv_cache_n_free(c))
        return ea_error_set(err, EA_EOVERLOADED, "kv cache: %d more blocks needed, %u free",
                            need - s->n_blocks, ea_kv_cache_n_free(c));
    while (s->n_blocks < need)
        s->blocks[s->n_blocks++] = ea_kv_block_alloc(c);
    return EA_OK;
}

void ea_kv_seq_truncate(ea_kv_cache *c, struct ea_kv_seq *s, int32_t n)
{
    if (n < 0)
        n = 0;
    if (n >= s->n_tokens)
        return;
    int32_t bs = (int32_t)c->store.block_size;
    int32_t keep = (n + bs - 1) / bs;
    while (s->n_blocks > keep)
        ea_kv_block_unref(c, s->blocks[--s->n_blocks]);
    s->n_tokens = n;
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
