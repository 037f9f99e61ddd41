/* harness.h - the small test runner every tests/test_*.c links against.
 *
 * A test file lists its cases with EA_TESTS(...) and gets a main() that runs
 * them all, or only the ones named on the command line (`test_gguf roundtrip`).
 * Failed asserts print both values and abort the current case only.
 * Written here (not cmocka) so the same tests build for aarch64 under qemu
 * without cross-built third-party libraries.
 */
#ifndef EA_TEST_HARNESS_H
#define EA_TEST_HARNESS_H

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct ea_test_case {
    const char *name;
    void (*fn)(void);
};

void ea__test_fail(const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4), noreturn))
#endif
    ;
void ea__test_skip(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2), noreturn))
#endif
    ;
int ea__test_main(int argc, char **argv, const struct ea_test_case *cases, size_t n);

/* Path of ../shared, or NULL when absent (the test should then SKIP). */
const char *ea_test_shared_dir(void);
/* Joins the shared dir with rel into a static buffer; skips the current case
 * with a message when ../shared or the file is absent. */
const char *ea_test_shared_path(const char *rel);
/* Build directory (for the binary and scratch files). */
const char *ea_test_build_dir(void);
/* A fresh scratch path under the build dir: <build>/test-tmp/<name>. */
const char *ea_test_tmp_path(const char *name);
/* Reads a whole file; caller frees with free(). NULL on failure. */
void *ea_test_read_file(const char *path, size_t *size);

#define EA_TESTS(...)                                                              \
    int main(int argc, char **argv)                                                \
    {                                                                              \
        static const struct ea_test_case cases[] = {__VA_ARGS__};                  \
        return ea__test_main(argc, argv, cases, sizeof cases / sizeof cases[0]);   \
    }
#define EA_TEST(fn) {#fn, fn}

#define FAIL(...) ea__test_fail(__FILE__, __LINE__, __VA_ARGS__)
#define SKIP(...) ea__test_skip(__VA_ARGS__)

#define ASSERT(c)                                                                  \
    do {                                                                           \
        if (!(c))                                                                  \
            FAIL("assertion failed: %s", #c);                                      \
    } while (0)
#define ASSERT_EQ(a, b)                                                            \
    do {                                                                           \
        long long ea__a = (long long)(a), ea__b = (long long)(b);                  \
        if (ea__a != ea__b)                                                        \
            FAIL("%s == %s: %lld != %lld", #a, #b, ea__a, ea__b);                  \
    } while (0)
#define ASSERT_NE(a, b)                                                            \
    do {                                                                           \
        long long ea__a = (long long)(a), ea__b = (long long)(b);                  \
        if (ea__a == ea__b)                                                        \
            FAIL("%s != %s: both %lld", #a, #b, ea__a);                            \
    } while (0)
#define ASSERT_U64_EQ(a, b)                                                        \
    do {                                                                           \
        uint64_t ea__a = (uint64_t)(a), ea__b = (uint64_t)(b);                     \
        if (ea__a != ea__b)                                                        \
            FAIL("%s == %s: %" PRIu64 " != %" PRIu64, #a, #b, ea__a, ea__b);       \
    } while (0)
#define ASSERT_STR_EQ(a, b)                                                        \
    do {                                                                           \
        const char *ea__a = (a), *ea__b = (b);                                     \
        if (!ea__a || !ea__b || strcmp(ea__a, ea__b) != 0)                         \
            FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b, ea__a ? ea__a : "(null)",   \
                 ea__b ? ea__b : "(null)");                                        \
    } while (0)
#define ASSERT_NEAR(a, b, tol)                                                     \
    do {                                                                           \
        double ea__a = (double)(a), ea__b = (double)(b), ea__t = (double)(tol);    \
        if (!(fabs(ea__a - ea__b) <= ea__t))                                       \
            FAIL("%s ~= %s: %.9g vs %.9g (tol %.3g)", #a, #b, ea__a, ea__b, ea__t); \
    } while (0)
/* Asserts an ea_status call succeeded, printing the ea_error detail if not. */
#define ASSERT_OK(call, errp)                                                      \
    do {                                                                           \
        ea_status ea__s = (call);                                                  \
        if (ea__s != EA_OK)                                                        \
            FAIL("%s: %s: %s", #call, ea_status_name(ea__s), (errp)->msg);         \
    } while (0)



/* The settings the edgeagent binary reads from its environment, applied the
 * same way to in-process tests (the library reads no environment):
 * ea__test_main selects EA_KERNELS=name with ea_kernels_select before the
 * first case, and tests pass ea_test_threads(n) as a model's thread count:
 * n (0 = one per CPU) capped by EA_MAX_THREADS (CI under emulation sets 1). */
int ea_test_threads(int n);

/* Runs a shell command line with stdout/stderr captured (caller frees both
 * with free(); either pointer may be NULL). Returns the exit code, or
 * -signal when the process died from a signal. */
int ea_test_run(const char *cmdline, char **out, char **errout);
/* Path of the edgeagent binary in the build dir. */
const char *ea_test_binary(void);

/* A child process whose stdout the test reads (banner lines such as
 * "listening on http://127.0.0.1:PORT/"), its stderr in a log file. One
 * still running when the test program exits is killed then (a failed case
 * never reaches its stop). */
struct ea_test_proc {
    int pid;
    int out;          /* read end of its stdout */
    char log[4200];   /* its stderr */
    char seen[8192];  /* stdout read so far (NUL-terminated) */
    size_t n_seen;
};
/* Starts argv (argv[0] a path, NULL-terminated); stderr goes to the temp
 * file log_name. */
void ea_test_proc_start(struct ea_test_proc *p, const char *const *argv, const char *log_name);
/* Reads its stdout until needle appears (true) or timeout_ms passes or the
 * output ends (false). p->seen holds what came. */
bool ea_test_proc_wait(struct ea_test_proc *p, const char *needle, double timeout_ms);
/* Sends sig, waits for the exit; returns the exit status (-signal when
 * killed). NULL-safe on a stopped process. */
int ea_test_proc_stop(struct ea_test_proc *p, int sig);
/* Monotonic milliseconds. */
double ea_test_now_ms(void);
/* How much slower than a plain build this one runs, for deadlines and
 * budgets in process tests: EA_TEST_TIME_SCALE if set, else 10 under an
 * emulator (an -emu binary) or a sanitizer build dir (asan, tsan), else 1. */
double ea_test_time_scale(void);

#endif
