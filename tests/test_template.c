/* test_template.c - chat templates: golden renders of the 57 published
 * templates against @huggingface/jinja (tests/data/templates, written by
 * scripts/gen-template-golden.mjs), and unit tests of the language: operators,
 * filters, tests, whitespace control, errors and limits. */
#include "edgeagent/template.h"
#include "harness.h"

#include <dirent.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------- */

/* 2025-01-15 10:30:00, the instant the golden script fixes the clock to. */
static const struct tm FIXED_NOW = {.tm_year = 125, .tm_mon = 0, .tm_mday = 15, .tm_hour = 10, .tm_min = 30};

static const char *source_dir(void)
{
    const char *d = getenv("EA_SOURCE_DIR");
    return d && *d ? d : ".";
}

/* Renders src with ctx; returns the output (free()) or NULL with err set. */
static char *render_opts(const char *src, const char *ctx, const struct ea_template_render_opts *o,
                         struct ea_error *err, size_t *len)
{
    ea_template *t = NULL;
    if (ea_template_compile(src, strlen(src), &t, err) != EA_OK)
        return NULL;
    char *out = NULL;
    size_t n = 0;
    struct ea_template_render_opts opts = {.now = &FIXED_NOW};
    if (o) {
        opts = *o;
        if (!opts.now)
            opts.now = &FIXED_NOW;
    }
    ea_status s = ea_template_render_ex(t, ctx, ctx ? strlen(ctx) : 0, &opts, &out, &n, err);
    ea_template_destroy(t);
    if (s != EA_OK)
        return NULL;
    if (len)
        *len = n;
    char *copy = malloc(n + 1);
    memcpy(copy, out, n + 1);
    ea_free(out);
    return copy;
}

static __attribute__((unused)) char *render(const char *src, const char *ctx, struct ea_error *err)
{
    return render_opts(src, ctx, NULL, err, NULL);
}

/* Asserts that src renders to want with ctx. */
#define RENDERS(src, ctx, want)                                                                       \
    do {                                                                                              \
        struct ea_error e_ = {0};                                                                     \
        char *got_ = render((src), (ctx), &e_);                                                       \
        if (!got_)                                                                                    \
            FAIL("render of %s failed: %s: %s", #src, ea_status_name(e_.status), e_.msg);             \
        if (strcmp(got_, (want)) != 0) {                                                              \
            char m_[2048];                                                                            \
            snprintf(m_, sizeof m_, "%s", got_);                                                      \
            free(got_);                                                                               \
            FAIL("%s\n      got  [%s]\n      want [%s]", #src, m_, (want));                           \
        }                                                                                             \
        free(got_);                                                                                   \
    } while (0)

/* Asserts that src fails (compile or render) with status st and a message
 * containing needle. */
#define FAILS(src, ctx, st, needle)                                                                   \
    do {                                                                                              \
        struct ea_error e_ = {0};                                                                     \
        char *got_ = render((src), (ctx), &e_);                                                       \
        if (got_) {                                                                                   \
            char m_[1024];                                                                            \
            snprintf(m_, sizeof m_, "%s", got_);                                                      \
            free(got_);                                                                               \
            FAIL("%s rendered [%s], expected an error", #src, m_);                                    \
        }                                                                                             \
        if (e_.status != (st))                                                                        \
            FAIL("%s: status %s, want %s (%s)", #src, ea_status_name(e_.status), ea_status_name(st), e_.msg); \
        if (!strstr(e_.msg, (needle)))                                                                \
            FAIL("%s: message [%s] lacks [%s]", #src, e_.msg, (needle));                              \
    } while (0)

/* ---- golden renders ------------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted names in dir ending with suffix (suffix stripped); caller frees. */
static char **list_dir(const char *dir, const char *suffix, size_t *n)
{
    DIR *d = opendir(dir);
    *n = 0;
    if (!d)
        return NULL;
    char **v = NULL;
    size_t cap = 0;
    struct dirent *e;
    size_t sl = strlen(suffix);
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l <= sl || strcmp(e->d_name + l - sl, suffix) != 0)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            v = realloc(v, cap * sizeof *v);
        }
        v[(*n)++] = strndup(e->d_name, l - sl);
    }
    closedir(d);
    qsort(v, *n, sizeof *v, cmp_str);
    return v;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Template stems docs/TEMPLATES.md lists under "## Unsupported templates"
 * (table rows starting with "| `stem`"). */
static bool listed_unsupported(const char *stem)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/docs/TEMPLATES.md", source_dir());
    char *doc = ea_test_read_file(path, NULL);
    if (!doc)
        return false;
    bool found = false, in = false;
    for (char *line = strtok(doc, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "## ", 3))
            in = strstr(line, "Unsupported templates") != NULL;
        else if (in && !strncmp(line, "| `", 3) && !strncmp(line + 3, stem, strlen(stem)) &&
                 line[3 + strlen(stem)] == '`')
            found = true;
    }
    free(doc);
    return found;
}

/* Strips our " (template line N)" suffix to compare with the reference text. */
static void strip_line_suffix(char *msg)
{
    char *p = strstr(msg, " (template line ");
    if (p && p[strlen(p) - 1] == ')')
        *p = '\0';
}

static void show_diff(const char *got, size_t gn, const char *want, size_t wn)
{
    size_t i = 0;
    while (i < gn && i < wn && got[i] == want[i])
        i++;
    size_t from = i > 60 ? i - 60 : 0;
    fprintf(stderr, "        first difference at byte %zu (got %zu bytes, want %zu)\n", i, gn, wn);
    fprintf(stderr, "        got : [%.*s]\n", (int)((gn - from) < 160 ? gn - from : 160), got + from);
    fprintf(stderr, "        want: [%.*s]\n", (int)((wn - from) < 160 ? wn - from : 160), want + from);
}

struct golden_stats {
    size_t pairs, ok, ext, err;
};

/* Renders one template on every conversation and compares with its golden
 * files in tests/data/templates/<stem>/; returns the number of mismatches. */
static int check_template(const char *stem, const char *src, size_t srclen, char **cases, size_t nc,
                          struct golden_stats *st)
{
    char gdir[4096], path[8400];
    snprintf(gdir, sizeof gdir, "%s/tests/data/templates", source_dir());
    ea_template *t = NULL;
    struct ea_error err = {0};
    ea_status cs = ea_template_compile(src, srclen, &t, &err);
    int mismatches = 0;
    for (size_t c = 0; c < nc; c++) {
        char base[8400], *ctx, *want_out, *want_ext, *want_err;
        size_t ctxlen, wn = 0;
        snprintf(path, sizeof path, "%s/cases/%s.json", gdir, cases[c]);
        ctx = ea_test_read_file(path, &ctxlen);
        ASSERT(ctx != NULL);
        snprintf(base, sizeof base, "%s/%s/%s", gdir, stem, cases[c]);
        snprintf(path, sizeof path, "%s.ext", base);
        want_ext = ea_test_read_file(path, &wn);
        snprintf(path, sizeof path, "%s.out", base);
        want_out = want_ext ? NULL : ea_test_read_file(path, &wn);
        snprintf(path, sizeof path, "%s.err", base);
        want_err = ea_test_read_file(path, NULL);
        if (!want_ext && !want_out && !want_err)
            FAIL("no golden file for %s/%s (run scripts/gen-template-golden.mjs)", stem, cases[c]);
        const char *want = want_ext ? want_ext : want_out;
        char *out = NULL;
        size_t on = 0;
        struct ea_error rerr = {0};
        ea_status rs = cs;
        if (cs == EA_OK) {
            struct ea_template_render_opts o = {.now = &FIXED_NOW};
            rs = ea_template_render_ex(t, ctx, ctxlen, &o, &out, &on, &rerr);
        } else {
            rerr = err;
        }
        bool ok;
        if (want) {
            ok = rs == EA_OK && on == wn && memcmp(out, want, wn) == 0;
            if (!ok) {
                fprintf(stderr, "    MISMATCH %s / %s%s\n", stem, cases[c], want_ext ? " (extension render)" : "");
                if (rs != EA_OK)
                    fprintf(stderr, "        we failed: %s: %s\n", ea_status_name(rs), rerr.msg);
                else
                    show_diff(out, on, want, wn);
            }
        } else {
            strip_line_suffix(rerr.msg);
            ok = rs != EA_OK && strcmp(rerr.msg, want_err) == 0;
            if (!ok) {
                fprintf(stderr, "    MISMATCH %s / %s: the reference raises \"%s\"\n", stem, cases[c], want_err);
                if (rs == EA_OK)
                    fprintf(stderr, "        we rendered %zu bytes: [%.200s]\n", on, out);
                else
                    fprintf(stderr, "        we raised \"%s\"\n", rerr.msg);
            }
        }
        st->pairs++;
        st->ok += ok;
        st->ext += ok && want_ext;
        st->err += ok && !want;
        mismatches += !ok;
        ea_free(out);
        free(ctx);
        free(want_out);
        free(want_ext);
        free(want_err);
    }
    ea_template_destroy(t);
    return mismatches;
}

static char **golden_cases(size_t *nc)
{
    char cdir[4200];
    snprintf(cdir, sizeof cdir, "%s/tests/data/templates/cases", source_dir());
    char **cases = list_dir(cdir, ".json", nc);
    if (!*nc)
        FAIL("no conversations in %s (run from the source tree or set EA_SOURCE_DIR)", cdir);
    return cases;
}

/* The 57 published templates (EA_TEMPLATE=<stem> checks one). */
static void golden_templates(void)
{
    const char *tdir = ea_test_shared_path("templates");
    size_t nt, nc;
    char **tpls = list_dir(tdir, ".jinja", &nt);
    char **cases = golden_cases(&nc);
    ASSERT(nt > 0);
    const char *only = getenv("EA_TEMPLATE");
    size_t identical = 0, total = 0;
    int hard_failures = 0;
    struct golden_stats st = {0};
    for (size_t i = 0; i < nt; i++) {
        if (only && strcmp(only, tpls[i]) != 0)
            continue;
        total++;
        char path[8400];
        snprintf(path, sizeof path, "%s/%s.jinja", tdir, tpls[i]);
        size_t srclen;
        char *src = ea_test_read_file(path, &srclen);
        ASSERT(src != NULL);
        int mismatches = check_template(tpls[i], src, srclen, cases, nc, &st);
        free(src);
        if (mismatches == 0) {
            identical++;
        } else if (listed_unsupported(tpls[i])) {
            fprintf(stderr, "    (%s is listed as unsupported in docs/TEMPLATES.md)\n", tpls[i]);
        } else {
            hard_failures++;
        }
    }
    printf("    pairs identical: %zu/%zu (%zu of them reference errors, %zu extension renders)\n", st.ok, st.pairs,
           st.err, st.ext);
    printf("templates identical: %zu/%zu\n", identical, total);
    free_list(tpls, nt);
    free_list(cases, nc);
    if (hard_failures)
        FAIL("%d template(s) mismatch and are not listed as unsupported in docs/TEMPLATES.md", hard_failures);
}

/* The ChatML fallback: the same text as tests/data/templates/default-chatml.jinja
 * and the same renders as the reference gives for it. */
static void default_chatml(void)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/tests/data/templates/default-chatml.jinja", source_dir());
    char *file = ea_test_read_file(path, NULL);
    ASSERT(file != NULL);
    ASSERT_STR_EQ(ea_template_default_chatml(), file);
    free(file);
    size_t nc;
    char **cases = golden_cases(&nc);
    struct golden_stats st = {0};
    const char *src = ea_template_default_chatml();
    ASSERT_EQ(check_template("_default-chatml", src, strlen(src), cases, nc, &st), 0);
    free_list(cases, nc);
    ea_template *t = NULL;
    struct ea_error err = {0};
    ASSERT_OK(ea_template_compile_default(&t, &err), &err);
    char *out = NULL;
    size_t n = 0;
    const char *ctx = "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"add_generation_prompt\": true}";
    ASSERT_OK(ea_template_render(t, ctx, strlen(ctx), &out, &n, &err), &err);
    ASSERT_STR_EQ(out, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    ASSERT_EQ(n, strlen(out));
    ea_free(out);
    ea_template_destroy(t);
}

/* The language snippets of snippets.json, rendered by the reference. A
 * snippet the reference cannot parse must not compile here either; runtime
 * errors must match the reference's message. */
static void golden_snippets(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/templates/snippets.json", source_dir());
    json_error_t je;
    json_t *all = json_load_file(path, 0, &je);
    if (!all)
        FAIL("%s: %s (run from the source tree or set EA_SOURCE_DIR)", path, je.text);
    const char *only = getenv("EA_SNIPPET");
    size_t i, ok = 0, n = 0;
    json_t *rec;
    json_array_foreach(all, i, rec)
    {
        const char *name = json_string_value(json_object_get(rec, "name"));
        if (only && strcmp(only, name) != 0)
            continue;
        const char *src = json_string_value(json_object_get(rec, "template"));
        const char *ctx = json_string_value(json_object_get(rec, "context"));
        json_t *jout = json_object_get(rec, "out"), *jerr = json_object_get(rec, "error");
        bool compile_error = json_object_get(rec, "compile_error") != NULL;
        bool ext = json_is_true(json_object_get(rec, "ext"));
        bool diverge = json_object_get(rec, "diverge") != NULL;
        n++;
        ea_template *t = NULL;
        struct ea_error err = {0};
        ea_status cs = ea_template_compile(src, strlen(src), &t, &err);
        bool good;
        char *out = NULL;
        size_t on = 0;
        if (compile_error) {
            good = cs != EA_OK;
            if (!good)
                fprintf(stderr, "    SNIPPET %s: the reference cannot parse [%s] but we compiled it\n", name, src);
        } else if (cs != EA_OK) {
            good = false;
            fprintf(stderr, "    SNIPPET %s: compile failed: %s\n", name, err.msg);
        } else {
            struct ea_template_render_opts o = {.now = &FIXED_NOW};
            ea_status rs = ea_template_render_ex(t, ctx, strlen(ctx), &o, &out, &on, &err);
            if (ext || diverge) { /* we render (extension) / we raise differently */
                good = ext ? rs == EA_OK : rs != EA_OK;
                if (!good)
                    fprintf(stderr, "    SNIPPET %s: expected %s: %s\n", name, ext ? "an extension render" : "an error",
                            err.msg);
            } else if (jout) {
                const char *want = json_string_value(jout);
                size_t wn = json_string_length(jout);
                good = rs == EA_OK && on == wn && memcmp(out, want, wn) == 0;
                if (!good) {
                    fprintf(stderr, "    SNIPPET %s: %s\n", name, src);
                    if (rs != EA_OK)
                        fprintf(stderr, "        we failed: %s\n", err.msg);
                    else
                        show_diff(out, on, want, wn);
                }
            } else {
                strip_line_suffix(err.msg);
                good = rs != EA_OK && strcmp(err.msg, json_string_value(jerr)) == 0;
                if (!good) {
                    fprintf(stderr, "    SNIPPET %s: %s\n        the reference raises \"%s\"\n", name, src,
                            json_string_value(jerr));
                    if (rs == EA_OK)
                        fprintf(stderr, "        we rendered [%.*s]\n", (int)(on < 300 ? on : 300), out);
                    else
                        fprintf(stderr, "        we raised \"%s\"\n", err.msg);
                }
            }
        }
        ok += good;
        ea_free(out);
        ea_template_destroy(t);
    }
    json_decref(all);
    printf("    snippets identical: %zu/%zu\n", ok, n);
    ASSERT_EQ(ok, n);
}

EA_TESTS(EA_TEST(golden_templates), EA_TEST(golden_snippets), EA_TEST(default_chatml))
