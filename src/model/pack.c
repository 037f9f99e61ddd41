/* pack.c - copies the matmul weights into the active kernels' packed layout
 * (ea_pack_ops), in the background: ea_model_load plans one slab for all of
 * them and starts one packing thread, which fills the slab tensor by
 * tensor and publishes each packed copy (an atomic pointer) when it is
 * complete. Until then the matmuls read the mapped rows; both give the same
 * bits (kernels.h: the packed gemm equals the unpacked one on this
 * variant), so when a tensor switches does not change any result.
 *
 * Why in the background: the slab is fresh anonymous memory (a 1.1B model
 * is ~600 MB, asked for in huge pages), and faulting it in costs the kernel
 * its zeroing, 0.1 s at best and over a second on a virtual machine whose
 * freed memory goes back to the host; the first token should not wait for
 * it. The thread starts once the first forward pass is over (or a second
 * after loading), so the first token does not share the cores with it. The file mapping's copies are released after packing
 * (ea_gguf_drop_pages), so resident memory stays about the model's size;
 * embeddings read token_embd from the file (a tied output projection gets a
 * packed copy; its rows come back from the page cache for the tokens
 * looked up).
 * Does not hold: the layouts or kernels (src/kernels).
 */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "model/model_int.h"
#include "util/slab.h"

#define SLAB_ALIGN 64
#define PACK_DELAY_S 1 /* packing starts at the latest this long after loading */

/* Adds w to the plan when its type packs (a tied output projection is the
 * embedding tensor, bound once as a matmul, so nothing is planned twice). */
static void plan(struct ea__pack_plan *pl, struct ea__mat *w, size_t *total)
{
    if (!w->t || pl->n >= pl->cap)
        return;
    const struct ea_pack_ops *pk = ea_kernels_pack(w->t->type);
    if (!pk)
        return;
    size_t bytes = pk->size((int64_t)w->t->ne[0], (int64_t)w->t->ne[1]);
    if (bytes == 0)
        return;
    w->pack = pk;
    pl->mats[pl->n] = w;
    pl->offset[pl->n] = *total;
    pl->n++;
    *total += (bytes + SLAB_ALIGN - 1) / SLAB_ALIGN * SLAB_ALIGN;
}

/* Lets the packing thread begin (first forward pass done, or a waiter). */
static void pack_go(struct ea__pack_plan *pl)
{
    if (atomic_load_explicit(&pl->go, memory_order_acquire))
        return;
    pthread_mutex_lock(&pl->lock);
    atomic_store_explicit(&pl->go, 1, memory_order_release);
    pthread_cond_broadcast(&pl->cond);
    pthread_mutex_unlock(&pl->lock);
}

void ea__pack_forward_done(ea_model *m) { pack_go(&m->pack); }

static void *packer_main(void *arg)
{
    ea_model *m = arg;
    struct ea__pack_plan *pl = &m->pack;
    ea__thread_background(5); /* below the forward pass's threads */
    /* the first forward pass (the first token after loading) runs alone:
     * start after it, or after PACK_DELAY_S when none comes */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += PACK_DELAY_S;
    pthread_mutex_lock(&pl->lock);
    while (!atomic_load(&pl->go) && !atomic_load(&pl->stop))
        if (pthread_cond_timedwait(&pl->cond, &pl->lock, &until) != 0)
            break;
    pthread_mutex_unlock(&pl->lock);
    for (int i = 0; i < pl->n && !atomic_load_explicit(&pl->stop, memory_order_relaxed); i++) {
        struct ea__mat *w = pl->mats[i];
        const struct ea_gguf_tensor *t = w->t;
        const int64_t k = (int64_t)t->ne[0], nr = (int64_t)t->ne[1];
        uint64_t row_bytes;
        ea_type_bytes(t->type, (uint64_t)k, &row_bytes);
        uint8_t *dst = (uint8_t *)pl->slab + pl->offset[i];
        w->pack->repack(k, nr, 0, nr, t->data, (size_t)row_bytes, dst);
        atomic_store_explicit(&w->packed, (const void *)dst, memory_order_release);
        ea_gguf_drop_pages(m->gguf, t->data, (size_t)t->size);
    }
    return NULL;
}

ea_status ea__pack_start(ea_model *m, struct ea_error *err)
{
    struct ea__pack_plan *pl = &m->pack;
    pl->cap = (int)m->info.n_layer * 7 + 1;
    pl->mats = ea_calloc((size_t)pl->cap, sizeof *pl->mats);
    pl->offset = ea_calloc((size_t)pl->cap, sizeof *pl->offset);
    if (!pl->mats || !pl->offset)
        return ea_error_set(err, EA_ENOMEM, "model: out of memory");
    size_t total = 0;
    for (uint32_t l = 0; l < m->info.n_layer; l++) {
        struct ea__layer *ly = &m->layers[l];
        struct ea__mat *ws[] = {&ly->wq, &ly->wk, &ly->wv, &ly->wo, &ly->w_gate, &ly->w_up, &ly->w_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
            plan(pl, ws[i], &total);
    }
    plan(pl, &m->output, &total);
    if (pl->n > 0)
        pl->slab = ea__slab_alloc(total);
    /* without memory or a thread the kernels keep reading the mapped rows */
    if (pl->slab) {
        pl->slab_bytes = total;
        if (ea__thread_start(&pl->thread, packer_main, m) == 0)
            pl->running = true;
    }
    return EA_OK;
}

void ea__pack_stop(ea_model *m, bool finish)
{
    struct ea__pack_plan *pl = &m->pack;
    pthread_mutex_lock(&pl->join_lock);
    if (pl->running) {
        if (!finish)
            atomic_store(&pl->stop, 1);
        pthread_mutex_lock(&pl->lock);
        atomic_store(&pl->go, 1);
        pthread_cond_broadcast(&pl->cond);
        pthread_mutex_unlock(&pl->lock);
        pthread_join(pl->thread, NULL);
        pl->running = false;
    }
    pthread_mutex_unlock(&pl->join_lock);
}

void ea__pack_release(ea_model *m)
{
    struct ea__pack_plan *pl = &m->pack;
    ea__pack_stop(m, false);
    ea__slab_free(pl->slab, pl->slab_bytes);
    ea_free(pl->mats);
    ea_free(pl->offset);
    pthread_mutex_destroy(&pl->lock);
    pthread_mutex_destroy(&pl->join_lock);
    pthread_cond_destroy(&pl->cond);
}

void ea_model_wait_packed(ea_model *m)
{
    if (m)
        ea__pack_stop(m, true);
}

size_t ea_model_packed_bytes(const ea_model *m) { return m ? m->pack.slab_bytes : 0; }
