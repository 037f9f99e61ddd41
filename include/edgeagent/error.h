/* error.h - the one status enum of edgeagent, the ea_error detail record, and
 * the allocator every library function goes through.
 *
 * Holds: ea_status (generated from EA_STATUS_MAP, codes only appended), the
 * caller-owned struct ea_error, ea_malloc/ea_free and the fault-injection hook
 * tests use to fail the Nth allocation.
 * Does not hold: logging (log.h) or anything module specific.
 */
#ifndef EDGEAGENT_ERROR_H
#define EDGEAGENT_ERROR_H

#include <stddef.h>
#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

/* X(NAME, message). Append only: the numeric values are part of the ABI. */
#define EA_STATUS_MAP(X)                                                     \
    X(OK, "success")                                                         \
    X(EINVAL, "invalid argument")                                            \
    X(ENOMEM, "out of memory")                                               \
    X(EIO, "input/output error")                                             \
    X(EFORMAT, "malformed input")                                            \
    X(EUNSUPPORTED, "unsupported feature or version")                        \
    X(ERANGE, "value out of range")                                          \
    X(ENOTFOUND, "not found")                                                \
    X(ETOOBIG, "input exceeds a configured limit")                           \
    X(EOVERLOADED, "overloaded, try again later")                            \
    X(ECANCELLED, "cancelled")                                               \
    X(ETIMEOUT, "timed out")                                                 \
    X(ESTATE, "operation not valid in the current state")                    \
    X(EINTERNAL, "internal error")                                           \
    X(EAUTH, "authentication failed")                                        \
    X(EUNAVAILABLE, "service unavailable")

typedef enum {
#define EA__STATUS_ENUM(name, msg) EA_##name,
    EA_STATUS_MAP(EA__STATUS_ENUM)
#undef EA__STATUS_ENUM
    EA_STATUS_COUNT
} ea_status;

/* Detail of the last failure of one call. Caller-allocated; never global. */
#define EA_ERROR_MSG_MAX 512
struct ea_error {
    ea_status status;
    char msg[EA_ERROR_MSG_MAX];
};

/* "EFORMAT" for EA_EFORMAT; "EUNKNOWN" for values outside the table. */
const char *ea_status_name(ea_status s);
/* Generic human message for a status ("malformed input"). */
const char *ea_status_message(ea_status s);

/* Records s and a printf-style detail in err (err may be NULL) and returns s,
 * so that callers can write `return ea_error_set(err, EA_EFORMAT, ...)`. */
ea_status ea_error_set(struct ea_error *err, ea_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
ea_status ea_error_setv(struct ea_error *err, ea_status s, const char *fmt, va_list ap);
/* Prefixes the existing detail with more context: "loading x: <old detail>". */
ea_status ea_error_prefix(struct ea_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void ea_error_clear(struct ea_error *err);

/* Allocation. All library memory goes through these so that tests can inject
 * failures. ea_free(NULL) is a no-op. */
void *ea_malloc(size_t n);
void *ea_calloc(size_t count, size_t size);
void *ea_realloc(void *p, size_t n);
void ea_free(void *p);
/* Duplicates a NUL-terminated string / n bytes plus a NUL; free with ea_free. */
char *ea_strdup(const char *s);
char *ea_strndup(const char *s, size_t n);

/* Test hook: the nth allocation from now (1-based) and every later one fail
 * until the hook is reset with n = 0. Not thread-safe; tests only. */
void ea_alloc_fail_after(long n);
/* Number of allocations the hook has counted since it was armed. */
long ea_alloc_count(void);

#ifdef __cplusplus
}
#endif
#endif
