/* pack.c - copies the matmul weights into the active kernels' packed layout
 * (ea_pack_ops) at load: one slab for all of them, anonymous memory asking
 * for huge pages (a 1.1B model is ~600 MB: 4 KB pages would cost 150 000
 * page faults), filled in parallel on the model's pool. The file mapping's
 * copies are then released (ea_gguf_drop_pages), so resident memory stays
 * about the model's size; embeddings still read token_embd from the file
 * (tied output projections get a packed copy, their rows are read again
 * from the page cache only for the tokens looked up).
 * Does not hold: the layouts or kernels (src/kernels).
 */
#include <string.h>
#include <sys/mman.h>

#include "model/model_int.h"

#define SLAB_ALIGN 64

struct pack_job {
    struct ea__mat **mats;
    size_t *offset;
    int n, cap;
};

struct pack_ctx {
    struct ea__mat *mat;
    void *dst;
};

static void pack_worker(void *p, int ith, int nth)
{
    struct pack_ctx *c = p;
    const struct ea_gguf_tensor *t = c->mat->t;
    const struct ea_pack_ops *pk = c->mat->pack;
    const int64_t k = (int64_t)t->ne[0], nr = (int64_t)t->ne[1];
    uint64_t row_bytes;
    ea_type_bytes(t->type, (uint64_t)k, &row_bytes);
    int64_t b, e;
    ea__split(nr, ith, nth, pk->rows, &b, &e);
    if (b < e)
        pk->repack(k, nr, b, e, t->data, (size_t)row_bytes, c->dst);
}

static void *slab_alloc(size_t bytes)
{
#ifdef MAP_ANONYMOUS
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return p;
#else
    return ea_malloc(bytes);
#endif
}

void ea__packed_free(void *slab, size_t bytes)
{
    if (!slab)
        return;
#ifdef MAP_ANONYMOUS
    munmap(slab, bytes);
#else
    (void)bytes;
    ea_free(slab);
#endif
}

/* Adds w to the job when its type packs and it is not there yet (a tied
 * output projection is the embedding tensor, bound once as a matmul). */
static void consider(struct pack_job *j, struct ea__mat *w, size_t *total)
{
    if (!w->t || j->n >= j->cap)
        return;
    const struct ea_pack_ops *pk = ea_kernels_pack(w->t->type);
    if (!pk)
        return;
    size_t bytes = pk->size((int64_t)w->t->ne[0], (int64_t)w->t->ne[1]);
    if (bytes == 0)
        return;
    w->pack = pk;
    j->mats[j->n] = w;
    j->offset[j->n] = *total;
    j->n++;
    *total += (bytes + SLAB_ALIGN - 1) / SLAB_ALIGN * SLAB_ALIGN;
}

ea_status ea__pack_weights(ea_model *m, struct ea_error *err)
{
    struct pack_job job = {.cap = (int)m->info.n_layer * 7 + 1}, *j = &job;
    j->mats = ea_calloc((size_t)j->cap, sizeof *j->mats);
    j->offset = ea_calloc((size_t)j->cap, sizeof *j->offset);
    if (!j->mats || !j->offset) {
        ea_free(j->mats);
        ea_free(j->offset);
        return ea_error_set(err, EA_ENOMEM, "model: out of memory");
    }
    size_t total = 0;
    for (uint32_t l = 0; l < m->info.n_layer; l++) {
        struct ea__layer *ly = &m->layers[l];
        struct ea__mat *ws[] = {&ly->wq, &ly->wk, &ly->wv, &ly->wo, &ly->w_gate, &ly->w_up, &ly->w_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
            consider(j, ws[i], &total);
    }
    consider(j, &m->output, &total);
    if (j->n == 0)
        goto out_free_job;
    uint8_t *slab = slab_alloc(total);
    if (!slab) {
        /* not fatal: the kernels read the mapped weights as they are */
        for (int i = 0; i < j->n; i++)
            j->mats[i]->pack = NULL;
        goto out_free_job;
    }
    /* tensor by tensor, releasing each source right away: resident memory
     * peaks at the slab plus one tensor */
    for (int i = 0; i < j->n; i++) {
        struct ea__mat *w = j->mats[i];
        struct pack_ctx c = {w, slab + j->offset[i]};
        ea__pool_run(m->pool, pack_worker, &c);
        w->packed = c.dst;
        ea_gguf_drop_pages(m->gguf, w->t->data, (size_t)w->t->size);
    }
    m->packed = slab;
    m->packed_bytes = total;
out_free_job:
    ea_free(j->mats);
    ea_free(j->offset);
    return EA_OK;
}
