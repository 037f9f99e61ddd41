/* bench_cloud.c - the cloud client's own latency (src/router/cloud.h;
 * EA_TEST_NEEDS_NET: built only with libcurl): N streamed chat requests to
 * an OpenAI-compatible URL, C at a time, each timed from ea__cloud_start to
 * its on_end (the whole stream to [DONE]); prints p50/p99 per round and the
 * connections opened. Compare with any plain HTTP client against the same
 * server to see what the client adds. Not a test: nothing is asserted.
 *
 *   node tests/node/openai_stub.mjs &   # prints PORT <n>
 *   build/bench/bench_cloud http://127.0.0.1:<n>/v1/chat/completions [N=300] [C=1] [ROUNDS=3]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "router/cloud.h"

#define MAX_CONC 256

struct slot {
    double t0, ms;
    long conns;
    int ok;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int in_flight;

static void on_end(void *user, const struct ea__cloud_result *r)
{
    struct slot *s = user;
    pthread_mutex_lock(&mu);
    s->ms = (bench_now() - s->t0) * 1e3;
    s->conns = r->new_connections;
    s->ok = r->outcome == EA_CLOUD_OK;
    in_flight--;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s URL [N=300] [C=1] [ROUNDS=3]\n", argv[0]);
        return 2;
    }
    const char *url = argv[1];
    int n = argc > 2 ? atoi(argv[2]) : 300, conc = argc > 3 ? atoi(argv[3]) : 1,
        rounds = argc > 4 ? atoi(argv[4]) : 3;
    if (n < 10 || n > 1000000 || conc < 1 || conc > MAX_CONC || rounds < 1 || rounds > 100) {
        fprintf(stderr, "N 10..1e6, C 1..%d, ROUNDS 1..100\n", MAX_CONC);
        return 2;
    }
    static const char body[] = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}],"
                               "\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
    struct ea__cloud *c = NULL;
    struct ea_error err = {0};
    if (ea__cloud_create(&c, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    struct slot *s = calloc((size_t)n, sizeof *s);
    double *ms = calloc((size_t)n, sizeof *ms);
    int status = 0;
    for (int round = 0; round < rounds && !status; round++) {
        long conns = 0;
        int bad = 0;
        for (int i = 0; i < n; i++) {
            pthread_mutex_lock(&mu);
            while (in_flight >= conc)
                pthread_cond_wait(&cv, &mu);
            in_flight++;
            s[i].t0 = bench_now();
            pthread_mutex_unlock(&mu);
            struct ea__cloud_request rq = {.url = url, .body = body, .body_len = sizeof body - 1,
                                           .on_end = on_end, .user = &s[i]};
            struct ea__cloud_transfer *t = NULL;
            if (ea__cloud_start(c, &rq, &t, &err)) {
                fprintf(stderr, "start: %s\n", err.msg);
                status = 1;
                break;
            }
            ea__cloud_transfer_release(t);
        }
        pthread_mutex_lock(&mu);
        while (in_flight > 0)
            pthread_cond_wait(&cv, &mu);
        pthread_mutex_unlock(&mu);
        for (int i = 0; i < n; i++) {
            ms[i] = s[i].ms;
            conns += s[i].conns;
            bad += !s[i].ok;
        }
        qsort(ms, (size_t)n, sizeof ms[0], bench_cmp_double);
        printf("round %d: %d streamed requests, concurrency %d: p50 %.3f ms, p99 %.3f ms, %ld connection(s) "
               "opened, %d not ok\n",
               round + 1, n, conc, ms[n / 2], ms[(size_t)((double)n * 0.99)], conns, bad);
    }
    free(s);
    free(ms);
    ea__cloud_destroy(c);
    return status;
}
