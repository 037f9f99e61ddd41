/* test_error.c - the status table, ea_error formatting, the allocation
 * fault hook and the capped buffer (util/buf.h). */
#include <stdint.h>

#include "edgeagent/error.h"
#include "harness.h"
#include "util/buf.h"

static void status_names(void)
{
    ASSERT_STR_EQ(ea_status_name(EA_OK), "OK");
    ASSERT_STR_EQ(ea_status_name(EA_EFORMAT), "EFORMAT");
    ASSERT_STR_EQ(ea_status_message(EA_ENOMEM), "out of memory");
    ASSERT_STR_EQ(ea_status_name((ea_status)9999), "EUNKNOWN");
    for (int s = 0; s < EA_STATUS_COUNT; s++) {
        ASSERT(ea_status_name((ea_status)s)[0] != '\0');
        ASSERT(ea_status_message((ea_status)s)[0] != '\0');
    }
}

static void error_set_and_prefix(void)
{
    struct ea_error err = {0};
    ASSERT_EQ(ea_error_set(&err, EA_EFORMAT, "bad %s at %d", "thing", 42), EA_EFORMAT);
    ASSERT_EQ(err.status, EA_EFORMAT);
    ASSERT_STR_EQ(err.msg, "bad thing at 42");
    ea_error_prefix(&err, "file %s", "x.gguf");
    ASSERT_STR_EQ(err.msg, "file x.gguf: bad thing at 42");
    ASSERT_EQ(ea_error_set(NULL, EA_EIO, "ignored"), EA_EIO);
    /* A long detail is cut, never overflows. */
    char big[2000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ea_error_set(&err, EA_EINVAL, "%s", big);
    ASSERT_EQ(strlen(err.msg), EA_ERROR_MSG_MAX - 1);
    ea_error_prefix(&err, "%s", big);
    ASSERT_EQ(strlen(err.msg), EA_ERROR_MSG_MAX - 1);
    ea_error_clear(&err);
    ASSERT_EQ(err.status, EA_OK);
    ASSERT_STR_EQ(err.msg, "");
}

static void alloc_fault_hook(void)
{
    ea_alloc_fail_after(3);
    void *a = ea_malloc(8), *b = ea_malloc(8), *c = ea_malloc(8), *d = ea_calloc(1, 8);
    ea_alloc_fail_after(0);
    ASSERT(a && b);
    ASSERT(c == NULL);
    ASSERT(d == NULL);
    ea_free(a);
    ea_free(b);
    void *e = ea_malloc(8);
    ASSERT(e != NULL);
    ea_free(e);
    ea_free(NULL);
    char *s = ea_strndup("hello world", 5);
    ASSERT_STR_EQ(s, "hello");
    ea_free(s);
}

/* A capped buffer refuses appends past its cap, keeps what it had and says
 * it was cut (callers such as `inspect` report that instead of printing a
 * cut listing). */
static void buf_cap(void)
{
    struct ea_buf b;
    ea__buf_init(&b, 10);
    ASSERT_EQ(ea__buf_puts(&b, "0123456789"), EA_OK);
    ASSERT(!b.toobig);
    ASSERT_EQ(ea__buf_putc(&b, 'x'), EA_ETOOBIG);
    ASSERT_EQ(ea__buf_printf(&b, "%d", 7), EA_ETOOBIG);
    ASSERT_EQ(ea__buf_append(&b, "y", SIZE_MAX), EA_ETOOBIG);
    ASSERT(b.toobig);
    ASSERT_EQ(b.len, 10);
    ASSERT_STR_EQ(b.data, "0123456789");
    ea__buf_reset(&b);
    ASSERT(!b.toobig);
    ASSERT_EQ(ea__buf_puts(&b, "abc"), EA_OK);
    ASSERT_STR_EQ(b.data, "abc");
    ea__buf_release(&b);
}

EA_TESTS(EA_TEST(status_names), EA_TEST(error_set_and_prefix), EA_TEST(alloc_fault_hook),
         EA_TEST(buf_cap))
