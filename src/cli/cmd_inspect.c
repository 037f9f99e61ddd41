/* cmd_inspect.c - `edgeagent inspect FILE [--json] [--full]`: metadata,
 * tensor table, parameter count and an architecture summary of a GGUF file.
 * Long arrays and strings are abbreviated unless --full is given.
 * Does not hold: any model loading; it reads the GGUF layer only. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "edgeagent/gguf.h"
#include "util/buf.h"

/* The listing is built in memory (so --json is whole or absent). With
 * --full every metadata byte prints as at most ~8 (escapes, separators,
 * numbers in decimal); real files carry at most tens of MB of metadata
 * (256k-token vocabularies with merges), so 1 GiB refuses only what no
 * model file holds, with an error instead of a cut listing. */
#define INSPECT_MAX_OUTPUT ((size_t)1 << 30)
#define ARRAY_HEAD 8     /* elements shown of a long array */
#define STRING_HEAD 120  /* bytes shown of a long string */

struct opts {
    bool json, full;
};

/* ---- text output ------------------------------------------------------- */

static void text_str(struct ea_buf *b, struct ea_gguf_str s, bool full)
{
    uint64_t n = s.len;
    if (!full && n > STRING_HEAD)
        n = STRING_HEAD;
    ea__buf_putc(b, '"');
    for (uint64_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '\n')
            ea__buf_puts(b, "\\n");
        else if (c == '"' || c == '\\')
            ea__buf_printf(b, "\\%c", c);
        else if (c < 0x20 || c == 0x7F)
            ea__buf_printf(b, "\\x%02x", c);
        else
            ea__buf_putc(b, (char)c);
    }
    ea__buf_putc(b, '"');
    if (n < s.len)
        ea__buf_printf(b, "... (%" PRIu64 " bytes)", s.len);
}

static void text_scalar(struct ea_buf *b, const struct ea_gguf_value *v)
{
    switch (v->type) {
    case EA_GGUF_UINT8: case EA_GGUF_UINT16: case EA_GGUF_UINT32: case EA_GGUF_UINT64:
        ea__buf_printf(b, "%" PRIu64, v->v.u64);
        break;
    case EA_GGUF_INT8: case EA_GGUF_INT16: case EA_GGUF_INT32: case EA_GGUF_INT64:
        ea__buf_printf(b, "%" PRId64, v->v.i64);
        break;
    case EA_GGUF_FLOAT32: case EA_GGUF_FLOAT64: ea__buf_printf(b, "%.9g", v->v.f64); break;
    case EA_GGUF_BOOL: ea__buf_puts(b, v->v.b ? "true" : "false"); break;
    default: break;
    }
}

static void fixed_elem(const struct ea_gguf_value *arr, uint64_t i, struct ea_gguf_value *out)
{
    out->type = arr->v.arr.elem_type;
    switch (out->type) {
    case EA_GGUF_FLOAT32: case EA_GGUF_FLOAT64: out->v.f64 = ea_gguf_arr_f64(arr, i); break;
    case EA_GGUF_INT8: case EA_GGUF_INT16: case EA_GGUF_INT32: case EA_GGUF_INT64:
        out->v.i64 = ea_gguf_arr_i64(arr, i);
        break;
    case EA_GGUF_BOOL: out->v.b = ea_gguf_arr_u64(arr, i) != 0; break;
    default: out->v.u64 = ea_gguf_arr_u64(arr, i); break;
    }
}

static void text_value(struct ea_buf *b, const struct ea_gguf_value *v, bool full)
{
    if (v->type == EA_GGUF_STRING) {
        text_str(b, v->v.str, full);
        return;
    }
    if (v->type != EA_GGUF_ARRAY) {
        text_scalar(b, v);
        return;
    }
    uint64_t n = v->v.arr.n, shown = full || n <= ARRAY_HEAD ? n : ARRAY_HEAD;
    ea__buf_printf(b, "[%s x %" PRIu64 "] [", ea_gguf_vtype_name(v->v.arr.elem_type), n);
    for (uint64_t i = 0; i < shown; i++) {
        if (i)
            ea__buf_puts(b, ", ");
        if (v->v.arr.elem_type == EA_GGUF_STRING)
            text_str(b, v->v.arr.strs[i], false);
        else if (v->v.arr.elem_type == EA_GGUF_ARRAY)
            text_value(b, &v->v.arr.arrs[i], full);
        else {
            struct ea_gguf_value e;
            fixed_elem(v, i, &e);
            text_scalar(b, &e);
        }
    }
    if (shown < n)
        ea__buf_printf(b, ", ... %" PRIu64 " more", n - shown);
    ea__buf_putc(b, ']');
}

/* ---- JSON output ------------------------------------------------------- */

static void json_scalar(struct ea_buf *b, const struct ea_gguf_value *v)
{
    if ((v->type == EA_GGUF_FLOAT32 || v->type == EA_GGUF_FLOAT64) &&
        (v->v.f64 != v->v.f64 || v->v.f64 - v->v.f64 != 0))
        ea__buf_puts(b, "null"); /* NaN/inf are not JSON */
    else
        text_scalar(b, v);
}

static void json_value(struct ea_buf *b, const struct ea_gguf_value *v, bool full)
{
    if (v->type == EA_GGUF_STRING) {
        ea__buf_json_str(b, v->v.str.ptr, (size_t)v->v.str.len);
        return;
    }
    if (v->type != EA_GGUF_ARRAY) {
        json_scalar(b, v);
        return;
    }
    uint64_t n = v->v.arr.n, shown = full || n <= ARRAY_HEAD ? n : ARRAY_HEAD;
    ea__buf_printf(b, "{\"elem_type\":\"%s\",\"n\":%" PRIu64 ",\"truncated\":%s,\"values\":[",
                   ea_gguf_vtype_name(v->v.arr.elem_type), n, shown < n ? "true" : "false");
    for (uint64_t i = 0; i < shown; i++) {
        if (i)
            ea__buf_putc(b, ',');
        if (v->v.arr.elem_type == EA_GGUF_STRING)
            ea__buf_json_str(b, v->v.arr.strs[i].ptr, (size_t)v->v.arr.strs[i].len);
        else if (v->v.arr.elem_type == EA_GGUF_ARRAY)
            json_value(b, &v->v.arr.arrs[i], full);
        else {
            struct ea_gguf_value e;
            fixed_elem(v, i, &e);
            json_scalar(b, &e);
        }
    }
    ea__buf_puts(b, "]}");
}

/* ---- summary ----------------------------------------------------------- */

struct summary {
    char arch[64];
    uint64_t n_params, weight_bytes;
    uint64_t layers, embd, ff, heads, heads_kv, ctx, n_vocab;
    bool has_layers, has_embd, has_ff, has_heads, has_heads_kv, has_ctx;
    double rope_base;
    bool has_rope;
    char tokenizer[32];
    bool tied;
};

static void summarize(const ea_gguf *g, struct summary *s)
{
    memset(s, 0, sizeof *s);
    struct ea_gguf_str str;
    if (ea_gguf_get_str(g, "general.architecture", &str, NULL) == EA_OK)
        snprintf(s->arch, sizeof s->arch, "%.*s", (int)(str.len < 60 ? str.len : 60), str.ptr);
    if (ea_gguf_get_str(g, "tokenizer.ggml.model", &str, NULL) == EA_OK)
        snprintf(s->tokenizer, sizeof s->tokenizer, "%.*s", (int)(str.len < 30 ? str.len : 30),
                 str.ptr);
    for (uint64_t i = 0; i < ea_gguf_n_tensors(g); i++) {
        const struct ea_gguf_tensor *t = ea_gguf_tensor_at(g, i);
        uint64_t n = 1;
        for (uint32_t d = 0; d < t->n_dims; d++)
            n *= t->ne[d];
        s->n_params += n;
        s->weight_bytes += t->size;
    }
    char key[128];
#define GETU(k, field, has)                                                        \
    snprintf(key, sizeof key, "%s.%s", s->arch, k);                                \
    s->has = ea_gguf_get_u64(g, key, &s->field, NULL) == EA_OK;
    GETU("block_count", layers, has_layers);
    GETU("embedding_length", embd, has_embd);
    GETU("feed_forward_length", ff, has_ff);
    GETU("attention.head_count", heads, has_heads);
    GETU("attention.head_count_kv", heads_kv, has_heads_kv);
    GETU("context_length", ctx, has_ctx);
#undef GETU
    snprintf(key, sizeof key, "%s.rope.freq_base", s->arch);
    s->has_rope = ea_gguf_get_f64(g, key, &s->rope_base, NULL) == EA_OK;
    const struct ea_gguf_value *toks;
    if (ea_gguf_get_arr(g, "tokenizer.ggml.tokens", EA_GGUF_STRING, &toks, NULL) == EA_OK)
        s->n_vocab = toks->v.arr.n;
    s->tied = ea_gguf_n_tensors(g) > 0 && ea_gguf_find_tensor(g, "token_embd.weight") &&
              !ea_gguf_find_tensor(g, "output.weight");
}

static void print_text(const ea_gguf *g, const char *path, const struct summary *s, bool full,
                       struct ea_buf *b)
{
    char n1[32], n2[32];
    ea__buf_printf(b, "file:          %s\n", path);
    ea__buf_printf(b, "format:        GGUF v%u, %s bytes, alignment %u, data at byte %" PRIu64 "\n",
                   ea_gguf_version(g), cli_thousands(ea_gguf_file_size(g), n1, sizeof n1),
                   ea_gguf_alignment(g), ea_gguf_data_offset(g));
    ea__buf_printf(b, "architecture:  %s\n", s->arch[0] ? s->arch : "(none)");
    ea__buf_printf(b, "tensors:       %" PRIu64 "\n", ea_gguf_n_tensors(g));
    ea__buf_printf(b, "parameters:    %s\n", cli_thousands(s->n_params, n1, sizeof n1));
    ea__buf_printf(b, "weights:       %s bytes (%.2f MiB)\n",
                   cli_thousands(s->weight_bytes, n2, sizeof n2),
                   (double)s->weight_bytes / (1024.0 * 1024.0));
    ea__buf_puts(b, "summary:      ");
    if (s->has_layers)
        ea__buf_printf(b, " %" PRIu64 " layers,", s->layers);
    if (s->has_embd)
        ea__buf_printf(b, " n_embd %" PRIu64 ",", s->embd);
    if (s->has_ff)
        ea__buf_printf(b, " n_ff %" PRIu64 ",", s->ff);
    if (s->has_heads)
        ea__buf_printf(b, " heads %" PRIu64, s->heads);
    if (s->has_heads_kv)
        ea__buf_printf(b, "/%" PRIu64 " kv", s->heads_kv);
    if (s->has_heads)
        ea__buf_putc(b, ',');
    if (s->has_ctx)
        ea__buf_printf(b, " context %" PRIu64 ",", s->ctx);
    if (s->has_rope)
        ea__buf_printf(b, " rope base %g,", s->rope_base);
    ea__buf_printf(b, " vocab %" PRIu64 " (%s)%s\n", s->n_vocab,
                   s->tokenizer[0] ? s->tokenizer : "no tokenizer",
                   s->tied ? ", tied embeddings" : "");

    ea__buf_printf(b, "\nmetadata (%" PRIu64 " keys):\n", ea_gguf_n_kv(g));
    for (uint64_t i = 0; i < ea_gguf_n_kv(g); i++) {
        const struct ea_gguf_kv *kv = ea_gguf_kv_at(g, i);
        ea__buf_printf(b, "  %-44s %-8s ", kv->key, ea_gguf_vtype_name(kv->value.type));
        text_value(b, &kv->value, full);
        ea__buf_putc(b, '\n');
    }
    ea__buf_printf(b, "\ntensors (%" PRIu64 "):\n", ea_gguf_n_tensors(g));
    ea__buf_printf(b, "  %5s  %-34s %-7s %-24s %12s %12s\n", "#", "name", "type", "shape",
                   "offset", "bytes");
    for (uint64_t i = 0; i < ea_gguf_n_tensors(g); i++) {
        const struct ea_gguf_tensor *t = ea_gguf_tensor_at(g, i);
        char shape[96] = "";
        size_t o = 0;
        for (uint32_t d = 0; d < t->n_dims && o < sizeof shape; d++)
            o += (size_t)snprintf(shape + o, sizeof shape - o, d ? " x %" PRIu64 : "%" PRIu64,
                                  t->ne[d]);
        ea__buf_printf(b, "  %5" PRIu64 "  %-34s %-7s %-24s %12" PRIu64 " %12" PRIu64 "\n", i,
                       t->name, ea_type_info(t->type)->name, shape,
                       ea_gguf_data_offset(g) + t->offset, t->size);
    }
}

static void print_json(const ea_gguf *g, const char *path, const struct summary *s, bool full,
                       struct ea_buf *b)
{
    ea__buf_puts(b, "{\"file\":");
    ea__buf_json_str(b, path, strlen(path));
    ea__buf_printf(b,
                   ",\"gguf_version\":%u,\"file_size\":%" PRIu64 ",\"alignment\":%u,"
                   "\"data_offset\":%" PRIu64 ",\"architecture\":",
                   ea_gguf_version(g), ea_gguf_file_size(g), ea_gguf_alignment(g),
                   ea_gguf_data_offset(g));
    if (s->arch[0])
        ea__buf_json_str(b, s->arch, strlen(s->arch));
    else
        ea__buf_puts(b, "null");
    ea__buf_printf(b, ",\"n_tensors\":%" PRIu64 ",\"n_params\":%" PRIu64
                      ",\"weights_bytes\":%" PRIu64 ",\"summary\":{",
                   ea_gguf_n_tensors(g), s->n_params, s->weight_bytes);
    bool first = true;
#define FIELD(has, name, val)                                                      \
    if (has) {                                                                     \
        ea__buf_printf(b, "%s\"%s\":%" PRIu64, first ? "" : ",", name, val);       \
        first = false;                                                             \
    }
    FIELD(s->has_layers, "n_layer", s->layers);
    FIELD(s->has_embd, "n_embd", s->embd);
    FIELD(s->has_ff, "n_ff", s->ff);
    FIELD(s->has_heads, "n_head", s->heads);
    FIELD(s->has_heads_kv, "n_head_kv", s->heads_kv);
    FIELD(s->has_ctx, "n_ctx", s->ctx);
    FIELD(true, "n_vocab", s->n_vocab);
#undef FIELD
    if (s->has_rope)
        ea__buf_printf(b, ",\"rope_freq_base\":%.9g", s->rope_base);
    ea__buf_printf(b, ",\"tied_embeddings\":%s,\"tokenizer\":", s->tied ? "true" : "false");
    if (s->tokenizer[0])
        ea__buf_json_str(b, s->tokenizer, strlen(s->tokenizer));
    else
        ea__buf_puts(b, "null");
    ea__buf_puts(b, "},\"metadata\":[");
    for (uint64_t i = 0; i < ea_gguf_n_kv(g); i++) {
        const struct ea_gguf_kv *kv = ea_gguf_kv_at(g, i);
        ea__buf_puts(b, i ? ",{\"key\":" : "{\"key\":");
        ea__buf_json_str(b, kv->key, strlen(kv->key));
        ea__buf_printf(b, ",\"type\":\"%s\",\"value\":", ea_gguf_vtype_name(kv->value.type));
        json_value(b, &kv->value, full);
        ea__buf_putc(b, '}');
    }
    ea__buf_puts(b, "],\"tensors\":[");
    for (uint64_t i = 0; i < ea_gguf_n_tensors(g); i++) {
        const struct ea_gguf_tensor *t = ea_gguf_tensor_at(g, i);
        ea__buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        ea__buf_json_str(b, t->name, strlen(t->name));
        ea__buf_printf(b, ",\"type\":\"%s\",\"shape\":[", ea_type_info(t->type)->name);
        for (uint32_t d = 0; d < t->n_dims; d++)
            ea__buf_printf(b, d ? ",%" PRIu64 : "%" PRIu64, t->ne[d]);
        ea__buf_printf(b, "],\"offset\":%" PRIu64 ",\"bytes\":%" PRIu64 "}",
                       ea_gguf_data_offset(g) + t->offset, t->size);
    }
    ea__buf_puts(b, "]}\n");
}

int cmd_inspect(int argc, char **argv)
{
    struct opts o = {0};
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            o.json = true;
        else if (strcmp(argv[i], "--full") == 0)
            o.full = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: edgeagent inspect FILE.gguf [--json] [--full]\n"
                   "  --json  machine-readable output\n"
                   "  --full  do not abbreviate long arrays and strings\n");
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            cli_errorf("inspect", "unknown option '%s'", argv[i]);
            return 2;
        } else if (!path)
            path = argv[i];
        else {
            cli_errorf("inspect", "one file at a time ('%s' is extra)", argv[i]);
            return 2;
        }
    }
    if (!path) {
        cli_errorf("inspect", "usage: edgeagent inspect FILE.gguf [--json] [--full]");
        return 2;
    }
    struct ea_error err = {0};
    ea_gguf *g = NULL;
    if (ea_gguf_open(path, &g, &err) != EA_OK) {
        cli_error("inspect", &err);
        return 1;
    }
    struct summary s;
    summarize(g, &s);
    struct ea_buf b;
    ea__buf_init(&b, INSPECT_MAX_OUTPUT);
    if (o.json)
        print_json(g, path, &s, o.full, &b);
    else
        print_text(g, path, &s, o.full, &b);
    int rc = 0;
    if (b.toobig) {
        cli_errorf("inspect", "%s: the listing is larger than %zu MiB%s", path,
                   INSPECT_MAX_OUTPUT >> 20, o.full ? " (try without --full)" : "");
        rc = 1;
    } else if (b.len && fwrite(b.data, 1, b.len, stdout) != b.len)
        rc = 1;
    ea__buf_release(&b);
    ea_gguf_close(g);
    return rc;
}
