/* source.c - what `pull` is asked for: the catalog of short names, parsing
 * a source string, and picking a file from a Hugging Face file list (the
 * JSON of /api/models/ORG/REPO?blobs=true: "siblings" entries with
 * "rfilename", "size" and "lfs": {"sha256", "size"}).
 * Does not hold: any network access (pull.c). */
#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "edgeagent/store.h"
#include "util/buf.h"

#define DEFAULT_QUANT "Q4_K_M"
#define LIST_MAX 2048 /* bytes of the "what exists" list in an error */

/* Instruct GGUF repositories (see README "Model store and pull"). */
static const struct ea_store_catalog_entry catalog[] = {
    {"qwen2.5:0.5b", "Qwen/Qwen2.5-0.5B-Instruct-GGUF"},
    {"qwen2.5:1.5b", "Qwen/Qwen2.5-1.5B-Instruct-GGUF"},
    {"qwen3:0.6b", "unsloth/Qwen3-0.6B-GGUF"},
    {"qwen3:1.7b", "unsloth/Qwen3-1.7B-GGUF"},
    {"llama3.2:1b", "bartowski/Llama-3.2-1B-Instruct-GGUF"},
    {"llama3.2:3b", "bartowski/Llama-3.2-3B-Instruct-GGUF"},
    {"smollm2:135m", "bartowski/SmolLM2-135M-Instruct-GGUF"},
    {"smollm2:360m", "bartowski/SmolLM2-360M-Instruct-GGUF"},
    {"smollm2:1.7b", "bartowski/SmolLM2-1.7B-Instruct-GGUF"},
    {"tinyllama:1.1b", "TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF"},
};

const struct ea_store_catalog_entry *ea_store_catalog_at(size_t i)
{
    return i < sizeof catalog / sizeof catalog[0] ? &catalog[i] : NULL;
}

static bool ends_with_ci(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcasecmp(s + n - k, suf) == 0;
}

/* ORG/REPO: two non-empty segments of [A-Za-z0-9._-], not "." or "..". */
static bool repo_ok(const char *s, size_t n)
{
    const char *slash = memchr(s, '/', n);
    if (!slash || slash == s || slash == s + n - 1 || memchr(slash + 1, '/', n - (size_t)(slash - s) - 1))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!(isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-' || c == '/'))
            return false;
    }
    return !(s[0] == '.' || slash[1] == '.');
}

static bool quant_ok(const char *q)
{
    size_t n = strlen(q);
    if (n == 0 || n >= 32)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)q[i]) || q[i] == '_'))
            return false;
    return true;
}

static void upper(char *s)
{
    for (; *s; s++)
        *s = (char)toupper((unsigned char)*s);
}

/* File names inside a repository: no "..", no leading '/', printable. */
static bool file_ok(const char *f)
{
    if (!*f || f[0] == '/' || strstr(f, "..") || strlen(f) >= EA_STORE_NAME_MAX)
        return false;
    for (; *f; f++)
        if ((unsigned char)*f <= 0x20 || (unsigned char)*f >= 0x7F || *f == '?' || *f == '#' ||
            *f == '%')
            return false;
    return true;
}

ea_status ea_pull_parse_source(const char *src, struct ea_pull_source *o, struct ea_error *err)
{
    memset(o, 0, sizeof *o);
    if (!src || !*src)
        return ea_error_set(err, EA_EINVAL, "no source given");
    size_t len = strlen(src);
    if (len >= EA_STORE_URL_MAX)
        return ea_error_set(err, EA_ETOOBIG, "source is longer than %d bytes", EA_STORE_URL_MAX - 1);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)src[i] <= 0x20 || (unsigned char)src[i] >= 0x7F)
            return ea_error_set(err, EA_EINVAL, "source holds a space or a non-ASCII byte");

    if (strncmp(src, "https://", 8) == 0 || strncmp(src, "http://", 7) == 0) {
        const char *path = strchr(strchr(src, ':') + 3, '/');
        const char *end = src + strcspn(src, "?#");
        if (!path || path >= end)
            return ea_error_set(err, EA_EINVAL, "%.200s: the URL names no file", src);
        const char *base = end;
        while (base > path && base[-1] != '/')
            base--;
        size_t n = (size_t)(end - base);
        if (n == 0 || n >= sizeof o->file)
            return ea_error_set(err, EA_EINVAL, "%.200s: the URL names no file", src);
        memcpy(o->file, base, n);
        if (n <= 5 || !ends_with_ci(o->file, ".gguf") || !file_ok(o->file))
            return ea_error_set(err, EA_EINVAL, "%.200s: not a .gguf file URL", src);
        o->kind = EA_PULL_URL;
        snprintf(o->url, sizeof o->url, "%s", src);
        snprintf(o->name, sizeof o->name, "%.*s", (int)(n - 5), o->file);
        return EA_OK;
    }

    const char *rest = NULL;
    if (strncmp(src, "hf.co/", 6) == 0)
        rest = src + 6;
    else if (strncmp(src, "huggingface.co/", 15) == 0)
        rest = src + 15;
    if (!rest) {
        /* a catalog short name, optionally NAME:QUANT */
        for (size_t i = 0; i < sizeof catalog / sizeof catalog[0]; i++) {
            size_t k = strlen(catalog[i].name);
            if (strncasecmp(src, catalog[i].name, k) != 0 || (src[k] && src[k] != ':'))
                continue;
            o->kind = EA_PULL_HF_REPO;
            snprintf(o->repo, sizeof o->repo, "%s", catalog[i].repo);
            snprintf(o->quant, sizeof o->quant, "%s", src[k] ? src + k + 1 : DEFAULT_QUANT);
            if (!quant_ok(o->quant))
                return ea_error_set(err, EA_EINVAL, "%.200s: '%s' is not a quant type", src, src + k + 1);
            upper(o->quant);
            snprintf(o->name, sizeof o->name, "%s", src);
            for (char *p = o->name; *p && p < o->name + k; p++)
                *p = (char)tolower((unsigned char)*p);
            return EA_OK;
        }
        struct ea_buf b;
        ea__buf_init(&b, LIST_MAX);
        for (size_t i = 0; i < sizeof catalog / sizeof catalog[0]; i++)
            ea__buf_printf(&b, "%s%s", i ? ", " : "", catalog[i].name);
        ea_error_set(err, EA_ENOTFOUND,
                     "'%.200s' is not a known model name (%s) nor a source "
                     "(hf.co/ORG/REPO[:QUANT], hf.co/ORG/REPO/FILE.gguf, https://.../FILE.gguf)",
                     src, b.data ? b.data : "");
        ea__buf_release(&b);
        return EA_ENOTFOUND;
    }

    /* hf.co/ORG/REPO[:QUANT] or hf.co/ORG/REPO/FILE.gguf */
    const char *s1 = strchr(rest, '/');
    const char *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
    if (s2) {
        size_t rn = (size_t)(s2 - rest);
        if (!repo_ok(rest, rn) || rn >= sizeof o->repo)
            return ea_error_set(err, EA_EINVAL, "%.200s: '%.*s' is not ORG/REPO", src, (int)rn, rest);
        memcpy(o->repo, rest, rn);
        snprintf(o->file, sizeof o->file, "%s", s2 + 1);
        const char *base = strrchr(o->file, '/') ? strrchr(o->file, '/') + 1 : o->file;
        if (!file_ok(o->file) || !ends_with_ci(o->file, ".gguf") || strlen(base) <= 5)
            return ea_error_set(err, EA_EINVAL, "%.200s: '%s' is not a .gguf file name", src, s2 + 1);
        o->kind = EA_PULL_HF_FILE;
        size_t fl = strlen(o->file) - 5;
        snprintf(o->name, sizeof o->name, "%s/%.*s", o->repo, (int)fl, o->file);
        if (strlen(o->repo) + 1 + fl >= sizeof o->name)
            return ea_error_set(err, EA_ETOOBIG, "%.200s: name too long", src);
        return EA_OK;
    }
    const char *colon = strchr(rest, ':');
    size_t rn = colon ? (size_t)(colon - rest) : strlen(rest);
    if (!repo_ok(rest, rn) || rn >= sizeof o->repo)
        return ea_error_set(err, EA_EINVAL, "%.200s: '%.*s' is not ORG/REPO", src, (int)rn, rest);
    memcpy(o->repo, rest, rn);
    snprintf(o->quant, sizeof o->quant, "%s", colon ? colon + 1 : DEFAULT_QUANT);
    if (!quant_ok(o->quant))
        return ea_error_set(err, EA_EINVAL, "%.200s: '%s' is not a quant type", src, colon + 1);
    upper(o->quant);
    o->kind = EA_PULL_HF_REPO;
    snprintf(o->name, sizeof o->name, "%s:%s", o->repo, o->quant);
    return EA_OK;
}

/* The quant part of a GGUF file name: after the last '-', '_' or '.' run
 * that starts a token beginning with Q, IQ, F or BF ("x-Q4_K_M.gguf" ->
 * "Q4_K_M"). Used to list what a repository has. */
static void quant_of(const char *file, char *out, size_t cap)
{
    out[0] = '\0';
    size_t n = strlen(file);
    if (n < 5)
        return;
    n -= 5; /* ".gguf" */
    for (size_t i = n; i-- > 0;) {
        if (i && file[i - 1] != '-' && file[i - 1] != '.')
            continue;
        char c0 = (char)toupper((unsigned char)file[i]);
        char c1 = (char)toupper((unsigned char)file[i + 1]);
        if ((c0 == 'Q' && isdigit((unsigned char)file[i + 1])) || (c0 == 'I' && c1 == 'Q') ||
            (c0 == 'F' && isdigit((unsigned char)file[i + 1])) || (c0 == 'B' && c1 == 'F')) {
            snprintf(out, cap, "%.*s", (int)(n - i), file + i);
            upper(out);
            return;
        }
    }
}

/* file ends in quant + ".gguf", preceded by '-', '_' or '.' */
static bool has_quant(const char *file, const char *quant)
{
    size_t n = strlen(file), k = strlen(quant);
    if (n < k + 6 || strcasecmp(file + n - 5, ".gguf") != 0)
        return false;
    const char *q = file + n - 5 - k;
    char before = q[-1];
    return strncasecmp(q, quant, k) == 0 && (before == '-' || before == '_' || before == '.');
}

ea_status ea_pull_pick_file(const char *json, size_t len, const char *quant, const char *file,
                            char *picked, size_t picked_size, uint64_t *size, char sha256[65],
                            struct ea_error *err)
{
    json_error_t je;
    json_t *root = json_loadb(json, len, 0, &je);
    if (!root)
        return ea_error_set(err, EA_EFORMAT, "file list: %s", je.text);
    ea_status s = EA_OK;
    struct ea_buf have;
    ea__buf_init(&have, LIST_MAX);
    json_t *sib = json_is_object(root) ? json_object_get(root, "siblings") : NULL;
    if (!json_is_array(sib)) {
        s = ea_error_set(err, EA_EFORMAT, "file list: no \"siblings\" array");
        goto out;
    }
    size_t n_match = 0, i;
    json_t *e, *hit = NULL;
    json_array_foreach(sib, i, e) {
        const char *name = json_string_value(json_object_get(e, "rfilename"));
        if (!name || !ends_with_ci(name, ".gguf"))
            continue;
        bool match = file ? strcmp(name, file) == 0 : has_quant(name, quant);
        if (match) {
            n_match++;
            if (!hit)
                hit = e;
        }
        char q[32];
        quant_of(name, q, sizeof q);
        if (!file && q[0] && !(have.data && strstr(have.data, q)))
            ea__buf_printf(&have, "%s%s", have.len ? ", " : "", q);
    }
    if (n_match == 0) {
        if (file)
            s = ea_error_set(err, EA_ENOTFOUND, "the repository has no file '%.200s'", file);
        else
            s = ea_error_set(err, EA_ENOTFOUND, "the repository has no %s GGUF file; it has: %s",
                             quant, have.len ? have.data : "no GGUF files");
        goto out;
    }
    if (n_match > 1) {
        struct ea_buf names;
        ea__buf_init(&names, LIST_MAX);
        json_array_foreach(sib, i, e) {
            const char *name = json_string_value(json_object_get(e, "rfilename"));
            if (name && ends_with_ci(name, ".gguf") &&
                (file ? strcmp(name, file) == 0 : has_quant(name, quant)))
                ea__buf_printf(&names, "%s%s", names.len ? ", " : "", name);
        }
        s = ea_error_set(err, EA_EINVAL,
                         "the repository lists %zu %s files (%s); name one with hf.co/ORG/REPO/FILE.gguf",
                         n_match, file ? "such" : quant, names.data ? names.data : "");
        ea__buf_release(&names);
        goto out;
    }
    const char *name = json_string_value(json_object_get(hit, "rfilename"));
    if (!file_ok(name) || strlen(name) >= picked_size) {
        s = ea_error_set(err, EA_EFORMAT, "file list: unusable file name");
        goto out;
    }
    strcpy(picked, name);
    json_t *lfs = json_object_get(hit, "lfs");
    json_t *sz = json_object_get(lfs, "size");
    if (!sz)
        sz = json_object_get(hit, "size");
    *size = json_is_integer(sz) && json_integer_value(sz) >= 0 ? (uint64_t)json_integer_value(sz) : 0;
    const char *sha = json_string_value(json_object_get(lfs, "sha256"));
    sha256[0] = '\0';
    if (sha && strlen(sha) == 64) {
        bool hex = true;
        for (int k = 0; k < 64; k++)
            hex &= isxdigit((unsigned char)sha[k]) != 0;
        if (hex)
            for (int k = 0; k <= 64; k++)
                sha256[k] = (char)tolower((unsigned char)sha[k]);
    }
out:
    ea__buf_release(&have);
    json_decref(root);
    return s;
}
