/* bench_router_path.c - the latency edgeagent's router path adds in front
 * of an upstream (EA_TEST_NEEDS_NET: libcurl; issue 11 target: non-streamed, concurrency 10, p50 <=
 * 0.5 ms and p99 <= 2 ms added).
 *
 *   bench_router_path DIRECT_URL ROUTED_URL [--requests N] [--concurrency C]
 *                     [--rounds R] [--model NAME] [--direct-stream 0|1]
 *
 * DIRECT_URL is the upstream's chat completions URL, ROUTED_URL edgeagent's
 * (configured with that upstream). Each round sends N requests at
 * concurrency C to one, then the other (alternating which goes first), with
 * kept-alive connections (libcurl multi), and prints both latency
 * distributions (--direct-stream 1: the direct requests are streamed with
 * usage, as edgeagent asks its upstream, so that only the router's own work
 * differs); the summary is the median over rounds of p50 and p99 of
 * each and their differences. bench/router_overhead.sh runs it against the
 * test suite's OpenAI stub (a Node process: compare only the difference).
 * Load tests target loopback only.
 */
#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CONC 64
#define MAX_ROUNDS 64
#define MAX_REQUESTS 100000

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static size_t sink(char *p, size_t sz, size_t n, void *u)
{
    (void)p;
    (void)u;
    return sz * n;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double q)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    int i = (int)(q * n + 0.999999) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* n requests at concurrency c against url; latencies into lat. Returns the
 * number of non-200 answers. */
static int run(const char *url, const char *body, int n, int c, double *lat)
{
    CURLM *m = curl_multi_init();
    CURL *h[MAX_CONC];
    double t0[MAX_CONC];
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    int started = 0, done = 0, bad = 0;
    for (int i = 0; i < c; i++) {
        h[i] = curl_easy_init();
        curl_easy_setopt(h[i], CURLOPT_URL, url);
        curl_easy_setopt(h[i], CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h[i], CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h[i], CURLOPT_WRITEFUNCTION, sink);
        curl_easy_setopt(h[i], CURLOPT_PRIVATE, (void *)(intptr_t)i);
        curl_easy_setopt(h[i], CURLOPT_TIMEOUT, 30L);
    }
    for (int i = 0; i < c && started < n; i++, started++) {
        t0[i] = now_ms();
        curl_multi_add_handle(m, h[i]);
    }
    while (done < n) {
        int running;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *e = msg->easy_handle;
            void *priv;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
            int i = (int)(intptr_t)priv;
            long st = 0;
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &st);
            bad += msg->data.result != CURLE_OK || st != 200;
            lat[done++] = now_ms() - t0[i];
            curl_multi_remove_handle(m, e);
            if (started < n) {
                started++;
                t0[i] = now_ms();
                curl_multi_add_handle(m, e);
            }
        }
        if (done < n)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    for (int i = 0; i < c; i++)
        curl_easy_cleanup(h[i]);
    curl_multi_cleanup(m);
    curl_slist_free_all(hdr);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_router_path DIRECT_URL ROUTED_URL [--requests N] "
                        "[--concurrency C] [--rounds R] [--model NAME]\n");
        return 2;
    }
    const char *direct = argv[1], *routed = argv[2], *model = "stub-model";
    int n = 500, c = 10, rounds = 7;
    bool direct_stream = false; /* --direct-stream: ask the upstream for the stream edgeagent asks for */
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--requests"))
            n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--concurrency"))
            c = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rounds"))
            rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--model"))
            model = argv[i + 1];
        else if (!strcmp(argv[i], "--direct-stream"))
            direct_stream = atoi(argv[i + 1]) != 0;
    }
    if (n < 1 || n > MAX_REQUESTS || c < 1 || c > MAX_CONC || rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "bench_router_path: requests 1..%d, concurrency 1..%d, rounds 1..%d\n",
                MAX_REQUESTS, MAX_CONC, MAX_ROUNDS);
        return 2;
    }
    char body[512], dbody[600];
    snprintf(body, sizeof body,
             "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":8}",
             model);
    /* the same request as edgeagent sends it upstream: streamed, with usage */
    snprintf(dbody, sizeof dbody,
             "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":8%s}",
             model, direct_stream ? ",\"stream\":true,\"stream_options\":{\"include_usage\":true}" : "");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    double *lat = malloc(sizeof *lat * (size_t)n);
    double p50d[MAX_ROUNDS], p99d[MAX_ROUNDS], p50r[MAX_ROUNDS], p99r[MAX_ROUNDS];
    double d50[MAX_ROUNDS], d99[MAX_ROUNDS];
    int bad = 0;
    run(direct, dbody, c * 4, c, lat); /* warm both: connections, caches */
    run(routed, body, c * 4, c, lat);
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < 2; k++) {
            bool do_direct = (r + k) % 2 == 0;
            bad += run(do_direct ? direct : routed, do_direct ? dbody : body, n, c, lat);
            double a = pct(lat, n, 0.50), b = pct(lat, n, 0.99);
            if (do_direct) {
                p50d[r] = a;
                p99d[r] = b;
            } else {
                p50r[r] = a;
                p99r[r] = b;
            }
        }
        d50[r] = p50r[r] - p50d[r];
        d99[r] = p99r[r] - p99d[r];
        printf("round %d: direct p50 %.3f p99 %.3f ms | routed p50 %.3f p99 %.3f ms | added p50 "
               "%+.3f p99 %+.3f ms\n",
               r + 1, p50d[r], p99d[r], p50r[r], p99r[r], d50[r], d99[r]);
    }
    printf("median over %d rounds (%d requests each, concurrency %d): direct p50 %.3f p99 %.3f ms, "
           "routed p50 %.3f p99 %.3f ms, added p50 %+.3f ms, p99 %+.3f ms; non-200: %d\n",
           rounds, n, c, pct(p50d, rounds, 0.5), pct(p99d, rounds, 0.5), pct(p50r, rounds, 0.5),
           pct(p99r, rounds, 0.5), pct(d50, rounds, 0.5), pct(d99, rounds, 0.5), bad);
    free(lat);
    curl_global_cleanup();
    return bad ? 1 : 0;
}
