/* harness.c - runner for tests/test_*.c; see harness.h. */
#include "harness.h"

#include "edgeagent/kernels.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static jmp_buf case_jmp;
static int case_result; /* 0 pass, 1 fail, 2 skip */

void ea__test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "    FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    case_result = 1;
    longjmp(case_jmp, 1);
}

void ea__test_skip(const char *fmt, ...)
{
    va_list ap;
    fprintf(stdout, "    SKIP: ");
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    case_result = 2;
    longjmp(case_jmp, 1);
}

const char *ea_test_shared_dir(void)
{
    static char path[4096];
    const char *d = getenv("EA_SHARED_DIR");
    if (!d || !*d)
        d = "../shared";
    struct stat st;
    if (stat(d, &st) != 0 || !S_ISDIR(st.st_mode))
        return NULL;
    snprintf(path, sizeof path, "%s", d);
    return path;
}

const char *ea_test_shared_path(const char *rel)
{
    static char path[8192 + 256];
    const char *d = ea_test_shared_dir();
    if (!d)
        SKIP("../shared not found (set EA_SHARED_DIR); skipping");
    snprintf(path, sizeof path, "%.4096s/%.4000s", d, rel);
    if (access(path, R_OK) != 0)
        SKIP("%s not found; skipping", path);
    return path;
}

const char *ea_test_build_dir(void)
{
    const char *d = getenv("EA_BUILD_DIR");
    return d && *d ? d : ".";
}

const char *ea_test_tmp_path(const char *name)
{
    static char path[8192 + 512];
    char dir[4096 + 16];
    snprintf(dir, sizeof dir, "%.4000s/test-tmp", ea_test_build_dir());
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/%d-%.4000s", dir, (int)getpid(), name);
    return path;
}

void *ea_test_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    if (p) {
        p[n] = '\0';
        if (size)
            *size = (size_t)n;
    }
    return p;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int run_case(void (*fn)(void))
{
    case_result = 0;
    if (setjmp(case_jmp) == 0)
        fn();
    return case_result;
}

int ea_test_threads(int n)
{
    const char *cap = getenv("EA_MAX_THREADS");
    int c = cap ? atoi(cap) : 0;
    if (c <= 0)
        return n;
    return n <= 0 || n > c ? c : n;
}

int ea__test_main(int argc, char **argv, const struct ea_test_case *cases, size_t n)
{
    int failed = 0, passed = 0, skipped = 0, ran = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* the processes a test starts keep their data (the ledger, the model
     * store) under the build's temp dir, never in the user's home */
    char xdg[4200];
    snprintf(xdg, sizeof xdg, "%s", ea_test_tmp_path("xdg"));
    mkdir(xdg, 0755);
    setenv("XDG_DATA_HOME", xdg, 1);
    const char *kernels = getenv("EA_KERNELS");
    if (kernels && *kernels) {
        struct ea_error err = {0};
        if (ea_kernels_select(kernels, &err) != EA_OK) {
            fprintf(stderr, "EA_KERNELS: %s\n", err.msg);
            return 2;
        }
    }
    for (int a = 1; a < argc; a++) {
        int found = 0;
        for (size_t i = 0; i < n; i++)
            found |= strcmp(argv[a], cases[i].name) == 0;
        if (!found) {
            fprintf(stderr, "no test case named '%s'; cases are:\n", argv[a]);
            for (size_t i = 0; i < n; i++)
                fprintf(stderr, "  %s\n", cases[i].name);
            return 2;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (argc > 1) {
            int want = 0;
            for (int a = 1; a < argc; a++)
                want |= strcmp(argv[a], cases[i].name) == 0;
            if (!want)
                continue;
        }
        ran++;
        printf("[ RUN  ] %s\n", cases[i].name);
        double t0 = now_s();
        run_case(cases[i].fn);
        double dt = now_s() - t0;
        const char *tag = case_result == 0 ? "[  OK  ]" : case_result == 1 ? "[ FAIL ]" : "[ SKIP ]";
        printf("%s %s (%.2f s)\n", tag, cases[i].name, dt);
        if (case_result == 0)
            passed++;
        else if (case_result == 1)
            failed++;
        else
            skipped++;
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    if (failed)
        return 1;
    if (ran > 0 && skipped == ran)
        return 77;
    return 0;
}

int ea_test_run(const char *cmdline, char **out, char **errout)
{
    char o[4096 + 64], e[4096 + 64];
    snprintf(o, sizeof o, "%s.out", ea_test_tmp_path("run"));
    snprintf(e, sizeof e, "%s.err", ea_test_tmp_path("run"));
    size_t n = strlen(cmdline) + strlen(o) + strlen(e) + 32;
    char *full = malloc(n);
    snprintf(full, n, "%s >'%s' 2>'%s'", cmdline, o, e);
    int st = system(full);
    free(full);
    if (out)
        *out = ea_test_read_file(o, NULL);
    if (errout)
        *errout = ea_test_read_file(e, NULL);
    remove(o);
    remove(e);
    if (st == -1)
        return -1000;
    if (WIFSIGNALED(st))
        return -WTERMSIG(st);
    int code = WEXITSTATUS(st);
    /* the shell reports a child killed by a signal as 128 + signal */
    if (code > 128 && code < 160)
        return -(code - 128);
    return code;
}

/* The path, made once: tests' threads call this at the same time. */
static char binary_path[4096 + 32];
static void binary_path_init(void)
{
    const char *b = getenv("EA_TEST_BINARY");
    if (b && *b)
        snprintf(binary_path, sizeof binary_path, "%.4096s", b);
    else
        snprintf(binary_path, sizeof binary_path, "%.4096s/edgeagent", ea_test_build_dir());
}

const char *ea_test_binary(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, binary_path_init);
    return binary_path;
}

/* ---- child processes ---------------------------------------------------------------- */

static pid_t procs_started[64];
static int n_procs_started;

static void procs_kill_leftovers(void)
{
    for (int i = 0; i < n_procs_started; i++)
        if (procs_started[i] > 0 && waitpid(procs_started[i], NULL, WNOHANG) == 0)
            kill(procs_started[i], SIGKILL);
}

double ea_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void ea_test_proc_start(struct ea_test_proc *p, const char *const *argv, const char *log_name)
{
    memset(p, 0, sizeof *p);
    snprintf(p->log, sizeof p->log, "%s", ea_test_tmp_path(log_name));
    int fds[2];
    if (pipe(fds) != 0)
        FAIL("pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        FAIL("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(fds[1], 1);
        int lf = open(p->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (lf >= 0)
            dup2(lf, 2);
        close(fds[0]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    p->pid = pid;
    p->out = fds[0];
    if (n_procs_started == 0)
        atexit(procs_kill_leftovers);
    if (n_procs_started < (int)(sizeof procs_started / sizeof procs_started[0]))
        procs_started[n_procs_started++] = pid;
}

bool ea_test_proc_wait(struct ea_test_proc *p, const char *needle, double timeout_ms)
{
    double end = ea_test_now_ms() + timeout_ms;
    while (!strstr(p->seen, needle)) {
        double left = end - ea_test_now_ms();
        if (left <= 0 || p->n_seen + 1 >= sizeof p->seen)
            return false;
        struct pollfd pf = {.fd = p->out, .events = POLLIN};
        if (poll(&pf, 1, left > 200 ? 200 : (int)left + 1) <= 0)
            continue;
        ssize_t r = read(p->out, p->seen + p->n_seen, sizeof p->seen - 1 - p->n_seen);
        if (r <= 0)
            return strstr(p->seen, needle) != NULL;
        p->n_seen += (size_t)r;
        p->seen[p->n_seen] = '\0';
    }
    return true;
}

int ea_test_proc_stop(struct ea_test_proc *p, int sig)
{
    if (!p->pid)
        return 0;
    kill(p->pid, sig);
    int st = 0;
    waitpid(p->pid, &st, 0);
    close(p->out);
    p->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

double ea_test_time_scale(void)
{
    const char *s = getenv("EA_TEST_TIME_SCALE");
    if (s && atof(s) > 0)
        return atof(s);
    const char *b = ea_test_binary(), *d = ea_test_build_dir();
    return strstr(b, "-emu") || strstr(d, "tsan") || strstr(d, "asan") ? 10.0 : 1.0;
}
