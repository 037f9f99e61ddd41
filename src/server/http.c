/* http.c - the HTTP helpers every server file uses: the clock, the log
 * (one line each, control bytes masked), ids and pseudo-random values,
 * the headers every response carries, queuing JSON answers and
 * OpenAI-shaped errors, and the endpoint table. It calls no other server
 * file (only metrics.c to count answers), so server.c, generate.c and
 * pull_api.c can all use it without calling each other.
 * Does not hold: routing and admission (server.c), generation (generate.c).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "server/server_int.h"

double ea__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

void ea__server_log(ea_server *s, const char *fmt, ...)
{
    FILE *f = s->p.log ? s->p.log : stderr;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* control bytes never reach the log (client-controlled paths, ids) */
    for (char *c = line; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7F)
            *c = '?';
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    pthread_mutex_lock(&s->log_mu);
    fprintf(f, "%s %s\n", ts, line);
    fflush(f);
    pthread_mutex_unlock(&s->log_mu);
}

void ea__server_log_content(ea_server *s, const char *id, const char *what, const char *text,
                            size_t n)
{
    struct ea_buf b;
    ea__buf_init(&b, n * EA__JSON_ESCAPE + 16);
    if (ea__buf_json_str(&b, text, n) == EA_OK)
        ea__server_log(s, "request %s %s: %s", id, what, b.data);
    ea__buf_release(&b);
}

static uint64_t splitmix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

uint64_t ea__server_rand(ea_server *s)
{
    return splitmix(s->id_salt ^ atomic_fetch_add(&s->next_id, 1));
}

void ea__server_new_id(ea_server *s, const char *prefix, char *out, size_t cap)
{
    snprintf(out, cap, "%s-%016" PRIx64, prefix, ea__server_rand(s));
}

/* ---- responses ---------------------------------------------------------------------- */

void ea__add_common_headers(const struct ea__req_ctx *c, struct MHD_Response *r)
{
    MHD_add_response_header(r, "X-Request-Id", c->id);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (c->cors_origin[0]) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", c->cors_origin);
        MHD_add_response_header(r, "Access-Control-Expose-Headers",
                                "X-Request-Id, Retry-After, Server-Timing, X-EdgeAgent-Unenforced");
        MHD_add_response_header(r, "Vary", "Origin");
    }
    if (c->unenforced[0])
        MHD_add_response_header(r, "X-EdgeAgent-Unenforced", c->unenforced);
    if (c->close_conn)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
}

int ea__respond(struct ea__req_ctx *c, struct MHD_Connection *conn, int status,
                 struct MHD_Response *r)
{
    if (!r)
        return MHD_NO;
    ea__add_common_headers(c, r);
    c->status = status;
    c->responded = true;
    ea__metrics_count(&c->srv->metrics, c->ep, status);
    int ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

int ea__respond_json_hdr(struct ea__req_ctx *c, struct MHD_Connection *conn, int status,
                         const char *json, size_t len, const char *name, const char *value)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)json, MHD_RESPMEM_MUST_COPY);
    if (r) {
        MHD_add_response_header(r, "Content-Type", "application/json");
        if (name)
            MHD_add_response_header(r, name, value);
    }
    return ea__respond(c, conn, status, r);
}

int ea__respond_json(struct ea__req_ctx *c, struct MHD_Connection *conn, int status,
                     const char *json, size_t len)
{
    return ea__respond_json_hdr(c, conn, status, json, len, NULL, NULL);
}

static ea_status json_opt_str(struct ea_buf *b, const char *s)
{
    if (!s || !*s)
        return ea__buf_puts(b, "null");
    return ea__buf_json_str(b, s, strlen(s));
}

ea_status ea__api_error_json(const struct ea__api_error *e, struct ea_buf *b)
{
    ea_status s = ea__buf_puts(b, "{\"error\":{\"message\":");
    if (!s)
        s = ea__buf_json_str(b, e->message, strlen(e->message));
    if (!s)
        s = ea__buf_puts(b, ",\"type\":");
    if (!s)
        s = json_opt_str(b, e->type);
    if (!s)
        s = ea__buf_puts(b, ",\"param\":");
    if (!s)
        s = json_opt_str(b, e->param);
    if (!s)
        s = ea__buf_puts(b, ",\"code\":");
    if (!s)
        s = json_opt_str(b, e->code);
    if (!s)
        s = ea__buf_puts(b, "}}");
    return s;
}

int ea__respond_error(struct ea__req_ctx *c, struct MHD_Connection *conn,
                      const struct ea__api_error *e)
{
    struct ea_buf b;
    ea__buf_init(&b, EA__ERROR_JSON_MAX);
    ea__api_error_json(e, &b);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_COPY);
    ea__buf_release(&b);
    if (r) {
        MHD_add_response_header(r, "Content-Type", "application/json");
        if (e->status == 429 || e->status == 503) {
            char ra[16];
            snprintf(ra, sizeof ra, "%u", e->retry_after_s ? e->retry_after_s : 1u);
            MHD_add_response_header(r, "Retry-After", ra);
        }
        if (e->status == 401)
            MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
        if (e->status == 405)
            MHD_add_response_header(r, "Allow",
                                    ea__endpoints[c->ep].method == EA__GET ? "GET, HEAD, OPTIONS"
                                                                          : "POST, OPTIONS");
    }
    return ea__respond(c, conn, e->status, r);
}

int ea__respond_errorf(struct ea__req_ctx *c, struct MHD_Connection *conn, int status,
                       const char *type, const char *code, const char *param, const char *fmt, ...)
{
    struct ea__api_error e = {.status = status, .type = type, .code = code};
    snprintf(e.param, sizeof e.param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    return ea__respond_error(c, conn, &e);
}

const struct ea__endpoint_info ea__endpoints[EA__EP_COUNT] = {
#define EA__EP_INFO(name, path, prefix, method, auth, model, json) \
    [EA__EP_##name] = {path, prefix, method, auth, model, json},
    EA__ENDPOINT_MAP(EA__EP_INFO)
#undef EA__EP_INFO
    [EA__EP_OTHER] = {"other", false, EA__OTHER_METHOD, false, false, false},
};
