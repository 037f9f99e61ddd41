/* gguf_read.c - validating GGUF v2/v3 reader over an mmapped (or in-memory)
 * file image.
 *
 * Every read goes through a bounds-checked cursor; counts are checked against
 * the bytes left before anything is allocated, so a hostile header cannot make
 * us allocate more than a small multiple of the file size. Strings and fixed
 * arrays stay views into the image; only keys and tensor names are copied
 * (NUL-terminated) into an arena owned by the handle.
 * Does not hold: interpretation of metadata (model loader) or writing.
 */
#include "gguf_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAX_DEPTH 8 /* nested array depth; deeper is refused, not recursed */

/* ---- arena ------------------------------------------------------------- */

struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

static void *arena_alloc(struct ea_gguf *g, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct arena_chunk *c = g->arena;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        c = ea_malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->next = g->arena;
        c->used = 0;
        c->cap = cap;
        g->arena = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

/* ---- cursor ------------------------------------------------------------ */

struct cursor {
    const uint8_t *base;
    uint64_t size;
    uint64_t pos;
    struct ea_error *err;
};

static uint64_t left(const struct cursor *c) { return c->size - c->pos; }

static ea_status need(struct cursor *c, uint64_t n, const char *what)
{
    if (n > left(c))
        return ea_error_set(c->err, EA_EFORMAT,
                            "gguf: truncated at byte %" PRIu64 " reading %s (needs %" PRIu64
                            " bytes, %" PRIu64 " left)",
                            c->pos, what, n, left(c));
    return EA_OK;
}

static uint64_t load_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static ea_status rd_uint(struct cursor *c, unsigned n, uint64_t *out, const char *what)
{
    ea_status s = need(c, n, what);
    if (s)
        return s;
    *out = load_le(c->base + c->pos, n);
    c->pos += n;
    return EA_OK;
}

static ea_status rd_str(struct cursor *c, struct ea_gguf_str *out, const char *what)
{
    uint64_t start = c->pos, len;
    ea_status s = rd_uint(c, 8, &len, what);
    if (s)
        return s;
    if (len > left(c))
        return ea_error_set(c->err, EA_EFORMAT,
                            "gguf: %s at byte %" PRIu64 " has length %" PRIu64
                            " but only %" PRIu64 " bytes follow",
                            what, start, len, left(c));
    out->ptr = (const char *)c->base + c->pos;
    out->len = len;
    c->pos += len;
    return EA_OK;
}

static uint64_t read_fixed(const uint8_t *p, uint32_t vt, struct ea_gguf_value *v)
{
    size_t n = ea_gguf_vtype_size(vt);
    uint64_t raw = load_le(p, (unsigned)n);
    v->type = (ea_gguf_vtype)vt;
    switch (vt) {
    case EA_GGUF_UINT8: case EA_GGUF_UINT16: case EA_GGUF_UINT32: case EA_GGUF_UINT64:
        v->v.u64 = raw;
        break;
    case EA_GGUF_INT8: v->v.i64 = (int8_t)raw; break;
    case EA_GGUF_INT16: v->v.i64 = (int16_t)raw; break;
    case EA_GGUF_INT32: v->v.i64 = (int32_t)raw; break;
    case EA_GGUF_INT64: v->v.i64 = (int64_t)raw; break;
    case EA_GGUF_FLOAT32: {
        uint32_t b = (uint32_t)raw;
        float f;
        memcpy(&f, &b, 4);
        v->v.f64 = f;
        break;
    }
    case EA_GGUF_FLOAT64: {
        double d;
        memcpy(&d, &raw, 8);
        v->v.f64 = d;
        break;
    }
    case EA_GGUF_BOOL: v->v.b = raw != 0; break;
    default: break;
    }
    return n;
}

static ea_status rd_value(struct ea_gguf *g, struct cursor *c, uint32_t vt, struct ea_gguf_value *v,
                          const char *what, int depth);

static ea_status rd_array(struct ea_gguf *g, struct cursor *c, struct ea_gguf_value *v,
                          const char *what, int depth)
{
    uint64_t start = c->pos, et, n;
    ea_status s = rd_uint(c, 4, &et, what);
    if (s)
        return s;
    if (et >= EA_GGUF_VTYPE_COUNT)
        return ea_error_set(c->err, EA_EFORMAT,
                            "gguf: %s at byte %" PRIu64 ": unknown array element type %" PRIu64,
                            what, start, et);
    if ((s = rd_uint(c, 8, &n, what)))
        return s;
    v->type = EA_GGUF_ARRAY;
    v->v.arr.elem_type = (ea_gguf_vtype)et;
    v->v.arr.n = n;
    v->v.arr.raw = NULL;
    v->v.arr.strs = NULL;
    v->v.arr.arrs = NULL;
    /* Smallest encoding of one element: fixed size, 8 (string length) or
     * 12 (nested array header). Checking n against it bounds allocation. */
    uint64_t min_elem = ea_gguf_vtype_size((uint32_t)et);
    if (et == EA_GGUF_STRING)
        min_elem = 8;
    if (et == EA_GGUF_ARRAY)
        min_elem = 12;
    if (n > left(c) / min_elem)
        return ea_error_set(c->err, EA_EFORMAT,
                            "gguf: %s at byte %" PRIu64 ": array count %" PRIu64
                            " of %s does not fit in the %" PRIu64 " bytes left",
                            what, start, n, ea_gguf_vtype_name((uint32_t)et), left(c));
    if (et == EA_GGUF_STRING) {
        struct ea_gguf_str *strs = arena_alloc(g, (size_t)n * sizeof *strs);
        if (!strs && n)
            return ea_error_set(c->err, EA_ENOMEM, "gguf: out of memory reading %s", what);
        for (uint64_t i = 0; i < n; i++)
            if ((s = rd_str(c, &strs[i], what)))
                return s;
        v->v.arr.strs = strs;
    } else if (et == EA_GGUF_ARRAY) {
        if (depth + 1 >= GGUF_MAX_DEPTH)
            return ea_error_set(c->err, EA_EFORMAT,
                                "gguf: %s at byte %" PRIu64 ": arrays nested deeper than %d",
                                what, start, GGUF_MAX_DEPTH);
        struct ea_gguf_value *arrs = arena_alloc(g, (size_t)n * sizeof *arrs);
        if (!arrs && n)
            return ea_error_set(c->err, EA_ENOMEM, "gguf: out of memory reading %s", what);
        for (uint64_t i = 0; i < n; i++)
            if ((s = rd_value(g, c, EA_GGUF_ARRAY, &arrs[i], what, depth + 1)))
                return s;
        v->v.arr.arrs = arrs;
    } else {
        v->v.arr.raw = c->base + c->pos;
        c->pos += n * min_elem;
    }
    return EA_OK;
}

static ea_status rd_value(struct ea_gguf *g, struct cursor *c, uint32_t vt, struct ea_gguf_value *v,
                          const char *what, int depth)
{
    if (vt == EA_GGUF_STRING) {
        v->type = EA_GGUF_STRING;
        return rd_str(c, &v->v.str, what);
    }
    if (vt == EA_GGUF_ARRAY)
        return rd_array(g, c, v, what, depth);
    size_t n = ea_gguf_vtype_size(vt);
    ea_status s = need(c, n, what);
    if (s)
        return s;
    c->pos += read_fixed(c->base + c->pos, vt, v);
    return EA_OK;
}

/* ---- name index -------------------------------------------------------- */

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    while (*s) {
        h ^= (unsigned char)*s++;
        h *= 1099511628211ull;
    }
    return h;
}

/* Open addressing over indices into an array of names; slots hold index+1. */
static ea_status index_build(struct ea_gguf *g, struct name_index *ix, uint64_t n,
                             const char *(*name_at)(const struct ea_gguf *, uint64_t),
                             const char *what, struct ea_error *err)
{
    uint64_t cap = 8;
    while (cap < n * 2)
        cap <<= 1;
    ix->cap = cap;
    ix->slots = ea_calloc(cap, sizeof *ix->slots);
    if (!ix->slots)
        return ea_error_set(err, EA_ENOMEM, "gguf: out of memory indexing %ss", what);
    for (uint64_t i = 0; i < n; i++) {
        const char *name = name_at(g, i);
        uint64_t h = hash_name(name) & (cap - 1);
        while (ix->slots[h]) {
            if (strcmp(name_at(g, ix->slots[h] - 1), name) == 0)
                return ea_error_set(err, EA_EFORMAT, "gguf: duplicate %s '%s'", what, name);
            h = (h + 1) & (cap - 1);
        }
        ix->slots[h] = i + 1;
    }
    return EA_OK;
}

static int64_t index_find(const struct ea_gguf *g, const struct name_index *ix, const char *name,
                          const char *(*name_at)(const struct ea_gguf *, uint64_t))
{
    if (!ix->cap || !name)
        return -1;
    uint64_t h = hash_name(name) & (ix->cap - 1);
    while (ix->slots[h]) {
        if (strcmp(name_at(g, ix->slots[h] - 1), name) == 0)
            return (int64_t)(ix->slots[h] - 1);
        h = (h + 1) & (ix->cap - 1);
    }
    return -1;
}

static const char *kv_name(const struct ea_gguf *g, uint64_t i) { return g->kvs[i].key; }
static const char *tensor_name(const struct ea_gguf *g, uint64_t i) { return g->tensors[i].name; }

/* ---- parse ------------------------------------------------------------- */

static char *copy_name(struct ea_gguf *g, struct ea_gguf_str s)
{
    char *p = arena_alloc(g, (size_t)s.len + 1);
    if (!p)
        return NULL;
    memcpy(p, s.ptr, (size_t)s.len);
    p[s.len] = '\0';
    return p;
}


struct sort_entry {
    uint64_t offset, size, index;
};

static int cmp_sort_entry(const void *a, const void *b)
{
    const struct sort_entry *x = a, *y = b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return x->index < y->index ? -1 : (x->index > y->index);
}

static ea_status parse(struct ea_gguf *g, struct ea_error *err)
{
    struct cursor c = {g->base, g->size, 0, err};
    ea_status s;
    char what[160];

    if (g->size < 4 || memcmp(g->base, "GGUF", 4) != 0)
        return ea_error_set(err, EA_EFORMAT, "gguf: not a GGUF file (bad magic at byte 0)");
    c.pos = 4;
    uint64_t version;
    if ((s = rd_uint(&c, 4, &version, "version")))
        return s;
    if (version == 1)
        return ea_error_set(err, EA_EUNSUPPORTED,
                            "gguf: GGUF version 1 is no longer supported (legacy 32-bit counts); "
                            "re-convert the model with a current tool");
    if ((version & 0xFFFF) == 0 && version != 0) {
        uint32_t v = (uint32_t)version;
        uint32_t swapped = (v >> 24) | ((v >> 8) & 0xFF00) | ((v << 8) & 0xFF0000) | (v << 24);
        return ea_error_set(err, EA_EUNSUPPORTED,
                            "gguf: big-endian GGUF file (version reads as %u byte-swapped); "
                            "only little-endian files are supported",
                            swapped);
    }
    if (version != 2 && version != 3)
        return ea_error_set(err, EA_EUNSUPPORTED,
                            "gguf: unsupported GGUF version %" PRIu64 " at byte 4 (2 and 3 are)",
                            version);
    g->version = (uint32_t)version;

    uint64_t n_tensors, n_kv;
    if ((s = rd_uint(&c, 8, &n_tensors, "tensor count")))
        return s;
    if ((s = rd_uint(&c, 8, &n_kv, "metadata count")))
        return s;
    /* Smallest kv: 8-byte key length + 1 key byte + 4-byte type + 1 value byte.
     * Smallest tensor info: 8 + 1 + 4 + 8 + 4 + 8. */
    if (n_kv > left(&c) / 14)
        return ea_error_set(err, EA_EFORMAT,
                            "gguf: metadata count %" PRIu64 " at byte 16 cannot fit in a %" PRIu64
                            "-byte file",
                            n_kv, g->size);
    if (n_tensors > left(&c) / 33)
        return ea_error_set(err, EA_EFORMAT,
                            "gguf: tensor count %" PRIu64 " at byte 8 cannot fit in a %" PRIu64
                            "-byte file",
                            n_tensors, g->size);

    g->kvs = ea_calloc(n_kv ? n_kv : 1, sizeof *g->kvs);
    g->tensors = ea_calloc(n_tensors ? n_tensors : 1, sizeof *g->tensors);
    if (!g->kvs || !g->tensors)
        return ea_error_set(err, EA_ENOMEM, "gguf: out of memory for %" PRIu64 " entries",
                            n_kv + n_tensors);

    g->alignment = EA_GGUF_DEFAULT_ALIGNMENT;
    for (uint64_t i = 0; i < n_kv; i++) {
        struct ea_gguf_kv *kv = &g->kvs[i];
        struct ea_gguf_str key;
        kv->file_offset = c.pos;
        snprintf(what, sizeof what, "key of metadata entry %" PRIu64, i);
        if ((s = rd_str(&c, &key, what)))
            return s;
        if (key.len == 0 || memchr(key.ptr, 0, (size_t)key.len))
            return ea_error_set(err, EA_EFORMAT,
                                "gguf: metadata entry %" PRIu64 " at byte %" PRIu64
                                " has an empty key or a key with a NUL byte",
                                i, kv->file_offset);
        if (!(kv->key = copy_name(g, key)))
            return ea_error_set(err, EA_ENOMEM, "gguf: out of memory");
        g->n_kv = i + 1;
        uint64_t vt;
        snprintf(what, sizeof what, "type of '%.100s'", kv->key);
        if ((s = rd_uint(&c, 4, &vt, what)))
            return s;
        if (vt >= EA_GGUF_VTYPE_COUNT)
            return ea_error_set(err, EA_EFORMAT,
                                "gguf: '%.100s' at byte %" PRIu64 " has unknown value type %" PRIu64,
                                kv->key, c.pos - 4, vt);
        snprintf(what, sizeof what, "value of '%.100s'", kv->key);
        if ((s = rd_value(g, &c, (uint32_t)vt, &kv->value, what, 0)))
            return s;
        if (strcmp(kv->key, "general.alignment") == 0) {
            if (kv->value.type != EA_GGUF_UINT32)
                return ea_error_set(err, EA_EFORMAT,
                                    "gguf: general.alignment at byte %" PRIu64
                                    " must be UINT32, is %s",
                                    kv->file_offset, ea_gguf_vtype_name(kv->value.type));
            uint64_t a = kv->value.v.u64;
            if (a == 0 || (a & (a - 1)) != 0)
                return ea_error_set(err, EA_EFORMAT,
                                    "gguf: general.alignment %" PRIu64 " at byte %" PRIu64
                                    " is not a power of two",
                                    a, kv->file_offset);
            g->alignment = (uint32_t)a;
        }
    }
    if ((s = index_build(g, &g->kv_index, g->n_kv, kv_name, "metadata key", err)))
        return s;

    for (uint64_t i = 0; i < n_tensors; i++) {
        struct ea_gguf_tensor *t = &g->tensors[i];
        struct ea_gguf_str name;
        t->info_offset = c.pos;
        snprintf(what, sizeof what, "name of tensor %" PRIu64, i);
        if ((s = rd_str(&c, &name, what)))
            return s;
        if (name.len == 0 || name.len >= EA_GGUF_MAX_NAME || memchr(name.ptr, 0, (size_t)name.len))
            return ea_error_set(err, EA_EFORMAT,
                                "gguf: tensor %" PRIu64 " at byte %" PRIu64
                                ": name length %" PRIu64 " is not in 1..%d or contains NUL",
                                i, t->info_offset, name.len, EA_GGUF_MAX_NAME - 1);
        if (!(t->name = copy_name(g, name)))
            return ea_error_set(err, EA_ENOMEM, "gguf: out of memory");
        g->n_tensors = i + 1;
        uint64_t nd;
        snprintf(what, sizeof what, "dimension count of tensor '%s'", t->name);
        if ((s = rd_uint(&c, 4, &nd, what)))
            return s;
        if (nd < 1 || nd > EA_GGUF_MAX_DIMS)
            return ea_error_set(err, EA_EFORMAT,
                                "gguf: tensor '%s' at byte %" PRIu64 ": %" PRIu64
                                " dimensions (1..%d allowed)",
                                t->name, t->info_offset, nd, EA_GGUF_MAX_DIMS);
        t->n_dims = (uint32_t)nd;
        uint64_t nelem = 1;
        for (int d = 0; d < EA_GGUF_MAX_DIMS; d++)
            t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            snprintf(what, sizeof what, "dimension %u of tensor '%s'", d, t->name);
            if ((s = rd_uint(&c, 8, &t->ne[d], what)))
                return s;
            if (t->ne[d] == 0 || t->ne[d] > (uint64_t)INT64_MAX / nelem)
                return ea_error_set(err, EA_EFORMAT,
                                    "gguf: tensor '%s' at byte %" PRIu64 ": dimension %u = %" PRIu64
                                    " is zero or makes the element count overflow",
                                    t->name, t->info_offset, d, t->ne[d]);
            nelem *= t->ne[d];
        }
        uint64_t type;
        snprintf(what, sizeof what, "type of tensor '%s'", t->name);
        if ((s = rd_uint(&c, 4, &type, what)))
            return s;
        const struct ea_type_info *ti = ea_type_info((uint32_t)type);
        if (type > UINT32_MAX || !ti)
            return ea_error_set(err, EA_EFORMAT,
                                "gguf: tensor '%s' at byte %" PRIu64 ": unknown tensor type %" PRIu64,
                                t->name, t->info_offset, type);
        t->type = (uint32_t)type;
        if (t->ne[0] % ti->block_size != 0)
            return ea_error_set(err, EA_EFORMAT,
                                "gguf: tensor '%s' at byte %" PRIu64 ": row length %" PRIu64
                                " is not a multiple of the %s block size %u",
                                t->name, t->info_offset, t->ne[0], ti->name, ti->block_size);
        if ((s = ea_type_bytes(t->type, nelem, &t->size)))
            return ea_error_set(err, EA_EFORMAT,
                                "gguf: tensor '%s' at byte %" PRIu64 ": byte size overflows",
                                t->name, t->info_offset);
        snprintf(what, sizeof what, "data offset of tensor '%s'", t->name);
        if ((s = rd_uint(&c, 8, &t->offset, what)))
            return s;
        if (t->offset % g->alignment != 0)
            return ea_error_set(err, EA_EFORMAT,
                                "gguf: tensor '%s' at byte %" PRIu64 ": data offset %" PRIu64
                                " is not a multiple of the alignment %u",
                                t->name, t->info_offset, t->offset, g->alignment);
    }
    if ((s = index_build(g, &g->tensor_index, g->n_tensors, tensor_name, "tensor name", err)))
        return s;

    uint64_t data = c.pos + (g->alignment - c.pos % g->alignment) % g->alignment;
    g->data_offset = data;
    if (n_tensors == 0)
        return EA_OK;
    if (data > g->size)
        return ea_error_set(err, EA_EFORMAT,
                            "gguf: data section would start at byte %" PRIu64
                            ", past the end of the %" PRIu64 "-byte file",
                            data, g->size);
    uint64_t data_size = g->size - data;
    struct sort_entry *order = ea_malloc((size_t)n_tensors * sizeof *order);
    if (!order)
        return ea_error_set(err, EA_ENOMEM, "gguf: out of memory");
    s = EA_OK;
    for (uint64_t i = 0; i < n_tensors && !s; i++) {
        struct ea_gguf_tensor *t = &g->tensors[i];
        if (t->offset > data_size || t->size > data_size - t->offset)
            s = ea_error_set(err, EA_EFORMAT,
                             "gguf: tensor '%s' (info at byte %" PRIu64 "): data [%" PRIu64
                             ", +%" PRIu64 ") runs past the %" PRIu64 "-byte data section",
                             t->name, t->info_offset, t->offset, t->size, data_size);
        else
            t->data = g->base + data + t->offset;
        order[i] = (struct sort_entry){t->offset, t->size, i};
    }
    if (!s) {
        qsort(order, (size_t)n_tensors, sizeof *order, cmp_sort_entry);
        for (uint64_t i = 1; i < n_tensors && !s; i++) {
            const struct sort_entry *a = &order[i - 1], *b = &order[i];
            if (a->offset + a->size > b->offset)
                s = ea_error_set(err, EA_EFORMAT,
                                 "gguf: tensors '%s' and '%s' overlap (data offsets %" PRIu64
                                 " +%" PRIu64 " and %" PRIu64 ")",
                                 g->tensors[a->index].name, g->tensors[b->index].name, a->offset,
                                 a->size, b->offset);
        }
    }
    ea_free(order);
    return s;
}

/* ---- open/close -------------------------------------------------------- */

static ea_status open_image(const void *base, uint64_t size, void *map, size_t map_len,
                            ea_gguf **out, struct ea_error *err)
{
    struct ea_gguf *g = ea_calloc(1, sizeof *g);
    if (!g) {
        if (map)
            munmap(map, map_len);
        return ea_error_set(err, EA_ENOMEM, "gguf: out of memory");
    }
    g->base = base;
    g->size = size;
    g->map = map;
    g->map_len = map_len;
    ea_status s = parse(g, err);
    if (s) {
        ea_gguf_close(g);
        return s;
    }
    *out = g;
    return EA_OK;
}

ea_status ea_gguf_open_memory(const void *data, size_t size, ea_gguf **out, struct ea_error *err)
{
    *out = NULL;
    if (!data && size)
        return ea_error_set(err, EA_EINVAL, "gguf: NULL buffer");
    return open_image(data ? data : "", size, NULL, 0, out, err);
}

ea_status ea_gguf_open(const char *path, ea_gguf **out, struct ea_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ea_error_set(err, errno == ENOENT ? EA_ENOTFOUND : EA_EIO, "%s: %s", path,
                            strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return ea_error_set(err, EA_EIO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ea_error_set(err, EA_EINVAL, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return ea_error_set(err, EA_EFORMAT, "%s: gguf: file is empty", path);
    }
    size_t len = (size_t)st.st_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED)
        return ea_error_set(err, EA_EIO, "%s: mmap: %s", path, strerror(e));
    ea_status s = open_image(map, len, map, len, out, err);
    if (s)
        ea_error_prefix(err, "%s", path);
    return s;
}

void ea_gguf_close(ea_gguf *g)
{
    if (!g)
        return;
    if (g->map)
        munmap(g->map, g->map_len);
    struct arena_chunk *c = g->arena;
    while (c) {
        struct arena_chunk *next = c->next;
        ea_free(c);
        c = next;
    }
    ea_free(g->kv_index.slots);
    ea_free(g->tensor_index.slots);
    ea_free(g->kvs);
    ea_free(g->tensors);
    ea_free(g);
}

void ea_gguf_drop_pages(const ea_gguf *g, const void *p, size_t len)
{
    if (!g || !g->map || !p || len == 0)
        return;
    const uintptr_t lo = (uintptr_t)g->map, hi = lo + g->map_len;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p, b = a + len;
    if (a < lo || b > hi || b < a)
        return;
    a = (a + page - 1) & ~(page - 1); /* whole pages inside the range only */
    b &= ~(page - 1);
    if (b > a)
        madvise((void *)a, b - a, MADV_DONTNEED);
}

/* ---- accessors --------------------------------------------------------- */

uint32_t ea_gguf_version(const ea_gguf *g) { return g->version; }
uint64_t ea_gguf_file_size(const ea_gguf *g) { return g->size; }
uint32_t ea_gguf_alignment(const ea_gguf *g) { return g->alignment; }
uint64_t ea_gguf_data_offset(const ea_gguf *g) { return g->data_offset; }
const void *ea_gguf_base(const ea_gguf *g) { return g->base; }
uint64_t ea_gguf_n_kv(const ea_gguf *g) { return g->n_kv; }
uint64_t ea_gguf_n_tensors(const ea_gguf *g) { return g->n_tensors; }

const struct ea_gguf_kv *ea_gguf_kv_at(const ea_gguf *g, uint64_t i)
{
    return i < g->n_kv ? &g->kvs[i] : NULL;
}

const struct ea_gguf_tensor *ea_gguf_tensor_at(const ea_gguf *g, uint64_t i)
{
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const struct ea_gguf_kv *ea_gguf_find(const ea_gguf *g, const char *key)
{
    int64_t i = index_find(g, &g->kv_index, key, kv_name);
    return i < 0 ? NULL : &g->kvs[i];
}

const struct ea_gguf_tensor *ea_gguf_find_tensor(const ea_gguf *g, const char *name)
{
    int64_t i = index_find(g, &g->tensor_index, name, tensor_name);
    return i < 0 ? NULL : &g->tensors[i];
}

uint64_t ea_gguf_arr_u64(const struct ea_gguf_value *arr, uint64_t i)
{
    struct ea_gguf_value v;
    size_t n = ea_gguf_vtype_size(arr->v.arr.elem_type);
    read_fixed(arr->v.arr.raw + i * n, arr->v.arr.elem_type, &v);
    uint64_t out = 0;
    ea_gguf_value_u64(&v, &out);
    return out;
}

int64_t ea_gguf_arr_i64(const struct ea_gguf_value *arr, uint64_t i)
{
    struct ea_gguf_value v;
    size_t n = ea_gguf_vtype_size(arr->v.arr.elem_type);
    read_fixed(arr->v.arr.raw + i * n, arr->v.arr.elem_type, &v);
    int64_t out = 0;
    ea_gguf_value_i64(&v, &out);
    return out;
}

double ea_gguf_arr_f64(const struct ea_gguf_value *arr, uint64_t i)
{
    struct ea_gguf_value v;
    size_t n = ea_gguf_vtype_size(arr->v.arr.elem_type);
    read_fixed(arr->v.arr.raw + i * n, arr->v.arr.elem_type, &v);
    double out = 0;
    ea_gguf_value_f64(&v, &out);
    return out;
}

static int is_unsigned(ea_gguf_vtype t)
{
    return t == EA_GGUF_UINT8 || t == EA_GGUF_UINT16 || t == EA_GGUF_UINT32 || t == EA_GGUF_UINT64;
}

static int is_signed(ea_gguf_vtype t)
{
    return t == EA_GGUF_INT8 || t == EA_GGUF_INT16 || t == EA_GGUF_INT32 || t == EA_GGUF_INT64;
}

ea_status ea_gguf_value_u64(const struct ea_gguf_value *v, uint64_t *out)
{
    if (is_unsigned(v->type)) {
        *out = v->v.u64;
        return EA_OK;
    }
    if (is_signed(v->type) && v->v.i64 >= 0) {
        *out = (uint64_t)v->v.i64;
        return EA_OK;
    }
    return EA_EFORMAT;
}

ea_status ea_gguf_value_i64(const struct ea_gguf_value *v, int64_t *out)
{
    if (is_signed(v->type)) {
        *out = v->v.i64;
        return EA_OK;
    }
    if (is_unsigned(v->type) && v->v.u64 <= (uint64_t)INT64_MAX) {
        *out = (int64_t)v->v.u64;
        return EA_OK;
    }
    return EA_EFORMAT;
}

ea_status ea_gguf_value_f64(const struct ea_gguf_value *v, double *out)
{
    if (v->type == EA_GGUF_FLOAT32 || v->type == EA_GGUF_FLOAT64) {
        *out = v->v.f64;
        return EA_OK;
    }
    if (is_unsigned(v->type)) {
        *out = (double)v->v.u64;
        return EA_OK;
    }
    if (is_signed(v->type)) {
        *out = (double)v->v.i64;
        return EA_OK;
    }
    return EA_EFORMAT;
}

static ea_status lookup(const ea_gguf *g, const char *key, const struct ea_gguf_kv **kv,
                        struct ea_error *err)
{
    *kv = ea_gguf_find(g, key);
    if (!*kv)
        return ea_error_set(err, EA_ENOTFOUND, "gguf: metadata key '%s' is missing", key);
    return EA_OK;
}

static ea_status bad_type(const struct ea_gguf_kv *kv, const char *want, struct ea_error *err)
{
    return ea_error_set(err, EA_EFORMAT, "gguf: metadata key '%s' has type %s, expected %s",
                        kv->key, ea_gguf_vtype_name(kv->value.type), want);
}

ea_status ea_gguf_get_u64(const ea_gguf *g, const char *key, uint64_t *out, struct ea_error *err)
{
    const struct ea_gguf_kv *kv;
    ea_status s = lookup(g, key, &kv, err);
    if (s)
        return s;
    if (ea_gguf_value_u64(&kv->value, out))
        return bad_type(kv, "a non-negative integer", err);
    return EA_OK;
}

ea_status ea_gguf_get_u32(const ea_gguf *g, const char *key, uint32_t *out, struct ea_error *err)
{
    uint64_t v;
    ea_status s = ea_gguf_get_u64(g, key, &v, err);
    if (s)
        return s;
    if (v > UINT32_MAX)
        return ea_error_set(err, EA_ERANGE, "gguf: metadata key '%s' = %" PRIu64 " exceeds 32 bits",
                            key, v);
    *out = (uint32_t)v;
    return EA_OK;
}

ea_status ea_gguf_get_i64(const ea_gguf *g, const char *key, int64_t *out, struct ea_error *err)
{
    const struct ea_gguf_kv *kv;
    ea_status s = lookup(g, key, &kv, err);
    if (s)
        return s;
    if (ea_gguf_value_i64(&kv->value, out))
        return bad_type(kv, "an integer", err);
    return EA_OK;
}

ea_status ea_gguf_get_f64(const ea_gguf *g, const char *key, double *out, struct ea_error *err)
{
    const struct ea_gguf_kv *kv;
    ea_status s = lookup(g, key, &kv, err);
    if (s)
        return s;
    if (ea_gguf_value_f64(&kv->value, out))
        return bad_type(kv, "a number", err);
    return EA_OK;
}

ea_status ea_gguf_get_bool(const ea_gguf *g, const char *key, bool *out, struct ea_error *err)
{
    const struct ea_gguf_kv *kv;
    ea_status s = lookup(g, key, &kv, err);
    if (s)
        return s;
    if (kv->value.type != EA_GGUF_BOOL)
        return bad_type(kv, "BOOL", err);
    *out = kv->value.v.b;
    return EA_OK;
}

ea_status ea_gguf_get_str(const ea_gguf *g, const char *key, struct ea_gguf_str *out,
                          struct ea_error *err)
{
    const struct ea_gguf_kv *kv;
    ea_status s = lookup(g, key, &kv, err);
    if (s)
        return s;
    if (kv->value.type != EA_GGUF_STRING)
        return bad_type(kv, "STRING", err);
    *out = kv->value.v.str;
    return EA_OK;
}

ea_status ea_gguf_get_arr(const ea_gguf *g, const char *key, int elem_type,
                          const struct ea_gguf_value **out, struct ea_error *err)
{
    const struct ea_gguf_kv *kv;
    ea_status s = lookup(g, key, &kv, err);
    if (s)
        return s;
    if (kv->value.type != EA_GGUF_ARRAY)
        return bad_type(kv, "ARRAY", err);
    if (elem_type >= 0 && kv->value.v.arr.elem_type != (ea_gguf_vtype)elem_type)
        return ea_error_set(err, EA_EFORMAT,
                            "gguf: metadata key '%s' is an array of %s, expected %s", key,
                            ea_gguf_vtype_name(kv->value.v.arr.elem_type),
                            ea_gguf_vtype_name((uint32_t)elem_type));
    *out = &kv->value;
    return EA_OK;
}

bool ea_gguf_str_eq(struct ea_gguf_str s, const char *c)
{
    size_t n = strlen(c);
    return s.len == n && memcmp(s.ptr, c, n) == 0;
}
