/* genq.c - the generation queue (see genq.h): per-choice pending output
 * under one mutex, the caps, the wake callback and the reference count.
 * Does not hold: what the output means (formatting: generate.c) or where it
 * comes from (upstreams).
 */
#include <stdio.h>
#include <string.h>

#include "server/genq.h"

/* Logprob entries of one choice take at most this many times its text cap. */
#define EA__GENQ_LP_FACTOR 4
#define EA__GENQ_LP_FIRST 16 /* entries allocated at the first one */

size_t ea__genq_max_lps(size_t cap) { return cap * EA__GENQ_LP_FACTOR / sizeof(struct ea__genq_lp); }

void ea__genq_buf_init(struct ea__genq_buf *b, size_t cap)
{
    memset(b, 0, sizeof *b);
    ea__buf_init(&b->text, cap);
    ea__buf_init(&b->call_text, cap);
}

void ea__genq_buf_release(struct ea__genq_buf *b)
{
    ea__buf_release(&b->text);
    ea_free(b->lps);
    ea__buf_release(&b->call_text);
    ea_free(b->calls);
    memset(b, 0, sizeof *b);
}

void ea__genq_buf_reset(struct ea__genq_buf *b)
{
    ea__buf_reset(&b->text);
    b->n_lps = 0;
    ea__buf_reset(&b->call_text);
    b->n_calls = 0;
}

ea_status ea__genq_init(struct ea__genq *q, int n_choices, size_t cap, bool logprobs,
                        int top_logprobs, ea__genq_wake_fn wake, ea__genq_free_fn free_fn,
                        void *user)
{
    memset(q, 0, sizeof *q);
    q->c = ea_calloc((size_t)n_choices, sizeof *q->c);
    if (!q->c)
        return EA_ENOMEM;
    pthread_mutex_init(&q->mu, NULL);
    q->lock = &q->mu;
    q->root = q;
    q->refs = 1;
    q->n_choices = n_choices;
    q->cap = cap;
    q->logprobs = logprobs;
    q->top_logprobs = top_logprobs < EA__GENQ_MAX_TOP ? top_logprobs : EA__GENQ_MAX_TOP;
    q->wake = wake;
    q->free_fn = free_fn;
    q->user = user;
    for (int i = 0; i < n_choices; i++)
        ea__genq_buf_init(&q->c[i].pending, cap);
    return EA_OK;
}

void ea__genq_release(struct ea__genq *q)
{
    if (!q->c)
        return;
    for (int i = 0; i < q->n_choices; i++)
        ea__genq_buf_release(&q->c[i].pending);
    ea_free(q->c);
    q->c = NULL;
    if (q->root == q)
        pthread_mutex_destroy(&q->mu);
}

ea_status ea__genq_init_child(struct ea__genq *q, struct ea__genq *parent, ea__genq_wake_fn wake,
                              void *user)
{
    memset(q, 0, sizeof *q);
    q->c = ea_calloc((size_t)parent->n_choices, sizeof *q->c);
    if (!q->c)
        return EA_ENOMEM;
    q->lock = parent->lock;
    q->root = parent->root;
    q->n_choices = parent->n_choices;
    q->cap = parent->cap;
    q->logprobs = parent->logprobs;
    q->top_logprobs = parent->top_logprobs;
    q->wake = wake;
    q->user = user;
    for (int i = 0; i < q->n_choices; i++)
        ea__genq_buf_init(&q->c[i].pending, q->cap);
    return EA_OK;
}

bool ea__genq_move_locked(struct ea__genq *dst, struct ea__genq *src, int choice)
{
    struct ea__genq_buf *s = &src->c[choice].pending, *d = &dst->c[choice].pending;
    bool ok = true;
    if (!d->text.len && !d->n_lps && !d->n_calls) {
        struct ea__genq_buf t = *d;
        *d = *s;
        *s = t;
    } else {
        ok = !s->text.len || !ea__buf_append(&d->text, s->text.data, s->text.len);
        for (int32_t k = 0; ok && k < s->n_lps; k++) {
            if (d->n_lps == d->cap_lps) {
                int32_t cap = d->cap_lps ? d->cap_lps * 2 : EA__GENQ_LP_FIRST;
                size_t bytes = sizeof *d->lps * (size_t)cap;
                struct ea__genq_lp *nl = bytes > dst->cap * EA__GENQ_LP_FACTOR ? NULL
                                                                                : ea_realloc(d->lps, bytes);
                if (!nl) {
                    ok = false;
                    break;
                }
                d->lps = nl;
                d->cap_lps = cap;
            }
            d->lps[d->n_lps++] = s->lps[k];
        }
        /* tool calls: their names and arguments move into d's call text */
        size_t base = d->call_text.len;
        ok = ok && (!s->call_text.len || !ea__buf_append(&d->call_text, s->call_text.data, s->call_text.len));
        for (int32_t k = 0; ok && k < s->n_calls; k++) {
            if (d->n_calls == d->cap_calls) {
                int32_t cap = d->cap_calls ? d->cap_calls * 2 : 4;
                struct ea__genq_call *nc = ea_realloc(d->calls, sizeof *nc * (size_t)cap);
                if (!nc) {
                    ok = false;
                    break;
                }
                d->calls = nc;
                d->cap_calls = cap;
            }
            struct ea__genq_call c = s->calls[k];
            c.name_off += base;
            c.args_off += base;
            d->calls[d->n_calls++] = c;
        }
    }
    dst->c[choice].n_calls = src->c[choice].n_calls;
    ea__genq_buf_reset(s);
    if (!ok)
        dst->overflow = true;
    return ok;
}

void ea__genq_end_locked(struct ea__genq *q, int choice, const struct ea__genq_end *end)
{
    struct ea__genq_choice *c = &q->c[choice];
    c->done = true;
    c->end = *end;
    c->errmsg[0] = '\0';
    if (end->error && end->error != c->errmsg)
        snprintf(c->errmsg, sizeof c->errmsg, "%s", end->error);
    c->end.error = c->errmsg;
    q->n_done++;
}

void ea__genq_ref_locked(struct ea__genq *q) { q->root->refs++; }

void ea__genq_unref(struct ea__genq *q)
{
    pthread_mutex_lock(q->lock);
    int r = --q->root->refs;
    pthread_mutex_unlock(q->lock);
    if (r == 0)
        q->root->free_fn(q->root->user);
}

void ea__genq_begin(struct ea__genq *q, int choice)
{
    pthread_mutex_lock(q->lock);
    q->root->refs++; /* the producer's, dropped by finish (which may come before begin's caller returns) */
    q->c[choice].started = true;
    pthread_mutex_unlock(q->lock);
}

void ea__genq_abort(struct ea__genq *q, int choice)
{
    pthread_mutex_lock(q->lock);
    q->c[choice].started = false;
    q->root->refs--; /* never the last: the caller holds one */
    pthread_mutex_unlock(q->lock);
}

/* Appends text and a logprob entry to choice's pending output (under mu).
 * False when it passed its cap (the client is not reading). */
static bool append_locked(struct ea__genq *q, struct ea__genq_choice *c, const char *text, size_t n,
                          const struct ea_sample_result *r)
{
    struct ea__genq_buf *b = &c->pending;
    if (n && ea__buf_append(&b->text, text, n))
        return false;
    if (r && q->logprobs) {
        if (b->n_lps == b->cap_lps) {
            int32_t cap = b->cap_lps ? b->cap_lps * 2 : EA__GENQ_LP_FIRST;
            size_t bytes = sizeof *b->lps * (size_t)cap;
            if (bytes > q->cap * EA__GENQ_LP_FACTOR)
                return false;
            struct ea__genq_lp *nl = ea_realloc(b->lps, bytes);
            if (!nl)
                return false;
            b->lps = nl;
            b->cap_lps = cap;
        }
        struct ea__genq_lp *e = &b->lps[b->n_lps++];
        e->token = r->token;
        e->logprob = r->logprob;
        e->n_top = r->n_top < q->top_logprobs ? r->n_top : q->top_logprobs;
        memcpy(e->top, r->top, sizeof e->top[0] * (size_t)e->n_top);
    }
    return true;
}

bool ea__genq_emit(struct ea__genq *q, int choice, const char *text, size_t n,
                   const struct ea_sample_result *lp)
{
    pthread_mutex_lock(q->lock);
    bool ok = append_locked(q, &q->c[choice], text, n, lp);
    if (!ok)
        q->overflow = true;
    const bool go_on = q->wake(q->user, choice, false);
    pthread_mutex_unlock(q->lock);
    return ok && go_on;
}

/* A new entry in choice's pending calls (under mu); NULL when out of memory. */
static struct ea__genq_call *call_entry_locked(struct ea__genq_choice *c)
{
    struct ea__genq_buf *b = &c->pending;
    if (b->n_calls == b->cap_calls) {
        int32_t cap = b->cap_calls ? b->cap_calls * 2 : 4;
        struct ea__genq_call *nc = ea_realloc(b->calls, sizeof *nc * (size_t)cap);
        if (!nc)
            return NULL;
        b->calls = nc;
        b->cap_calls = cap;
    }
    struct ea__genq_call *e = &b->calls[b->n_calls];
    memset(e, 0, sizeof *e);
    e->name_off = e->args_off = b->call_text.len;
    return e;
}

bool ea__genq_call_begin(struct ea__genq *q, int choice, const char *id, const char *name,
                         size_t name_len)
{
    pthread_mutex_lock(q->lock);
    struct ea__genq_choice *c = &q->c[choice];
    struct ea__genq_call *e = call_entry_locked(c);
    bool ok = e && !ea__buf_append(&c->pending.call_text, name, name_len);
    if (ok) {
        e->index = c->n_calls++;
        e->first = true;
        snprintf(e->id, sizeof e->id, "%s", id);
        e->name_len = name_len;
        e->args_off = c->pending.call_text.len;
        c->pending.n_calls++;
    }
    if (!ok)
        q->overflow = true;
    const bool go_on = q->wake(q->user, choice, false);
    pthread_mutex_unlock(q->lock);
    return ok && go_on;
}

bool ea__genq_call_args(struct ea__genq *q, int choice, const char *args, size_t n)
{
    pthread_mutex_lock(q->lock);
    struct ea__genq_choice *c = &q->c[choice];
    struct ea__genq_buf *b = &c->pending;
    bool ok = c->n_calls > 0;
    /* the last entry's arguments end the call text: extend it, else a
     * continuation entry (the opening one was taken already) */
    struct ea__genq_call *e = b->n_calls ? &b->calls[b->n_calls - 1] : NULL;
    if (ok && !(e && e->index == c->n_calls - 1)) {
        e = call_entry_locked(c);
        ok = e != NULL;
        if (ok) {
            e->index = c->n_calls - 1;
            b->n_calls++;
        }
    }
    if (ok && n) {
        ok = !ea__buf_append(&b->call_text, args, n);
        if (ok)
            e->args_len += n;
    }
    if (!ok)
        q->overflow = true;
    const bool go_on = q->wake(q->user, choice, false);
    pthread_mutex_unlock(q->lock);
    return ok && go_on;
}

void ea__genq_finish(struct ea__genq *q, int choice, const char *text, size_t n,
                     const struct ea__genq_end *end)
{
    struct ea__genq_choice *c = &q->c[choice];
    pthread_mutex_lock(q->lock);
    if (!append_locked(q, c, text, n, NULL))
        q->overflow = true;
    ea__genq_end_locked(q, choice, end);
    q->wake(q->user, choice, true);
    pthread_mutex_unlock(q->lock);
    ea__genq_unref(q);
}

bool ea__genq_take_locked(struct ea__genq *q, int choice, struct ea__genq_buf *local)
{
    struct ea__genq_buf *p = &q->c[choice].pending;
    if (!p->text.len && !p->n_lps && !p->n_calls)
        return false;
    struct ea__genq_buf t = *p;
    *p = *local;
    *local = t;
    return true;
}
