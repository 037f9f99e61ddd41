/* server.c - the libmicrohttpd daemon: lifecycle, routing, authentication,
 * body collection with caps, OpenAI-shaped errors, and the small endpoints
 * (/health, /v1/models, /tokenize, /detokenize, /metrics, the chat page at /,
 * the dashboard at /dashboard).
 *
 * Threading mode: MHD_USE_POLL_INTERNAL_THREAD with a small thread pool
 * (--http-threads, default 2) and MHD_ALLOW_SUSPEND_RESUME. Why:
 *   - the work per request on the HTTP side is small (JSON, tokenizing the
 *     prompt, formatting chunks); the heavy work is on the engine thread, so
 *     a thread per connection would only add stacks and context switches;
 *   - 64 or 256 open connections (keep-alive clients, SSE streams that wait
 *     for tokens) cost a file descriptor each, not a thread; a waiting
 *     stream is suspended and takes no poll slot at all; poll rather than
 *     epoll because of libmicrohttpd 0.9.75's epoll batch stall (see
 *     ea_server_create);
 *   - a pool of 2 lets a long prompt's tokenization on one worker not delay
 *     every other client, on the 2-core machines we target;
 *   - suspend/resume is what lets the engine callback only enqueue: it never
 *     touches a socket, so a slow client cannot stall the engine thread.
 * Does not hold: generation (generate.c), request validation (request.c),
 * the response and log helpers (http.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "server/server_int.h"
#include "server/upstream.h"

#define PULL_STOP_WAIT_S 30 /* shutdown waits this long for cancelled pulls */
/* /v1/models lists one model (its id is at most 127 bytes); the metrics text
 * is a fixed set of series (endpoints x codes, histograms): both far below
 * these caps, which only a bug reaches (then a 500) */
#define EA__MODELS_JSON_MAX ((size_t)64 << 10)
#define EA__METRICS_TEXT_MAX ((size_t)4 << 20)
/* Access-Control-Request-Headers echoed in a preflight answer up to this length */
#define EA__CORS_HEADERS_MAX 1024

/* the chat page and the dashboard, embedded at build time from
 * web/index.html and web/dashboard.html (cmake/embed.cmake) */
extern const unsigned char ea__web_index_html[];
extern const size_t ea__web_index_html_len;
extern const unsigned char ea__web_dashboard_html[];
extern const size_t ea__web_dashboard_html_len;

void ea_server_params_default(struct ea_server_params *p)
{
    memset(p, 0, sizeof *p);
    p->host = "127.0.0.1";
    p->port = 8080;
    p->http_threads = 2;
    p->max_connections = 256;
    p->max_body_bytes = (size_t)4 << 20;
    p->max_header_bytes = (size_t)32 << 10;
    p->idle_timeout_s = 60;
    p->max_tokens = 4096;
    p->max_n = 8;
    p->max_inflight = 256;
    p->max_stream_pending = (size_t)1 << 20;
    p->header_timeout_s = 10;
    p->body_timeout_s = 60;
}

/* ---- small endpoints ----------------------------------------------------------------- */

static int respond_buf(struct ea__req_ctx *c, struct MHD_Connection *conn, int status,
                       struct ea_buf *b, ea_status s)
{
    int ret;
    if (s)
        ret = ea__respond_errorf(c, conn, 500, "server_error", NULL, NULL, "out of memory");
    else
        ret = ea__respond_json(c, conn, status, b->data ? b->data : "", b->len);
    ea__buf_release(b);
    return ret;
}

static ea_status model_object(struct ea_buf *b, ea_server *s, const struct ea__backend *bk)
{
    (void)s;
    const struct ea_server_backend *be = &bk->view;
    const struct ea_model_info *mi = ea_model_get_info(be->model);
    ea_status st = ea__buf_puts(b, "{\"id\":");
    if (!st)
        st = ea__buf_json_str(b, bk->id, strlen(bk->id));
    if (!st)
        st = ea__buf_printf(b,
                            ",\"object\":\"model\",\"created\":0,\"owned_by\":\"edgeagent\","
                            "\"meta\":{\"n_ctx\":%d,\"n_ctx_train\":%u,\"n_vocab\":%u,"
                            "\"n_params\":%" PRIu64 ",\"arch\":",
                            be->max_context, mi->n_ctx_train, mi->n_vocab, mi->n_params);
    if (!st)
        st = ea__buf_json_str(b, mi->arch, strlen(mi->arch));
    if (!st)
        st = ea__buf_puts(b, "}}");
    return st;
}

static int handle_models(struct ea__req_ctx *c, struct MHD_Connection *conn, const char *url,
                         const struct ea__backend *bk)
{
    ea_server *s = c->srv;
    struct ea_buf b;
    ea__buf_init(&b, EA__MODELS_JSON_MAX);
    const char *sub = url + strlen("/v1/models");
    if (*sub == '/' && sub[1]) {
        if (!strcmp(sub + 1, bk->id))
            return respond_buf(c, conn, 200, &b, model_object(&b, s, bk));
        if (ea__route_routable(s, sub + 1)) {
            ea_status st = ea__route_models_append(&b, s, sub + 1);
            return respond_buf(c, conn, 200, &b, st);
        }
        ea__buf_release(&b);
        return ea__respond_errorf(c, conn, 404, "invalid_request_error", "model_not_found", "model",
                                  "the model '%.100s' does not exist", sub + 1);
    }
    /* the local model first, then every name the router serves */
    ea_status st = ea__buf_puts(&b, "{\"object\":\"list\",\"data\":[");
    if (!st)
        st = model_object(&b, s, bk);
    if (!st)
        st = ea__route_models_append(&b, s, NULL);
    if (!st)
        st = ea__buf_puts(&b, "]}");
    return respond_buf(c, conn, 200, &b, st);
}

static int handle_tokenize(struct ea__req_ctx *c, struct MHD_Connection *conn,
                           const struct ea__backend *bk)
{
    json_error_t je;
    json_t *root = json_loadb(c->body.data ? c->body.data : "", c->body.len, 0, &je);
    if (!root)
        return ea__respond_errorf(c, conn, 400, "invalid_request_error", NULL, NULL,
                     "the request body is not valid JSON: %.200s", je.text);
    int ret;
    json_t *content = json_object_get(root, "content");
    json_t *add = json_object_get(root, "add_special");
    json_t *parse = json_object_get(root, "parse_special");
    json_t *pieces = json_object_get(root, "with_pieces");
    if (!json_is_object(root) || !json_is_string(content)) {
        ret = ea__respond_errorf(c, conn, 400, "invalid_request_error", NULL, "content",
                    "'content' must be a string");
        goto out;
    }
    if ((add && !json_is_boolean(add)) || (parse && !json_is_boolean(parse)) ||
        (pieces && !json_is_boolean(pieces))) {
        ret = ea__respond_errorf(c, conn, 400, "invalid_request_error", NULL,
                    add && !json_is_boolean(add)       ? "add_special"
                    : parse && !json_is_boolean(parse) ? "parse_special"
                                                       : "with_pieces",
                    "flags must be booleans");
        goto out;
    }
    unsigned flags = (json_is_true(add) ? EA_TOK_ADD_SPECIAL : 0) |
                     (!parse || json_is_true(parse) ? EA_TOK_PARSE_SPECIAL : 0);
    size_t len = json_string_length(content), n = 0;
    size_t cap = len + 4;
    int32_t *t = ea_malloc(sizeof *t * cap);
    struct ea_error err = {0};
    if (!t || ea_tokenize(bk->view.tok, json_string_value(content), len, flags, t, cap, &n, &err)) {
        ea_free(t);
        ret = ea__respond_errorf(c, conn, 500, "server_error", NULL, NULL, "tokenization failed");
        goto out;
    }
    struct ea_buf b;
    ea__buf_init(&b, EA__JSON_SLACK + n * (EA__TOKEN_JSON_FIXED +
                                           EA__JSON_ESCAPE * ea_detok_max_output(bk->view.tok)));
    ea_status st = ea__buf_puts(&b, "{\"tokens\":[");
    for (size_t i = 0; i < n && !st; i++) {
        if (json_is_true(pieces)) {
            const char *p = "";
            size_t pn = 0;
            if (ea_token_piece(bk->view.tok, t[i], true, &p, &pn))
                pn = 0;
            st = ea__buf_printf(&b, "%s{\"id\":%d,\"piece\":", i ? "," : "", t[i]);
            if (!st)
                st = ea__buf_json_str(&b, p, pn);
            if (!st)
                st = ea__buf_putc(&b, '}');
        } else {
            st = ea__buf_printf(&b, "%s%d", i ? "," : "", t[i]);
        }
    }
    if (!st)
        st = ea__buf_puts(&b, "]}");
    ea_free(t);
    ret = respond_buf(c, conn, 200, &b, st);
out:
    json_decref(root);
    return ret;
}

/* POST /apply-template: a chat request's messages (and tools) rendered with
 * the model's chat template, as the model will see them ({"prompt": "..."}). */
static int handle_apply_template(struct ea__req_ctx *c, struct MHD_Connection *conn,
                                 const struct ea__backend *bk)
{
    ea_server *s = c->srv;
    struct ea__req_limits lim = {s->p.max_tokens, s->p.max_n, (int32_t)ea_tokenizer_n_vocab(bk->view.tok)};
    struct ea__gen_request r;
    struct ea__api_error e = {0};
    if (!ea__gen_request_parse(EA__REQ_CHAT, c->body.data ? c->body.data : "", c->body.len, &lim,
                               &r, &e))
        return ea__respond_errorf(c, conn, e.status, e.type, e.code, e.param, "%s", e.message);
    struct ea_chat_prompt cp;
    struct ea_error err = {0};
    ea_status st = ea__chat_prompt_request(bk->chat, bk->renders_tools, &r, s->p.max_body_bytes * 2, 0, &cp, &err);
    const char *text = cp.text;
    size_t len = cp.len;
    ea__gen_request_release(&r);
    if (st == EA_EINVAL)
        return ea__respond_errorf(c, conn, 400, "invalid_request_error", NULL, "messages", "%s", err.msg);
    if (st)
        return ea__respond_errorf(c, conn, st == EA_ETOOBIG ? 400 : 500,
                     st == EA_ETOOBIG ? "invalid_request_error" : "server_error", NULL, NULL, "%s",
                     err.msg);
    struct ea_buf b;
    ea__buf_init(&b, EA__JSON_SLACK + len * EA__JSON_ESCAPE);
    ea_status bs = ea__buf_puts(&b, "{\"prompt\":");
    if (!bs)
        bs = ea__buf_json_str(&b, text, len);
    if (!bs)
        bs = ea__buf_putc(&b, '}');
    ea_chat_prompt_release(&cp);
    return respond_buf(c, conn, 200, &b, bs);
}

static int handle_detokenize(struct ea__req_ctx *c, struct MHD_Connection *conn,
                             const struct ea__backend *bk)
{
    json_error_t je;
    json_t *root = json_loadb(c->body.data ? c->body.data : "", c->body.len, 0, &je);
    if (!root)
        return ea__respond_errorf(c, conn, 400, "invalid_request_error", NULL, NULL,
                     "the request body is not valid JSON: %.200s", je.text);
    int ret;
    json_t *tokens = json_object_get(root, "tokens");
    if (!json_is_object(root) || !json_is_array(tokens)) {
        ret = ea__respond_errorf(c, conn, 400, "invalid_request_error", NULL, "tokens",
                    "'tokens' must be an array of token ids");
        goto out;
    }
    size_t n = json_array_size(tokens);
    int32_t *t = ea_malloc(sizeof *t * (n + 1));
    if (!t) {
        ret = ea__respond_errorf(c, conn, 500, "server_error", NULL, NULL, "out of memory");
        goto out;
    }
    uint32_t nv = ea_tokenizer_n_vocab(bk->view.tok);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(tokens, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= nv) {
            ea_free(t);
            ret = ea__respond_errorf(c, conn, 400, "invalid_request_error", NULL, "tokens",
                        "tokens[%zu] is not a token id of this model", i);
            goto out;
        }
        t[i] = (int32_t)json_integer_value(v);
    }
    size_t need = 0;
    struct ea_error err = {0};
    ea_detokenize(bk->view.tok, t, n, 0, NULL, 0, &need, &err);
    char *text = ea_malloc(need + 1);
    size_t got = 0;
    if (!text || ea_detokenize(bk->view.tok, t, n, 0, text, need + 1, &got, &err)) {
        ea_free(t);
        ea_free(text);
        ret = ea__respond_errorf(c, conn, 500, "server_error", NULL, NULL, "detokenization failed");
        goto out;
    }
    struct ea_buf b;
    ea__buf_init(&b, EA__JSON_SLACK + got * EA__JSON_ESCAPE);
    ea_status st = ea__buf_puts(&b, "{\"content\":");
    if (!st)
        st = ea__buf_json_str(&b, text, got);
    if (!st)
        st = ea__buf_putc(&b, '}');
    ea_free(t);
    ea_free(text);
    ret = respond_buf(c, conn, 200, &b, st);
out:
    json_decref(root);
    return ret;
}

static int handle_metrics(struct ea__req_ctx *c, struct MHD_Connection *conn,
                          const struct ea__backend *bk)
{
    struct ea_buf b;
    ea__buf_init(&b, EA__METRICS_TEXT_MAX);
    struct ea__guard_stats gs;
    ea__guard_stats(c->srv->guard, &gs);
    ea_status st = ea__metrics_render(&c->srv->metrics, bk ? bk->view.engine : NULL,
                                      ea_server_inflight(c->srv), bk != NULL, &gs, &b);
    if (!st) { /* models in memory: the served one and old ones still finishing requests */
        pthread_mutex_lock(&c->srv->be_mu);
        int nb = c->srv->n_backends;
        pthread_mutex_unlock(&c->srv->be_mu);
        st = ea__buf_printf(&b,
                            "# HELP edgeagent_models_loaded Models in memory (the served one, and "
                            "replaced ones until their last request ends).\n"
                            "# TYPE edgeagent_models_loaded gauge\nedgeagent_models_loaded %d\n",
                            nb);
    }
    if (!st)
        st = ea__route_metrics(c->srv, &b);
    if (!st)
        st = ea__ledger_metrics(c->srv, &b);
    if (st) {
        ea__buf_release(&b);
        return ea__respond_errorf(c, conn, 500, "server_error", NULL, NULL, "metrics too large");
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_COPY);
    ea__buf_release(&b);
    if (r)
        MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    return ea__respond(c, conn, 200, r);
}

static int handle_page(struct ea__req_ctx *c, struct MHD_Connection *conn, const unsigned char *page,
                       size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)page, MHD_RESPMEM_PERSISTENT);
    if (r) {
        MHD_add_response_header(r, "Content-Type", "text/html; charset=utf-8");
        /* everything is inline and same-origin: nothing may load from elsewhere */
        MHD_add_response_header(r, "Content-Security-Policy",
                                "default-src 'none'; script-src 'unsafe-inline'; "
                                "style-src 'unsafe-inline'; connect-src 'self'; img-src data:; "
                                "base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
    }
    return ea__respond(c, conn, 200, r);
}

static int handle_health(struct ea__req_ctx *c, struct MHD_Connection *conn,
                         const struct ea__backend *bk)
{
    if (atomic_load(&c->srv->draining)) {
        static const char b[] = "{\"status\":\"shutting_down\"}";
        return ea__respond_json(c, conn, 503, b, sizeof b - 1);
    }
    if (!bk) {
        static const char b[] = "{\"status\":\"loading\"}";
        return ea__respond_json(c, conn, 503, b, sizeof b - 1);
    }
    static const char b[] = "{\"status\":\"ok\"}";
    return ea__respond_json(c, conn, 200, b, sizeof b - 1);
}

/* ---- routing ------------------------------------------------------------------------- */

static enum ea__endpoint find_route(const char *url)
{
    for (int i = 0; i < EA__EP_OTHER; i++) {
        const struct ea__endpoint_info *r = &ea__endpoints[i];
        size_t n = strlen(r->path);
        if (!strcmp(url, r->path) || (r->prefix && !strncmp(url, r->path, n) && url[n] == '/'))
            return (enum ea__endpoint)i;
    }
    return EA__EP_OTHER;
}

/* Compares in time that depends only on the key's length, never on where the
 * first difference is. */
static bool key_matches(const char *given, size_t n, const char *key, size_t key_len)
{
    volatile unsigned char d = (unsigned char)(n != key_len);
    for (size_t i = 0; i < key_len; i++)
        d |= (unsigned char)(key[i] ^ (i < n ? given[i] : 0));
    return d == 0;
}

static bool authorized(ea_server *s, struct MHD_Connection *conn)
{
    if (!s->api_key)
        return true;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    while (*h == ' ')
        h++;
    size_t n = strlen(h);
    while (n && h[n - 1] == ' ')
        n--;
    return key_matches(h, n, s->api_key, s->api_key_len);
}

/* ---- what a request must show before it is handled ------------------------------ */

/* Whether the comma-separated list holds item (n bytes), ASCII case-insensitive. */
static bool list_has(const char *list, const char *item, size_t n)
{
    for (const char *p = list; p && *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t len = strcspn(p, ",");
        size_t e = len;
        while (e && p[e - 1] == ' ')
            e--;
        if ((e == n && !strncasecmp(p, item, n)) || (e == 1 && *p == '*'))
            return true;
        p += len;
    }
    return false;
}

/* The host part of a Host header value (brackets of an IPv6 literal and the
 * port removed) into out; false when it is not of that form. */
static bool host_name(const char *h, char *out, size_t cap)
{
    size_t n;
    if (*h == '[') {
        const char *e = strchr(h, ']');
        if (!e || (e[1] && e[1] != ':'))
            return false;
        n = (size_t)(e - h - 1);
        h++;
    } else {
        n = strcspn(h, ":");
        if (h[n] && strchr(h + n + 1, ':'))
            return false; /* a bare IPv6 address is not a Host */
    }
    if (n == 0 || n >= cap)
        return false;
    memcpy(out, h, n);
    out[n] = '\0';
    return true;
}

/* DNS rebinding defence: a page on another site can make a browser send
 * requests here under its own host name; a name we never answer to gives it
 * away. Accepted: localhost (and *.localhost, which resolvers keep on the
 * loopback), loopback literals, the bound address and --allowed-hosts. */
static bool host_allowed(const ea_server *s, const char *h)
{
    if (s->any_host)
        return true;
    char name[256];
    if (!host_name(h, name, sizeof name))
        return false;
    size_t n = strlen(name);
    if (!strcasecmp(name, "localhost") || (n > 10 && !strcasecmp(name + n - 10, ".localhost")))
        return true;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, name, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127)
        return true;
    if (inet_pton(AF_INET6, name, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6))
        return true;
    if (!strcasecmp(name, s->host))
        return true;
    return list_has(s->allowed_hosts, name, n);
}

/* Cross-site request defence. A browser sends Origin on every cross-site
 * request (and on same-site POSTs); without it the caller is not a browser
 * page. Same-origin (the Origin's host:port is the Host, already checked) and
 * listed origins pass; a listed one is echoed in the CORS headers. */
static bool origin_allowed(const ea_server *s, struct ea__req_ctx *c, const char *origin,
                           const char *host)
{
    if (!origin)
        return true;
    const char *auth = strstr(origin, "://");
    if (auth && host && !strcasecmp(auth + 3, host))
        return true;
    if (list_has(s->cors_origins, origin, strlen(origin)) && strcmp(origin, "null") != 0) {
        snprintf(c->cors_origin, sizeof c->cors_origin, "%s", origin);
        return true;
    }
    return false;
}

struct header_count {
    const char *name;
    int n;
    bool differ;
    const char *first;
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind;
    struct header_count *h = cls;
    if (key && !strcasecmp(key, h->name)) {
        if (h->n++ == 0)
            h->first = value;
        else if (!value || !h->first || strcmp(value, h->first) != 0)
            h->differ = true;
    }
    return MHD_YES;
}

static bool is_json_type(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strlen("application/json");
    if (strncasecmp(ct, "application/json", n) != 0)
        return false;
    ct += n;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

/* The checks every request passes before its endpoint sees it, in this
 * order: well-formed framing (Host on HTTP/1.1, one Content-Length, not
 * both it and Transfer-Encoding: smuggling ingredients behind a proxy), the
 * per-IP connection limit, Host, Origin (and CORS preflights), the route and
 * method, the API key, a JSON Content-Type on POST bodies (a cross-site
 * "simple" POST with text/plain needs no preflight), the server's state and
 * the body size. Returns -1 to go on, or what to return to libmicrohttpd. */
static int admit(struct ea__req_ctx *c, struct MHD_Connection *conn, const char *url,
                 const char *method, const char *version)
{
    ea_server *s = c->srv;
    bool ready = atomic_load(&s->ready);
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    struct header_count hosts = {MHD_HTTP_HEADER_HOST, 0, false, NULL};
    struct header_count lens = {MHD_HTTP_HEADER_CONTENT_LENGTH, 0, false, NULL};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_header, &hosts);
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_header, &lens);
    const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if ((!host && !strcmp(version, MHD_HTTP_VERSION_1_1)) || hosts.n > 1) {
        c->close_conn = true;
        return ea__respond_errorf(c, conn, 400, "invalid_request_error", "bad_request", NULL,
                     "an HTTP/1.1 request needs exactly one Host header");
    }
    if (lens.differ || (lens.n && te)) {
        c->close_conn = true;
        return ea__respond_errorf(c, conn, 400, "invalid_request_error", "bad_request", NULL,
                     lens.differ ? "conflicting Content-Length headers"
                                 : "Content-Length together with Transfer-Encoding");
    }
    if (ea__guard_over_ip_limit(conn)) {
        c->close_conn = true;
        ea__guard_count_ip_refused(s->guard);
        return ea__respond_errorf(c, conn, 429, "rate_limit_error", "too_many_connections", NULL,
                     "too many connections from your address (at most %u)",
                     (unsigned)s->p.max_conns_per_ip);
    }
    if (host && !host_allowed(s, host))
        return ea__respond_errorf(c, conn, 403, "invalid_request_error", "host_not_allowed", NULL,
                     "the Host '%.100s' is not served here (start the server with "
                     "--allowed-hosts to add names)",
                     host);
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    if (!origin_allowed(s, c, origin, host))
        return ea__respond_errorf(c, conn, 403, "invalid_request_error", "origin_not_allowed", NULL,
                     "cross-site requests from '%.100s' are not allowed (start the server with "
                     "--cors-origins to allow one)",
                     origin);
    const struct ea__endpoint_info *r = &ea__endpoints[c->ep];
    if (c->ep == EA__EP_OTHER)
        return ea__respond_errorf(c, conn, 404, "invalid_request_error", "not_found", NULL,
                     "Invalid URL (%s %.200s)", method, url);
    if (c->method == EA__OPTIONS) {
        /* a CORS preflight (or a plain OPTIONS): what the route takes */
        struct MHD_Response *pr = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (pr) {
            const char *allow = r->method == EA__GET ? "GET, HEAD, OPTIONS" : "POST, OPTIONS";
            MHD_add_response_header(pr, "Allow", allow);
            if (c->cors_origin[0]) {
                /* the headers the page asks for are echoed when they are plain
                 * header names (the openai SDK sends its own x-stainless-*) */
                const char *want = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                               "Access-Control-Request-Headers");
                bool plain = want && strlen(want) < EA__CORS_HEADERS_MAX &&
                             strspn(want, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                          "0123456789-_, ") == strlen(want);
                MHD_add_response_header(pr, "Access-Control-Allow-Methods", allow);
                MHD_add_response_header(pr, "Access-Control-Allow-Headers",
                                        plain ? want
                                              : "Authorization, Content-Type, X-Request-Id, X-EdgeAgent-Task");
                MHD_add_response_header(pr, "Access-Control-Max-Age", "600");
            }
        }
        return ea__respond(c, conn, 204, pr);
    }
    if (c->method != r->method)
        return ea__respond_errorf(c, conn, 405, "invalid_request_error", "method_not_allowed", NULL,
                     "%s is not allowed on %.200s; use %s", method, url,
                     r->method == EA__GET ? "GET" : "POST");
    if (r->auth && !authorized(s, conn))
        return ea__respond_errorf(c, conn, 401, "invalid_request_error", "invalid_api_key", NULL,
                     "missing or incorrect API key (send 'Authorization: Bearer KEY')");
    if (r->json_body &&
        !is_json_type(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE)))
        return ea__respond_errorf(c, conn, 415, "invalid_request_error", "unsupported_media_type", NULL,
                     "the request body must be sent as 'Content-Type: application/json'");
    if (r->needs_model && atomic_load(&s->draining))
        return ea__respond_errorf(c, conn, 503, "server_error", "server_shutting_down", NULL,
                     "the server is shutting down");
    if (r->needs_model && !ready)
        return ea__respond_errorf(c, conn, 503, "server_error", "model_loading", NULL,
                     "the model is still loading; retry shortly");
    if (lens.n) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(lens.first, &end, 10);
        /* a body up to EA__BODY_DRAIN_FACTOR x the cap is read and dropped so
         * that the client, which may be sending it without waiting, reads the
         * 413 instead of a reset; a larger one is answered at once and the
         * connection closed (clients sending Expect: 100-continue get the 413
         * before sending anything) */
        if (*end || end == lens.first || errno || v > s->p.max_body_bytes * EA__BODY_DRAIN_FACTOR) {
            c->close_conn = true;
            return ea__respond_errorf(c, conn, 413, "invalid_request_error", "request_too_large", NULL,
                         "the request body is larger than %zu bytes", s->p.max_body_bytes);
        }
        if (v > s->p.max_body_bytes)
            c->too_big = true;
    }
    return -1;
}

static void client_address(struct MHD_Connection *conn, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)cap);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)cap);
}

/* The endpoints that read the model, each on the backend served now (held
 * for the call: a switch meanwhile does not unload it under them). */
static int with_backend(struct ea__req_ctx *c, struct MHD_Connection *conn, const char *url)
{
    struct ea__backend *bk = ea__backend_acquire(c->srv);
    int ret;
    if (!bk && c->ep != EA__EP_HEALTH && c->ep != EA__EP_METRICS)
        ret = ea__respond_errorf(c, conn, 503, "server_error", "model_loading", NULL,
                                 "the model is still loading; retry shortly");
    else if (c->ep == EA__EP_MODELS)
        ret = handle_models(c, conn, url, bk);
    else if (c->ep == EA__EP_TOKENIZE)
        ret = handle_tokenize(c, conn, bk);
    else if (c->ep == EA__EP_DETOKENIZE)
        ret = handle_detokenize(c, conn, bk);
    else if (c->ep == EA__EP_APPLY_TEMPLATE)
        ret = handle_apply_template(c, conn, bk);
    else if (c->ep == EA__EP_HEALTH)
        ret = handle_health(c, conn, bk);
    else
        ret = handle_metrics(c, conn, bk);
    ea__backend_release(c->srv, bk);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    ea_server *s = cls;
    struct ea__req_ctx *c = *con_cls;
    if (!c) {
        c = ea_calloc(1, sizeof *c);
        if (!c)
            return MHD_NO;
        *con_cls = c;
        c->srv = s;
        c->t_start = ea__now_ms();
        c->method = !strcmp(method, "GET") || !strcmp(method, "HEAD") ? EA__GET
                    : !strcmp(method, "POST")                         ? EA__POST
                    : !strcmp(method, "OPTIONS")                      ? EA__OPTIONS
                                                                      : EA__OTHER_METHOD;
        c->ep = find_route(url);
        ea__server_new_id(s, c->ep == EA__EP_CHAT ? "chatcmpl" : c->ep == EA__EP_COMPLETIONS ? "cmpl" : "req",
                          c->id, sizeof c->id);
        client_address(conn, c->client, sizeof c->client);
        ea__buf_init(&c->body, s->p.max_body_bytes);
        ea__guard_head_done(s->guard, conn);
        int ret = admit(c, conn, url, method, version);
        return ret < 0 ? MHD_YES : (enum MHD_Result)ret;
    }
    if (c->responded)
        return MHD_YES; /* e.g. the rest of a body after an early answer */
    if (*upload_data_size) {
        if (!c->too_big && ea__buf_append(&c->body, upload_data, *upload_data_size))
            c->too_big = true;
        if (c->too_big) {
            /* chunked bodies have no Content-Length: read and drop up to
             * EA__BODY_DRAIN_FACTOR x the cap to answer 413 properly, then hang up */
            c->dropped += *upload_data_size;
            if (c->dropped > s->p.max_body_bytes * EA__BODY_DRAIN_FACTOR)
                return MHD_NO;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (c->gen)
        return ea__handle_generate_resumed(c, conn);
    if (c->load)
        return ea__handle_load_resumed(c, conn);
    ea__guard_body_done(s->guard, conn);
    if (c->too_big) {
        c->close_conn = true;
        return ea__respond_errorf(c, conn, 413, "invalid_request_error", "request_too_large", NULL,
                     "the request body is larger than %zu bytes", s->p.max_body_bytes);
    }
    switch (c->ep) {
    case EA__EP_CHAT:
    case EA__EP_COMPLETIONS:
        return ea__handle_generate(c, conn);
    case EA__EP_MODELS:
    case EA__EP_TOKENIZE:
    case EA__EP_DETOKENIZE:
    case EA__EP_APPLY_TEMPLATE:
    case EA__EP_HEALTH:
    case EA__EP_METRICS:
        return with_backend(c, conn, url);
    case EA__EP_LOAD:
        return ea__handle_load(c, conn);
    case EA__EP_PAGE:
    case EA__EP_PAGE_INDEX:
        return handle_page(c, conn, ea__web_index_html, ea__web_index_html_len);
    case EA__EP_DASHBOARD:
        return handle_page(c, conn, ea__web_dashboard_html, ea__web_dashboard_html_len);
    case EA__EP_PULL:
        return ea__handle_pull(c, conn);
    case EA__EP_STATS:
        return ea__handle_stats(c, conn);
    case EA__EP_SERIES:
        return ea__handle_series(c, conn);
    case EA__EP_LEDGER:
        return ea__handle_ledger(c, conn);
    case EA__EP_AUDIT:
        return ea__handle_audit(c, conn);
    case EA__EP_UPSTREAMS: {
        struct ea_buf b;
        ea__buf_init(&b, EA__MODELS_JSON_MAX);
        return respond_buf(c, conn, 200, &b, ea__route_upstreams_json(c->srv, &b));
    }
    default:
        return ea__respond_errorf(c, conn, 404, "invalid_request_error", "not_found", NULL, "Invalid URL");
    }
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    ea_server *s = cls;
    ea__guard_request_done(s->guard, conn);
    struct ea__req_ctx *c = *con_cls;
    if (!c)
        return;
    *con_cls = NULL;
    int direct = c->gen ? ea__gen_direct_status(c->gen) : 0;
    bool ok = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK || direct;
    if (c->ep != EA__EP_HEALTH && c->ep != EA__EP_METRICS)
        ea__server_log(s, "%s %s %s %d %.1fms%s", c->client[0] ? c->client : "-", c->id,
                       ea__endpoints[c->ep].path, direct ? direct : c->status,
                       ea__now_ms() - c->t_start,
                       direct ? " (half-closed client, answered)" : ok ? "" : " (client gone)");
    if (c->gen)
        ea__gen_http_done(c->gen, ok);
    ea__load_job_free(c->load);
    ea__buf_release(&c->body);
    ea_free(c);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    ea__server_log(cls, "libmicrohttpd: %s", msg);
}

/* ---- lifecycle ----------------------------------------------------------------------- */

static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return true;
        if (IN6_IS_ADDR_V4MAPPED(a))
            return a->s6_addr[12] == 127;
    }
    return false;
}

ea_status ea_server_create(const struct ea_server_params *p, ea_server **out,
                           struct ea_error *err)
{
    *out = NULL;
    struct ea_server_params d;
    ea_server_params_default(&d);
    ea_server *s = ea_calloc(1, sizeof *s);
    if (!s)
        return ea_error_set(err, EA_ENOMEM, "server: out of memory");
    s->p = p ? *p : d;
#define DEF(f)         \
    if (!s->p.f)       \
    s->p.f = d.f
    DEF(host);
    DEF(http_threads);
    DEF(max_connections);
    DEF(max_body_bytes);
    DEF(max_header_bytes);
    DEF(idle_timeout_s);
    DEF(max_tokens);
    DEF(max_n);
    DEF(max_inflight);
    DEF(max_stream_pending);
#undef DEF
    if (s->p.max_n > 64)
        s->p.max_n = 64;
    if (s->p.http_threads > 64)
        s->p.http_threads = 64;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_mutex_init(&s->log_mu, NULL);
    pthread_mutex_init(&s->be_mu, NULL);
    pthread_cond_init(&s->be_cv, NULL);
    s->id_salt = (uint64_t)time(NULL) * 6364136223846793005ull ^ (uint64_t)getpid() ^
                 (uint64_t)(uintptr_t)s;
    snprintf(s->host, sizeof s->host, "%s", s->p.host);
    s->p.host = s->host;
    ea_status st = EA_OK;
    if (s->p.api_key) {
        /* an empty key would read as "no key" further down while the
         * operator believes one is required */
        if (!*s->p.api_key || strspn(s->p.api_key, " \t\r\n") == strlen(s->p.api_key)) {
            st = ea_error_set(err, EA_EINVAL, "server: the API key is empty or only white space");
            goto fail;
        }
        if (strpbrk(s->p.api_key, " \t\r\n")) {
            st = ea_error_set(err, EA_EINVAL,
                              "server: the API key contains white space (clients send it in a header)");
            goto fail;
        }
        s->api_key = ea_strdup(s->p.api_key);
        s->api_key_len = strlen(s->p.api_key);
        if (!s->api_key) {
            st = ea_error_set(err, EA_ENOMEM, "server: out of memory");
            goto fail;
        }
    }
    s->p.api_key = NULL; /* only the copy is kept */
    if ((s->p.models_dir && !(s->models_dir = ea_strdup(s->p.models_dir))) ||
        (s->p.hf_token && *s->p.hf_token && !(s->hf_token = ea_strdup(s->p.hf_token))) ||
        (s->p.hf_endpoint && *s->p.hf_endpoint && !(s->hf_endpoint = ea_strdup(s->p.hf_endpoint)))) {
        st = ea_error_set(err, EA_ENOMEM, "server: out of memory");
        goto fail;
    }
    s->p.models_dir = s->p.hf_token = s->p.hf_endpoint = NULL;
    if ((s->p.allowed_hosts && !(s->allowed_hosts = ea_strdup(s->p.allowed_hosts))) ||
        (s->p.cors_origins && !(s->cors_origins = ea_strdup(s->p.cors_origins)))) {
        st = ea_error_set(err, EA_ENOMEM, "server: out of memory");
        goto fail;
    }
    s->p.allowed_hosts = s->allowed_hosts;
    s->p.cors_origins = s->cors_origins;
    if ((st = ea__route_setup(s, err)))
        goto fail;
    if (ea__audit_create(&s->audit)) {
        st = ea_error_set(err, EA_ENOMEM, "server: out of memory");
        goto fail;
    }
    s->p.upstream_keys = NULL; /* the remote upstreams keep their own copies */
    if (!s->p.max_conns_per_ip)
        s->p.max_conns_per_ip = s->p.max_connections / 4 ? s->p.max_connections / 4 : 1;
    if (!s->p.header_timeout_s)
        s->p.header_timeout_s = d.header_timeout_s;
    if (!s->p.body_timeout_s)
        s->p.body_timeout_s = d.body_timeout_s;

    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)s->p.port);
    int gai = getaddrinfo(s->host, port, &hints, &ai);
    if (gai != 0 || !ai) {
        st = ea_error_set(err, EA_EINVAL, "server: cannot resolve host '%s': %s", s->host,
                          gai_strerror(gai));
        goto fail;
    }
    s->any_host = list_has(s->allowed_hosts, "*", 1) || (!is_loopback(ai->ai_addr) && !s->allowed_hosts);
    if (!is_loopback(ai->ai_addr) && !s->api_key && !s->p.insecure_no_auth) {
        freeaddrinfo(ai);
        st = ea_error_set(err, EA_EAUTH,
                          "server: binding %s (not a loopback address) requires an API key "
                          "(--api-key, EDGEAGENT_API_KEY or --api-key-file), or "
                          "--insecure-no-auth to accept anyone",
                          s->host);
        goto fail;
    }
    struct ea__guard_params gp = {
        .header_timeout_ms = s->p.header_timeout_s * 1000u,
        .body_timeout_ms = s->p.body_timeout_s * 1000u,
        .idle_timeout_ms = s->p.idle_timeout_s * 1000u,
        .max_connections = s->p.max_connections,
        .reserve = s->p.max_connections / EA__GUARD_RESERVE_DIV ? s->p.max_connections / EA__GUARD_RESERVE_DIV : 1,
        .per_ip = s->p.max_conns_per_ip,
        .limit_loopback = s->p.limit_loopback,
    };
    st = ea__guard_create(&gp, &s->guard, err);
    if (st) {
        freeaddrinfo(ai);
        goto fail;
    }
    /* poll(2), not epoll: libmicrohttpd 0.9.75's epoll loop, after a wait that
     * returns exactly its 128-event batch, waits again with the full timeout
     * while the 128 ready connections sit unprocessed; a burst of 128+
     * requests on one thread then went unanswered until the idle timeout.
     * poll has no batch; with --max-connections in the hundreds per thread
     * its O(n) scan costs microseconds. */
    unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
        MHD_OPTION_NOTIFY_CONNECTION, ea__guard_notify, s->guard,
        MHD_OPTION_URI_LOG_CALLBACK, ea__guard_uri_log, s->guard,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->p.http_threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)s->p.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)s->p.idle_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)s->p.max_header_bytes, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 256u,
        MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->daemon) {
        st = ea_error_set(err, EA_EIO, "server: cannot listen on %s:%u (in use, or not permitted)",
                          s->host, (unsigned)s->p.port);
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->p.port;
    *out = s;
    return EA_OK;
fail:
    ea__audit_destroy(s->audit);
    ea__route_teardown(s);
    ea__guard_destroy(s->guard);
    ea_free(s->api_key);
    ea_free(s->models_dir);
    ea_free(s->hf_token);
    ea_free(s->hf_endpoint);
    ea_free(s->allowed_hosts);
    ea_free(s->cors_origins);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->log_mu);
    pthread_mutex_destroy(&s->be_mu);
    pthread_cond_destroy(&s->be_cv);
    ea_free(s);
    return st;
}

uint16_t ea_server_port(const ea_server *s) { return s->port; }

ea_status ea_server_set_backend(ea_server *s, const struct ea_server_backend *b,
                                struct ea_error *err)
{
    if (!b || !b->model || !b->tok || !b->engine || b->max_context < 2)
        return ea_error_set(err, EA_EINVAL, "server: the backend needs a model, tokenizer and engine");
    if (atomic_load(&s->ready))
        return ea_error_set(err, EA_ESTATE, "server: the backend is already set");
    ea_status ts = s->upstream ? EA_OK : ea__upstream_local_create(s, &s->upstream, err);
    if (ts)
        return ts;
    ea__route_backend_ready(s);
    ts = ea__backend_set_first(s, b, err);
    if (ts)
        return ts; /* the upstream answers 503 without a backend (a retry reuses it) */
    return EA_OK;
}

int ea_server_inflight(const ea_server *s)
{
    ea_server *m = (ea_server *)s; /* the mutex, not the data, changes */
    pthread_mutex_lock(&m->mu);
    int n = m->n_gens;
    pthread_mutex_unlock(&m->mu);
    return n;
}

/* After the grace period: how long cancelled generations get to report their
 * end before the daemon is stopped under them (a stalled client's stream
 * waits for its socket until then), and the same when told to stop at once. */
#define EA__CANCEL_WAIT_MS 5000
#define EA__CUT_WAIT_MS 250

/* Waits until no generation is alive or ms pass; true when none is. */
static bool wait_gens(ea_server *s, double ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long ns = ts.tv_nsec + (long long)(ms * 1e6);
    ts.tv_sec += (time_t)(ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    pthread_mutex_lock(&s->mu);
    while (s->n_gens > 0 && !atomic_load(&s->cut_grace))
        if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) != 0)
            break;
    bool none = s->n_gens == 0;
    pthread_mutex_unlock(&s->mu);
    return none;
}

/* Cancels running pulls and waits for their threads to finish (a pull
 * notices within a second; registering a checked file can take longer). */
static void wait_pulls(ea_server *s)
{
    ea__pulls_cancel_all(s);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += PULL_STOP_WAIT_S;
    pthread_mutex_lock(&s->mu);
    while (s->n_pulls > 0)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) != 0)
            break;
    pthread_mutex_unlock(&s->mu);
}

void ea_server_shutdown(ea_server *s, unsigned grace_ms)
{
    if (!s || s->shut)
        return;
    s->shut = true;
    atomic_store(&s->draining, true);
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    int n = ea_server_inflight(s);
    if (n)
        ea__server_log(s, "shutdown: waiting up to %u ms for %d request(s)", grace_ms, n);
    if (!wait_gens(s, grace_ms)) {
        /* the wait below is for the cancellations */
        bool cut = atomic_exchange(&s->cut_grace, false);
        ea__server_log(s, "shutdown: %s; cancelling %d request(s)",
                       cut ? "told to stop now" : "grace period over", ea_server_inflight(s));
        ea__gens_cancel_all(s);
        /* cancelled streams end at the next engine step; stalled clients are
         * cut off by MHD_stop_daemon in ea_server_destroy. Told to stop now,
         * the wait is only for the next engine step. */
        wait_gens(s, cut ? EA__CUT_WAIT_MS : EA__CANCEL_WAIT_MS);
    }
    wait_pulls(s);
    ea__backends_shutdown(s); /* a running load, and old models draining */
}

void ea_server_cut_grace(ea_server *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->cut_grace, true);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void ea_server_destroy(ea_server *s)
{
    if (!s)
        return;
    ea_server_shutdown(s, 0);
    MHD_stop_daemon(s->daemon);
    /* every HTTP reference is gone now; engine references end with DONE */
    if (!wait_gens(s, 30000)) {
        ea__server_log(s, "shutdown: %d generation(s) never ended; leaking them",
                       ea_server_inflight(s));
        return;
    }
    pthread_mutex_lock(&s->mu);
    int pulls = s->n_pulls;
    pthread_mutex_unlock(&s->mu);
    if (pulls) {
        ea__server_log(s, "shutdown: %d pull(s) never ended; leaking the server", pulls);
        return;
    }
    ea__backends_shutdown(s);
    pthread_mutex_lock(&s->be_mu);
    int loads = s->n_load_threads;
    pthread_mutex_unlock(&s->be_mu);
    if (loads) {
        ea__server_log(s, "shutdown: %d model load(s) never ended; leaking the server", loads);
        return;
    }
    ea__guard_destroy(s->guard);
    ea_free(s->api_key);
    ea_free(s->allowed_hosts);
    ea_free(s->cors_origins);
    ea_free(s->models_dir);
    ea_free(s->hf_token);
    ea_free(s->hf_endpoint);
    ea__route_teardown(s);
    ea__audit_destroy(s->audit);
    ea__upstream_local_destroy(s->upstream);
    ea__backend_release(s, s->cur); /* the last reference: unloads it */
    s->cur = NULL;
    pthread_mutex_destroy(&s->be_mu);
    pthread_cond_destroy(&s->be_cv);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->log_mu);
    ea_free(s);
}
