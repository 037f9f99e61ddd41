/* gguf_write.c - canonical GGUF v3 writer.
 *
 * Metadata is encoded into a buffer as it is added; tensors are laid out in
 * the order added, each at the next multiple of the alignment, zero padded,
 * and the file ends padded to the alignment (as llama.cpp and gguf-py write
 * them, so reading a canonical file and writing it back is byte-identical).
 * Does not hold: validation of reads (gguf_read.c) or any quantization.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edgeagent/gguf.h"
#include "util/buf.h"

#define WRITER_META_MAX ((size_t)1 << 31)  /* 2 GiB of metadata is plenty */
#define FILL_CHUNK_BYTES ((size_t)16 << 20) /* rows per fill call: ~16 MiB */

struct wtensor {
    char *name;
    uint32_t type;
    uint32_t n_dims;
    uint64_t ne[EA_GGUF_MAX_DIMS];
    uint64_t size;
    uint64_t offset;
    const void *data;
    ea_gguf_fill_fn fill;
    void *ctx;
};

struct ea_gguf_writer {
    struct ea_buf meta; /* encoded kv records */
    uint64_t n_kv;
    char **keys;
    size_t keys_cap;
    struct wtensor *tensors;
    uint64_t n_tensors, tensors_cap;
    uint32_t alignment;
    ea_status sticky; /* first failure of an add, reported at write */
};

ea_gguf_writer *ea_gguf_writer_create(void)
{
    ea_gguf_writer *w = ea_calloc(1, sizeof *w);
    if (!w)
        return NULL;
    ea__buf_init(&w->meta, WRITER_META_MAX);
    w->alignment = EA_GGUF_DEFAULT_ALIGNMENT;
    return w;
}

void ea_gguf_writer_destroy(ea_gguf_writer *w)
{
    if (!w)
        return;
    ea__buf_release(&w->meta);
    for (uint64_t i = 0; i < w->n_kv; i++)
        ea_free(w->keys[i]);
    ea_free(w->keys);
    for (uint64_t i = 0; i < w->n_tensors; i++)
        ea_free(w->tensors[i].name);
    ea_free(w->tensors);
    ea_free(w);
}

static ea_status fail(ea_gguf_writer *w, ea_status s)
{
    if (!w->sticky)
        w->sticky = s;
    return s;
}

/* Starts a kv record: checks the key, appends key and type. */
static ea_status begin_kv(ea_gguf_writer *w, const char *key, uint32_t vt)
{
    if (!key || !*key)
        return fail(w, EA_EINVAL);
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->keys[i], key) == 0)
            return fail(w, EA_EINVAL);
    if (w->n_kv == w->keys_cap) {
        size_t cap = w->keys_cap ? w->keys_cap * 2 : 32;
        char **k = ea_realloc(w->keys, cap * sizeof *k);
        if (!k)
            return fail(w, EA_ENOMEM);
        w->keys = k;
        w->keys_cap = cap;
    }
    char *copy = ea_strdup(key);
    if (!copy)
        return fail(w, EA_ENOMEM);
    size_t n = strlen(key);
    ea_status s;
    if ((s = ea__buf_put_le(&w->meta, n, 8)) || (s = ea__buf_append(&w->meta, key, n)) ||
        (s = ea__buf_put_le(&w->meta, vt, 4))) {
        ea_free(copy);
        return fail(w, s);
    }
    w->keys[w->n_kv++] = copy;
    return EA_OK;
}

static ea_status put(ea_gguf_writer *w, uint64_t v, unsigned n)
{
    ea_status s = ea__buf_put_le(&w->meta, v, n);
    return s ? fail(w, s) : EA_OK;
}

static ea_status put_str(ea_gguf_writer *w, const char *p, uint64_t len)
{
    ea_status s;
    if ((s = ea__buf_put_le(&w->meta, len, 8)) || (s = ea__buf_append(&w->meta, p, (size_t)len)))
        return fail(w, s);
    return EA_OK;
}

ea_status ea_gguf_writer_add_u32(ea_gguf_writer *w, const char *key, uint32_t v)
{
    if (strcmp(key, "general.alignment") == 0) {
        if (v == 0 || (v & (v - 1)))
            return fail(w, EA_EINVAL);
        w->alignment = v;
    }
    ea_status s = begin_kv(w, key, EA_GGUF_UINT32);
    return s ? s : put(w, v, 4);
}

ea_status ea_gguf_writer_set_alignment(ea_gguf_writer *w, uint32_t alignment)
{
    return ea_gguf_writer_add_u32(w, "general.alignment", alignment);
}

ea_status ea_gguf_writer_add_i32(ea_gguf_writer *w, const char *key, int32_t v)
{
    ea_status s = begin_kv(w, key, EA_GGUF_INT32);
    return s ? s : put(w, (uint32_t)v, 4);
}

ea_status ea_gguf_writer_add_u64(ea_gguf_writer *w, const char *key, uint64_t v)
{
    ea_status s = begin_kv(w, key, EA_GGUF_UINT64);
    return s ? s : put(w, v, 8);
}

ea_status ea_gguf_writer_add_f32(ea_gguf_writer *w, const char *key, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, 4);
    ea_status s = begin_kv(w, key, EA_GGUF_FLOAT32);
    return s ? s : put(w, bits, 4);
}

ea_status ea_gguf_writer_add_bool(ea_gguf_writer *w, const char *key, bool v)
{
    ea_status s = begin_kv(w, key, EA_GGUF_BOOL);
    return s ? s : put(w, v ? 1 : 0, 1);
}

ea_status ea_gguf_writer_add_strn(ea_gguf_writer *w, const char *key, const char *p, uint64_t len)
{
    ea_status s = begin_kv(w, key, EA_GGUF_STRING);
    return s ? s : put_str(w, p, len);
}

ea_status ea_gguf_writer_add_str(ea_gguf_writer *w, const char *key, const char *p)
{
    return ea_gguf_writer_add_strn(w, key, p, strlen(p));
}

ea_status ea_gguf_writer_add_arr(ea_gguf_writer *w, const char *key, ea_gguf_vtype et, uint64_t n,
                                 const void *data)
{
    size_t es = ea_gguf_vtype_size(et);
    if (es == 0)
        return fail(w, EA_EINVAL);
    ea_status s = begin_kv(w, key, EA_GGUF_ARRAY);
    if (s || (s = put(w, et, 4)) || (s = put(w, n, 8)))
        return s;
    /* Host layout is little-endian on every target we build for. */
    if ((s = ea__buf_append(&w->meta, data, (size_t)(n * es))))
        return fail(w, s);
    return EA_OK;
}

ea_status ea_gguf_writer_add_str_arr(ea_gguf_writer *w, const char *key, uint64_t n,
                                     const struct ea_gguf_str *strs)
{
    ea_status s = begin_kv(w, key, EA_GGUF_ARRAY);
    if (s || (s = put(w, EA_GGUF_STRING, 4)) || (s = put(w, n, 8)))
        return s;
    for (uint64_t i = 0; i < n; i++)
        if ((s = put_str(w, strs[i].ptr, strs[i].len)))
            return s;
    return EA_OK;
}

static ea_status put_value_body(ea_gguf_writer *w, const struct ea_gguf_value *v)
{
    ea_status s = EA_OK;
    switch (v->type) {
    case EA_GGUF_UINT8: case EA_GGUF_UINT16: case EA_GGUF_UINT32: case EA_GGUF_UINT64:
        return put(w, v->v.u64, (unsigned)ea_gguf_vtype_size(v->type));
    case EA_GGUF_INT8: case EA_GGUF_INT16: case EA_GGUF_INT32: case EA_GGUF_INT64:
        return put(w, (uint64_t)v->v.i64, (unsigned)ea_gguf_vtype_size(v->type));
    case EA_GGUF_FLOAT32: {
        float f = (float)v->v.f64;
        uint32_t bits;
        memcpy(&bits, &f, 4);
        return put(w, bits, 4);
    }
    case EA_GGUF_FLOAT64: {
        uint64_t bits;
        memcpy(&bits, &v->v.f64, 8);
        return put(w, bits, 8);
    }
    case EA_GGUF_BOOL: return put(w, v->v.b ? 1 : 0, 1);
    case EA_GGUF_STRING: return put_str(w, v->v.str.ptr, v->v.str.len);
    case EA_GGUF_ARRAY: {
        ea_gguf_vtype et = v->v.arr.elem_type;
        uint64_t n = v->v.arr.n;
        if ((s = put(w, et, 4)) || (s = put(w, n, 8)))
            return s;
        if (et == EA_GGUF_STRING) {
            for (uint64_t i = 0; i < n && !s; i++)
                s = put_str(w, v->v.arr.strs[i].ptr, v->v.arr.strs[i].len);
        } else if (et == EA_GGUF_ARRAY) {
            for (uint64_t i = 0; i < n && !s; i++)
                s = put_value_body(w, &v->v.arr.arrs[i]);
        } else {
            size_t es = ea_gguf_vtype_size(et);
            if ((s = ea__buf_append(&w->meta, v->v.arr.raw, (size_t)(n * es))))
                return fail(w, s);
        }
        return s;
    }
    default: return fail(w, EA_EINVAL);
    }
}

ea_status ea_gguf_writer_add_value(ea_gguf_writer *w, const char *key, const struct ea_gguf_value *v)
{
    if (strcmp(key, "general.alignment") == 0 && v->type == EA_GGUF_UINT32)
        return ea_gguf_writer_add_u32(w, key, (uint32_t)v->v.u64);
    ea_status s = begin_kv(w, key, v->type);
    return s ? s : put_value_body(w, v);
}

static ea_status add_tensor(ea_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                            const uint64_t *ne, const void *data, ea_gguf_fill_fn fill, void *ctx)
{
    if (!name || !*name || strlen(name) >= EA_GGUF_MAX_NAME || n_dims < 1 ||
        n_dims > EA_GGUF_MAX_DIMS || !ea_type_info(type))
        return fail(w, EA_EINVAL);
    for (uint64_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return fail(w, EA_EINVAL);
    struct wtensor t = {0};
    uint64_t nelem = 1;
    for (uint32_t d = 0; d < EA_GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] == 0 || t.ne[d] > (uint64_t)INT64_MAX / nelem)
            return fail(w, EA_EINVAL);
        nelem *= t.ne[d];
    }
    if (ea_type_bytes(type, nelem, &t.size) || t.ne[0] % ea_type_info(type)->block_size)
        return fail(w, EA_EINVAL);
    if (w->n_tensors == w->tensors_cap) {
        uint64_t cap = w->tensors_cap ? w->tensors_cap * 2 : 64;
        struct wtensor *p = ea_realloc(w->tensors, (size_t)cap * sizeof *p);
        if (!p)
            return fail(w, EA_ENOMEM);
        w->tensors = p;
        w->tensors_cap = cap;
    }
    if (!(t.name = ea_strdup(name)))
        return fail(w, EA_ENOMEM);
    t.type = type;
    t.n_dims = n_dims;
    t.data = data;
    t.fill = fill;
    t.ctx = ctx;
    w->tensors[w->n_tensors++] = t;
    return EA_OK;
}

ea_status ea_gguf_writer_add_tensor(ea_gguf_writer *w, const char *name, uint32_t type,
                                    uint32_t n_dims, const uint64_t *ne, const void *data)
{
    return add_tensor(w, name, type, n_dims, ne, data, NULL, NULL);
}

ea_status ea_gguf_writer_add_tensor_fill(ea_gguf_writer *w, const char *name, uint32_t type,
                                         uint32_t n_dims, const uint64_t *ne, ea_gguf_fill_fn fill,
                                         void *ctx)
{
    return add_tensor(w, name, type, n_dims, ne, NULL, fill, ctx);
}

/* ---- output ------------------------------------------------------------ */

/* Output sink: either a FILE or a memory buffer. */
struct sink {
    FILE *f;
    struct ea_buf *mem;
    uint64_t pos;
};

static ea_status sink_write(struct sink *o, const void *p, size_t n)
{
    if (o->f) {
        if (n && fwrite(p, 1, n, o->f) != n)
            return EA_EIO;
    } else {
        ea_status s = ea__buf_append(o->mem, p, n);
        if (s)
            return s;
    }
    o->pos += n;
    return EA_OK;
}

static ea_status sink_pad(struct sink *o, uint32_t alignment)
{
    static const unsigned char zeros[256];
    uint64_t pad = (alignment - o->pos % alignment) % alignment;
    while (pad) {
        size_t n = pad > sizeof zeros ? sizeof zeros : (size_t)pad;
        ea_status s = sink_write(o, zeros, n);
        if (s)
            return s;
        pad -= n;
    }
    return EA_OK;
}

static ea_status emit(ea_gguf_writer *w, struct sink *o, struct ea_error *err)
{
    if (w->sticky)
        return ea_error_set(err, w->sticky,
                            "gguf writer: an earlier add failed (%s): duplicate or invalid key or "
                            "tensor, or out of memory",
                            ea_status_name(w->sticky));
    struct ea_buf head;
    ea__buf_init(&head, WRITER_META_MAX);
    ea_status s;
    uint64_t off = 0;
    for (uint64_t i = 0; i < w->n_tensors; i++) {
        struct wtensor *t = &w->tensors[i];
        off += (w->alignment - off % w->alignment) % w->alignment;
        t->offset = off;
        off += t->size;
    }
    if ((s = ea__buf_append(&head, "GGUF", 4)) || (s = ea__buf_put_le(&head, 3, 4)) ||
        (s = ea__buf_put_le(&head, w->n_tensors, 8)) || (s = ea__buf_put_le(&head, w->n_kv, 8)))
        goto out_head;
    if ((s = ea__buf_append(&head, w->meta.data, w->meta.len)))
        goto out_head;
    for (uint64_t i = 0; i < w->n_tensors && !s; i++) {
        struct wtensor *t = &w->tensors[i];
        size_t n = strlen(t->name);
        if ((s = ea__buf_put_le(&head, n, 8)) || (s = ea__buf_append(&head, t->name, n)) ||
            (s = ea__buf_put_le(&head, t->n_dims, 4)))
            break;
        for (uint32_t d = 0; d < t->n_dims && !s; d++)
            s = ea__buf_put_le(&head, t->ne[d], 8);
        if (!s && !(s = ea__buf_put_le(&head, t->type, 4)))
            s = ea__buf_put_le(&head, t->offset, 8);
    }
    if (s)
        goto out_head;
    if ((s = sink_write(o, head.data, head.len)))
        goto out_head;
    if (w->n_tensors && (s = sink_pad(o, w->alignment)))
        goto out_head;
    uint64_t data_start = o->pos;
    for (uint64_t i = 0; i < w->n_tensors; i++) {
        struct wtensor *t = &w->tensors[i];
        if ((s = sink_pad(o, w->alignment)))
            goto out_head;
        if (o->pos - data_start != t->offset) {
            s = ea_error_set(err, EA_EINTERNAL, "gguf writer: offset bookkeeping");
            goto out_head;
        }
        if (t->data) {
            if ((s = sink_write(o, t->data, (size_t)t->size)))
                goto out_io;
            continue;
        }
        uint64_t row_bytes;
        ea_type_bytes(t->type, t->ne[0], &row_bytes);
        uint64_t rows = t->size / row_bytes;
        uint64_t chunk_rows = FILL_CHUNK_BYTES / row_bytes;
        if (chunk_rows == 0)
            chunk_rows = 1;
        if (chunk_rows > rows)
            chunk_rows = rows;
        void *chunk = ea_malloc((size_t)(chunk_rows * row_bytes));
        if (!chunk) {
            s = ea_error_set(err, EA_ENOMEM, "gguf writer: out of memory for tensor '%s'",
                             t->name);
            goto out_head;
        }
        for (uint64_t r = 0; r < rows && !s; r += chunk_rows) {
            uint64_t n = rows - r < chunk_rows ? rows - r : chunk_rows;
            s = t->fill(t->ctx, r, n, chunk, err);
            if (s)
                ea_error_prefix(err, "gguf writer: tensor '%s'", t->name);
            else if ((s = sink_write(o, chunk, (size_t)(n * row_bytes))))
                ea_error_set(err, s, "gguf writer: write failed in tensor '%s'", t->name);
        }
        ea_free(chunk);
        if (s)
            goto out_head;
    }
    if (w->n_tensors)
        s = sink_pad(o, w->alignment);
    if (s)
        goto out_io;
    ea__buf_release(&head);
    return EA_OK;
out_io:
    ea_error_set(err, s, "gguf writer: %s", s == EA_EIO ? strerror(errno) : ea_status_message(s));
out_head:
    if (s && err && err->status != s)
        ea_error_set(err, s, "gguf writer: %s", ea_status_message(s));
    ea__buf_release(&head);
    return s;
}

ea_status ea_gguf_writer_write_memory(ea_gguf_writer *w, void **out, size_t *size,
                                      struct ea_error *err)
{
    struct ea_buf mem;
    ea__buf_init(&mem, EA_GGUF_WRITER_MAX_MEMORY);
    struct sink o = {NULL, &mem, 0};
    ea_status s = emit(w, &o, err);
    if (s) {
        ea__buf_release(&mem);
        return s;
    }
    *size = mem.len;
    *out = ea__buf_steal(&mem);
    return EA_OK;
}

ea_status ea_gguf_writer_write_file(ea_gguf_writer *w, const char *path, struct ea_error *err)
{
    size_t n = strlen(path);
    char *tmp = ea_malloc(n + 16);
    if (!tmp)
        return ea_error_set(err, EA_ENOMEM, "gguf writer: out of memory");
    snprintf(tmp, n + 16, "%s.tmp%d", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        ea_status s = ea_error_set(err, EA_EIO, "%s: %s", tmp, strerror(errno));
        ea_free(tmp);
        return s;
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    struct sink o = {f, NULL, 0};
    ea_status s = emit(w, &o, err);
    if (fclose(f) != 0 && !s)
        s = ea_error_set(err, EA_EIO, "%s: %s", tmp, strerror(errno));
    if (!s && rename(tmp, path) != 0)
        s = ea_error_set(err, EA_EIO, "%s: %s", path, strerror(errno));
    if (s)
        unlink(tmp);
    ea_free(tmp);
    return s;
}
