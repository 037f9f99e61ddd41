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
    pthread_mutex_destroy(&q->mu);
}

void ea__genq_ref_locked(struct ea__genq *q) { q->refs++; }

void ea__genq_unref(struct ea__genq *q)
{
    pthread_mutex_lock(&q->mu);
    int r = --q->refs;
    pthread_mutex_unlock(&q->mu);
    if (r == 0)
        q->free_fn(q->user);
}

void ea__genq_begin(struct ea__genq *q, int choice)
{
    pthread_mutex_lock(&q->mu);
    q->refs++; /* the producer's, dropped by finish (which may come before begin's caller returns) */
    q->c[choice].started = true;
    pthread_mutex_unlock(&q->mu);
}

void ea__genq_abort(struct ea__genq *q, int choice)
{
    pthread_mutex_lock(&q->mu);
    q->c[choice].started = false;
    q->refs--; /* never the last: the caller holds one */
    pthread_mutex_unlock(&q->mu);
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
    pthread_mutex_lock(&q->mu);
    bool ok = append_locked(q, &q->c[choice], text, n, lp);
    if (!ok)
        q->overflow = true;
    const bool go_on = q->wake(q->user, choice, false);
    pthread_mutex_unlock(&q->mu);
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
    pthread_mutex_lock(&q->mu);
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
    pthread_mutex_unlock(&q->mu);
    return ok && go_on;
}

bool ea__genq_call_args(struct ea__genq *q, int choice, const char *args, size_t n)
{
    pthread_mutex_lock(&q->mu);
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
    pthread_mutex_unlock(&q->mu);
    return ok && go_on;
}

void ea__genq_finish(struct ea__genq *q, int choice, const char *text, size_t n,
                     const struct ea__genq_end *end)
{
    struct ea__genq_choice *c = &q->c[choice];
    pthread_mutex_lock(&q->mu);
    if (!append_locked(q, c, text, n, NULL))
        q->overflow = true;
    c->done = true;
    c->end = *end;
    c->errmsg[0] = '\0';
    if (end->error)
        snprintf(c->errmsg, sizeof c->errmsg, "%s", end->error);
    c->end.error = c->errmsg;
    q->n_done++;
    q->wake(q->user, choice, true);
    pthread_mutex_unlock(&q->mu);
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
