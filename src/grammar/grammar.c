/* grammar.c - the public compile entry points of the grammar engine (JSON
 * Schema, any JSON object, regex, choice list), the optional literal prefix
 * and suffix around them, and the grammar's lifetime.
 * Does not hold: the front ends (schema.c, regex.c), automata (fsa.c), or
 * matching (matcher.c).
 */
#include "grammar/grammar_int.h"

#include <string.h>

static void grammar_free(ea_grammar *g)
{
    if (!g)
        return;
    if (g->cache)
        for (uint32_t p = 0; p < g->n_pos; p++)
            ea__gr_posmask_free(atomic_load_explicit(&g->cache[p], memory_order_relaxed));
    ea_free((void *)g->cache);
    ea_free(g->pos_rule);
    ea_free(g->pos_flags);
    ea_free(g->call_off);
    ea_free(g->calls);
    ea_free(g->rules);
    ea_free(g->cls_store);
    ea_free(g->next_store);
    ea_free(g->follow);
    ea_free(g->unenforced);
    ea_free(g);
}

void ea_grammar_destroy(ea_grammar *g) { grammar_free(g); }

const char *ea_grammar_unenforced(const ea_grammar *g) { return g->unenforced ? g->unenforced : ""; }
size_t ea_grammar_n_positions(const ea_grammar *g) { return g->n_pos; }
const ea_grammar_vocab *ea_grammar_vocab_of(const ea_grammar *g) { return g->v; }

typedef ea_status (*front_fn)(struct gr_build *b, const void *arg, uint32_t *root);

/* Runs a front end, wraps prefix/suffix around its root and links. */
static ea_status compile(const ea_grammar_vocab *v, const struct ea_grammar_options *opts, front_fn fn,
                         const void *arg, ea_grammar **out, struct ea_error *err)
{
    struct gr_build b;
    ea_grammar *g = NULL;
    ea_status st;
    if (!v || !out)
        return ea_error_set(err, EA_EINVAL, "grammar: NULL argument");
    *out = NULL;
    struct ea_error local;
    if (!err)
        err = &local;
    ea_error_clear(err);
    ea__gr_build_init(&b, opts && opts->strict, err);
    uint32_t root;
    if ((st = fn(&b, arg, &root)) != EA_OK)
        goto out;
    if (opts && ((opts->prefix && opts->prefix[0]) || (opts->suffix && opts->suffix[0]) || opts->max_repeat > 1)) {
        uint32_t w;
        const char *pre = opts->prefix ? opts->prefix : "", *suf = opts->suffix ? opts->suffix : "";
        const char *sep = opts->separator ? opts->separator : "";
        if (opts->max_repeat > EA_GRAMMAR_MAX_REPEAT) {
            st = ea_error_set(err, EA_ETOOBIG, "grammar: max_repeat %u above %u", opts->max_repeat,
                              EA_GRAMMAR_MAX_REPEAT);
            goto out;
        }
        struct gr_ast *k[3] = {ea__gr_lit(&b, pre, strlen(pre)), ea__gr_call(&b, root),
                               ea__gr_lit(&b, suf, strlen(suf))};
        struct gr_ast *unit = ea__gr_cat(&b, 3, k);
        if (opts->max_repeat > 1) {
            struct gr_ast *k2[3] = {ea__gr_lit(&b, sep, strlen(sep)), ea__gr_lit(&b, pre, strlen(pre)),
                                    ea__gr_call(&b, root)};
            struct gr_ast *k3[2] = {ea__gr_cat(&b, 3, k2), ea__gr_lit(&b, suf, strlen(suf))};
            unit = ea__gr_cat2(&b, unit, ea__gr_rep(&b, ea__gr_cat(&b, 2, k3), 0, opts->max_repeat - 1));
        }
        if ((st = ea__gr_rule_new(&b, &w)) != EA_OK || (st = ea__gr_rule_set_ast(&b, w, unit)) != EA_OK)
            goto out;
        root = w;
    }
    if (!(g = ea_calloc(1, sizeof *g))) {
        st = ea_error_set(err, EA_ENOMEM, "grammar: out of memory");
        goto out;
    }
    g->v = v;
    if ((st = ea__gr_link(&b, root, g, err)) != EA_OK)
        goto out;
    ea__gr_share(g);
    if (!(g->unenforced = ea_strdup(b.unenforced.data ? b.unenforced.data : ""))) {
        st = ea_error_set(err, EA_ENOMEM, "grammar: out of memory");
        goto out;
    }
    *out = g;
    g = NULL;
out:
    if (st != EA_OK && err->status == EA_OK)
        ea_error_set(err, st, "grammar: %s", ea_status_message(st));
    grammar_free(g);
    ea__gr_build_release(&b);
    return st;
}

static ea_status front_schema(struct gr_build *b, const void *arg, uint32_t *root)
{
    return ea__gr_schema_root(b, arg, root);
}

ea_status ea_grammar_compile_schema(const ea_grammar_vocab *v, const json_t *schema,
                                    const struct ea_grammar_options *opts, ea_grammar **out,
                                    struct ea_error *err)
{
    if (!schema)
        return ea_error_set(err, EA_EINVAL, "grammar: NULL schema");
    return compile(v, opts, front_schema, schema, out, err);
}

ea_status ea_grammar_compile_schema_text(const ea_grammar_vocab *v, const char *text, size_t len,
                                         const struct ea_grammar_options *opts, ea_grammar **out,
                                         struct ea_error *err)
{
    if (!text)
        return ea_error_set(err, EA_EINVAL, "grammar: NULL schema");
    if (len > EA_GRAMMAR_MAX_SCHEMA_TEXT)
        return ea_error_set(err, EA_ETOOBIG, "grammar: schema of %zu bytes (limit %u)", len,
                            EA_GRAMMAR_MAX_SCHEMA_TEXT);
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return ea_error_set(err, EA_EFORMAT, "grammar: schema is not JSON: %s (line %d)", je.text, je.line);
    ea_status st = ea_grammar_compile_schema(v, j, opts, out, err);
    json_decref(j);
    return st;
}

static ea_status front_object(struct gr_build *b, const void *arg, uint32_t *root)
{
    (void)arg;
    return ea__gr_rule_json_object(b, root);
}

ea_status ea_grammar_compile_json_object(const ea_grammar_vocab *v,
                                         const struct ea_grammar_options *opts, ea_grammar **out,
                                         struct ea_error *err)
{
    return compile(v, opts, front_object, NULL, out, err);
}

struct regex_arg {
    const char *p;
    size_t n;
};

static ea_status front_regex(struct gr_build *b, const void *arg, uint32_t *root)
{
    const struct regex_arg *r = arg;
    struct gr_ast *a;
    ea_status st = ea__gr_regex_ast(b, r->p, r->n, false, true, &a);
    if (st != EA_OK)
        return st;
    if ((st = ea__gr_rule_new(b, root)) != EA_OK)
        return st;
    return ea__gr_rule_set_ast(b, *root, a);
}

ea_status ea_grammar_compile_regex(const ea_grammar_vocab *v, const char *pattern, size_t len,
                                   const struct ea_grammar_options *opts, ea_grammar **out,
                                   struct ea_error *err)
{
    if (!pattern)
        return ea_error_set(err, EA_EINVAL, "grammar: NULL pattern");
    if (len > EA_GRAMMAR_MAX_SCHEMA_TEXT)
        return ea_error_set(err, EA_ETOOBIG, "grammar: pattern of %zu bytes", len);
    struct regex_arg r = {pattern, len};
    return compile(v, opts, front_regex, &r, out, err);
}

struct choice_arg {
    const char *const *c;
    size_t n;
};

static ea_status front_choice(struct gr_build *b, const void *arg, uint32_t *root)
{
    const struct choice_arg *c = arg;
    struct gr_ast **alts = ea__gr_alloc(&b->arena, c->n * sizeof *alts);
    if (!alts)
        return ea_error_set(b->err, EA_ENOMEM, "grammar: out of memory");
    for (size_t i = 0; i < c->n; i++) {
        if (!c->c[i])
            return ea_error_set(b->err, EA_EINVAL, "grammar: choice %zu is NULL", i);
        alts[i] = ea__gr_lit(b, c->c[i], strlen(c->c[i]));
    }
    ea_status st = ea__gr_rule_new(b, root);
    if (st != EA_OK)
        return st;
    return ea__gr_rule_set_ast(b, *root, ea__gr_alt(b, (uint32_t)c->n, alts));
}

ea_status ea_grammar_compile_choice(const ea_grammar_vocab *v, const char *const *choices,
                                    size_t n, const struct ea_grammar_options *opts,
                                    ea_grammar **out, struct ea_error *err)
{
    if (!choices || n == 0)
        return ea_error_set(err, EA_EINVAL, "grammar: no choices");
    if (n > EA_GRAMMAR_MAX_STATES)
        return ea_error_set(err, EA_ETOOBIG, "grammar: %zu choices", n);
    struct choice_arg c = {choices, n};
    return compile(v, opts, front_choice, &c, out, err);
}

/* Rewrites every local "$ref": "#..." inside x to point below base (the
 * JSON pointer where x now sits in the combined schema). */
static bool rebase_refs(json_t *x, const char *base, unsigned depth)
{
    if (depth > EA_GRAMMAR_MAX_DEPTH * 4)
        return false;
    if (json_is_array(x)) {
        size_t i;
        json_t *e;
        json_array_foreach(x, i, e) if (!rebase_refs(e, base, depth + 1)) return false;
        return true;
    }
    if (!json_is_object(x))
        return true;
    const char *k;
    json_t *v;
    json_object_foreach(x, k, v) {
        if (strcmp(k, "$ref") == 0 && json_is_string(v) && json_string_value(v)[0] == '#') {
            char buf[1024];
            snprintf(buf, sizeof buf, "#%s%s", base, json_string_value(v) + 1);
            if (json_string_set(v, buf))
                return false;
        } else if (!rebase_refs(v, base, depth + 1)) {
            return false;
        }
    }
    return true;
}

ea_status ea_grammar_compile_tools(const ea_grammar_vocab *v, const struct ea_grammar_tools *t,
                                   const struct ea_grammar_options *opts, ea_grammar **out,
                                   struct ea_error *err)
{
    if (!t || !json_is_array(t->tools))
        return ea_error_set(err, EA_EINVAL, "grammar: tools must be an array");
    const char *nk = t->name_key ? t->name_key : "name", *ak = t->args_key ? t->args_key : "arguments";
    json_t *alts = json_array(), *root = NULL;
    ea_status st = EA_OK;
    if (!alts)
        return ea_error_set(err, EA_ENOMEM, "grammar: out of memory");
    size_t i;
    json_t *tool;
    json_array_foreach(t->tools, i, tool) {
        const json_t *type = json_object_get(tool, "type");
        const json_t *fn = json_object_get(tool, "function");
        const json_t *name = json_object_get(fn, "name");
        if ((type && !(json_is_string(type) && strcmp(json_string_value(type), "function") == 0)) ||
            !json_is_string(name)) {
            st = ea_error_set(err, EA_EINVAL, "grammar: tools[%zu] is not a function tool with a name", i);
            goto done;
        }
        if (t->only && strcmp(t->only, json_string_value(name)) != 0)
            continue;
        const json_t *params = json_object_get(fn, "parameters");
        json_t *p = params ? json_deep_copy(params) : json_pack("{s:s,s:{}}", "type", "object", "properties");
        char base[512];
        snprintf(base, sizeof base, "%s/anyOf/%zu/properties/%s", t->array ? "/items" : "", json_array_size(alts), ak);
        json_t *m = p ? json_pack("{s:s,s:{s:{s:O},s:o},s:[s,s],s:b}", "type", "object", "properties", nk, "const",
                                  name, ak, p, "required", nk, ak, "additionalProperties", 0)
                      : NULL;
        if (!m || !rebase_refs(json_object_get(json_object_get(m, "properties"), ak), base, 0) ||
            json_array_append_new(alts, m)) {
            st = ea_error_set(err, EA_ENOMEM, "grammar: out of memory");
            goto done;
        }
    }
    if (json_array_size(alts) == 0) {
        st = ea_error_set(err, EA_EINVAL, "grammar: no tool %s%s", t->only ? "named " : "", t->only ? t->only : "given");
        goto done;
    }
    root = t->array ? json_pack("{s:s,s:{s:O},s:i}", "type", "array", "items", "anyOf", alts, "minItems", 1)
                    : json_pack("{s:O}", "anyOf", alts);
    if (root && t->array && t->max_items &&
        json_object_set_new(root, "maxItems", json_integer((json_int_t)t->max_items))) {
        st = ea_error_set(err, EA_ENOMEM, "grammar: out of memory");
        goto done;
    }
    if (!root) {
        st = ea_error_set(err, EA_ENOMEM, "grammar: out of memory");
        goto done;
    }
    st = ea_grammar_compile_schema(v, root, opts, out, err);
done:
    json_decref(root);
    json_decref(alts);
    return st;
}

