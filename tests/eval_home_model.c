/* eval_home_model.c - the built-in home model (models/edgeagent-home.gguf)
 * on its held-out split (tests/data/home_heldout.jsonl, written by
 * tools/train/gen_data.py from templates and vocabulary that training never
 * saw), served the way clients use it (EA_TEST_NEEDS_NET): the HTTP server
 * in-process on a loopback port, each case a /v1/chat/completions request
 * with `tools` = models/edgeagent-home.tools.json, temperature 0.
 *
 * Measures, and prints per tool: exact tool-call accuracy (names and
 * arguments JSON-equal, in order, numbers compared by value) on the call
 * cases; hand-off recall on the out-of-domain cases (the answer is the
 * content "<handoff>" and no call); hand-off precision; false hand-offs on
 * the in-domain cases (calls and replies to tool results); replies to tool
 * results that are text (not a call, not a hand-off) and that equal the
 * expected text. Fails below the targets: exact >= 95%, hand-off
 * recall >= 95%, false hand-offs <= 2%. A missing model or data file is a
 * failure, not a skip: both are committed. EA_HOME_MODEL and EA_HOME_DATA
 * point the same measurement at another model or split (development).
 * Not a registered test while the committed model is below the targets
 * (CMakeLists.txt builds it as eval_home_model; run it from the repository
 * root: `EA_SOURCE_DIR=$PWD build/tests/eval_home_model`); renamed to
 * tests/test_home_model.c it becomes one.
 * Does not hold: the training pipeline (tools/train/), latency (bench/).
 */
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "edgeagent/engine.h"
#include "edgeagent/model.h"
#include "edgeagent/server.h"
#include "edgeagent/tokenizer.h"
#include "harness.h"

/* The targets (issue 16, "Targets"). */
#define TARGET_EXACT 0.95
#define TARGET_HANDOFF_RECALL 0.95
#define TARGET_FALSE_HANDOFF 0.02
#define HANDOFF_MARKER "<handoff>"
/* Tokens a case may generate: three calls with long arguments fit. */
#define CASE_MAX_TOKENS 160
#define MAX_EOG 64
#define MAX_TOOL_ROWS 16

static const char *source_path(const char *rel)
{
    static char path[4096];
    const char *src = getenv("EA_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/%s", src ? src : "..", rel);
    return path;
}

/* ---- the server ----------------------------------------------------------- */

struct fixture {
    ea_model *m;
    ea_tokenizer *tok;
    ea_engine *eng;
    ea_server *srv;
    int32_t eog[MAX_EOG];
    char base[64];
    char log_path[4200];
    FILE *log;
};

static void fx_start(struct fixture *f, const char *model)
{
    memset(f, 0, sizeof *f);
    struct ea_error err = {0};
    struct ea_model_load_params lp = {.n_threads = 1};
    ASSERT_OK(ea_model_load(model, &lp, &f->m, &err), &err);
    ASSERT_OK(ea_tokenizer_create(ea_model_gguf(f->m), &f->tok, &err), &err);
    int n = 0;
    for (uint32_t t = 0; t < ea_tokenizer_n_vocab(f->tok) && n < MAX_EOG; t++)
        if (ea_tokenizer_is_eog(f->tok, (int32_t)t))
            f->eog[n++] = (int32_t)t;
    struct ea_engine_params ep;
    ea_engine_params_default(&ep);
    ep.kv_mem_bytes = 16 << 20;
    ep.max_running = 4;
    ep.max_queue = 16;
    ep.max_context = 1024;
    ep.reserve_kv = true;
    ep.eog_tokens = f->eog;
    ep.n_eog_tokens = n;
    ASSERT_OK(ea_engine_create(f->m, &ep, &f->eng, &err), &err);
    struct ea_server_params p;
    ea_server_params_default(&p);
    p.host = "127.0.0.1";
    p.port = 0;
    snprintf(f->log_path, sizeof f->log_path, "%s", ea_test_tmp_path("home-model.log"));
    f->log = fopen(f->log_path, "w+");
    ASSERT(f->log);
    p.log = f->log;
    ASSERT_OK(ea_server_create(&p, &f->srv, &err), &err);
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%u", (unsigned)ea_server_port(f->srv));
    struct ea_server_backend be = {f->m, f->tok, f->eng, "edgeagent-home", 1024, 0, false, NULL, NULL};
    ASSERT_OK(ea_server_set_backend(f->srv, &be, &err), &err);
}

static void fx_stop(struct fixture *f)
{
    ea_server_destroy(f->srv);
    ea_engine_destroy(f->eng);
    ea_tokenizer_destroy(f->tok);
    ea_model_destroy(f->m);
    if (f->log)
        fclose(f->log);
    remove(f->log_path);
}

struct body {
    char *p;
    size_t n;
};

static size_t on_body(char *p, size_t sz, size_t n, void *u)
{
    struct body *b = u;
    size_t k = sz * n;
    char *nb = realloc(b->p, b->n + k + 1);
    if (!nb)
        return 0;
    b->p = nb;
    memcpy(b->p + b->n, p, k);
    b->n += k;
    b->p[b->n] = '\0';
    return k;
}

/* POSTs a chat request; returns choices[0].message (caller decrefs). */
static json_t *chat(const struct fixture *f, const char *req)
{
    char url[128];
    snprintf(url, sizeof url, "%s/v1/chat/completions", f->base);
    struct body b = {0};
    CURL *c = curl_easy_init();
    ASSERT(c);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (cc != CURLE_OK || status != 200)
        FAIL("chat request: curl %d, HTTP %ld: %.300s", (int)cc, status, b.p ? b.p : "");
    json_t *j = json_loadb(b.p, b.n, 0, NULL);
    free(b.p);
    json_t *msg = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
    ASSERT(json_is_object(msg));
    json_incref(msg);
    json_decref(j);
    return msg;
}

/* ---- scoring ---------------------------------------------------------------- */

/* JSON equality with numbers compared by value (21 == 21.0). */
static bool json_same(json_t *a, json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    if (json_is_object(a) && json_is_object(b)) {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *k;
        json_t *v;
        json_object_foreach(a, k, v)
        {
            json_t *w = json_object_get(b, k);
            if (!w || !json_same(v, w))
                return false;
        }
        return true;
    }
    if (json_is_array(a) && json_is_array(b)) {
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!json_same(json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    }
    return json_equal(a, b);
}

/* Whether the message's tool calls are the expected calls, in order. */
static bool calls_match(json_t *msg, json_t *want)
{
    json_t *got = json_object_get(msg, "tool_calls");
    if (!json_is_array(got) || json_array_size(got) != json_array_size(want))
        return false;
    for (size_t i = 0; i < json_array_size(want); i++) {
        json_t *w = json_array_get(want, i);
        json_t *fn = json_object_get(json_array_get(got, i), "function");
        const char *name = json_string_value(json_object_get(fn, "name"));
        const char *args = json_string_value(json_object_get(fn, "arguments"));
        if (!name || !args || strcmp(name, json_string_value(json_object_get(w, "name"))) != 0)
            return false;
        json_t *a = json_loads(args, 0, NULL);
        bool same = a && json_same(a, json_object_get(w, "arguments"));
        json_decref(a);
        if (!same)
            return false;
    }
    return true;
}

static bool has_calls(json_t *msg) { return json_array_size(json_object_get(msg, "tool_calls")) > 0; }

static const char *content_of(json_t *msg)
{
    const char *s = json_string_value(json_object_get(msg, "content"));
    return s ? s : "";
}

static bool is_handoff(json_t *msg)
{
    const char *s = content_of(msg);
    while (*s == ' ' || *s == '\n')
        s++;
    return !has_calls(msg) && strncmp(s, HANDOFF_MARKER, strlen(HANDOFF_MARKER)) == 0;
}

struct row {
    char name[40];
    int n, exact, false_handoff;
};

static struct row *row_of(struct row *rows, int *n_rows, const char *name)
{
    for (int i = 0; i < *n_rows; i++)
        if (!strcmp(rows[i].name, name))
            return &rows[i];
    ASSERT(*n_rows < MAX_TOOL_ROWS);
    struct row *r = &rows[(*n_rows)++];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    return r;
}

static double ratio(int a, int b) { return b ? (double)a / b : 0.0; }

static void heldout_targets(void)
{
    /* EA_HOME_MODEL / EA_HOME_DATA: another model or split (tools/train's val) */
    char model[4096]; /* source_path's buffer is reused below */
    snprintf(model, sizeof model, "%s",
             getenv("EA_HOME_MODEL") ? getenv("EA_HOME_MODEL") : source_path("models/edgeagent-home.gguf"));
    if (access(model, R_OK))
        FAIL("%s is missing (it is committed; `make default-model` rebuilds it)", model);
    size_t tn = 0, dn = 0;
    char *tools = ea_test_read_file(source_path("models/edgeagent-home.tools.json"), &tn);
    if (!tools)
        FAIL("models/edgeagent-home.tools.json is missing");
    const char *data_path = getenv("EA_HOME_DATA") ? getenv("EA_HOME_DATA")
                                                   : source_path("tests/data/home_heldout.jsonl");
    char *data = ea_test_read_file(data_path, &dn);
    if (!data)
        FAIL("tests/data/home_heldout.jsonl is missing");
    json_t *tools_j = json_loadb(tools, tn, 0, NULL);
    ASSERT(json_is_array(tools_j) && json_array_size(tools_j) == 10);

    struct fixture f;
    fx_start(&f, model);
    struct row rows[MAX_TOOL_ROWS];
    int n_rows = 0;
    int n_call = 0, exact = 0, n_ood = 0, handoff_ok = 0, n_in = 0, false_handoff = 0;
    int n_pred_handoff = 0, n_reply = 0, reply_text = 0, reply_exact = 0;
    int shown = 0;
    for (char *line = data, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        json_error_t je;
        json_t *ex = json_loads(line, 0, &je);
        if (!ex)
            FAIL("heldout line not JSON: %s", je.text);
        const char *kind = json_string_value(json_object_get(ex, "kind"));
        json_t *exp = json_object_get(ex, "expected");
        ASSERT(kind && json_is_object(exp));
        json_t *req = json_pack("{s:s,s:O,s:O,s:i,s:i}", "model", "edgeagent-home", "messages",
                                json_object_get(ex, "messages"), "tools", tools_j, "temperature", 0,
                                "max_tokens", CASE_MAX_TOKENS);
        char *body = json_dumps(req, JSON_COMPACT);
        json_t *msg = chat(&f, body);
        free(body);
        json_decref(req);
        bool handoff = is_handoff(msg);
        n_pred_handoff += handoff;
        bool ok;
        if (!strcmp(kind, "call")) {
            json_t *want = json_object_get(exp, "calls");
            const char *tool = json_array_size(want) == 1
                                   ? json_string_value(json_object_get(json_array_get(want, 0), "name"))
                                   : "(several calls)";
            struct row *r = row_of(rows, &n_rows, tool);
            ok = calls_match(msg, want);
            r->n++, r->exact += ok, r->false_handoff += handoff;
            n_call++, exact += ok, n_in++, false_handoff += handoff;
        } else if (!strcmp(kind, "handoff")) {
            ok = handoff;
            n_ood++, handoff_ok += ok;
        } else {
            const char *want = json_string_value(json_object_get(exp, "content"));
            bool text = !has_calls(msg) && !handoff && *content_of(msg);
            ok = text && want && !strcmp(content_of(msg), want);
            n_reply++, reply_text += text, reply_exact += ok, n_in++, false_handoff += handoff;
        }
        if (!ok && shown < 12) {
            json_t *m = json_object_get(ex, "messages");
            char *got = json_dumps(msg, JSON_COMPACT), *w = json_dumps(exp, JSON_COMPACT);
            printf("  miss (%s): %.160s\n    want %.300s\n    got  %.300s\n", kind,
                   json_string_value(json_object_get(json_array_get(m, json_array_size(m) - 1),
                                                     "content")),
                   w, got);
            free(got);
            free(w);
            shown++;
        }
        json_decref(msg);
        json_decref(ex);
    }
    fx_stop(&f);
    printf("  %-18s %5s %7s %8s\n", "tool", "cases", "exact", "handoff");
    for (int i = 0; i < n_rows; i++)
        printf("  %-18s %5d %6.1f%% %7.1f%%\n", rows[i].name, rows[i].n, 100 * ratio(rows[i].exact, rows[i].n),
               100 * ratio(rows[i].false_handoff, rows[i].n));
    double acc = ratio(exact, n_call), rec = ratio(handoff_ok, n_ood), fh = ratio(false_handoff, n_in);
    printf("  exact tool calls   %d/%d = %.1f%% (target >= %.0f%%)\n", exact, n_call, 100 * acc,
           100 * TARGET_EXACT);
    printf("  hand-off recall    %d/%d = %.1f%% (target >= %.0f%%)\n", handoff_ok, n_ood, 100 * rec,
           100 * TARGET_HANDOFF_RECALL);
    printf("  hand-off precision %d/%d = %.1f%%\n", handoff_ok, n_pred_handoff,
           100 * ratio(handoff_ok, n_pred_handoff));
    printf("  false hand-offs    %d/%d = %.1f%% of in-domain cases (target <= %.0f%%)\n", false_handoff, n_in,
           100 * fh, 100 * TARGET_FALSE_HANDOFF);
    printf("  replies to results %d/%d text, %d/%d exact\n", reply_text, n_reply, reply_exact, n_reply);
    json_decref(tools_j);
    free(tools);
    free(data);
    ASSERT(n_call > 0 && n_ood > 0 && n_reply > 0);
    if (acc < TARGET_EXACT || rec < TARGET_HANDOFF_RECALL || fh > TARGET_FALSE_HANDOFF)
        FAIL("below the targets: exact %.1f%%, hand-off recall %.1f%%, false hand-offs %.1f%%", 100 * acc,
             100 * rec, 100 * fh);
}

EA_TESTS(EA_TEST(heldout_targets))
