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
 * errors must match the reference's message. EA_SNIPPETS=file checks another
 * file of the same shape (scripts/template-difftest.mjs writes random ones). */
static void golden_snippets(void)
{
    char path[4096];
    if (getenv("EA_SNIPPETS"))
        snprintf(path, sizeof path, "%s", getenv("EA_SNIPPETS"));
    else
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
        /* maybe_ext: the reference raised where an extension may render */
        bool maybe_ext = json_is_true(json_object_get(rec, "maybe_ext")) || json_object_get(rec, "skip");
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
                good = (rs == EA_OK && on == wn && memcmp(out, want, wn) == 0) || maybe_ext;
                if (!good) {
                    fprintf(stderr, "    SNIPPET %s: %s\n", name, src);
                    if (rs != EA_OK)
                        fprintf(stderr, "        we failed: %s\n", err.msg);
                    else
                        show_diff(out, on, want, wn);
                }
            } else {
                strip_line_suffix(err.msg);
                good = (rs != EA_OK && strcmp(err.msg, json_string_value(jerr)) == 0) || maybe_ext;
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

/* ---- language unit tests ------------------------------------------------------------ */

static const char *MSGS = "{\"messages\": [{\"role\": \"system\", \"content\": \"S\"}, {\"role\": \"user\", \"content\": "
                          "\"Hi\"}], \"add_generation_prompt\": true, \"n\": 3, \"f\": 2.5, \"s\": \"abc\"}";

static void operators(void)
{
    RENDERS("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ 2 ** 10 }} {{ 7 / 2 }} {{ 6 / 2 }}", NULL, "3 -4 1 1024 3.5 3.0");
    RENDERS("{{ n + f }} {{ n * 2 }} {{ f * 2 }} {{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }}", MSGS, "5.5 6 5.0 7 9");
    RENDERS("{{ 'a' ~ 1 ~ true ~ [1, 2] }} {{ 'a' + 'b' }} {{ 'x' + 1 }}", NULL, "a1true1,2 ab x1");
    RENDERS("{{ 1 < 2 }} {{ 2 >= 3 }} {{ 1 == 1.0 }} {{ 1 != 2 }} {{ 1 == '1' }}", NULL, "true false true true true");
    RENDERS("{{ 'b' in 'abc' }} {{ 'z' not in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'x' in nothing }}",
            NULL, "true true true true false");
    RENDERS("[{{ 0 or 'x' }}][{{ 'a' and 'b' }}][{{ not [] }}][{{ none or '' }}]", NULL, "[x][b][true][]");
    RENDERS("{{ 'y' if n > 2 else 'n' }}[{{ 'x' if false }}]{{ 1 if false else 2 if true else 3 }}", MSGS, "y[]2");
    RENDERS("{{ [1, 2] + [3] }} {{ -n }} {{ -f }} {{ not n }}", MSGS, "[1, 2, 3] -3 -2.5 false");
    RENDERS("{{ s[0] }}{{ s[-1] }}{{ s[::-1] }}{{ s[1:] }} {{ [1, 2, 3, 4][::2] }} {{ [1, 2, 3][-2:] }}", MSGS,
            "accbabc [1, 3] [2, 3]");
    RENDERS("{{ none }}|{{ nothing }}|{{ true }}|{{ 1.0 }}|{{ 0.1 + 0.2 }}|{{ {'a': [1, none]} }}", NULL,
            "||true|1.0|0.30000000000000004|{\"a\": [1, null]}");
    FAILS("{{ nothing + 1 }}", NULL, EA_EINVAL, "Cannot perform operation + on undefined values (template line 1)");
    FAILS("{{ none ~ 'a' }}", NULL, EA_EINVAL, "Cannot perform operation on null values");
    FAILS("\n\n{{ {} + 1 }}", NULL, EA_EFORMAT, "line 3");
}

static void statements(void)
{
    RENDERS("{% for m in messages %}{{ loop.index }}:{{ m.role }}{% if not loop.last %},{% endif %}{% endfor %}", MSGS,
            "1:system,2:user");
    RENDERS("{% for x in [] %}x{% else %}none{% endfor %}", NULL, "none");
    RENDERS("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}", NULL, "a=1;b=2;");
    RENDERS("{% for x in range(10) if x is even %}{{ x }}{% endfor %}", NULL, "02468");
    RENDERS("{% for x in range(5) %}{% if x == 3 %}{% break %}{% endif %}{{ x }}{% endfor %}", NULL, "012");
    RENDERS("{% for x in range(4) %}{% if x is odd %}{% continue %}{% endif %}{{ x }}{% endfor %}", NULL, "02");
    RENDERS("{% for x in [1] %}{{ loop.previtem is defined }}{{ loop.nextitem is defined }}{{ loop.revindex }}{% endfor %}",
            NULL, "falsefalse1");
    RENDERS("{% if n == 1 %}a{% elif n == 3 %}b{% else %}c{% endif %}", MSGS, "b");
    RENDERS("{% set a, b = [1, 2] %}{% set c %}[{{ a + b }}]{% endset %}{{ c }}", NULL, "[3]");
    RENDERS("{% set ns = namespace(found=false) %}{% for m in messages %}{% if m.role == 'user' %}{% set ns.found = true "
            "%}{% endif %}{% endfor %}{{ ns.found }}",
            MSGS, "true");
    RENDERS("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}", NULL, "1");
    RENDERS("{% macro m(a, b='B') %}{{ a }}{{ b }}{% endmacro %}{{ m('A') }}{{ m('A', b='C') }}", NULL, "ABAC");
    RENDERS("{% macro m() %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, k=2) }}", NULL, "[1]{\"k\": 2}");
    RENDERS("{% macro w() %}<{{ caller() }}>{% endmacro %}{% call w() %}in{% endcall %}", NULL, "<in>");
    RENDERS("{% filter upper %}a{{ 'b' }}{% endfilter %}", NULL, "AB");
    RENDERS("a{# hidden #}b", NULL, "ab");
}

static void whitespace_control(void)
{
    RENDERS("a  {{- 'b' -}}  c", NULL, "abc");
    RENDERS("a  {%- if true -%}  b  {%- endif -%}  c", NULL, "abc");
    RENDERS("a  {#- c -#}  b", NULL, "ab");
    /* trim_blocks: the newline after a block tag goes; lstrip_blocks: the
     * indentation before it goes */
    RENDERS("{% if true %}\n  x\n{% endif %}\ny", NULL, "  x\ny");
    RENDERS("  {% if true %}\nx\n  {% endif %}\n", NULL, "x\n");
    /* ... but not after an expression, and not when text precedes the tag */
    RENDERS("{{ 'a' }}\nb", NULL, "a\nb");
    RENDERS("x  {% if true %}y{% endif %}", NULL, "x  y");
    /* one trailing newline of the template is dropped */
    RENDERS("a\n", NULL, "a");
    RENDERS("a\n\n", NULL, "a\n");
    /* the transformers generation tag disappears */
    RENDERS("a{% generation %}b{% endgeneration %}c", NULL, "abc");
    /* JS whitespace: NBSP and ideographic space are stripped by - */
    RENDERS("a\xC2\xA0 {{- 'b' -}} \xE3\x80\x80" "c", NULL, "abc");
}

static void filters(void)
{
    RENDERS("{{ '  x '|trim }}|{{ 'aB'|upper }}|{{ 'aB'|lower }}|{{ 'ab cd'|title }}|{{ 'ab'|capitalize }}", NULL,
            "x|AB|ab|Ab Cd|Ab");
    RENDERS("{{ 'abc'|length }} {{ [1, 2]|length }} {{ {'a': 1}|length }} {{ '\xF0\x9F\x99\x82'|length }}", NULL,
            "3 2 1 2");
    RENDERS("{{ [3, 1, 2]|sort }} {{ [3, 1, 2]|sort(reverse=true) }} {{ [1, 2]|reverse }} {{ [1, 1, 2]|unique }}", NULL,
            "[1, 2, 3] [3, 2, 1] [2, 1] [1, 2]");
    RENDERS("{{ [1, 2]|first }}{{ [1, 2]|last }} {{ ['a', 'b']|join(', ') }} {{ [1, 'a']|join }}", NULL, "12 a, b 1a");
    RENDERS("{{ '42'|int + 1 }} {{ '2.5'|float }} {{ 3.9|int }} {{ 'x'|int(7) }} {{ 1|string ~ 1.0|string }}", NULL,
            "43 2.5 3 7 11.0");
    RENDERS("{{ nothing|default('d') }} {{ ''|default('d', true) }} {{ 'x'|default('d') }}", NULL, "d d x");
    RENDERS("{{ 'a\nb\n\nc'|indent }}|{{ 'a\nb'|indent(2, true) }}", NULL, "a\n    b\n\n    c|  a\n  b");
    RENDERS("{{ 'aXbX'|replace('X', '-') }} {{ 'aXbX'|replace('X', '-', 1) }}", NULL, "a-b- a-bX");
    RENDERS("{{ {'b': 1, 'a': 2}|dictsort }} {{ {'a': 1}|items }}", NULL, "[[\"a\", 2], [\"b\", 1]] [[\"a\", 1]]");
    RENDERS("{{ messages|selectattr('role', 'equalto', 'user')|map(attribute='content')|list }}", MSGS, "[\"Hi\"]");
    RENDERS("{{ messages|rejectattr('role', 'equalto', 'user')|map(attribute='role')|join }}", MSGS, "system");
    RENDERS("{{ {'a': [1, 'x'], 'b': none}|tojson }}|{{ 'é'|tojson }}|{{ 'é'|tojson(ensure_ascii=true) }}", NULL,
            "{\"a\": [1, \"x\"], \"b\": null}|\"é\"|\"\\u00e9\"");
    RENDERS("{{ {'a': [1]}|tojson(indent=2) }}", NULL, "{\n  \"a\": [\n    1\n  ]\n}");
    RENDERS("{{ {'b': 1, 'a': 2}|tojson(sort_keys=true, separators=(',', ':')) }}", NULL, "{\"a\":2,\"b\":1}");
    RENDERS("{{ -3|abs }} {{ '<b>'|safe }} {{ true|int }}", NULL, "3 <b> 1");
    FAILS("{{ 'x'|nosuch }}", NULL, EA_EINVAL, "Unknown StringValue filter: nosuch (template line 1)");
    FAILS("{{ none|length }}", NULL, EA_EINVAL, "Cannot apply filter \"length\" to type: NullValue");
}

static void tests_and_methods(void)
{
    RENDERS("{{ n is defined }} {{ x is undefined }} {{ none is none }} {{ s is string }} {{ n is number }} {{ f is "
            "integer }} {{ [] is iterable }} {{ {} is mapping }} {{ 3 is odd }} {{ 4 is even }} {{ 'ab' is lower }}",
            MSGS, "true true true true true false true true true true true");
    RENDERS("{{ n is not none }} {{ s is not string }} {{ true is true }} {{ range is callable }}", MSGS,
            "true false true true");
    RENDERS("{{ ' x '.strip() }}|{{ 'a,b'.split(',') }}|{{ 'a b'.split() }}|{{ 'ab'.startswith('a') }}|{{ "
            "'ab'.endswith(('x', 'b')) }}|{{ 'aa'.replace('a', 'b') }}|{{ 'Ab'.upper() }}{{ 'Ab'.lower() }}",
            NULL, "x|[\"a\", \"b\"]|[\"a\", \"b\"]|true|true|bb|ABab");
    RENDERS("{{ {'a': 1}.get('a') }} {{ {'a': 1}.get('b', 2) }} {{ {'a': 1}.keys() }} {{ {'a': 1}.values() }}", NULL,
            "1 2 [\"a\"] [1]");
    FAILS("{{ 1 is nosuch }}", NULL, EA_EINVAL, "Unknown test: nosuch");
}

static void globals(void)
{
    RENDERS("{{ range(3) }} {{ range(1, 7, 2) }} {{ range(3, 0, -1) }}", NULL, "[0, 1, 2] [1, 3, 5] [3, 2, 1]");
    RENDERS("{{ strftime_now('%Y-%m-%d %H:%M %b %B %%') }}", NULL, "2025-01-15 10:30 Jan January %");
    struct tm other = {.tm_year = 99, .tm_mon = 11, .tm_mday = 31, .tm_hour = 23, .tm_min = 59};
    struct ea_template_render_opts o = {.now = &other};
    struct ea_error err = {0};
    char *out = render_opts("{{ strftime_now('%d %b %Y') }}", NULL, &o, &err, NULL);
    ASSERT(out != NULL);
    ASSERT_STR_EQ(out, "31 Dec 1999");
    free(out);
    /* raise_exception: the message alone, as the caller should show it */
    FAILS("{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}", MSGS,
          EA_EINVAL, "System role not supported");
    out = render("{{ raise_exception('exact text') }}", NULL, &err);
    ASSERT(out == NULL);
    ASSERT_STR_EQ(err.msg, "exact text");
}

/* Constructs the reference lacks; each renders here where it raises there. */
static void extensions(void)
{
    RENDERS("{% set ns = namespace(ids=[]) %}{% set _ = ns.ids.append('a') %}{% set _ = ns.ids.append('b') %}"
            "{{ ns.ids.pop(0) }}{{ ns.ids }}{{ ns.ids.index('b') }}",
            NULL, "a[\"b\"]0");
    RENDERS("{% set l = [1] %}{{ l.extend([2, 3]) }}{{ l.pop() }}{{ l }}", NULL, "3[1, 2]");
    FAILS("{{ [].pop() }}", NULL, EA_EINVAL, "pop from empty list");
    RENDERS("{{ ['a', 'b', 'c']|reject('equalto', 'b')|join }} {{ [1, 2, 3, 4]|select('odd')|list }} {{ [0, 1, '']|select|list }}",
            NULL, "ac [1, 3] [1]");
    RENDERS("{% set a = '{\"x\": [1, 2.5]}'|from_json %}{{ a.x[1] }}", NULL, "2.5");
    FAILS("{{ '{bad'|from_json }}", NULL, EA_EINVAL, "from_json: invalid JSON");
    RENDERS("{{ dict(a=1, b='x') }} {{ dict({'k': 1}, z=2) }}", NULL, "{\"a\": 1, \"b\": \"x\"} {\"k\": 1, \"z\": 2}");
    RENDERS("{{ 6 is divisibleby(3) }} {{ 7 is divisibleby 3 }} {{ 2 is equalto(2) }} {{ 2 is eq 3 }} {{ 1.5 is float }} {{ "
            "1 is float }} {{ 'a' is in(['a']) }} {{ 2 is gt 1 }} {{ 1 is sameas 1 }}",
            NULL, "true false true false true false true true true");
    RENDERS("{{ '=' * 3 }} {{ 2 * 'ab' }} {{ [0] * 2 }} {{ 'a' < 'b' }}", NULL, "=== abab [0, 0] true");
    RENDERS("{{ nothing|default }}|{{ nothing|d('x') }}|{{ [1, 2]|count }}|{{ 'ab'|count }}", NULL, "|x|2|2");
    RENDERS("{{ ['a', 'b']|map('upper')|join }} {{ ['a']|map('replace', 'a', 'z')|join }}", NULL, "AB z");
    RENDERS("{{ [1, 2, 3]|sum }} {{ [{'n': 2}, {'n': 5}]|sum(attribute='n') }} {{ [3, 1, 2]|min }} {{ ['a', 'B']|max }}", NULL,
            "6 7 1 B");
    RENDERS("{{ 2.567|round(2) }} {{ 2.5|round }} {{ 3.5|round }} {{ 2.1|round(method='ceil') }} {{ 3|round }}", NULL,
            "2.57 2.0 4.0 3.0 3");
    RENDERS("{{ 'a b  c'|wordcount }} {{ '<a href=\"x\">&\\'</a>'|e }}", NULL,
            "3 &lt;a href=&#34;x&#34;&gt;&amp;&#39;&lt;/a&gt;");
    RENDERS("{{ 'ab'|list }} {{ 'ab'|first }}{{ 'ab'|last }} {{ 'ab'|reverse }} {{ {'k': 1}|list }}", NULL,
            "[\"a\", \"b\"] ab ba [\"k\"]");
    RENDERS("{{ 'a-b-c'.count('-') }} {{ 'abc'.find('c') }} {{ 'abc'.find('z') }} {{ ', '.join(['a', 'b']) }}", NULL,
            "2 2 -1 a, b");
    RENDERS("{{ ' x '|trim() }}|{{ [2, 1]|sort() }}|{{ 'a'|upper() }}", NULL, "x|[1, 2]|A");
}

static void compile_errors(void)
{
    FAILS("{% if true %}a", NULL, EA_EFORMAT, "line 1: unterminated {% if %}: no {% endif %}");
    FAILS("a\n{% for x in y %}\nb", NULL, EA_EFORMAT, "line 2: unterminated {% for %}: no {% endfor %}");
    FAILS("{% macro m() %}", NULL, EA_EFORMAT, "no {% endmacro %}");
    FAILS("{% set x %}abc", NULL, EA_EFORMAT, "no {% endset %}");
    FAILS("{{ x", NULL, EA_EFORMAT, "line 1: unexpected end of template inside a tag");
    FAILS("{{ x }", NULL, EA_EFORMAT, "line 1:");
    FAILS("a\n{# never closed", NULL, EA_EFORMAT, "line 2: unterminated comment");
    FAILS("{{ 'abc }}", NULL, EA_EFORMAT, "unterminated string literal");
    FAILS("{{ '\\q' }}", NULL, EA_EFORMAT, "unknown escape '\\q'");
    FAILS("{% endif %}", NULL, EA_EFORMAT, "unexpected {% endif %} without its opening statement");
    FAILS("{% else %}", NULL, EA_EFORMAT, "unexpected {% else %} outside if/for");
    FAILS("{% frobnicate %}", NULL, EA_EFORMAT, "unknown statement {% frobnicate %}");
    FAILS("\n\n{% include 'x.jinja' %}", NULL, EA_EUNSUPPORTED, "line 3: unsupported statement {% include %}");
    FAILS("{% raw %}x{% endraw %}", NULL, EA_EUNSUPPORTED, "unsupported statement {% raw %}");
    FAILS("{% extends 'base' %}", NULL, EA_EUNSUPPORTED, "{% extends %}");
    FAILS("{{ a ? b }}", NULL, EA_EFORMAT, "unexpected character '?'");
    FAILS("{% for 1 in x %}{% endfor %}", NULL, EA_EFORMAT, "for-loop variable");
    FAILS("{% macro m(a, a) %}{% endmacro %}", NULL, EA_EFORMAT, "duplicate parameter name 'a'");
    FAILS("{{ f(a=1, 2) }}", NULL, EA_EFORMAT, "positional arguments must come before keyword arguments");
    FAILS("{{ x[] }}", NULL, EA_EFORMAT, "expected an index or slice");
}

/* Invalid UTF-8 in a template reads as U+FFFD, one per maximal ill-formed
 * subsequence, as Node decodes the template file. */
static void invalid_utf8_source(void)
{
    RENDERS("{{ \"a\xff\xe2\x82 b\xed\xa0\x80" "c\xf0\x9f\x99\" }}|x\xc0\xafy", NULL,
            "a\xEF\xBF\xBD\xEF\xBF\xBD b\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
            "c\xEF\xBF\xBD|x\xEF\xBF\xBD\xEF\xBF\xBDy");
}

static void context_json(void)
{
    /* key order is kept, with JS's integer-like keys first */
    RENDERS("{% for k in d %}{{ k }}{% endfor %}", "{\"d\": {\"z\": 1, \"2\": 1, \"a\": 1, \"1\": 1}}", "12za");
    RENDERS("{{ v }} {{ w }} {{ w is integer }}", "{\"v\": 1.0, \"w\": 1e2}", "1 100 true");
    RENDERS("[{{ x }}]", "", "[]");
    FAILS("x", "[1, 2]", EA_EINVAL, "context must be a JSON object");
    FAILS("x", "{\"a\": ", EA_EINVAL, "not valid JSON");
    FAILS("x", "{\"namespace\": 1}", EA_EINVAL, "Variable already declared: namespace");
    struct ea_error err = {0};
    char *out = (char *)1;
    ASSERT_EQ(ea_template_render(NULL, "{}", 2, &out, NULL, &err), EA_EINVAL);
    ASSERT_EQ(ea_template_compile(NULL, 3, NULL, &err), EA_EINVAL);
    ea_template_destroy(NULL);
}

/* ---- limits -------------------------------------------------------------------------- */

static void limits(void)
{
    struct ea_error err = {0};
    struct ea_template_render_opts o = {.max_output = 1000};
    char *out = render_opts("{% for i in range(1000) %}xxxxxxxxxx{% endfor %}", NULL, &o, &err, NULL);
    ASSERT(out == NULL);
    ASSERT_EQ(err.status, EA_ETOOBIG);
    ASSERT(strstr(err.msg, "output exceeds its limit"));
    /* output captured by a set block counts too */
    out = render_opts("{% set x %}{% for i in range(1000) %}xxxxxxxxxx{% endfor %}{% endset %}", NULL, &o, &err, NULL);
    ASSERT(out == NULL && err.status == EA_ETOOBIG);
    /* unbounded recursion stops at the depth limit */
    out = render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", NULL, &err);
    ASSERT(out == NULL);
    ASSERT_EQ(err.status, EA_ETOOBIG);
    ASSERT(strstr(err.msg, "nests deeper than"));
    /* exponential work without deep nesting stops at the step limit */
    struct ea_template_render_opts steps = {.max_steps = 100000};
    out = render_opts("{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}", NULL,
                      &steps, &err, NULL);
    ASSERT(out == NULL);
    ASSERT_EQ(err.status, EA_ETOOBIG);
    ASSERT(strstr(err.msg, "step limit"));
    /* loops and range() count against the iteration limit */
    out = render("{% for i in range(100000000) %}{% endfor %}", NULL, &err);
    ASSERT(out == NULL);
    ASSERT_EQ(err.status, EA_ETOOBIG);
    ASSERT(strstr(err.msg, "iteration limit"));
    struct ea_template_render_opts iters = {.max_iters = 50};
    out = render_opts("{% for i in [1,2,3,4,5,6,7,8] %}{% for j in [1,2,3,4,5,6,7,8] %}{% endfor %}{% endfor %}", NULL,
                      &iters, &err, NULL);
    ASSERT(out == NULL && err.status == EA_ETOOBIG);
    /* values count against the memory limit */
    struct ea_template_render_opts mem = {.max_memory = 1 << 20};
    out = render_opts("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                      NULL, &mem, &err, NULL);
    ASSERT(out == NULL);
    ASSERT_EQ(err.status, EA_ETOOBIG);
    /* a cycle a template builds cannot loop forever when printed */
    out = render("{% set ns = namespace() %}{% set ns.self = ns %}{{ ns }}", NULL, &err);
    ASSERT(out == NULL && err.status == EA_ETOOBIG);
    /* deeply nested source stops at the parser's depth limit */
    char deep[2000];
    memset(deep, '(', 900);
    strcpy(deep + 900, "1");
    char src[2100];
    snprintf(src, sizeof src, "{{ %s }}", deep);
    out = render(src, NULL, &err);
    ASSERT(out == NULL && err.status == EA_ETOOBIG);
    /* NUL bytes in the context survive */
    size_t n = 0;
    out = render_opts("{{ s }}|{{ s|length }}", "{\"s\": \"a\\u0000b\"}", NULL, &err, &n);
    ASSERT(out != NULL);
    ASSERT_EQ(n, 5);
    ASSERT(memcmp(out, "a\0b|3", 5) == 0);
    free(out);
}

/* Every allocation of a compile and a render of a real template may fail:
 * the result is an error with a message, never a crash or a leak. */
static void allocation_failures(void)
{
    const char *src =
        "{%- set ns = namespace(x=[]) -%}{% macro m(a) %}{{ a|tojson }}{% endmacro %}"
        "{%- for msg in messages -%}{% set _ = ns.x.append(msg.role) %}<{{ msg.role|upper }}>{{ m(msg) }}"
        "{%- if tools %}{% for t in tools %}{{ t|tojson(indent=2) }}{% endfor %}{% endif %}{% endfor %}"
        "{{ ns.x|join(',') }}{{ 'a,b'.split(',') }}{{ {'b': 1, 'a': 2}|dictsort }}";
    const char *ctx = "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", "
                      "\"content\": \"yo\"}], \"tools\": [{\"name\": \"f\", \"p\": [1, 2.5, null]}]}";
    char *want = NULL;
    {
        struct ea_error err = {0};
        want = render(src, ctx, &err);
        ASSERT(want != NULL);
    }
    int failures_seen = 0;
    for (long k = 1; k < 100000; k++) {
        struct ea_error err = {0};
        ea_template *t = NULL;
        char *out = NULL;
        size_t n = 0;
        ea_alloc_fail_after(k);
        ea_status s = ea_template_compile(src, strlen(src), &t, &err);
        if (s == EA_OK)
            s = ea_template_render(t, ctx, strlen(ctx), &out, &n, &err);
        ea_alloc_fail_after(0);
        ea_template_destroy(t);
        if (s == EA_OK) {
            ASSERT_STR_EQ(out, want);
            ea_free(out);
            break;
        }
        failures_seen++;
        if (s != EA_ENOMEM && s != EA_ETOOBIG && s != EA_EINVAL)
            FAIL("allocation %ld failing gave %s: %s", k, ea_status_name(s), err.msg);
        if (!err.msg[0])
            FAIL("allocation %ld failing gave %s without a message", k, ea_status_name(s));
    }
    ASSERT(failures_seen > 10);
    free(want);
}

#include <pthread.h>

struct thread_job {
    const ea_template *t;
    int ok;
};

static void *render_many(void *arg)
{
    struct thread_job *j = arg;
    const char *ctx = "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"add_generation_prompt\": true}";
    for (int i = 0; i < 200; i++) {
        struct ea_error err = {0};
        char *out = NULL;
        if (ea_template_render(j->t, ctx, strlen(ctx), &out, NULL, &err) != EA_OK)
            return NULL;
        j->ok += strcmp(out, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n") == 0;
        ea_free(out);
    }
    return NULL;
}

/* A compiled template is shared by threads rendering at the same time. */
static void concurrent_renders(void)
{
    ea_template *t = NULL;
    struct ea_error err = {0};
    ASSERT_OK(ea_template_compile_default(&t, &err), &err);
    pthread_t th[4];
    struct thread_job jobs[4] = {{t, 0}, {t, 0}, {t, 0}, {t, 0}};
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(pthread_create(&th[i], NULL, render_many, &jobs[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ASSERT_EQ(jobs[i].ok, 200);
    }
    ea_template_destroy(t);
}

/* The render with data ranges bracketed: "<s>[hi]</s>". Also checks that
 * tracking leaves the text exactly as an untracked render writes it. */
static const char *marked(const char *src, const char *ctx)
{
    static char buf[4096];
    static const char *const keys[] = {"bos_token", "add_generation_prompt", NULL};
    static const char *const roles[] = {"user", "assistant", "system", NULL};
    struct ea_template_provenance prov = {keys, roles};
    ea_template *t = NULL;
    struct ea_error err = {0};
    ASSERT_OK(ea_template_compile(src, strlen(src), &t, &err), &err);
    char *out = NULL, *plain = NULL;
    size_t n = 0, pn = 0, nd = 0;
    struct ea_template_span *d = NULL;
    ASSERT_OK(ea_template_render_tracked(t, ctx, strlen(ctx), NULL, &prov, &out, &n, &d, &nd, &err), &err);
    ASSERT_OK(ea_template_render(t, ctx, strlen(ctx), &plain, &pn, &err), &err);
    ASSERT_EQ(pn, n);
    ASSERT(memcmp(plain, out, n) == 0);
    size_t k = 0, at = 0;
    for (size_t i = 0; i <= nd; i++) {
        size_t end = i < nd ? d[i].off : n;
        if (i < nd)
            ASSERT(d[i].len > 0 && d[i].off >= at && d[i].off + d[i].len <= n); /* sorted, disjoint, inside */
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%.*s", (int)(end - at), out + at);
        if (i < nd) {
            k += (size_t)snprintf(buf + k, sizeof buf - k, "[%.*s]", (int)d[i].len, out + d[i].off);
            at = d[i].off + d[i].len;
        }
    }
    ea_free(out);
    ea_free(plain);
    ea_free(d);
    ea_template_destroy(t);
    return buf;
}

/* Provenance (issue 18): which output bytes come from message data. */
static void provenance(void)
{
    const char *ctx = "{\"messages\":[{\"role\":\"user\",\"content\":\" hi \",\"n\":5},"
                      "{\"role\":\"evil\",\"content\":\"b\"}],\"bos_token\":\"<s>\",\"other\":\"<o>\"}";
#define M(src, want) ASSERT_STR_EQ(marked(src, ctx), want)
    M("{{ bos_token + '[INST]' + messages[0].content + '</s>' }}", "<s>[INST][ hi ]</s>");
    M("{{ bos_token ~ messages[0].content ~ 7 }}", "<s>[ hi ]7");
    M("{{ messages[0].content | trim }}|{{ messages[0].content.strip() }}", "[hi]|[hi]");
    M("{% set s = '<a>' + messages[0].content %}{{ s.rstrip() }}{{ (s + '<b>') | trim }}",
      "<a>[ hi]<a>[ hi ]<b>");
    M("{{ ['<a>', messages[0].content] | join('|') }}", "<a>|[ hi ]");
    M("{{ ['x', 'y'] | join(messages[1].content) }}{{ messages[1].content.join(['1', '2']) }}", "x[b]y1[b]2");
    M("{{ ('<a>' + messages[0].content)[1:5] }}|{{ messages[0].content[1] }}", "a>[ h]|[h]");
    M("{% set b %}<t>{{ messages[0].content }}</t>{% endset %}{{ b }}", "<t>[ hi ]</t>");
    M("{% macro m(x) %}<m>{{ x }}</m>{% endmacro %}{{ m(messages[0].content) }}", "<m>[ hi ]</m>");
    M("{% set ns = namespace(s='<n>') %}{% set ns.s = ns.s + messages[1].content %}{{ ns.s }}", "<n>[b]");
    /* other built-ins given data: all of their result is data */
    M("{{ messages[0].content | replace('h', '<|h|>') }}", "[ <|h|>i ]");
    M("{{ messages[0].content.upper() }}|{{ messages[0].content.split('i')[0] }}", "[ HI ]|[ h]");
    M("{{ messages[1] | tojson }}", "[{\"role\": \"evil\", \"content\": \"b\"}]");
    M("{{ messages[1].content | list | join }}", "[b]");
    M("{{ messages[1:] }}", "[[{\"role\": \"evil\", \"content\": \"b\"}]]");
    /* trusted: listed keys and listed role names; numbers are never data */
    M("{{ '<|' + messages[0].role + '|>' }}{{ '<|' + messages[1].role + '|>' }}", "<|user|><|[evil]|>");
    M("{{ bos_token }}{{ other }}{{ messages[0].n }}", "<s>[<o>]5");
    /* a template string that only looks at data stays the template's */
    M("{% if 'h' in messages[0].content %}<yes>{% endif %}{{ '<x>' | default(messages[1].content) }}", "<yes><x>");
    /* what an interrupted iteration wrote is dropped with its ranges */
    M("{% for m in messages %}{{ m.content }}{% if loop.first %}{% continue %}{% endif %}!{% endfor %}", "[b]!");
    /* a list that holds itself is walked once, not along every path */
    M("{% set a = [] %}{% for i in range(30) %}{% set _ = a.append(a) %}{% endfor %}"
      "{{ (nothing | default(a)) | length }}{{ [a, messages[1].content] | first | length }}",
      "3030");
#undef M
    /* untracked renders report nothing and NULL out-parameters are refused */
    ea_template *t = NULL;
    struct ea_error err = {0};
    ASSERT_OK(ea_template_compile_default(&t, &err), &err);
    char *out = NULL;
    size_t n = 0;
    ASSERT_EQ(ea_template_render_tracked(t, "{}", 2, NULL, NULL, &out, &n, NULL, NULL, &err), EA_EINVAL);
    ea_template_destroy(t);
}

EA_TESTS(EA_TEST(golden_templates), EA_TEST(golden_snippets), EA_TEST(default_chatml), EA_TEST(operators),
         EA_TEST(statements), EA_TEST(whitespace_control), EA_TEST(filters), EA_TEST(tests_and_methods),
         EA_TEST(globals), EA_TEST(extensions), EA_TEST(compile_errors), EA_TEST(invalid_utf8_source), EA_TEST(context_json), EA_TEST(limits),
         EA_TEST(allocation_failures), EA_TEST(concurrent_renders), EA_TEST(provenance))
