/* bench_sse.c - throughput of the Server-Sent Events parser (src/router/sse.h;
 * EA_TEST_NEEDS_NET: src/router/ is built only with the server's
 * libraries) over a recorded-shape OpenAI chat stream: content chunks of
 * ~230 bytes as OpenAI sends them, repeated to MB megabytes, fed in pieces
 * of 1, 64, 1460 (one TCP segment) and 16384 bytes (libcurl's default
 * buffer). Also the same bytes with each event's data parsed by jansson,
 * as the cloud client does, to show where the time of a chunk goes. Prints
 * MB/s and events/s, the median of 5 runs each. Not a test: nothing is
 * asserted.
 *
 *   build/bench/bench_sse [MB=32]
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "router/sse.h"

#define RUNS 5

static const char CHUNK[] =
    "data: {\"id\":\"chatcmpl-A1\",\"object\":\"chat.completion.chunk\",\"created\":1733600000,"
    "\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_0ba0d124f1\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"content\":\" word\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n";

struct count {
    unsigned long long events, bytes;
    bool parse_json;
};

static bool on_event(void *user, const char *event, const char *data, size_t len)
{
    struct count *c = user;
    c->events++;
    c->bytes += len;
    if (c->parse_json) {
        json_t *j = json_loadb(data, len, 0, NULL);
        if (!j)
            abort();
        json_decref(j);
    }
    return true;
}

static double run(const char *s, size_t n, size_t piece, bool json, unsigned long long *events)
{
    struct count c = {0, 0, json};
    struct ea__sse p;
    ea__sse_init(&p, 0, on_event, &c);
    struct ea_error err = {0};
    double t0 = bench_now();
    for (size_t at = 0; at < n; at += piece) {
        size_t k = n - at < piece ? n - at : piece;
        if (ea__sse_feed(&p, s + at, k, &err)) {
            fprintf(stderr, "parse failed: %s\n", err.msg);
            exit(1);
        }
    }
    double t = bench_now() - t0;
    ea__sse_release(&p);
    *events = c.events;
    return t;
}

int main(int argc, char **argv)
{
    long mb = argc > 1 ? atol(argv[1]) : 32;
    if (mb < 1 || mb > 4096) {
        fprintf(stderr, "usage: %s [MB=32] (1..4096)\n", argv[0]);
        return 2;
    }
    const size_t cl = sizeof CHUNK - 1, n_chunks = (size_t)mb * 1000000 / cl, n = n_chunks * cl;
    char *s = malloc(n);
    if (!s)
        return 1;
    for (size_t i = 0; i < n_chunks; i++)
        memcpy(s + i * cl, CHUNK, cl);
    printf("stream: %zu events of %zu bytes, %.1f MB\n", n_chunks, cl, (double)n / 1e6);
    printf("%-8s %-6s %10s %14s\n", "piece", "json", "MB/s", "events/s");
    static const size_t pieces[] = {1, 64, 1460, 16384};
    for (int jsn = 0; jsn < 2; jsn++) {
        for (size_t pi = 0; pi < sizeof pieces / sizeof pieces[0]; pi++) {
            size_t piece = pieces[pi];
            /* byte by byte over the whole stream would take long: a tenth */
            size_t len = piece == 1 ? n / 10 / cl * cl : n;
            double t[RUNS];
            unsigned long long ev = 0;
            for (int r = 0; r < RUNS; r++)
                t[r] = run(s, len, piece, jsn, &ev);
            qsort(t, RUNS, sizeof t[0], bench_cmp_double);
            double med = t[RUNS / 2];
            printf("%-8zu %-6s %10.0f %14.0f\n", piece, jsn ? "yes" : "no", (double)len / 1e6 / med,
                   (double)ev / med);
        }
    }
    free(s);
    return 0;
}
