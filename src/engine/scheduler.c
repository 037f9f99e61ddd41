/* scheduler.c - the engine: one thread runs forward steps over a batch built
 * from every running sequence (continuous batching), vLLM style:
 *
 *   each step, in priority order (higher priority first, then arrival):
 *     1. running sequences contribute their pending tokens: 1 when decoding,
 *        a chunk of the prompt when still prefilling (chunked prefill),
 *        within max_batch_tokens; blocks for the new positions are taken from
 *        the pool, and when it runs dry the least important running sequence
 *        (lowest priority, latest arrival) is preempted: its blocks are
 *        released and it goes back to the waiting queue, to be recomputed
 *   2. waiting requests are admitted while there are sequence slots, budget
 *        and free blocks for their whole prompt; full blocks of their prompt
 *        found in the prefix cache are reused instead of recomputed
 *   3. one forward pass; sampling for sequences whose pending tokens are all
 *        in; events; finished sequences leave at once
 *   full blocks are registered in the prefix cache as soon as they are
 *   computed, so concurrent requests share them immediately.
 *
 * All list changes happen under the engine mutex; the forward pass runs
 * without it. Callbacks run on the engine thread without the mutex.
 * Does not hold: the KV block pool (kv_cache.c), sampling (sampling.c).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "edgeagent/grammar.h"
#include "engine/engine_int.h"
#include "util/threadpool.h"

enum seq_state { SEQ_WAITING, SEQ_RUNNING };

struct seq {
    uint64_t id;
    int32_t priority;
    uint64_t arrival;
    int32_t *tokens; /* prompt then generated */
    int32_t n_tokens, cap_tokens, n_prompt, n_generated, max_tokens;
    struct ea_kv_seq kv; /* kv.n_tokens = positions whose K/V are computed */
    int32_t n_cached;    /* prompt tokens taken from the prefix cache at first admission */
    int32_t n_hashed;    /* leading full blocks hashed (and registered if new) */
    uint64_t last_hash;
    ea_sampler *sampler;
    ea_engine_cb cb;
    void *user;
    bool ignore_eog;
    bool admitted_once;
    _Atomic bool cancel;
    enum seq_state state;
    int32_t n_preempted;
    double t_submit, t_admit, t_first;
    struct ea_logit_bias *bias;
    ea_grammar_matcher *gm; /* NULL: unconstrained */
    uint32_t *mask;         /* the matcher's token mask, mask_words words */
    size_t mask_words;
};

struct plan_item {
    struct seq *s;
    int32_t n_new;
    bool sample;
};

struct ea_engine {
    ea_model *m;
    struct ea_engine_params p;
    int32_t *eog;
    int32_t n_vocab;
    ea_kv_cache *kv;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    uint64_t next_id, next_arrival;
    struct seq **waiting; /* sorted: priority desc, arrival asc */
    int32_t n_waiting;
    struct seq **running;
    int32_t n_running;
    struct ea_batch_seg *segs;
    struct plan_item *plan;
    float *logits;
    struct ea_engine_stats st;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

void ea_engine_params_default(struct ea_engine_params *p)
{
    memset(p, 0, sizeof *p);
    p->kv_mem_bytes = 256ull << 20;
    p->kv_type = EA_TYPE_F16;
    p->block_size = 16;
    p->max_batch_tokens = 512;
    p->max_running = 16;
    p->max_queue = 256;
    p->max_context = 0;
    p->prefix_cache = true;
}

/* ---- sequences ------------------------------------------------------------ */

static void seq_free(ea_engine *e, struct seq *s)
{
    if (!s)
        return;
    ea_kv_seq_release(e->kv, &s->kv);
    ea_sampler_destroy(s->sampler);
    ea_grammar_matcher_destroy(s->gm);
    ea_free(s->mask);
    ea_free(s->tokens);
    ea_free(s->bias);
    ea_free(s);
}

static bool before(const struct seq *a, const struct seq *b)
{
    return a->priority > b->priority || (a->priority == b->priority && a->arrival < b->arrival);
}

static void waiting_insert(ea_engine *e, struct seq *s)
{
    int32_t i = e->n_waiting;
    while (i > 0 && before(s, e->waiting[i - 1])) {
        e->waiting[i] = e->waiting[i - 1];
        i--;
    }
    e->waiting[i] = s;
    e->n_waiting++;
    s->state = SEQ_WAITING;
}

static void list_remove(struct seq **list, int32_t *n, struct seq *s)
{
    for (int32_t i = 0; i < *n; i++)
        if (list[i] == s) {
            memmove(&list[i], &list[i + 1], sizeof *list * (size_t)(*n - i - 1));
            (*n)--;
            return;
        }
}

static void running_insert(ea_engine *e, struct seq *s)
{
    int32_t i = e->n_running;
    while (i > 0 && before(s, e->running[i - 1])) {
        e->running[i] = e->running[i - 1];
        i--;
    }
    e->running[i] = s;
    e->n_running++;
    s->state = SEQ_RUNNING;
}

static void emit_done(ea_engine *e, struct seq *s, enum ea_finish_reason why, ea_status status,
                      const char *detail)
{
    double t = now_ms();
    struct ea_engine_event ev = {
        .kind = EA_EVENT_DONE,
        .id = s->id,
        .user = s->user,
        .finish = why,
        .status = status,
        .error = detail,
        .n_prompt = s->n_prompt,
        .n_cached = s->n_cached,
        .n_generated = s->n_generated,
        .n_preempted = s->n_preempted,
        .queue_ms = s->t_admit > 0 ? s->t_admit - s->t_submit : t - s->t_submit,
        .ttft_ms = s->t_first > 0 ? s->t_first - s->t_submit : -1,
        .total_ms = t - s->t_submit,
    };
    s->cb(&ev);
}

/* Takes s out of the lists (under the lock), reports, frees. */
static void finish(ea_engine *e, struct seq *s, enum ea_finish_reason why, ea_status status,
                   const char *detail)
{
    pthread_mutex_lock(&e->mu);
    if (s->state == SEQ_RUNNING)
        list_remove(e->running, &e->n_running, s);
    else
        list_remove(e->waiting, &e->n_waiting, s);
    e->st.requests_done++;
    ea_kv_seq_release(e->kv, &s->kv); /* blocks back before the callback runs */
    pthread_mutex_unlock(&e->mu);
    ea_grammar_matcher_destroy(s->gm); /* the grammar may go with the DONE event */
    s->gm = NULL;
    emit_done(e, s, why, status, detail);
    seq_free(e, s);
}

/* ---- blocks and the prefix cache ------------------------------------------- */

/* Registers every newly completed full block of s in the prefix cache. */
static void register_full_blocks(ea_engine *e, struct seq *s)
{
    uint32_t bs = e->p.block_size;
    while ((int64_t)(s->n_hashed + 1) * bs <= s->kv.n_tokens) {
        const int32_t *t = s->tokens + (size_t)s->n_hashed * bs;
        uint64_t h = ea__kv_block_hash(s->last_hash, t, bs);
        if (e->p.prefix_cache)
            ea__kv_prefix_register(e->kv, s->kv.blocks[s->n_hashed], s->last_hash, h, t);
        s->last_hash = h;
        s->n_hashed++;
    }
}

/* Reuses cached blocks for the leading full blocks of s's tokens (at least
 * one token is always left to compute, for the logits). */
static void prefix_match(ea_engine *e, struct seq *s)
{
    if (!e->p.prefix_cache)
        return;
    uint32_t bs = e->p.block_size;
    int32_t max_blocks = (s->n_tokens - 1) / (int32_t)bs;
    while (s->n_hashed < max_blocks) {
        const int32_t *t = s->tokens + (size_t)s->n_hashed * bs;
        uint64_t h = ea__kv_block_hash(s->last_hash, t, bs);
        int32_t b = ea__kv_prefix_lookup(e->kv, s->last_hash, h, t);
        if (b < 0)
            break;
        if (s->kv.n_blocks == s->kv.cap_blocks) {
            int32_t cap = s->kv.cap_blocks ? s->kv.cap_blocks * 2 : 8;
            int32_t *nb = ea_realloc(s->kv.blocks, sizeof *nb * (size_t)cap);
            if (!nb) {
                ea_kv_block_unref(e->kv, b);
                break;
            }
            s->kv.blocks = nb;
            s->kv.cap_blocks = cap;
        }
        s->kv.blocks[s->kv.n_blocks++] = b;
        s->kv.n_tokens += (int32_t)bs;
        s->last_hash = h;
        s->n_hashed++;
    }
}

static int32_t blocks_for(const ea_engine *e, int32_t positions)
{
    return (positions + (int32_t)e->p.block_size - 1) / (int32_t)e->p.block_size;
}

/* Releases s's blocks and puts it back in the waiting queue (under lock). */
static void preempt(ea_engine *e, struct seq *s)
{
    list_remove(e->running, &e->n_running, s);
    ea_kv_seq_release(e->kv, &s->kv);
    s->n_hashed = 0;
    s->last_hash = 0;
    s->n_preempted++;
    e->st.preemptions++;
    waiting_insert(e, s);
}

/* Gets blocks so that s covers `positions`, preempting less important
 * running sequences (never ones already planned: they come earlier in
 * priority order). False if s itself had to be preempted. */
static bool ensure_blocks(ea_engine *e, struct seq *s, int32_t positions, int32_t n_planned)
{
    int32_t need = blocks_for(e, positions) - s->kv.n_blocks;
    while (need > 0 && (int64_t)ea_kv_cache_n_free(e->kv) < need) {
        struct seq *victim = e->running[e->n_running - 1];
        bool planned = false;
        for (int32_t i = 0; i < n_planned; i++)
            planned |= e->plan[i].s == victim;
        if (planned)
            return false; /* cannot happen: planned ones precede s */
        preempt(e, victim);
        if (victim == s)
            return false;
    }
    struct ea_error err;
    return ea_kv_seq_reserve(e->kv, &s->kv, positions, &err) == EA_OK;
}

/* ---- one step ---------------------------------------------------------------- */

/* Builds the plan under the lock. Returns the number of plan items. */
static int32_t build_plan(ea_engine *e)
{
    int32_t budget = e->p.max_batch_tokens, n = 0;
    /* running sequences, most important first; the list may shrink under us
     * through preemption, so walk by index and re-check */
    for (int32_t i = 0; i < e->n_running && budget > 0; i++) {
        struct seq *s = e->running[i];
        int32_t pending = s->n_tokens - s->kv.n_tokens;
        int32_t take = pending < budget ? pending : budget;
        if (!ensure_blocks(e, s, s->kv.n_tokens + take, n)) {
            if (s->state == SEQ_WAITING)
                i--; /* s was preempted: the next one moved into slot i */
            continue;
        }
        e->plan[n++] = (struct plan_item){s, take, take == pending};
        budget -= take;
    }
    /* admissions */
    while (budget > 0 && e->n_waiting > 0 && e->n_running < e->p.max_running) {
        struct seq *s = e->waiting[0];
        prefix_match(e, s);
        int32_t pending = s->n_tokens - s->kv.n_tokens;
        /* whole remaining prompt must fit, plus one block of headroom */
        int32_t need = blocks_for(e, s->n_tokens + 1) - s->kv.n_blocks;
        if ((int64_t)ea_kv_cache_n_free(e->kv) < need + 1 && e->n_running > 0) {
            /* give back the prefix hits; try again when blocks free up */
            ea_kv_seq_release(e->kv, &s->kv);
            s->n_hashed = 0;
            s->last_hash = 0;
            break;
        }
        list_remove(e->waiting, &e->n_waiting, s);
        running_insert(e, s);
        if (!s->admitted_once) {
            s->admitted_once = true;
            s->n_cached = s->kv.n_tokens;
            s->t_admit = now_ms();
            e->st.tokens_cached += (uint64_t)s->kv.n_tokens;
        }
        int32_t take = pending < budget ? pending : budget;
        if (!ensure_blocks(e, s, s->kv.n_tokens + take, n))
            break;
        e->plan[n++] = (struct plan_item){s, take, take == pending};
        budget -= take;
    }
    return n;
}

static bool is_eog(const ea_engine *e, int32_t t)
{
    for (int32_t i = 0; i < e->p.n_eog_tokens; i++)
        if (e->eog[i] == t)
            return true;
    return false;
}

static void update_rates(ea_engine *e, int32_t n_prefill, int32_t n_decode, double ms)
{
    const double a = 0.2;
    struct ea_engine_stats *st = &e->st;
    if (n_prefill == 0 && n_decode > 0) {
        st->decode_step_ms = st->decode_step_ms > 0 ? (1 - a) * st->decode_step_ms + a * ms : ms;
        double rate = n_decode / (ms / 1e3);
        st->decode_tok_s = st->decode_tok_s > 0 ? (1 - a) * st->decode_tok_s + a * rate : rate;
    } else if (n_prefill > 0) {
        double dec = n_decode > 0 && st->decode_step_ms > 0 ? st->decode_step_ms : 0;
        double t = ms - dec > ms * 0.1 ? ms - dec : ms * 0.1;
        double rate = n_prefill / (t / 1e3);
        st->prefill_tok_s = st->prefill_tok_s > 0 ? (1 - a) * st->prefill_tok_s + a * rate : rate;
    }
}

/* Appends a generated token; false on allocation failure. */
static bool push_token(struct seq *s, int32_t t)
{
    if (s->n_tokens == s->cap_tokens) {
        int32_t cap = s->cap_tokens * 2;
        int32_t *nt = ea_realloc(s->tokens, sizeof *nt * (size_t)cap);
        if (!nt)
            return false;
        s->tokens = nt;
        s->cap_tokens = cap;
    }
    s->tokens[s->n_tokens++] = t;
    return true;
}

static void run_step(ea_engine *e, int32_t n_plan)
{
    const struct ea_model_info *info = ea_model_get_info(e->m);
    int32_t n_prefill = 0, n_decode = 0;
    for (int32_t i = 0; i < n_plan; i++) {
        struct plan_item *it = &e->plan[i];
        e->segs[i] = (struct ea_batch_seg){it->s->kv.n_tokens, it->n_new,
                                           it->s->tokens + it->s->kv.n_tokens, it->s->kv.blocks,
                                           it->sample ? EA_LOGITS_LAST : EA_LOGITS_NONE};
        if (it->n_new == 1 && it->sample && it->s->n_generated > 0)
            n_decode++;
        else
            n_prefill += it->n_new;
    }
    struct ea_batch b = {n_plan, e->segs};
    struct ea_error err = {0};
    double t0 = now_ms();
    ea_status st = ea_model_forward(e->m, ea_kv_cache_store(e->kv), &b, e->logits, &err);
    double ms = now_ms() - t0;
    if (st) {
        for (int32_t i = 0; i < n_plan; i++)
            finish(e, e->plan[i].s, EA_FINISH_ERROR, st, err.msg);
        return;
    }
    pthread_mutex_lock(&e->mu); /* ea_engine_get_stats reads the rates under it */
    update_rates(e, n_prefill, n_decode, ms);
    pthread_mutex_unlock(&e->mu);
    int32_t row = 0;
    for (int32_t i = 0; i < n_plan; i++) {
        struct plan_item *it = &e->plan[i];
        struct seq *s = it->s;
        s->kv.n_tokens += it->n_new;
        pthread_mutex_lock(&e->mu);
        register_full_blocks(e, s);
        pthread_mutex_unlock(&e->mu);
        if (!it->sample)
            continue;
        const float *lg = e->logits + (size_t)row++ * info->n_vocab;
        if (atomic_load(&s->cancel)) {
            finish(e, s, EA_FINISH_CANCELLED, EA_ECANCELLED, NULL);
            continue;
        }
        if (s->n_generated >= s->max_tokens) { /* resumed after its last token */
            finish(e, s, EA_FINISH_LENGTH, EA_OK, NULL);
            continue;
        }
        struct ea_sample_result r;
        bool grammar_done = false;
        if (s->gm) {
            struct ea_error gerr = {0};
            if (ea_grammar_matcher_fill_mask(s->gm, s->mask, s->mask_words, &gerr)) {
                finish(e, s, EA_FINISH_ERROR, gerr.status, gerr.msg);
                continue;
            }
            bool any = false;
            for (size_t w = 0; w < s->mask_words && !any; w++)
                any = s->mask[w] != 0;
            if (!any) { /* complete, nothing may follow, and no EOG token exists */
                finish(e, s, EA_FINISH_STOP, EA_OK, NULL);
                continue;
            }
            ea_sampler_sample_masked(s->sampler, lg, s->mask, s->mask_words, &r);
            if (ea_grammar_matcher_accept_token(s->gm, r.token, &gerr)) {
                finish(e, s, EA_FINISH_ERROR, gerr.status, gerr.msg);
                continue;
            }
            grammar_done = ea_grammar_matcher_is_terminated(s->gm);
        } else {
            ea_sampler_sample(s->sampler, lg, &r);
        }
        ea_sampler_accept(s->sampler, r.token);
        if (s->t_first <= 0)
            s->t_first = now_ms();
        if ((!s->ignore_eog || s->gm) && is_eog(e, r.token)) {
            finish(e, s, EA_FINISH_STOP, EA_OK, NULL);
            continue;
        }
        if (!push_token(s, r.token)) {
            finish(e, s, EA_FINISH_ERROR, EA_ENOMEM, "out of memory");
            continue;
        }
        s->n_generated++;
        pthread_mutex_lock(&e->mu);
        e->st.tokens_generated++;
        pthread_mutex_unlock(&e->mu);
        struct ea_engine_event ev = {.kind = EA_EVENT_TOKEN, .id = s->id, .user = s->user,
                                     .sample = &r};
        bool more = s->cb(&ev);
        if (!more || grammar_done)
            finish(e, s, EA_FINISH_STOP, EA_OK, NULL);
        else if (s->n_generated >= s->max_tokens || s->n_tokens >= e->p.max_context)
            finish(e, s, EA_FINISH_LENGTH, EA_OK, NULL);
    }
}

static void *engine_main(void *arg)
{
    ea_engine *e = arg;
    struct seq **cancelled = ea_malloc(sizeof *cancelled * (size_t)(e->p.max_queue + e->p.max_running + 1));
    for (;;) {
        pthread_mutex_lock(&e->mu);
        while (!e->stop && e->n_waiting == 0 && e->n_running == 0)
            pthread_cond_wait(&e->cv, &e->mu);
        if (e->stop) {
            pthread_mutex_unlock(&e->mu);
            break;
        }
        /* cancellations first: their blocks are free for this step */
        int32_t n_cancel = 0;
        for (int32_t i = 0; i < e->n_waiting; i++)
            if (atomic_load(&e->waiting[i]->cancel) && cancelled)
                cancelled[n_cancel++] = e->waiting[i];
        for (int32_t i = 0; i < e->n_running; i++)
            if (atomic_load(&e->running[i]->cancel) && cancelled)
                cancelled[n_cancel++] = e->running[i];
        pthread_mutex_unlock(&e->mu);
        for (int32_t i = 0; i < n_cancel; i++)
            finish(e, cancelled[i], EA_FINISH_CANCELLED, EA_ECANCELLED, NULL);

        pthread_mutex_lock(&e->mu);
        int32_t n_plan = build_plan(e);
        pthread_mutex_unlock(&e->mu);
        if (n_plan > 0)
            run_step(e, n_plan);

        pthread_mutex_lock(&e->mu);
        uint32_t used = ea_kv_cache_n_blocks(e->kv) - ea_kv_cache_n_free(e->kv);
        if (used > e->st.peak_kv_blocks_used)
            e->st.peak_kv_blocks_used = used;
        pthread_mutex_unlock(&e->mu);
    }
    /* shutdown: everything still queued or running is cancelled */
    for (;;) {
        pthread_mutex_lock(&e->mu);
        struct seq *s = e->n_running ? e->running[0] : e->n_waiting ? e->waiting[0] : NULL;
        pthread_mutex_unlock(&e->mu);
        if (!s)
            break;
        finish(e, s, EA_FINISH_CANCELLED, EA_ECANCELLED, "engine shutting down");
    }
    ea_free(cancelled);
    return NULL;
}

/* ---- public API ------------------------------------------------------------- */

ea_status ea_engine_create(ea_model *m, const struct ea_engine_params *p, ea_engine **out,
                           struct ea_error *err)
{
    *out = NULL;
    const struct ea_model_info *info = ea_model_get_info(m);
    struct ea_engine_params d;
    ea_engine_params_default(&d);
    if (!p)
        p = &d;
    ea_engine *e = ea_calloc(1, sizeof *e);
    if (!e)
        return ea_error_set(err, EA_ENOMEM, "engine: out of memory");
    e->m = m;
    e->p = *p;
    if (!e->p.kv_mem_bytes)
        e->p.kv_mem_bytes = d.kv_mem_bytes;
    if (!e->p.block_size)
        e->p.block_size = d.block_size;
    if (e->p.max_batch_tokens <= 0)
        e->p.max_batch_tokens = d.max_batch_tokens;
    if (e->p.max_running <= 0)
        e->p.max_running = d.max_running;
    if (e->p.max_queue <= 0)
        e->p.max_queue = d.max_queue;
    if (e->p.max_context <= 0)
        e->p.max_context = info->n_ctx_train < 4096 ? (int32_t)info->n_ctx_train : 4096;
    if (e->p.max_context > (int32_t)info->n_ctx_train)
        e->p.max_context = (int32_t)info->n_ctx_train;
    e->n_vocab = (int32_t)info->n_vocab;
    ea_status s = EA_OK;
    if (e->p.max_running > 4096 || e->p.max_queue > 1 << 20 || e->p.max_batch_tokens > 16384 ||
        e->p.n_eog_tokens < 0 || e->p.n_eog_tokens > 64) {
        s = ea_error_set(err, EA_EINVAL, "engine: a limit is out of range");
        goto fail;
    }
    struct ea_kv_cache_params kp = {e->p.kv_type, e->p.block_size, e->p.kv_mem_bytes};
    if ((s = ea_kv_cache_create(m, &kp, &e->kv, err)))
        goto fail;
    int64_t pool_tokens = (int64_t)ea_kv_cache_n_blocks(e->kv) * e->p.block_size;
    if (e->p.max_context > pool_tokens - (int64_t)e->p.block_size)
        e->p.max_context = (int32_t)(pool_tokens - e->p.block_size);
    if (e->p.max_context < 2) {
        s = ea_error_set(err, EA_EINVAL, "engine: the KV memory holds fewer than 2 tokens of context");
        goto fail;
    }
    e->eog = ea_malloc(sizeof *e->eog * (size_t)(e->p.n_eog_tokens + 1));
    e->waiting = ea_malloc(sizeof *e->waiting * (size_t)(e->p.max_queue + e->p.max_running + 1));
    e->running = ea_malloc(sizeof *e->running * (size_t)(e->p.max_running + 1));
    e->segs = ea_malloc(sizeof *e->segs * (size_t)(e->p.max_running + 1));
    e->plan = ea_malloc(sizeof *e->plan * (size_t)(e->p.max_running + 1));
    e->logits = ea_malloc(sizeof *e->logits * (size_t)(e->p.max_running + 1) * info->n_vocab);
    if (!e->eog || !e->waiting || !e->running || !e->segs || !e->plan || !e->logits) {
        s = ea_error_set(err, EA_ENOMEM, "engine: out of memory");
        goto fail;
    }
    if (e->p.n_eog_tokens)
        memcpy(e->eog, p->eog_tokens, sizeof *e->eog * (size_t)e->p.n_eog_tokens);
    e->p.eog_tokens = e->eog;
    if (e->p.reserve_kv) {
        /* layer l holds K at k[l], V at v[l]: n_blocks * block_size tokens each, of
         * bytes_per_token / (2 * n_layer) bytes (any KV type) */
        const struct ea_kv_store *kv = ea_kv_cache_store(e->kv);
        size_t bytes = (size_t)(ea_kv_cache_bytes_per_token(m, kv->type) / (2ull * info->n_layer)) *
                       kv->n_blocks * kv->block_size;
        for (uint32_t l = 0; l < info->n_layer; l++) {
            memset(kv->k[l], 0, bytes);
            memset(kv->v[l], 0, bytes);
        }
    }
    e->st.kv_blocks_total = ea_kv_cache_n_blocks(e->kv);
    e->st.kv_block_size = e->p.block_size;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    if (ea__thread_start(&e->thread, engine_main, e) != 0) {
        pthread_mutex_destroy(&e->mu);
        pthread_cond_destroy(&e->cv);
        s = ea_error_set(err, EA_EUNAVAILABLE, "engine: cannot start its thread");
        goto fail;
    }
    *out = e;
    return EA_OK;
fail:
    ea_kv_cache_destroy(e->kv);
    ea_free(e->eog);
    ea_free(e->waiting);
    ea_free(e->running);
    ea_free(e->segs);
    ea_free(e->plan);
    ea_free(e->logits);
    ea_free(e);
    return s;
}

void ea_engine_destroy(ea_engine *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    e->stop = true;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->thread, NULL);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    ea_kv_cache_destroy(e->kv);
    ea_free(e->eog);
    ea_free(e->waiting);
    ea_free(e->running);
    ea_free(e->segs);
    ea_free(e->plan);
    ea_free(e->logits);
    ea_free(e);
}

ea_status ea_engine_submit(ea_engine *e, const struct ea_engine_request *r, uint64_t *id,
                           struct ea_error *err)
{
    if (!r || !r->cb || r->n_prompt <= 0 || !r->prompt || r->max_tokens <= 0)
        return ea_error_set(err, EA_EINVAL,
                            "engine: a request needs a prompt, a callback and max_tokens > 0");
    if (r->n_prompt >= e->p.max_context)
        return ea_error_set(err, EA_ETOOBIG,
                            "engine: the prompt has %d tokens; the context limit is %d",
                            r->n_prompt, e->p.max_context);
    for (int32_t i = 0; i < r->n_prompt; i++)
        if (r->prompt[i] < 0 || r->prompt[i] >= e->n_vocab)
            return ea_error_set(err, EA_EINVAL, "engine: prompt token %d is out of range",
                                r->prompt[i]);
    struct seq *s = ea_calloc(1, sizeof *s);
    if (!s)
        return ea_error_set(err, EA_ENOMEM, "engine: out of memory");
    s->cap_tokens = r->n_prompt + (r->max_tokens < 256 ? r->max_tokens : 256) + 1;
    s->tokens = ea_malloc(sizeof *s->tokens * (size_t)s->cap_tokens);
    ea_status st = EA_OK;
    if (!s->tokens) {
        st = ea_error_set(err, EA_ENOMEM, "engine: out of memory");
        goto fail;
    }
    memcpy(s->tokens, r->prompt, sizeof *s->tokens * (size_t)r->n_prompt);
    s->n_tokens = s->n_prompt = r->n_prompt;
    s->max_tokens = r->max_tokens;
    s->priority = r->priority;
    s->cb = r->cb;
    s->user = r->user;
    s->ignore_eog = r->ignore_eog;
    if ((st = ea_sampler_create(&r->sampling, e->n_vocab, &s->sampler, err)))
        goto fail;
    if (r->grammar) {
        const ea_grammar_vocab *gv = ea_grammar_vocab_of(r->grammar);
        if (ea_grammar_vocab_n_vocab(gv) > (uint32_t)e->n_vocab) {
            st = ea_error_set(err, EA_EINVAL,
                              "engine: the grammar's vocabulary has %u tokens, the model %d",
                              ea_grammar_vocab_n_vocab(gv), e->n_vocab);
            goto fail;
        }
        s->mask_words = ea_grammar_mask_words(gv);
        s->mask = ea_malloc(sizeof *s->mask * s->mask_words);
        if (!s->mask) {
            st = ea_error_set(err, EA_ENOMEM, "engine: out of memory");
            goto fail;
        }
        if ((st = ea_grammar_matcher_create(r->grammar, &s->gm, err)))
            goto fail;
    }
    for (int32_t i = 0; i < r->n_prompt; i++)
        ea_sampler_accept(s->sampler, r->prompt[i]);
    s->t_submit = now_ms();
    pthread_mutex_lock(&e->mu);
    if (e->n_waiting >= e->p.max_queue || e->stop) {
        int32_t n_waiting = e->n_waiting; /* read under the lock */
        e->st.rejected_overloaded++;
        pthread_mutex_unlock(&e->mu);
        st = ea_error_set(err, EA_EOVERLOADED, "engine: %d requests are already waiting",
                          n_waiting);
        goto fail;
    }
    s->id = ++e->next_id;
    s->arrival = ++e->next_arrival;
    e->st.tokens_prompt += (uint64_t)r->n_prompt;
    *id = s->id; /* s is the engine thread's once the lock is released: it may finish and free it at once */
    waiting_insert(e, s);
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    return EA_OK;
fail:
    ea_sampler_destroy(s->sampler);
    ea_grammar_matcher_destroy(s->gm);
    ea_free(s->mask);
    ea_free(s->tokens);
    ea_free(s);
    return st;
}

bool ea_engine_cancel(ea_engine *e, uint64_t id)
{
    bool found = false;
    pthread_mutex_lock(&e->mu);
    for (int32_t i = 0; i < e->n_waiting && !found; i++)
        if (e->waiting[i]->id == id)
            found = !atomic_exchange(&e->waiting[i]->cancel, true);
    for (int32_t i = 0; i < e->n_running && !found; i++)
        if (e->running[i]->id == id)
            found = !atomic_exchange(&e->running[i]->cancel, true);
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    return found;
}

void ea_engine_get_stats(ea_engine *e, struct ea_engine_stats *out)
{
    pthread_mutex_lock(&e->mu);
    *out = e->st;
    out->queue_depth = e->n_waiting;
    out->running = e->n_running;
    out->kv_blocks_free = ea_kv_cache_n_free(e->kv) - ea_kv_cache_n_cached(e->kv);
    out->kv_blocks_cached = ea_kv_cache_n_cached(e->kv);
    out->kv_blocks_used = out->kv_blocks_total - ea_kv_cache_n_free(e->kv);
    pthread_mutex_unlock(&e->mu);
}

const ea_model *ea_engine_model(const ea_engine *e) { return e->m; }
