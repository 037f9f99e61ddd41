/* bench_server_overhead.c (EA_TEST_NEEDS_NET: built only with the server) -
 * what the HTTP server adds per request over calling
 * the engine in-process: the same model, engine, prompt and greedy max_tokens,
 * once through ea_engine_submit (submit -> DONE) and once as POST
 * /v1/completions over loopback (libcurl, one kept-alive connection;
 * request sent -> full JSON answer received), alternating so that machine
 * noise hits both alike. Prints per-path medians/p90 and the difference of
 * medians. Not a test: nothing is asserted on time.
 *
 *   [EA_THREADS=T] build/bench/bench_server_overhead MODEL.gguf [N=100] [MAX_TOKENS=16] [--stream]
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "edgeagent/engine.h"
#include "edgeagent/model.h"
#include "edgeagent/server.h"
#include "edgeagent/tokenizer.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int n_generated;
};

static bool on_event(const struct ea_engine_event *ev)
{
    struct waiter *w = ev->user;
    if (ev->kind == EA_EVENT_DONE) {
        pthread_mutex_lock(&w->mu);
        w->done = 1;
        w->n_generated = ev->n_generated;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
    }
    return true;
}

struct body {
    char *p;
    size_t n;
    double engine_ms; /* from the Server-Timing header, -1 if absent */
};

static size_t on_header(char *p, size_t sz, size_t n, void *u)
{
    struct body *b = u;
    size_t k = sz * n;
    const char *key = "engine;dur=";
    if (k > 15 && !strncasecmp(p, "Server-Timing:", 14)) {
        char line[256];
        snprintf(line, sizeof line, "%.*s", (int)(k < 255 ? k : 255), p);
        const char *e = strstr(line, key);
        if (e)
            b->engine_ms = atof(e + strlen(key));
    }
    return k;
}

static size_t on_body(char *p, size_t sz, size_t n, void *u)
{
    struct body *b = u;
    char *nb = realloc(b->p, b->n + sz * n + 1);
    if (!nb)
        return 0;
    b->p = nb;
    memcpy(b->p + b->n, p, sz * n);
    b->n += sz * n;
    b->p[b->n] = '\0';
    return sz * n;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return v[(int)(p * (n - 1) + 0.5)];
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.gguf [N] [MAX_TOKENS] [--stream]\n", argv[0]);
        return 2;
    }
    int n = argc > 2 ? atoi(argv[2]) : 100;
    int max_tokens = argc > 3 ? atoi(argv[3]) : 16;
    bool stream = argc > 4 && !strcmp(argv[4], "--stream");
    const char *prompt = "Once upon a time, in a small village by the sea, there lived";
    struct ea_error err = {0};
    ea_model *m = NULL;
    ea_tokenizer *tok = NULL;
    ea_engine *eng = NULL;
    ea_server *srv = NULL;
    struct ea_model_load_params lp = {.n_threads = getenv("EA_THREADS") ? atoi(getenv("EA_THREADS")) : 0};
    if (ea_model_load(argv[1], &lp, &m, &err) || ea_tokenizer_create(ea_model_gguf(m), &tok, &err)) {
        fprintf(stderr, "load: %s\n", err.msg);
        return 1;
    }
    int32_t eog[64], n_eog = 0;
    for (uint32_t t = 0; t < ea_tokenizer_n_vocab(tok) && n_eog < 64; t++)
        if (ea_tokenizer_is_eog(tok, (int32_t)t))
            eog[n_eog++] = (int32_t)t;
    struct ea_engine_params ep;
    ea_engine_params_default(&ep);
    ep.eog_tokens = eog;
    ep.n_eog_tokens = n_eog;
    ep.max_context = 1024;
    if (ea_engine_create(m, &ep, &eng, &err)) {
        fprintf(stderr, "engine: %s\n", err.msg);
        return 1;
    }
    struct ea_server_params sp;
    ea_server_params_default(&sp);
    sp.port = 0;
    sp.log = fopen("/dev/null", "w");
    if (ea_server_create(&sp, &srv, &err)) {
        fprintf(stderr, "server: %s\n", err.msg);
        return 1;
    }
    struct ea_server_backend be = {m, tok, eng, "bench", 1024, 0, false, NULL, NULL};
    ea_server_set_backend(srv, &be, &err);

    int32_t toks[256];
    size_t nt = 0;
    ea_tokenize(tok, prompt, strlen(prompt), EA_TOK_ADD_SPECIAL | EA_TOK_PARSE_SPECIAL, toks, 256, &nt,
                &err);
    char url[128], body[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/v1/completions", (unsigned)ea_server_port(srv));
    snprintf(body, sizeof body, "{\"prompt\":\"%s\",\"max_tokens\":%d,\"temperature\":0%s}", prompt,
             max_tokens, stream ? ",\"stream\":true" : "");
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);

    double *t_eng = calloc((size_t)n, sizeof(double)), *t_http = calloc((size_t)n, sizeof(double));
    double *t_own = calloc((size_t)n, sizeof(double)); /* HTTP time minus the engine's own time */
    int gen_eng = 0, gen_http_ok = 0;
    for (int i = -5; i < n; i++) { /* 5 warm-up rounds */
        struct waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
        struct ea_engine_request r = {0};
        r.prompt = toks;
        r.n_prompt = (int32_t)nt;
        ea_sampling_params_default(&r.sampling);
        r.sampling.temperature = 0;
        r.max_tokens = max_tokens;
        r.cb = on_event;
        r.user = &w;
        uint64_t id;
        double t0 = now_ms();
        if (ea_engine_submit(eng, &r, &id, &err)) {
            fprintf(stderr, "submit: %s\n", err.msg);
            return 1;
        }
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        double t1 = now_ms();
        struct body b = {0};
        b.engine_ms = -1;
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &b);
        double t2 = now_ms();
        CURLcode cc = curl_easy_perform(c);
        double t3 = now_ms();
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (cc != CURLE_OK || status != 200) {
            fprintf(stderr, "http: %s status %ld: %s\n", curl_easy_strerror(cc), status, b.p ? b.p : "");
            return 1;
        }
        char want[64];
        snprintf(want, sizeof want, "\"completion_tokens\":%d", w.n_generated);
        if (i >= 0) {
            t_eng[i] = t1 - t0;
            t_http[i] = t3 - t2;
            t_own[i] = b.engine_ms >= 0 ? (t3 - t2) - b.engine_ms : -1;
            gen_eng += w.n_generated;
            gen_http_ok += stream || strstr(b.p, want) != NULL;
        }
        free(b.p);
    }
    double *diff = calloc((size_t)n, sizeof(double));
    for (int i = 0; i < n; i++)
        diff[i] = t_http[i] - t_eng[i];
    double d50 = pct(diff, n, 0.5), d10 = pct(diff, n, 0.1), d90 = pct(diff, n, 0.9);
    double e50 = pct(t_eng, n, 0.5), e90 = pct(t_eng, n, 0.9);
    double h50 = pct(t_http, n, 0.5), h90 = pct(t_http, n, 0.9);
    printf("requests: %d per path, alternating; prompt %zu tokens, max_tokens %d (%.1f generated "
           "on average), %s\n",
           n, nt, max_tokens, (double)gen_eng / n, stream ? "streamed (SSE)" : "non-streamed");
    printf("same token count over HTTP: %d/%d\n", stream ? n : gen_http_ok, n);
    printf("in-process engine: p50 %.3f ms  p90 %.3f ms\n", e50, e90);
    printf("HTTP /v1/completions: p50 %.3f ms  p90 %.3f ms\n", h50, h90);
    printf("difference of medians: %.3f ms (%.1f%%)\n", h50 - e50, 100 * (h50 - e50) / e50);
    printf("server overhead, paired (HTTP - engine, same iteration): p50 %.3f ms  p10 %.3f  p90 %.3f\n",
           d50, d10, d90);
    free(diff);
    if (!stream && t_own[0] >= 0)
        printf("server overhead, same request (round trip - Server-Timing engine;dur): p50 %.3f ms  "
               "p90 %.3f ms  max %.3f ms\n",
               pct(t_own, n, 0.5), pct(t_own, n, 0.9), pct(t_own, n, 1.0));
    free(t_own);
    /* the HTTP layer alone, no engine step to add noise: request parsing,
     * routing, JSON in/out, loopback round trip */
    char turl[128], tbody[256];
    snprintf(turl, sizeof turl, "http://127.0.0.1:%u/tokenize", (unsigned)ea_server_port(srv));
    snprintf(tbody, sizeof tbody, "{\"content\":\"%s\"}", prompt);
    curl_easy_setopt(c, CURLOPT_URL, turl);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, tbody);
    double *t_tok = calloc((size_t)n * 5, sizeof(double));
    for (int i = -20; i < n * 5; i++) {
        struct body b = {0};
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        double t0 = now_ms();
        CURLcode cc = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (cc != CURLE_OK || status != 200 || !b.p || !strstr(b.p, "\"tokens\":[")) {
            fprintf(stderr, "tokenize: status %ld: %s\n", status, b.p ? b.p : "");
            return 1;
        }
        if (i >= 0)
            t_tok[i] = now_ms() - t0;
        free(b.p);
    }
    printf("HTTP round trip of POST /tokenize (same prompt, no engine): p50 %.3f ms  p90 %.3f ms  "
           "(%d requests)\n",
           pct(t_tok, n * 5, 0.5), pct(t_tok, n * 5, 0.9), n * 5);
    free(t_tok);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    ea_server_destroy(srv);
    ea_engine_destroy(eng);
    ea_tokenizer_destroy(tok);
    ea_model_destroy(m);
    fclose(sp.log);
    free(t_eng);
    free(t_http);
    return 0;
}
