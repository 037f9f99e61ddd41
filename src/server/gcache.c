/* gcache.c - the server's grammar cache (gcache.h): a lazily built
 * vocabulary index and an LRU list of compiled grammars with reference
 * counts.
 * Does not hold: grammar compilation (src/grammar/), request parsing.
 */
#include <pthread.h>
#include <string.h>

#include "server/gcache.h"

struct ea__gcache_entry {
    struct ea__gcache_entry *prev, *next; /* LRU list, most recent first; NULL when evicted */
    char *key;
    size_t len;
    ea_grammar *g;
    int refs;     /* the cache's (while listed) + holders' */
    bool listed;
};

struct ea__gcache {
    pthread_mutex_t mu;
    const ea_tokenizer *tok;
    ea_grammar_vocab *v; /* built on first use, under mu */
    size_t max, n;
    struct ea__gcache_entry *head, *tail;
    uint64_t hits, misses;
    /* entries evicted while in use, freed by their last unref; the vocabulary
     * stays until the cache and they are gone */
    int orphans;
    bool dying;
};

ea_status ea__gcache_create(const ea_tokenizer *tok, size_t max_entries, struct ea__gcache **out,
                            struct ea_error *err)
{
    struct ea__gcache *c = ea_calloc(1, sizeof *c);
    if (!c)
        return ea_error_set(err, EA_ENOMEM, "grammar cache: out of memory");
    pthread_mutex_init(&c->mu, NULL);
    c->tok = tok;
    c->max = max_entries ? max_entries : 1;
    *out = c;
    return EA_OK;
}

static void entry_free(struct ea__gcache_entry *e)
{
    ea_grammar_destroy(e->g);
    ea_free(e->key);
    ea_free(e);
}

static void unlink_locked(struct ea__gcache *c, struct ea__gcache_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
    e->listed = false;
    c->n--;
}

static void push_front_locked(struct ea__gcache *c, struct ea__gcache_entry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
    e->listed = true;
    c->n++;
}

/* Drops a reference (under mu); true when the entry must be freed. */
static bool drop_locked(struct ea__gcache *c, struct ea__gcache_entry *e)
{
    if (--e->refs > 0)
        return false;
    if (!e->listed)
        c->orphans--;
    return true;
}

static void free_cache(struct ea__gcache *c)
{
    pthread_mutex_destroy(&c->mu);
    ea_grammar_vocab_destroy(c->v);
    ea_free(c);
}

void ea__gcache_destroy(struct ea__gcache *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    while (c->head) {
        struct ea__gcache_entry *e = c->head;
        unlink_locked(c, e);
        c->orphans++;
        if (drop_locked(c, e))
            entry_free(e);
    }
    c->dying = true;
    bool last = c->orphans == 0;
    pthread_mutex_unlock(&c->mu);
    if (last)
        free_cache(c);
}

ea_status ea__gcache_get(struct ea__gcache *c, const char *key, size_t len, ea__gcache_compile_fn fn,
                         const void *arg, struct ea__gcache_entry **out, struct ea_error *err)
{
    *out = NULL;
    pthread_mutex_lock(&c->mu);
    for (struct ea__gcache_entry *e = c->head; e; e = e->next)
        if (e->len == len && !memcmp(e->key, key, len)) {
            unlink_locked(c, e);
            push_front_locked(c, e);
            e->refs++;
            c->hits++;
            pthread_mutex_unlock(&c->mu);
            *out = e;
            return EA_OK;
        }
    ea_status s = EA_OK;
    if (!c->v) /* once per model: tens of milliseconds on a 151k vocabulary */
        s = ea_grammar_vocab_create(c->tok, &c->v, err);
    const ea_grammar_vocab *v = c->v;
    c->misses++;
    pthread_mutex_unlock(&c->mu);
    if (s)
        return s;
    struct ea__gcache_entry *e = ea_calloc(1, sizeof *e);
    if (!e || !(e->key = ea_malloc(len ? len : 1))) {
        ea_free(e);
        return ea_error_set(err, EA_ENOMEM, "grammar cache: out of memory");
    }
    memcpy(e->key, key, len);
    e->len = len;
    if ((s = fn(v, arg, &e->g, err))) {
        entry_free(e);
        return s;
    }
    e->refs = 2; /* the cache's and the caller's */
    pthread_mutex_lock(&c->mu);
    /* another thread may have compiled the same meanwhile: keep both (the
     * older one ages out) */
    push_front_locked(c, e);
    struct ea__gcache_entry *victim = NULL;
    if (c->n > c->max) {
        victim = c->tail;
        unlink_locked(c, victim);
        c->orphans++;
        if (!drop_locked(c, victim))
            victim = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    if (victim)
        entry_free(victim);
    *out = e;
    return EA_OK;
}

const ea_grammar *ea__gcache_grammar(const struct ea__gcache_entry *e) { return e->g; }

void ea__gcache_unref(struct ea__gcache *c, struct ea__gcache_entry *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&c->mu);
    bool f = drop_locked(c, e);
    bool last = f && c->dying && c->orphans == 0;
    pthread_mutex_unlock(&c->mu);
    if (f)
        entry_free(e);
    if (last)
        free_cache(c);
}

void ea__gcache_counts(struct ea__gcache *c, uint64_t *hits, uint64_t *misses)
{
    pthread_mutex_lock(&c->mu);
    *hits = c->hits;
    *misses = c->misses;
    pthread_mutex_unlock(&c->mu);
}
