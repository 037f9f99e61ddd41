/* error.c - status names/messages from EA_STATUS_MAP, ea_error formatting and
 * the counting allocator with a fail-the-Nth hook.
 * Does not hold: logging or any module-specific error text.
 */
#include "edgeagent/error.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_names[] = {
#define EA__STATUS_NAME(name, msg) #name,
    EA_STATUS_MAP(EA__STATUS_NAME)
#undef EA__STATUS_NAME
};

static const char *const status_messages[] = {
#define EA__STATUS_MSG(name, msg) msg,
    EA_STATUS_MAP(EA__STATUS_MSG)
#undef EA__STATUS_MSG
};

const char *ea_status_name(ea_status s)
{
    if ((unsigned)s >= (unsigned)EA_STATUS_COUNT)
        return "EUNKNOWN";
    return status_names[s];
}

const char *ea_status_message(ea_status s)
{
    if ((unsigned)s >= (unsigned)EA_STATUS_COUNT)
        return "unknown status";
    return status_messages[s];
}

ea_status ea_error_setv(struct ea_error *err, ea_status s, const char *fmt, va_list ap)
{
    if (!err)
        return s;
    err->status = s;
    if (fmt)
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    else
        snprintf(err->msg, sizeof err->msg, "%s", ea_status_message(s));
    return s;
}

ea_status ea_error_set(struct ea_error *err, ea_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ea_error_setv(err, s, fmt, ap);
    va_end(ap);
    return s;
}

ea_status ea_error_prefix(struct ea_error *err, const char *fmt, ...)
{
    if (!err)
        return EA_EINTERNAL;
    char prefix[EA_ERROR_MSG_MAX];
    char old[EA_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    old[sizeof old - 1] = '\0';
    /* prefix + ": " + old, cut to fit; spelled out because snprintf's
     * truncation warning cannot see that cutting is intended here. */
    size_t np = strlen(prefix), no = strlen(old), cap = sizeof err->msg - 1, o = 0;
    memcpy(err->msg, prefix, np < cap ? np : cap);
    o = np < cap ? np : cap;
    for (const char *sep = ": "; *sep && o < cap; sep++)
        err->msg[o++] = *sep;
    size_t take = no < cap - o ? no : cap - o;
    memcpy(err->msg + o, old, take);
    err->msg[o + take] = '\0';
    return err->status;
}

void ea_error_clear(struct ea_error *err)
{
    if (!err)
        return;
    err->status = EA_OK;
    err->msg[0] = '\0';
}

/* Fault injection: fail_at == 0 means disarmed. Atomics keep the counter sane
 * if a test arms it while engine threads allocate. */
static _Atomic long alloc_fail_at;
static _Atomic long alloc_seen;

void ea_alloc_fail_after(long n)
{
    atomic_store(&alloc_seen, 0);
    atomic_store(&alloc_fail_at, n);
}

long ea_alloc_count(void) { return atomic_load(&alloc_seen); }

static int alloc_should_fail(void)
{
    long at = atomic_load_explicit(&alloc_fail_at, memory_order_relaxed);
    if (at <= 0)
        return 0;
    long seen = atomic_fetch_add(&alloc_seen, 1) + 1;
    return seen >= at;
}

void *ea_malloc(size_t n)
{
    if (alloc_should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *ea_calloc(size_t count, size_t size)
{
    if (alloc_should_fail())
        return NULL;
    if (count == 0 || size == 0)
        return calloc(1, 1);
    return calloc(count, size);
}

void *ea_realloc(void *p, size_t n)
{
    if (alloc_should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void ea_free(void *p) { free(p); }

char *ea_strndup(const char *s, size_t n)
{
    char *d = ea_malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *ea_strdup(const char *s) { return ea_strndup(s, strlen(s)); }
