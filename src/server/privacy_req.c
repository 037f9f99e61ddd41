/* privacy_req.c - the privacy guard on a request that may leave the device
 * (a task with `privacy: redact`): every text of the body — message
 * contents (strings and text parts) of every role, tool-call arguments,
 * completion prompts — goes through the detector with one placeholder map
 * for the whole request (the same value, the same placeholder), and the
 * body is written again with the placeholders. Remote upstreams are given
 * only that body (upstream_openai.c), and restore the answer's placeholders
 * as it streams. Fail closed: any error leaves nothing redacted and the
 * caller keeps the request on the device.
 * Does not hold: detection (src/privacy/), routing (route.c).
 */
#include <string.h>

#include <jansson.h>

#include "edgeagent/privacy.h"
#include "server/server_int.h"

/* Texts of one request the guard rewrites (bounded by the body itself: at
 * most one per JSON string). */
struct texts {
    json_t **node;  /* the JSON string holding it */
    enum ea_privacy_text_form *form;
    size_t n, cap;
};

static bool add(struct texts *t, json_t *s, enum ea_privacy_text_form form)
{
    if (!json_is_string(s) || !json_string_length(s))
        return true;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        json_t **nn = ea_realloc(t->node, sizeof *nn * cap);
        if (!nn)
            return false;
        t->node = nn;
        enum ea_privacy_text_form *nf = ea_realloc(t->form, sizeof *nf * cap);
        if (!nf)
            return false;
        t->form = nf;
        t->cap = cap;
    }
    t->node[t->n] = s;
    t->form[t->n++] = form;
    return true;
}

/* Every text of a chat message or a completion body. */
static bool collect(json_t *root, struct texts *t)
{
    bool ok = true;
    size_t i, k;
    json_t *m, *part, *tc;
    json_array_foreach(json_object_get(root, "messages"), i, m) {
        json_t *content = json_object_get(m, "content");
        if (json_is_string(content))
            ok &= add(t, content, EA_PRIVACY_PLAIN);
        json_array_foreach(content, k, part)
            ok &= add(t, json_object_get(part, "text"), EA_PRIVACY_PLAIN);
        json_array_foreach(json_object_get(m, "tool_calls"), k, tc)
            ok &= add(t, json_object_get(json_object_get(tc, "function"), "arguments"), EA_PRIVACY_JSON);
    }
    json_t *prompt = json_object_get(root, "prompt");
    if (json_is_string(prompt))
        ok &= add(t, prompt, EA_PRIVACY_PLAIN);
    json_array_foreach(prompt, i, part)
        ok &= add(t, part, EA_PRIVACY_PLAIN);
    return ok;
}

bool ea__privacy_redact_body(const ea_privacy_detector *d, const char *body, size_t len,
                             ea_privacy_map **map, char **out, size_t *out_len, struct ea_error *err)
{
    *map = NULL;
    *out = NULL;
    json_t *root = json_loadb(body, len, JSON_ALLOW_NUL, NULL);
    struct texts t = {0};
    const char **src = NULL;
    size_t *lens = NULL, *olens = NULL;
    char **outs = NULL;
    bool ok = false;
    if (!json_is_object(root) || !collect(root, &t)) {
        ea_error_set(err, EA_ENOMEM, "privacy: out of memory");
        goto done;
    }
    if (ea_privacy_map_create(d, map, err))
        goto done;
    size_t n = t.n ? t.n : 1;
    src = ea_calloc(n, sizeof *src);
    lens = ea_calloc(n, sizeof *lens);
    olens = ea_calloc(n, sizeof *olens);
    outs = ea_calloc(n, sizeof *outs);
    if (!src || !lens || !olens || !outs) {
        ea_error_set(err, EA_ENOMEM, "privacy: out of memory");
        goto done;
    }
    for (size_t i = 0; i < t.n; i++) {
        src[i] = json_string_value(t.node[i]);
        lens[i] = json_string_length(t.node[i]);
    }
    if (t.n && ea_privacy_redact_texts(d, *map, t.n, src, lens, t.form, outs, olens, err))
        goto done;
    for (size_t i = 0; i < t.n; i++)
        if (json_string_setn_nocheck(t.node[i], outs[i], olens[i])) {
            ea_error_set(err, EA_ENOMEM, "privacy: out of memory");
            goto done;
        }
    char *dumped = json_dumps(root, JSON_COMPACT);
    if (!dumped) {
        ea_error_set(err, EA_ENOMEM, "privacy: out of memory");
        goto done;
    }
    *out_len = strlen(dumped);
    *out = ea_malloc(*out_len + 1);
    if (*out)
        memcpy(*out, dumped, *out_len + 1);
    free(dumped);
    ok = *out != NULL;
    if (!ok)
        ea_error_set(err, EA_ENOMEM, "privacy: out of memory");
done:
    for (size_t i = 0; outs && i < t.n; i++)
        ea_free(outs[i]);
    ea_free(outs);
    ea_free(olens);
    ea_free(lens);
    ea_free(src);
    ea_free(t.node);
    ea_free(t.form);
    json_decref(root);
    if (!ok) {
        ea_privacy_map_destroy(*map);
        *map = NULL;
    }
    return ok;
}
