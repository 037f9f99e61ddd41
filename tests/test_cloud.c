/* test_cloud.c (EA_TEST_NEEDS_NET: the cloud client is built only with
 * libcurl) - the cloud client (src/router/cloud.h) against
 * tests/node/openai_stub.mjs, a real OpenAI-compatible server process on
 * 127.0.0.1 that fails on demand: every fault is classified as the router
 * needs it (HTTP status with Retry-After and the upstream's message, reset,
 * malformed data, an error event first, a stream cut after N chunks,
 * silence, HTML, each timeout), a delayed transfer cancelled in time sends
 * nothing (the stub's log stays empty), sequential transfers reuse one
 * kept-alive connection, 50 concurrent transfers with mixed faults each end
 * exactly once, destroy ends everything in flight, a closed port is a
 * connect error. The openai upstream (src/server/upstream_openai.c) is
 * driven the same way through a generation queue.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "router/cloud.h"
#include "server/genq.h"
#include "server/server_int.h"
#include "server/upstream.h"

#define KEY "sk-test-5ecret-key"
#define WAIT_MS 15000 /* the longest any transfer here may take to end */

static pid_t stub_pid = -1;
static char base[64]; /* http://127.0.0.1:PORT */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static pid_t tls_pid = -1, ka_pid = -1; /* the HTTPS stub; one with a short keep-alive */

static void stop_stub(void)
{
    pid_t *pids[3] = {&stub_pid, &tls_pid, &ka_pid};
    for (int i = 0; i < 3; i++) {
        if (*pids[i] > 0) {
            kill(*pids[i], SIGTERM);
            waitpid(*pids[i], NULL, 0);
            *pids[i] = -1;
        }
    }
}

/* Starts tests/node/openai_stub.mjs with up to 3 more arguments; its port. */
static int spawn_stub(pid_t *pid, const char *a1, const char *a2, const char *a3)
{
    if (system("node --version >/dev/null 2>&1") != 0)
        SKIP("node not found: the OpenAI stub needs it");
    char script[4096];
    const char *src = getenv("EA_SOURCE_DIR");
    snprintf(script, sizeof script, "%s/tests/node/openai_stub.mjs", src ? src : ".");
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    *pid = fork();
    ASSERT(*pid >= 0);
    if (*pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execlp("node", "node", script, a1, a2, a3, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[64] = "";
    size_t o = 0;
    while (o < sizeof line - 1) {
        ssize_t r = read(fds[0], line + o, 1);
        if (r <= 0 || line[o] == '\n')
            break;
        o++;
    }
    line[o] = '\0';
    close(fds[0]);
    int port = 0;
    if (sscanf(line, "PORT %d", &port) != 1 || port <= 0) {
        stop_stub();
        FAIL("the stub did not start (said '%s')", line);
    }
    return port;
}

/* Starts the plain HTTP stub once per process. */
static void stub(void)
{
    if (stub_pid > 0)
        return;
    int port = spawn_stub(&stub_pid, NULL, NULL, NULL);
    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    atexit(stop_stub);
}

static size_t collect(char *p, size_t sz, size_t n, void *user)
{
    struct ea_buf *b = user;
    ea__buf_append(b, p, sz * n);
    return sz * n;
}

/* A control call to the stub (blocking); the reply's JSON. */
static json_t *stub_call(const char *method, const char *path, const char *body)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", base, path);
    struct ea_buf b;
    ea__buf_init(&b, 1 << 24);
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(e);
    curl_easy_cleanup(e);
    ASSERT_EQ(rc, CURLE_OK);
    json_t *j = json_loadb(b.data ? b.data : "", b.len, 0, NULL);
    ea__buf_release(&b);
    ASSERT(j);
    return j;
}

static void stub_reset(void) { json_decref(stub_call("POST", "/_stub/reset", NULL)); }
static json_t *stub_log(void) { return stub_call("GET", "/_stub/log", NULL); }
static size_t stub_requests(void)
{
    json_t *l = stub_log();
    size_t n = json_array_size(json_object_get(l, "requests"));
    json_decref(l);
    return n;
}

/* ---- a transfer observed -------------------------------------------------------------- */

struct probe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ends;    /* on_end calls */
    int chunks;  /* on_chunk calls */
    char content[4096];
    struct ea__cloud_result res;
    enum ea__cloud_verdict verdict_at; /* answer this at chunk stop_at */
    int stop_at;
    bool end_thread_ok; /* on_end ran on the client thread, not the caller's */
    pthread_t caller;
};

static void probe_init(struct probe *p)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->caller = pthread_self();
}

static void probe_release(struct probe *p)
{
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
}

static enum ea__cloud_verdict probe_chunk(void *user, const json_t *chunk)
{
    struct probe *p = user;
    pthread_mutex_lock(&p->mu);
    p->chunks++;
    const json_t *ch;
    size_t i;
    json_array_foreach(json_object_get(chunk, "choices"), i, ch) {
        const json_t *c = json_object_get(json_object_get(ch, "delta"), "content");
        if (!json_is_string(c))
            c = json_object_get(ch, "text");
        if (json_is_string(c))
            strncat(p->content, json_string_value(c), sizeof p->content - strlen(p->content) - 1);
    }
    enum ea__cloud_verdict v = p->stop_at && p->chunks >= p->stop_at ? p->verdict_at : EA_CLOUD_CONTINUE;
    pthread_mutex_unlock(&p->mu);
    return v;
}

static void probe_end(void *user, const struct ea__cloud_result *res)
{
    struct probe *p = user;
    pthread_mutex_lock(&p->mu);
    p->ends++;
    p->res = *res;
    p->end_thread_ok = !pthread_equal(pthread_self(), p->caller);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void probe_wait(struct probe *p)
{
    double until = now_ms() + WAIT_MS;
    pthread_mutex_lock(&p->mu);
    while (p->ends == 0 && now_ms() < until) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    }
    int ends = p->ends;
    pthread_mutex_unlock(&p->mu);
    if (ends != 1)
        FAIL("the transfer ended %d times within %d ms (want exactly once)", ends, WAIT_MS);
    ASSERT(p->end_thread_ok);
}

static const char CHAT[] = "{\"model\":\"stub-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}],"
                           "\"stream\":true,\"stream_options\":{\"include_usage\":true}}";

static struct ea__cloud_request chat_rq(struct probe *p, const char *fault)
{
    static char url[128];
    static struct ea_config_header hdr[2];
    static char fault_buf[256];
    snprintf(url, sizeof url, "%s/v1/chat/completions", base);
    snprintf(fault_buf, sizeof fault_buf, "%s", fault ? fault : "");
    hdr[0].name = (char *)"X-Team";
    hdr[0].value = (char *)"edge";
    hdr[1].name = (char *)"X-Stub-Fault";
    hdr[1].value = fault_buf;
    struct ea__cloud_request rq = {
        .url = url,
        .body = CHAT,
        .body_len = sizeof CHAT - 1,
        .api_key = KEY,
        .headers = hdr,
        .n_headers = fault ? 2 : 1,
        .timeouts = {.connect_ms = 2000, .first_token_ms = 5000, .idle_ms = 5000, .total_ms = 10000},
        .on_chunk = probe_chunk,
        .on_end = probe_end,
        .user = p,
    };
    return rq;
}

/* Runs one transfer to its end. */
static void run(struct ea__cloud *c, const struct ea__cloud_request *rq, struct probe *p)
{
    struct ea_error err = {0};
    struct ea__cloud_transfer *t = NULL;
    ASSERT_OK(ea__cloud_start(c, rq, &t, &err), &err);
    ASSERT(t);
    probe_wait(p);
    ea__cloud_transfer_release(t);
}

static struct ea__cloud *client(void)
{
    stub();
    stub_reset();
    struct ea__cloud *c = NULL;
    struct ea_error err = {0};
    ASSERT_OK(ea__cloud_create(&c, &err), &err);
    return c;
}

/* One faulted chat transfer, returned in *p (initialised here). */
static void run_fault(struct ea__cloud *c, const char *fault, struct probe *p)
{
    probe_init(p);
    struct ea__cloud_request rq = chat_rq(p, fault);
    run(c, &rq, p);
}

/* ---- cases ------------------------------------------------------------------------------- */

static void stream_ok(void)
{
    struct ea__cloud *c = client();
    struct probe p;
    run_fault(c, NULL, &p);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_OK);
    ASSERT_STR_EQ(p.res.message, "");
    ASSERT_EQ(p.res.http_status, 200);
    ASSERT_STR_EQ(p.content, "stub:5");
    ASSERT_EQ(p.chunks, 5); /* 3 content, the finish, the usage */
    ASSERT_EQ(p.res.n_chunks, 5);
    ASSERT_EQ(p.res.n_output_chunks, 4); /* the usage chunk carries no output */
    ASSERT_EQ(p.res.content_bytes, 6);
    ASSERT(p.res.has_usage);
    ASSERT_EQ(p.res.prompt_tokens, 2);
    ASSERT_EQ(p.res.completion_tokens, 3);
    ASSERT(p.res.started && p.res.connected);
    ASSERT_EQ(p.res.new_connections, 1);
    ASSERT(p.res.ttft_ms >= 0 && p.res.ttft_ms <= p.res.elapsed_ms);
    /* what reached the cloud */
    json_t *l = stub_log();
    json_t *rq = json_array_get(json_object_get(l, "requests"), 0);
    ASSERT_EQ(json_array_size(json_object_get(l, "requests")), 1);
    ASSERT_STR_EQ(json_string_value(json_object_get(rq, "method")), "POST");
    ASSERT_STR_EQ(json_string_value(json_object_get(rq, "path")), "/v1/chat/completions");
    ASSERT(json_is_true(json_object_get(rq, "auth")));
    json_t *h = json_object_get(rq, "headers");
    ASSERT_STR_EQ(json_string_value(json_object_get(h, "accept")), "text/event-stream");
    ASSERT_STR_EQ(json_string_value(json_object_get(h, "content-type")), "application/json");
    ASSERT_STR_EQ(json_string_value(json_object_get(h, "x-team")), "edge");
    ASSERT(!json_object_get(h, "expect"));
    ASSERT(json_is_true(json_object_get(json_object_get(rq, "body"), "stream")));
    json_decref(l);
    probe_release(&p);
    ea__cloud_destroy(c);
}

/* The key goes out as "Authorization: Bearer KEY", exactly: the stub
 * demands it; a wrong one is a 401 with the upstream's code. */
static void api_key(void)
{
    struct ea__cloud *c = client();
    struct probe p;
    run_fault(c, "require_key=" KEY, &p);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_OK);
    probe_release(&p);
    run_fault(c, "require_key=other", &p);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_HTTP_ERROR);
    ASSERT_EQ(p.res.http_status, 401);
    ASSERT_STR_EQ(p.res.error_code, "invalid_api_key");
    ASSERT_STR_EQ(p.res.message, "Incorrect API key provided");
    ASSERT(!strstr(p.res.message, KEY));
    ASSERT_EQ(p.chunks, 0);
    probe_release(&p);
    /* no key: no Authorization header at all */
    stub_reset();
    probe_init(&p);
    struct ea__cloud_request rq = chat_rq(&p, NULL);
    rq.api_key = NULL;
    run(c, &rq, &p);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_OK);
    json_t *l = stub_log();
    ASSERT(json_is_false(json_object_get(json_array_get(json_object_get(l, "requests"), 0), "auth")));
    json_decref(l);
    probe_release(&p);
    ea__cloud_destroy(c);
}

static void http_errors(void)
{
    struct ea__cloud *c = client();
    struct probe p;
    run_fault(c, "status=500", &p);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_HTTP_ERROR);
    ASSERT_EQ(p.res.http_status, 500);
    ASSERT_EQ(p.res.retry_after_ms, -1);
    ASSERT_STR_EQ(p.res.message, "stub: status 500");
    ASSERT_STR_EQ(p.res.error_code, "server_error");
    ASSERT_EQ(p.res.n_chunks, 0);
    probe_release(&p);

    run_fault(c, "status=429; retry_after=7", &p);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_HTTP_ERROR);
    ASSERT_EQ(p.res.http_status, 429);
    ASSERT_EQ(p.res.retry_after_ms, 7000);
    ASSERT_STR_EQ(p.res.error_code, "rate_limit_exceeded");
    probe_release(&p);

    /* an HTTP date 30 s ahead */
    char date[64], fault[128];
    time_t when = time(NULL) + 30;
    struct tm tm;
    gmtime_r(&when, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    snprintf(fault, sizeof fault, "status=503; retry_after=%s", date);
    run_fault(c, fault, &p);
    ASSERT_EQ(p.res.http_status, 503);
    ASSERT(p.res.retry_after_ms > 27000 && p.res.retry_after_ms <= 30000);
    probe_release(&p);

    /* retry-after-ms wins over Retry-After; a date in the past is now; junk is none */
    run_fault(c, "status=429; retry_after=7; retry_after_ms=1500", &p);
    ASSERT_EQ(p.res.retry_after_ms, 1500);
    probe_release(&p);
    run_fault(c, "status=429; retry_after=Mon, 01 Jan 2001 00:00:00 GMT", &p);
    ASSERT_EQ(p.res.retry_after_ms, 0);
    probe_release(&p);
    run_fault(c, "status=429; retry_after=soon", &p);
    ASSERT_EQ(p.res.retry_after_ms, -1);
    probe_release(&p);
    run_fault(c, "status=503; retry_after=99999999", &p); /* capped at a day */
    ASSERT_EQ(p.res.retry_after_ms, EA__CLOUD_RETRY_AFTER_MAX_MS);
    probe_release(&p);

    run_fault(c, "status=502; text=upstream connect error", &p); /* a proxy's plain text */
    ASSERT_EQ(p.res.outcome, EA_CLOUD_HTTP_ERROR);
    ASSERT_EQ(p.res.http_status, 502);
    ASSERT_STR_EQ(p.res.message, "upstream connect error");
    probe_release(&p);
    run_fault(c, "status=502; html", &p); /* a page: not quoted */
    ASSERT_STR_EQ(p.res.message, "HTTP 502 from the upstream");
    probe_release(&p);

    run_fault(c, "status=400; message=bad things\tand more", &p);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_HTTP_ERROR);
    ASSERT_EQ(p.res.http_status, 400);
    ASSERT_STR_EQ(p.res.message, "bad things and more"); /* control bytes: spaces */
    probe_release(&p);
    ea__cloud_destroy(c);
}

static void reset_and_cut(void)
{
    struct ea__cloud *c = client();
    struct probe p;
    run_fault(c, "reset", &p);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_CUT);
    ASSERT_EQ(p.res.http_status, 0);
    ASSERT(p.res.connected);
    ASSERT_EQ(p.res.n_chunks, 0);
    ASSERT(p.res.message[0]);
    ASSERT_EQ(stub_requests(), 1);
    probe_release(&p);
    /* on a kept-alive connection: libcurl takes a reset before any byte for
     * a stale connection and sends the request once more on a fresh one */
    run_fault(c, NULL, &p);
    probe_release(&p);
    stub_reset();
    run_fault(c, "reset", &p);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_CUT);
    ASSERT_EQ(stub_requests(), 2);
    probe_release(&p);

    run_fault(c, "cut_after=2", &p);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_CUT);
    ASSERT_EQ(p.res.http_status, 200);
    ASSERT_EQ(p.res.n_output_chunks, 2);
    ASSERT_STR_EQ(p.content, "stub");
    ASSERT(strstr(p.res.message, "[DONE]"));
    probe_release(&p);

    run_fault(c, "cut_after=0", &p); /* a clean, empty stream */
    ASSERT_EQ(p.res.outcome, EA_CLOUD_CUT);
    ASSERT_EQ(p.res.n_chunks, 0);
    probe_release(&p);
    ea__cloud_destroy(c);
}

static void malformed(void)
{
    struct ea__cloud *c = client();
    struct probe p;
    run_fault(c, "malformed", &p);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_MALFORMED);
    ASSERT_EQ(p.res.n_chunks, 0);
    ASSERT(strstr(p.res.message, "not valid JSON"));
    probe_release(&p);

    run_fault(c, "malformed=2", &p);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_MALFORMED);
    ASSERT_EQ(p.res.n_output_chunks, 2);
    ASSERT_EQ(p.chunks, 2);
    probe_release(&p);

    run_fault(c, "html", &p);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_MALFORMED);
    ASSERT_EQ(p.res.http_status, 200);
    ASSERT(strstr(p.res.message, "text/html"));
    probe_release(&p);

    /* a consumer that rejects a chunk: malformed; one that stops: cancelled */
    probe_init(&p);
    p.stop_at = 2;
    p.verdict_at = EA_CLOUD_REJECT;
    struct ea__cloud_request rq = chat_rq(&p, NULL);
    run(c, &rq, &p);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_MALFORMED);
    ASSERT_EQ(p.chunks, 2);
    probe_release(&p);
    probe_init(&p);
    p.stop_at = 1;
    p.verdict_at = EA_CLOUD_STOP;
    rq = chat_rq(&p, NULL);
    run(c, &rq, &p);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_CANCELLED);
    ASSERT_EQ(p.chunks, 1);
    probe_release(&p);
    ea__cloud_destroy(c);
}

static void error_event(void)
{
    struct ea__cloud *c = client();
    struct probe p;
    run_fault(c, "error_first; message=overloaded upstream", &p);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_STREAM_ERROR);
    ASSERT_EQ(p.res.http_status, 200);
    ASSERT_EQ(p.res.n_chunks, 0);
    ASSERT_EQ(p.chunks, 0);
    ASSERT_STR_EQ(p.res.message, "overloaded upstream");
    ASSERT_STR_EQ(p.res.error_code, "stub_error");
    probe_release(&p);
    ea__cloud_destroy(c);
}

static void timeouts(void)
{
    struct ea__cloud *c = client();
    struct probe p;
    /* silence after one chunk: the idle gap */
    probe_init(&p);
    struct ea__cloud_request rq = chat_rq(&p, "silence_after=1");
    rq.timeouts.idle_ms = 300;
    double t0 = now_ms();
    run(c, &rq, &p);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_TIMEOUT);
    ASSERT_EQ(p.res.timeout, EA_CLOUD_TIMEOUT_IDLE);
    ASSERT_EQ(p.res.n_output_chunks, 1);
    ASSERT(now_ms() - t0 >= 300);
    probe_release(&p);

    /* a slow head: the first token */
    probe_init(&p);
    rq = chat_rq(&p, "delay_ms=3000");
    rq.timeouts.first_token_ms = 300;
    t0 = now_ms();
    run(c, &rq, &p);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_TIMEOUT);
    ASSERT_EQ(p.res.timeout, EA_CLOUD_TIMEOUT_FIRST_TOKEN);
    ASSERT(p.res.elapsed_ms >= 300);
    ASSERT(now_ms() - t0 < 2500); /* not the stub's 3 s */
    probe_release(&p);

    /* chunks keep coming, but the whole takes too long */
    probe_init(&p);
    rq = chat_rq(&p, "reply=abcdefghijklmnopqrstuvwxyz; chunks=20; chunk_delay_ms=100");
    rq.timeouts.total_ms = 600;
    run(c, &rq, &p);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_TIMEOUT);
    ASSERT_EQ(p.res.timeout, EA_CLOUD_TIMEOUT_TOTAL);
    ASSERT(p.res.n_output_chunks >= 2);
    probe_release(&p);

    /* the same slow stream within every timeout: fine */
    probe_init(&p);
    rq = chat_rq(&p, "chunks=4; chunk_delay_ms=100");
    rq.timeouts.idle_ms = 400;
    rq.timeouts.first_token_ms = 400;
    run(c, &rq, &p);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_OK);
    probe_release(&p);
    ea__cloud_destroy(c);
}

/* A loopback port nothing listens on (bound, then closed). */
static int closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    ASSERT_EQ(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    ASSERT_EQ(getsockname(s, (struct sockaddr *)&a, &al), 0);
    close(s);
    return ntohs(a.sin_port);
}

/* A free port with nothing listening: refused at once. */
static void connect_refused(void)
{
    struct ea__cloud *c = client();
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", closed_port());
    struct probe p;
    probe_init(&p);
    struct ea__cloud_request rq = chat_rq(&p, NULL);
    rq.url = url;
    rq.timeouts.connect_ms = 500;
    double t0 = now_ms();
    run(c, &rq, &p);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_CONNECT_ERROR);
    ASSERT(!p.res.connected);
    ASSERT_EQ(p.res.http_status, 0);
    ASSERT(now_ms() - t0 < 500);
    ASSERT(p.res.message[0]);
    probe_release(&p);
    ea__cloud_destroy(c);
}

/* A listener whose accept queue is full drops new SYNs: the connect phase
 * never ends, and connect_ms ends it. */
static void connect_timeout(void)
{
    struct ea__cloud *c = client();
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    ASSERT_EQ(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    ASSERT_EQ(listen(s, 0), 0);
    ASSERT_EQ(getsockname(s, (struct sockaddr *)&a, &al), 0);
    int filler[4];
    for (int i = 0; i < 4; i++) { /* fill the queue (backlog 0 holds one or two) */
        filler[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(filler[i], (struct sockaddr *)&a, sizeof a);
    }
    usleep(50000);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", ntohs(a.sin_port));
    struct probe p;
    probe_init(&p);
    struct ea__cloud_request rq = chat_rq(&p, NULL);
    rq.url = url;
    rq.timeouts.connect_ms = 300;
    double t0 = now_ms();
    run(c, &rq, &p);
    double took = now_ms() - t0;
    for (int i = 0; i < 4; i++)
        close(filler[i]);
    close(s);
    if (p.res.outcome == EA_CLOUD_TIMEOUT && p.res.timeout == EA_CLOUD_TIMEOUT_FIRST_TOKEN)
        FAIL("the connect phase ended but no reply came: this kernel accepted the connection");
    ASSERT_EQ(p.res.outcome, EA_CLOUD_TIMEOUT);
    ASSERT_EQ(p.res.timeout, EA_CLOUD_TIMEOUT_CONNECT);
    ASSERT(!p.res.connected);
    ASSERT(took >= 290 && took < 2000);
    probe_release(&p);
    ea__cloud_destroy(c);
}

/* Cancelled during its delay, a transfer sends nothing; cancelled while
 * running, it ends at once. */
static void delay_and_cancel(void)
{
    struct ea__cloud *c = client();
    struct probe p;
    probe_init(&p);
    struct ea__cloud_request rq = chat_rq(&p, NULL);
    rq.delay_ms = 400;
    struct ea_error err = {0};
    struct ea__cloud_transfer *t = NULL;
    ASSERT_OK(ea__cloud_start(c, &rq, &t, &err), &err);
    usleep(100000);
    ea__cloud_cancel(t);
    ea__cloud_cancel(t); /* twice is fine */
    probe_wait(&p);
    ea__cloud_transfer_release(t);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_CANCELLED);
    ASSERT(!p.res.started);
    ASSERT(!p.res.connected);
    usleep(600000); /* past the delay: still nothing */
    ASSERT_EQ(stub_requests(), 0);
    json_t *l = stub_log();
    ASSERT_EQ(json_integer_value(json_object_get(l, "connections")), 0);
    json_decref(l);
    probe_release(&p);

    /* the delay is honoured: the request goes out after it */
    probe_init(&p);
    rq = chat_rq(&p, NULL);
    rq.delay_ms = 300;
    double t0 = now_ms();
    run(c, &rq, &p);
    ASSERT(now_ms() - t0 >= 300);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_OK);
    ASSERT(p.res.elapsed_ms < now_ms() - t0); /* measured from the attempt's start */
    probe_release(&p);

    /* cancel while the stream is silent */
    probe_init(&p);
    rq = chat_rq(&p, "silence_after=1");
    t = NULL;
    ASSERT_OK(ea__cloud_start(c, &rq, &t, &err), &err);
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&p.mu);
        int ch = p.chunks;
        pthread_mutex_unlock(&p.mu);
        if (ch)
            break;
        usleep(10000);
    }
    t0 = now_ms();
    ea__cloud_cancel(t);
    probe_wait(&p);
    ASSERT(now_ms() - t0 < 1000);
    ea__cloud_transfer_release(t);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_CANCELLED);
    ASSERT(p.res.started);
    ASSERT_EQ(p.chunks, 1);
    probe_release(&p);
    ea__cloud_destroy(c);
}

/* Sequential transfers reuse one kept-alive connection. */
static void keep_alive(void)
{
    struct ea__cloud *c = client();
    for (int i = 0; i < 6; i++) {
        struct probe p;
        run_fault(c, NULL, &p);
        ASSERT_EQ(p.res.outcome, EA_CLOUD_OK);
        ASSERT_EQ(p.res.new_connections, i == 0 ? 1 : 0);
        probe_release(&p);
    }
    json_t *l = stub_log();
    ASSERT_EQ(json_array_size(json_object_get(l, "requests")), 6);
    ASSERT_EQ(json_integer_value(json_object_get(l, "connections")), 1);
    json_decref(l);
    ea__cloud_destroy(c);
}

/* 50 transfers at once, mixed faults: each ends exactly once, as its fault says. */
#define N_CONC 50
static void concurrent(void)
{
    struct ea__cloud *c = client();
    static const struct {
        const char *fault;
        enum ea__cloud_outcome want;
    } kinds[] = {
        {NULL, EA_CLOUD_OK},
        {"status=500", EA_CLOUD_HTTP_ERROR},
        {"cut_after=1", EA_CLOUD_CUT},
        {"reset", EA_CLOUD_CUT},
        {"malformed=1", EA_CLOUD_MALFORMED},
        {"error_first", EA_CLOUD_STREAM_ERROR},
        {"silence_after=1", EA_CLOUD_TIMEOUT},
        {"chunks=5; chunk_delay_ms=20", EA_CLOUD_OK},
        {"cancel", EA_CLOUD_CANCELLED},
    };
    const int n_kinds = (int)(sizeof kinds / sizeof kinds[0]);
    struct probe *p = calloc(N_CONC, sizeof *p);
    struct ea__cloud_transfer *t[N_CONC];
    char urls[N_CONC][128];
    struct ea_config_header hdr[N_CONC];
    for (int i = 0; i < N_CONC; i++) {
        probe_init(&p[i]);
        const char *f = kinds[i % n_kinds].fault;
        bool cancel = f && !strcmp(f, "cancel");
        struct ea__cloud_request rq = chat_rq(&p[i], NULL);
        snprintf(urls[i], sizeof urls[i], "%s/v1/chat/completions", base);
        rq.url = urls[i];
        hdr[i].name = (char *)"X-Stub-Fault";
        hdr[i].value = (char *)(cancel ? "silence_after=1" : f ? f : "");
        rq.headers = &hdr[i];
        rq.n_headers = 1;
        rq.timeouts.idle_ms = 500;
        if (cancel)
            rq.timeouts.idle_ms = 0;
        struct ea_error err = {0};
        ASSERT_OK(ea__cloud_start(c, &rq, &t[i], &err), &err);
    }
    usleep(300000);
    for (int i = 0; i < N_CONC; i++)
        if (kinds[i % n_kinds].fault && !strcmp(kinds[i % n_kinds].fault, "cancel"))
            ea__cloud_cancel(t[i]);
    for (int i = 0; i < N_CONC; i++) {
        probe_wait(&p[i]);
        if (p[i].res.outcome != kinds[i % n_kinds].want)
            FAIL("transfer %d (%s): %s, want %s (%s)", i, kinds[i % n_kinds].fault ? kinds[i % n_kinds].fault : "ok",
                 ea__cloud_outcome_name(p[i].res.outcome), ea__cloud_outcome_name(kinds[i % n_kinds].want),
                 p[i].res.message);
        if (kinds[i % n_kinds].want == EA_CLOUD_OK)
            ASSERT_STR_EQ(p[i].content, "stub:5");
        ea__cloud_transfer_release(t[i]);
    }
    usleep(100000);
    for (int i = 0; i < N_CONC; i++) {
        ASSERT_EQ(p[i].ends, 1); /* still once */
        probe_release(&p[i]);
    }
    ASSERT_EQ(ea__cloud_active(c), 0);
    /* each once, except that a reset on a reused connection is sent once
     * more by libcurl (see reset_and_cut) */
    int resets = 0;
    for (int i = 0; i < N_CONC; i++)
        resets += kinds[i % n_kinds].fault && !strcmp(kinds[i % n_kinds].fault, "reset");
    size_t seen = stub_requests();
    ASSERT(seen >= N_CONC && seen <= (size_t)(N_CONC + resets));
    free(p);
    ea__cloud_destroy(c);
}

/* destroy ends everything: waiting, silent, fresh; each once, cancelled. */
static void destroy_in_flight(void)
{
    struct ea__cloud *c = client();
    struct probe p[6];
    struct ea__cloud_transfer *t[6];
    for (int i = 0; i < 6; i++) {
        probe_init(&p[i]);
        struct ea__cloud_request rq = chat_rq(&p[i], i < 3 ? "silence_after=1" : NULL);
        rq.delay_ms = i >= 3 ? 5000 : 0;
        struct ea_error err = {0};
        ASSERT_OK(ea__cloud_start(c, &rq, &t[i], &err), &err);
        ea__cloud_transfer_release(t[i]); /* the transfer goes on without the handle */
    }
    usleep(300000);
    ea__cloud_destroy(c);
    for (int i = 0; i < 6; i++) {
        ASSERT_EQ(p[i].ends, 1);
        ASSERT_EQ(p[i].res.outcome, EA_CLOUD_CANCELLED);
        ASSERT_EQ(p[i].res.started, i < 3);
        probe_release(&p[i]);
    }
    ASSERT_EQ(stub_requests(), 3);
}

static void bad_requests(void)
{
    struct ea__cloud *c = client();
    struct probe p;
    probe_init(&p);
    struct ea_error err = {0};
    struct ea__cloud_transfer *t = (struct ea__cloud_transfer *)&p;
    struct ea__cloud_request rq = chat_rq(&p, NULL);
    rq.url = "ftp://127.0.0.1/x";
    ASSERT_EQ(ea__cloud_start(c, &rq, &t, &err), EA_EINVAL);
    ASSERT(t == NULL);
    rq = chat_rq(&p, NULL);
    rq.api_key = "sk-1\r\nX-Evil: 1";
    ASSERT_EQ(ea__cloud_start(c, &rq, &t, &err), EA_EINVAL);
    ASSERT(!strstr(err.msg, "sk-1"));
    struct ea_config_header bad = {(char *)"X-A", (char *)"v\nX-B: 2"};
    rq = chat_rq(&p, NULL);
    rq.headers = &bad;
    rq.n_headers = 1;
    ASSERT_EQ(ea__cloud_start(c, &rq, &t, &err), EA_EINVAL);
    usleep(50000);
    ASSERT_EQ(p.ends, 0); /* a refused start never calls back */
    ASSERT_EQ(stub_requests(), 0);
    probe_release(&p);
    ea__cloud_destroy(c);
}

/* Allocation failures in ea__cloud_start: each is EA_ENOMEM with no
 * handle and no callback, until enough allocations succeed; then the
 * transfer runs normally. */
static void start_out_of_memory(void)
{
    struct ea__cloud *c = client();
    int failures = 0;
    for (long at = 1; at < 64; at++) {
        struct probe p;
        probe_init(&p);
        struct ea__cloud_request rq = chat_rq(&p, NULL);
        rq.delay_ms = 100; /* the client thread allocates nothing before the hook is reset */
        struct ea_error err = {0};
        struct ea__cloud_transfer *t = NULL;
        ea_alloc_fail_after(at); /* the client thread is idle: only this thread allocates */
        ea_status st = ea__cloud_start(c, &rq, &t, &err);
        ea_alloc_fail_after(0);
        if (st == EA_OK) {
            probe_wait(&p);
            ea__cloud_transfer_release(t);
            ASSERT_EQ(p.res.outcome, EA_CLOUD_OK);
            probe_release(&p);
            break;
        }
        ASSERT_EQ(st, EA_ENOMEM);
        ASSERT(t == NULL);
        failures++;
        usleep(20000);
        ASSERT_EQ(p.ends, 0);
        probe_release(&p);
    }
    ASSERT(failures >= 3); /* url, body, header lines */
    ASSERT_EQ(stub_requests(), 1);
    /* the finished transfer leaves the client's list on its thread, just after on_end */
    for (int i = 0; i < 100 && ea__cloud_active(c) != 0; i++)
        usleep(10000);
    ASSERT_EQ(ea__cloud_active(c), 0);
    ea__cloud_destroy(c);
}

/* /v1/completions, n = 2: both choices' text arrives. */
static void completions(void)
{
    struct ea__cloud *c = client();
    struct probe p;
    probe_init(&p);
    static const char body[] = "{\"model\":\"m\",\"prompt\":\"abc\",\"n\":2,\"stream\":true}";
    struct ea__cloud_request rq = chat_rq(&p, NULL);
    char url[128];
    snprintf(url, sizeof url, "%s/v1/completions", base);
    rq.url = url;
    rq.body = body;
    rq.body_len = sizeof body - 1;
    run(c, &rq, &p);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_OK);
    ASSERT(!p.res.has_usage); /* not asked for */
    ASSERT_EQ(p.res.content_bytes, 12);
    ASSERT_EQ((int)strlen(p.content), 12);
    probe_release(&p);
    ea__cloud_destroy(c);
}

/* A kept-alive connection the server closed while idle is not reused
 * blindly: the next transfer succeeds, and the request reaches the server
 * once. */
static void stale_connection(void)
{
    stub();
    static int ka_port;
    if (ka_pid <= 0)
        ka_port = spawn_stub(&ka_pid, "--keep-alive-ms", "100", NULL);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", ka_port);
    struct ea__cloud *c = NULL;
    struct ea_error err = {0};
    ASSERT_OK(ea__cloud_create(&c, &err), &err);
    for (int i = 0; i < 3; i++) {
        struct probe p;
        probe_init(&p);
        struct ea__cloud_request rq = chat_rq(&p, NULL);
        rq.url = url;
        run(c, &rq, &p);
        ASSERT_EQ(p.res.outcome, EA_CLOUD_OK);
        ASSERT_EQ(p.res.new_connections, 1);
        probe_release(&p);
        if (i < 2)
            usleep(1500000); /* the server closes the idle connection (node checks about every second) */
    }
    char lurl[128];
    snprintf(lurl, sizeof lurl, "http://127.0.0.1:%d", ka_port);
    char saved[64];
    snprintf(saved, sizeof saved, "%s", base);
    snprintf(base, sizeof base, "%s", lurl);
    json_t *l = stub_log();
    snprintf(base, sizeof base, "%s", saved);
    ASSERT_EQ(json_array_size(json_object_get(l, "requests")), 3); /* each once */
    ASSERT_EQ(json_integer_value(json_object_get(l, "connections")), 3);
    json_decref(l);
    ea__cloud_destroy(c);
}

/* The proxy environment is honoured (libcurl reads it; the library does
 * not): with http_proxy set to the stub, a request for another host goes
 * to the stub as a proxy request; no_proxy exempts a host. */
static void proxy_env(void)
{
    struct ea__cloud *c = client();
    setenv("http_proxy", base, 1); /* before any transfer: the client thread reads it */
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    struct probe p;
    probe_init(&p);
    struct ea__cloud_request rq = chat_rq(&p, NULL);
    rq.url = "http://cloud.example.invalid/v1/chat/completions";
    run(c, &rq, &p);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_OK);
    ASSERT_STR_EQ(p.content, "stub:5");
    probe_release(&p);
    json_t *l = stub_log();
    json_t *h = json_object_get(json_array_get(json_object_get(l, "requests"), 0), "headers");
    ASSERT_STR_EQ(json_string_value(json_object_get(h, "host")), "cloud.example.invalid");
    json_decref(l);
    /* exempted by no_proxy: a direct connection (to a closed port) */
    setenv("no_proxy", "127.0.0.1", 1);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", closed_port());
    probe_init(&p);
    rq = chat_rq(&p, NULL);
    rq.url = url;
    run(c, &rq, &p);
    unsetenv("http_proxy");
    unsetenv("no_proxy");
    ASSERT_EQ(p.res.outcome, EA_CLOUD_CONNECT_ERROR);
    probe_release(&p);
    ASSERT_EQ(stub_requests(), 1);
    ea__cloud_destroy(c);
}

/* HTTPS: a self-signed server is refused (verification is on) unless the
 * transfer names its certificate as CA file; a CA file that does not exist
 * is a connect error too. */
static void tls_ca_file(void)
{
    stub();
    if (system("openssl version >/dev/null 2>&1") != 0)
        SKIP("openssl not found: needed to make a test certificate");
    static char cert[4200], key[4200];
    static int tls_port;
    if (tls_pid <= 0) {
        const char *dir = ea_test_tmp_path("cloud-tls");
        char cmd[9000];
        snprintf(cert, sizeof cert, "%s/cert.pem", dir);
        snprintf(key, sizeof key, "%s/key.pem", dir);
        snprintf(cmd, sizeof cmd,
                 "rm -rf '%s' && mkdir -p '%s' && openssl req -x509 -newkey rsa:2048 -nodes -keyout '%s' "
                 "-out '%s' -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
                 dir, dir, key, cert);
        ASSERT_EQ(system(cmd), 0);
        tls_port = spawn_stub(&tls_pid, "--tls", cert, key);
    }
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/v1/chat/completions", tls_port);
    struct ea__cloud *c = NULL;
    struct ea_error err = {0};
    ASSERT_OK(ea__cloud_create(&c, &err), &err);
    struct probe p;
    probe_init(&p);
    struct ea__cloud_request rq = chat_rq(&p, NULL);
    rq.url = url;
    run(c, &rq, &p);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_CONNECT_ERROR);
    ASSERT_EQ(p.res.http_status, 0);
    ASSERT(strstr(p.res.message, "certificate") || strstr(p.res.message, "SSL"));
    probe_release(&p);

    probe_init(&p);
    rq = chat_rq(&p, NULL);
    rq.url = url;
    rq.ca_file = cert;
    run(c, &rq, &p);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_OK);
    ASSERT_STR_EQ(p.content, "stub:5");
    probe_release(&p);

    probe_init(&p);
    rq = chat_rq(&p, NULL);
    rq.url = url;
    rq.ca_file = "/nonexistent/ca.pem";
    run(c, &rq, &p);
    ASSERT_EQ(p.res.outcome, EA_CLOUD_CONNECT_ERROR);
    probe_release(&p);
    ea__cloud_destroy(c);
}

/* ---- the openai upstream over the client ----------------------------------------------- */

struct gen {
    struct ea__genq q;
    pthread_mutex_t mu; /* guards freed */
    pthread_cond_t cv;
    bool freed;
    bool stop; /* what wake answers: !stop */
    int wakes;
};

static bool gen_wake(void *user, int choice, bool finished)
{
    struct gen *g = user; /* under the queue's lock */
    g->wakes++;
    return !g->stop;
}

static void gen_freed(void *user)
{
    struct gen *g = user;
    pthread_mutex_lock(&g->mu);
    g->freed = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static struct ea__upstream *openai_up(struct ea__cloud *c, const char *key)
{
    char url[128];
    snprintf(url, sizeof url, "%s/v1/", base); /* a trailing slash is dropped */
    struct ea_config_header h = {(char *)"X-Team", (char *)"edge"};
    struct ea_upstream_config cfg = {
        .name = (char *)"cloud",
        .kind = EA_UPSTREAM_OPENAI,
        .base_url = url,
        .model = (char *)"gpt-test",
        .tier = EA_TIER_CLOUD,
        .timeouts = {.connect_ms = 1000, .first_token_ms = 5000, .idle_ms = 400, .total_ms = 10000},
        .headers = &h,
        .n_headers = 1,
    };
    struct ea__upstream *u = NULL;
    struct ea_error err = {0};
    ASSERT_OK(ea__upstream_openai_create(c, &cfg, key, &u, &err), &err);
    ASSERT_STR_EQ(u->name, "cloud");
    ASSERT_STR_EQ(u->ops->kind, "openai");
    return u;
}

struct run_out {
    char text[8][256];
    struct ea__genq_end end[8];
    char err[8][EA__GENQ_ERRMSG_MAX];
    int32_t n_prompt_tokens;
    int n;
};

/* Parses body, prepares, starts (delay_ms, cancel_after_ms >= 0: cancel
 * then), waits for every choice, takes the output, frees. Returns false
 * when prepare refused the request (*e filled). */
static bool up_run(struct ea__upstream *u, enum ea__req_kind kind, const char *body, uint32_t delay_ms,
                   int cancel_after_ms, bool stop, struct run_out *o, struct ea__api_error *e)
{
    memset(o, 0, sizeof *o);
    struct ea__req_limits lim = {4096, 8, 32000};
    struct ea__gen_request r;
    if (!ea__gen_request_parse(kind, body, strlen(body), &lim, &r, e))
        FAIL("the request did not parse: %s", e->message);
    struct ea__upstream_job *job = NULL;
    if (!u->ops->prepare(u, &r, "req-1", &job, e)) {
        ASSERT(job == NULL);
        ea__gen_request_release(&r);
        return false;
    }
    ea__upstream_openai_set_delay(job, delay_ms);
    int n = (kind == EA__REQ_CHAT ? 1 : r.n_prompts) * r.n;
    struct gen *g = calloc(1, sizeof *g);
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->stop = stop;
    ASSERT_EQ(ea__genq_init(&g->q, n, 1 << 16, false, 0, gen_wake, gen_freed, g), EA_OK);
    ASSERT(u->ops->start(job, &r, 1, &g->q, e));
    ea__gen_request_release(&r); /* the job does not need it after start */
    if (cancel_after_ms >= 0) {
        usleep((useconds_t)cancel_after_ms * 1000);
        u->ops->cancel(job);
    }
    struct ea__genq_buf local;
    ea__genq_buf_init(&local, g->q.cap);
    double until = now_ms() + WAIT_MS;
    bool all = false;
    while (!all && now_ms() < until) {
        pthread_mutex_lock(g->q.lock);
        all = g->q.n_done == n;
        for (int i = 0; i < n; i++) {
            if (ea__genq_take_locked(&g->q, i, &local)) {
                strncat(o->text[i], local.text.data, sizeof o->text[i] - strlen(o->text[i]) - 1);
                ea__genq_buf_reset(&local);
            }
        }
        pthread_mutex_unlock(g->q.lock);
        if (!all)
            usleep(5000);
    }
    ASSERT(all);
    pthread_mutex_lock(g->q.lock);
    for (int i = 0; i < n; i++) {
        o->end[i] = g->q.c[i].end;
        snprintf(o->err[i], sizeof o->err[i], "%s", g->q.c[i].errmsg);
    }
    o->n_prompt_tokens = g->q.n_prompt_tokens;
    pthread_mutex_unlock(g->q.lock);
    o->n = n;
    ea__genq_buf_release(&local);
    ea__genq_unref(&g->q); /* the creator's: the producers' are gone, so this frees */
    ASSERT(g->freed);
    u->ops->release(job);
    ea__genq_release(&g->q);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g);
    return true;
}

static const char UP_CHAT[] = "{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}],\"n\":2,"
                              "\"max_tokens\":16,\"edgeagent\":{\"task\":\"reasoning\",\"allow_cloud\":true}}";

static void upstream_chat(void)
{
    struct ea__cloud *c = client();
    struct ea__upstream *u = openai_up(c, KEY);
    struct run_out o;
    struct ea__api_error e = {0};
    ASSERT(up_run(u, EA__REQ_CHAT, UP_CHAT, 0, -1, false, &o, &e));
    ASSERT_EQ(o.n, 2);
    int32_t gen = 0;
    for (int i = 0; i < 2; i++) {
        ASSERT_STR_EQ(o.text[i], "stub:5");
        ASSERT_EQ(o.end[i].finish, EA_FINISH_STOP);
        ASSERT_EQ(o.end[i].fail, EA__FAIL_NONE);
        ASSERT_EQ(o.end[i].http_status, 200);
        ASSERT(o.end[i].retry_after_ms == 0);
        ASSERT(o.end[i].ttft_ms >= 0);
        gen += o.end[i].n_generated;
    }
    ASSERT_EQ(gen, 6);             /* the stream's completion_tokens: 3 chunks x 2 choices */
    ASSERT_EQ(o.end[0].n_generated, 3); /* shared by content chunks */
    ASSERT_EQ(o.n_prompt_tokens, 2); /* ceil(5 / 4) from the stub's usage */
    /* what the cloud received: the client's body, the upstream's model,
     * stream forced with usage, the extension removed, the key and headers */
    json_t *l = stub_log();
    json_t *rq = json_array_get(json_object_get(l, "requests"), 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(rq, "path")), "/v1/chat/completions");
    json_t *b = json_object_get(rq, "body");
    ASSERT_STR_EQ(json_string_value(json_object_get(b, "model")), "gpt-test");
    ASSERT(json_is_true(json_object_get(b, "stream")));
    ASSERT(json_is_true(json_object_get(json_object_get(b, "stream_options"), "include_usage")));
    ASSERT(!json_object_get(b, "edgeagent"));
    ASSERT_EQ(json_integer_value(json_object_get(b, "n")), 2);
    ASSERT_EQ(json_integer_value(json_object_get(b, "max_tokens")), 16);
    ASSERT_STR_EQ(json_string_value(json_object_get(json_object_get(rq, "headers"), "x-team")), "edge");
    ASSERT(json_is_true(json_object_get(rq, "auth")));
    json_decref(l);
    ea__upstream_openai_destroy(u);
    ea__cloud_destroy(c);
}

static void upstream_completions(void)
{
    struct ea__cloud *c = client();
    struct ea__upstream *u = openai_up(c, NULL);
    struct run_out o;
    struct ea__api_error e = {0};
    ASSERT(up_run(u, EA__REQ_COMPLETION, "{\"prompt\":[\"ab\",\"abc\"],\"stream\":false}", 0, -1, false, &o, &e));
    ASSERT_EQ(o.n, 2);
    ASSERT_STR_EQ(o.text[0], "stub:2");
    ASSERT_STR_EQ(o.text[1], "stub:3");
    json_t *l = stub_log();
    json_t *rq = json_array_get(json_object_get(l, "requests"), 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(rq, "path")), "/v1/completions");
    ASSERT(json_is_true(json_object_get(json_object_get(rq, "body"), "stream"))); /* forced */
    ASSERT(json_is_false(json_object_get(rq, "auth")));
    json_decref(l);
    /* logprobs: refused before anything is sent */
    stub_reset();
    ASSERT(!up_run(u, EA__REQ_COMPLETION, "{\"prompt\":\"x\",\"logprobs\":2}", 0, -1, false, &o, &e));
    ASSERT_EQ(e.status, 400);
    ASSERT_STR_EQ(e.param, "logprobs");
    ASSERT_EQ(stub_requests(), 0);
    ea__upstream_openai_destroy(u);
    ea__cloud_destroy(c);
}

/* Failures reach every choice with their class; the fault is set on the
 * stub's side (the client does not know). */
static void upstream_failures(void)
{
    struct ea__cloud *c = client();
    struct ea__upstream *u = openai_up(c, KEY);
    struct run_out o;
    struct ea__api_error e = {0};
    json_decref(stub_call("POST", "/_stub/config", "{\"status\":429,\"retry_after\":2}"));
    ASSERT(up_run(u, EA__REQ_CHAT, UP_CHAT, 0, -1, false, &o, &e));
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ(o.end[i].finish, EA_FINISH_ERROR);
        ASSERT_EQ(o.end[i].fail, EA__FAIL_HTTP_429);
        ASSERT_EQ(o.end[i].status, EA_EOVERLOADED);
        ASSERT_EQ(o.end[i].http_status, 429);
        ASSERT_EQ(o.end[i].retry_after_ms, 2000);
        ASSERT_STR_EQ(o.err[i], "stub: status 429");
        ASSERT_STR_EQ(o.text[i], "");
    }
    json_decref(stub_call("POST", "/_stub/config", "{\"cut_after\":2}"));
    ASSERT(up_run(u, EA__REQ_CHAT, UP_CHAT, 0, -1, false, &o, &e));
    ASSERT_EQ(o.end[0].finish, EA_FINISH_ERROR);
    ASSERT_EQ(o.end[0].fail, EA__FAIL_HTTP_5XX); /* a broken reply: the upstream's fault */
    ASSERT_EQ(o.end[0].status, EA_EIO);
    ASSERT(strstr(o.err[0], "[DONE]"));
    ASSERT_STR_EQ(o.text[0], "stub");
    json_decref(stub_call("POST", "/_stub/config", "{\"silence_after\":1}"));
    ASSERT(up_run(u, EA__REQ_CHAT, UP_CHAT, 0, -1, false, &o, &e));
    ASSERT_EQ(o.end[1].fail, EA__FAIL_TIMEOUT);
    ASSERT_STR_EQ(o.err[1], "no data after the last chunk within 400 ms"); /* the upstream's idle_ms */
    ASSERT_EQ(o.end[1].status, EA_ETIMEOUT);
    /* a stream whose choices carry no index: fine for one choice, a
     * malformed reply for two (which choice would it be?) */
    json_decref(stub_call("POST", "/_stub/config", "{\"no_index\":true}"));
    ASSERT(up_run(u, EA__REQ_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"abc\"}]}", 0, -1,
                  false, &o, &e));
    ASSERT_EQ(o.end[0].finish, EA_FINISH_STOP);
    ASSERT_STR_EQ(o.text[0], "stub:3");
    ASSERT(up_run(u, EA__REQ_CHAT, UP_CHAT, 0, -1, false, &o, &e));
    ASSERT_EQ(o.end[0].finish, EA_FINISH_ERROR);
    ASSERT_EQ(o.end[0].fail, EA__FAIL_HTTP_5XX);
    ASSERT_EQ(o.end[1].status, EA_EFORMAT);
    json_decref(stub_call("POST", "/_stub/config", "{\"error_first\":true}"));
    ASSERT(up_run(u, EA__REQ_CHAT, UP_CHAT, 0, -1, false, &o, &e));
    ASSERT_EQ(o.end[0].fail, EA__FAIL_HTTP_5XX);
    ASSERT_EQ(o.end[0].status, EA_EUNAVAILABLE);
    ASSERT_STR_EQ(o.err[0], "stub: error event");
    ASSERT_STR_EQ(o.text[0], "");
    /* a 400 is the request's own fault; a closed port cannot connect */
    json_decref(stub_call("POST", "/_stub/config", "{\"status\":400}"));
    ASSERT(up_run(u, EA__REQ_CHAT, UP_CHAT, 0, -1, false, &o, &e));
    ASSERT_EQ(o.end[0].fail, EA__FAIL_REJECTED);
    ASSERT_EQ(o.end[0].http_status, 400);
    ASSERT_EQ(o.end[0].status, EA_EINVAL);
    char saved[64];
    snprintf(saved, sizeof saved, "%s", base);
    snprintf(base, sizeof base, "http://127.0.0.1:%d", closed_port());
    struct ea__upstream *down = openai_up(c, KEY);
    snprintf(base, sizeof base, "%s", saved);
    ASSERT(up_run(down, EA__REQ_CHAT, UP_CHAT, 0, -1, false, &o, &e));
    ASSERT_EQ(o.end[0].fail, EA__FAIL_CONNECT);
    ASSERT_EQ(o.end[1].fail, EA__FAIL_CONNECT);
    ASSERT_EQ(o.end[0].http_status, 0);
    ea__upstream_openai_destroy(down);
    ea__upstream_openai_destroy(u);
    ea__cloud_destroy(c);
}

/* cancel: while silent (the stream stops at once), during the delay
 * (nothing is sent), and a consumer that stops reading (wake false). */
static void upstream_cancel(void)
{
    struct ea__cloud *c = client();
    struct ea__upstream *u = openai_up(c, KEY);
    struct run_out o;
    struct ea__api_error e = {0};
    json_decref(stub_call("POST", "/_stub/config", "{\"silence_after\":1}"));
    double t0 = now_ms();
    ASSERT(up_run(u, EA__REQ_CHAT, UP_CHAT, 0, 150, false, &o, &e));
    ASSERT(now_ms() - t0 < 390); /* before the idle timeout (400 ms) */
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ(o.end[i].finish, EA_FINISH_CANCELLED);
        ASSERT_EQ(o.end[i].fail, EA__FAIL_NONE);
        ASSERT_STR_EQ(o.text[i], "st");
    }
    stub_reset();
    ASSERT(up_run(u, EA__REQ_CHAT, UP_CHAT, 300, 50, false, &o, &e));
    ASSERT_EQ(o.end[0].finish, EA_FINISH_CANCELLED);
    usleep(400000);
    ASSERT_EQ(stub_requests(), 0);
    ASSERT(up_run(u, EA__REQ_CHAT, UP_CHAT, 0, -1, true, &o, &e));
    ASSERT_EQ(o.end[0].finish, EA_FINISH_CANCELLED);
    ea__upstream_openai_destroy(u);
    ea__cloud_destroy(c);
}

/* ---- through `edgeagent serve --config` ------------------------------------------------ */

struct http_resp {
    long status;
    struct ea_buf head, body;
};

static void http_resp_free(struct http_resp *r)
{
    ea__buf_release(&r->head);
    ea__buf_release(&r->body);
}

/* POSTs json to url (blocking). */
static void http_post(const char *url, const char *json, struct http_resp *r)
{
    ea__buf_init(&r->head, 1 << 20);
    ea__buf_init(&r->body, 1 << 24);
    CURL *e = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &r->head);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)WAIT_MS);
    ASSERT_EQ(curl_easy_perform(e), CURLE_OK);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
}

/* The server routes a cloud_only task to the openai upstream: the stub gets
 * the upstream's model and key, the client gets the stub's text with the
 * stream's usage (prompt tokens too, which a remote upstream learns only
 * at its end) and X-EdgeAgent-Source: cloud:cloud; streamed too. */
static void serve_config_cloud(void)
{
    stub();
    char model[4200], cfg[4200], cmd[9000];
    snprintf(model, sizeof model, "%s", ea_test_tmp_path("cloud-tiny.gguf"));
    snprintf(cfg, sizeof cfg, "%s", ea_test_tmp_path("cloud-config.yaml"));
    snprintf(cmd, sizeof cmd, "'%s' gen-model --preset tiny --type f16 --seed 1 -o '%s' >/dev/null",
             ea_test_binary(), model);
    ASSERT_EQ(system(cmd), 0);
    FILE *f = fopen(cfg, "w");
    ASSERT(f);
    fprintf(f,
            "upstreams:\n"
            "  - {name: local, kind: local}\n"
            "  - name: cloud\n"
            "    kind: openai\n"
            "    base_url: %s/v1\n"
            "    model: gpt-4o-mini\n"
            "    api_key_env: EA_TEST_CLOUD_KEY\n"
            "    timeouts: {connect_ms: 1000, first_token_ms: 5000, idle_ms: 5000, total_ms: 10000}\n"
            "tasks:\n"
            "  - {name: reasoning, requires_large_model: true, mode: cloud_only}\n",
            base);
    fclose(f);
    setenv("EA_TEST_CLOUD_KEY", KEY, 1);
    const char *argv[] = {ea_test_binary(), "serve", "-m", model, "--port", "0", "--config", cfg, NULL};
    struct ea_test_proc sp;
    ea_test_proc_start(&sp, argv, "cloud-serve.log");
    unsetenv("EA_TEST_CLOUD_KEY");
    const char *l = NULL;
    if (!ea_test_proc_wait(&sp, "ready:", 60000) || !(l = strstr(sp.seen, "http://127.0.0.1:"))) {
        char *log = ea_test_read_file(sp.log, NULL);
        ea_test_proc_stop(&sp, SIGTERM);
        FAIL("serve did not start: %s / %s", sp.seen, log ? log : "");
    }
    int port = atoi(l + strlen("http://127.0.0.1:"));
    stub_reset();
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", port);
    struct http_resp r;
    http_post(url, "{\"model\":\"task:reasoning\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}", &r);
    ASSERT_EQ(r.status, 200);
    ASSERT(strstr(r.head.data, "X-EdgeAgent-Source: cloud:cloud"));
    json_t *j = json_loadb(r.body.data, r.body.len, 0, NULL);
    ASSERT(j);
    json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(json_object_get(ch, "message"), "content")), "stub:5");
    ASSERT_STR_EQ(json_string_value(json_object_get(ch, "finish_reason")), "stop");
    json_t *u = json_object_get(j, "usage");
    ASSERT_EQ(json_integer_value(json_object_get(u, "prompt_tokens")), 2);
    ASSERT_EQ(json_integer_value(json_object_get(u, "completion_tokens")), 3);
    json_decref(j);
    http_resp_free(&r);

    http_post(url, "{\"model\":\"cloud\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hello!\"}]}",
              &r);
    ASSERT_EQ(r.status, 200);
    char text[256] = "";
    for (char *line = strstr(r.body.data, "data: {"); line; line = strstr(line + 1, "data: {")) {
        char *end = strchr(line, '\n');
        ASSERT(end);
        json_t *c = json_loadb(line + 6, (size_t)(end - line - 6), 0, NULL);
        ASSERT(c);
        json_t *d = json_object_get(json_array_get(json_object_get(c, "choices"), 0), "delta");
        if (json_is_string(json_object_get(d, "content")))
            strncat(text, json_string_value(json_object_get(d, "content")), sizeof text - strlen(text) - 1);
        json_decref(c);
    }
    ASSERT_STR_EQ(text, "stub:6");
    ASSERT(strstr(r.body.data, "data: [DONE]"));
    http_resp_free(&r);

    json_t *lg = stub_log();
    json_t *reqs = json_object_get(lg, "requests");
    ASSERT_EQ(json_array_size(reqs), 2);
    ASSERT_EQ(json_integer_value(json_object_get(lg, "connections")), 1); /* kept alive */
    json_t *rq = json_array_get(reqs, 0);
    ASSERT(json_is_true(json_object_get(rq, "auth")));
    ASSERT_STR_EQ(json_string_value(json_object_get(json_object_get(rq, "body"), "model")), "gpt-4o-mini");
    json_decref(lg);
    ASSERT_EQ(ea_test_proc_stop(&sp, SIGTERM), 0);
    char *log = ea_test_read_file(sp.log, NULL);
    ASSERT(!log || !strstr(log, KEY)); /* the key is never logged */
    free(log);
}

EA_TESTS(EA_TEST(stream_ok), EA_TEST(api_key), EA_TEST(http_errors), EA_TEST(reset_and_cut),
         EA_TEST(malformed), EA_TEST(error_event), EA_TEST(timeouts), EA_TEST(connect_refused),
         EA_TEST(connect_timeout), EA_TEST(delay_and_cancel), EA_TEST(keep_alive), EA_TEST(concurrent),
         EA_TEST(destroy_in_flight), EA_TEST(bad_requests), EA_TEST(completions), EA_TEST(stale_connection), EA_TEST(start_out_of_memory), EA_TEST(proxy_env),
         EA_TEST(tls_ca_file),
         EA_TEST(upstream_chat),
         EA_TEST(upstream_completions), EA_TEST(upstream_failures), EA_TEST(upstream_cancel),
         EA_TEST(serve_config_cloud))
