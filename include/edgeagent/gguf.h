/* gguf.h - GGUF v2/v3 reader (mmap, validated) and writer, and the table of
 * tensor types the GGUF format defines.
 *
 * Holds: ea_type (the ggml tensor type ids stored in GGUF files) with names
 * and block sizes, the read-only view of a GGUF file (metadata, tensor infos,
 * tensor data), and a writer that produces canonical GGUF v3 files.
 * Does not hold: what the metadata means for a model (model.h), kernels
 * (kernels.h), or conversions between tensor types (quant.h).
 *
 * Reader contract: every count, length, offset and size is checked against the
 * file size before use, so a truncated or hostile file gives EA_EFORMAT with a
 * message naming the field and its byte offset; memory allocated while reading
 * is bounded by a small multiple of the file size.
 */
#ifndef EDGEAGENT_GGUF_H
#define EDGEAGENT_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgeagent/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- tensor types ------------------------------------------------------ */

/* X(NAME, id, block_size, type_size): ids as stored in GGUF files; ids not
 * listed (4, 5, 31..33, 36..38: removed from the format) are unknown. */
#define EA_TYPE_MAP(X)              \
    X(F32, 0, 1, 4)                 \
    X(F16, 1, 1, 2)                 \
    X(Q4_0, 2, 32, 18)              \
    X(Q4_1, 3, 32, 20)              \
    X(Q5_0, 6, 32, 22)              \
    X(Q5_1, 7, 32, 24)              \
    X(Q8_0, 8, 32, 34)              \
    X(Q8_1, 9, 32, 36)              \
    X(Q2_K, 10, 256, 84)            \
    X(Q3_K, 11, 256, 110)           \
    X(Q4_K, 12, 256, 144)           \
    X(Q5_K, 13, 256, 176)           \
    X(Q6_K, 14, 256, 210)           \
    X(Q8_K, 15, 256, 292)           \
    X(IQ2_XXS, 16, 256, 66)         \
    X(IQ2_XS, 17, 256, 74)          \
    X(IQ3_XXS, 18, 256, 98)         \
    X(IQ1_S, 19, 256, 50)           \
    X(IQ4_NL, 20, 32, 18)           \
    X(IQ3_S, 21, 256, 110)          \
    X(IQ2_S, 22, 256, 82)           \
    X(IQ4_XS, 23, 256, 136)         \
    X(I8, 24, 1, 1)                 \
    X(I16, 25, 1, 2)                \
    X(I32, 26, 1, 4)                \
    X(I64, 27, 1, 8)                \
    X(F64, 28, 1, 8)                \
    X(IQ1_M, 29, 256, 56)           \
    X(BF16, 30, 1, 2)               \
    X(TQ1_0, 34, 256, 54)           \
    X(TQ2_0, 35, 256, 66)           \
    X(MXFP4, 39, 32, 17)            \
    X(NVFP4, 40, 64, 36)            \
    X(Q1_0, 41, 128, 18)

typedef enum {
#define EA__TYPE_ENUM(name, id, bs, ts) EA_TYPE_##name = id,
    EA_TYPE_MAP(EA__TYPE_ENUM)
#undef EA__TYPE_ENUM
    EA_TYPE_ID_LIMIT = 42 /* one past the largest id the table knows */
} ea_type;

struct ea_type_info {
    const char *name;    /* "Q4_K", as llama.cpp prints it */
    uint32_t block_size; /* elements per block */
    uint32_t type_size;  /* bytes per block */
};

/* NULL when id is not a known GGUF tensor type. */
const struct ea_type_info *ea_type_info(uint32_t id);
/* The type named name (case-insensitive, "q4_k" or "Q4_K"); -1 if unknown. */
int ea_type_from_name(const char *name);
/* Bytes of n elements of type id; EA_EFORMAT if n is not a whole number of
 * blocks, EA_ERANGE on overflow, EA_EUNSUPPORTED for an unknown type. */
ea_status ea_type_bytes(uint32_t id, uint64_t n, uint64_t *bytes);

/* ---- metadata values --------------------------------------------------- */

#define EA_GGUF_VTYPE_MAP(X) \
    X(UINT8, 0, 1)           \
    X(INT8, 1, 1)            \
    X(UINT16, 2, 2)          \
    X(INT16, 3, 2)           \
    X(UINT32, 4, 4)          \
    X(INT32, 5, 4)           \
    X(FLOAT32, 6, 4)         \
    X(BOOL, 7, 1)            \
    X(STRING, 8, 0)          \
    X(ARRAY, 9, 0)           \
    X(UINT64, 10, 8)         \
    X(INT64, 11, 8)          \
    X(FLOAT64, 12, 8)

typedef enum {
#define EA__VT_ENUM(name, id, size) EA_GGUF_##name = id,
    EA_GGUF_VTYPE_MAP(EA__VT_ENUM)
#undef EA__VT_ENUM
    EA_GGUF_VTYPE_COUNT
} ea_gguf_vtype;

/* "UINT32"; "?" for unknown ids. */
const char *ea_gguf_vtype_name(uint32_t vt);
/* Encoded size of one scalar of type vt; 0 for STRING, ARRAY and unknown. */
size_t ea_gguf_vtype_size(uint32_t vt);

/* A string inside the file: not NUL-terminated, may contain any bytes. */
struct ea_gguf_str {
    const char *ptr;
    uint64_t len;
};

struct ea_gguf_value {
    ea_gguf_vtype type;
    union {
        uint64_t u64; /* UINT8..UINT64 widened */
        int64_t i64;  /* INT8..INT64 widened */
        double f64;   /* FLOAT32/FLOAT64 widened */
        bool b;
        struct ea_gguf_str str;
        struct {
            ea_gguf_vtype elem_type;
            uint64_t n;
            /* Fixed-size elements: n * ea_gguf_vtype_size(elem_type) bytes,
             * little-endian, possibly unaligned; read with the accessors. */
            const uint8_t *raw;
            const struct ea_gguf_str *strs;    /* elem_type STRING */
            const struct ea_gguf_value *arrs;  /* elem_type ARRAY (nested) */
        } arr;
    } v;
};

struct ea_gguf_kv {
    const char *key;      /* NUL-terminated copy owned by the ea_gguf */
    struct ea_gguf_value value;
    uint64_t file_offset; /* where the key's record starts */
};

/* Array element accessors (no bounds check beyond assert: i < arr.n). */
uint64_t ea_gguf_arr_u64(const struct ea_gguf_value *arr, uint64_t i);
int64_t ea_gguf_arr_i64(const struct ea_gguf_value *arr, uint64_t i);
double ea_gguf_arr_f64(const struct ea_gguf_value *arr, uint64_t i);

/* ---- reader ------------------------------------------------------------ */

typedef struct ea_gguf ea_gguf;

#define EA_GGUF_MAX_DIMS 4
#define EA_GGUF_MAX_NAME 64 /* tensor names are shorter than this, as in llama.cpp */
#define EA_GGUF_DEFAULT_ALIGNMENT 32

struct ea_gguf_tensor {
    const char *name;   /* NUL-terminated copy owned by the ea_gguf */
    uint32_t n_dims;
    uint64_t ne[EA_GGUF_MAX_DIMS]; /* ne[0] is the row length; unused dims are 1 */
    uint32_t type;      /* ea_type */
    uint64_t offset;    /* from the start of the data section */
    uint64_t size;      /* bytes */
    const void *data;   /* inside the mapping */
    uint64_t info_offset; /* where the tensor info record starts in the file */
};

/* Maps and validates the file at path. On success *out owns the mapping;
 * release with ea_gguf_close. */
ea_status ea_gguf_open(const char *path, ea_gguf **out, struct ea_error *err);
/* Tells the OS that the mapped bytes [p, p + len) are not needed for now
 * (whole pages inside the range; they are read back from the file if
 * touched again), e.g. after copying tensors elsewhere. No-op for in-memory
 * images and for ranges outside the mapping. */
void ea_gguf_drop_pages(const ea_gguf *g, const void *p, size_t len);
/* Validates an in-memory image; data must outlive the returned handle. */
ea_status ea_gguf_open_memory(const void *data, size_t size, ea_gguf **out,
                              struct ea_error *err);
void ea_gguf_close(ea_gguf *g); /* NULL-safe */

uint32_t ea_gguf_version(const ea_gguf *g);
uint64_t ea_gguf_file_size(const ea_gguf *g);
uint32_t ea_gguf_alignment(const ea_gguf *g);
uint64_t ea_gguf_data_offset(const ea_gguf *g);
const void *ea_gguf_base(const ea_gguf *g); /* first byte of the file image */

uint64_t ea_gguf_n_kv(const ea_gguf *g);
const struct ea_gguf_kv *ea_gguf_kv_at(const ea_gguf *g, uint64_t i);
const struct ea_gguf_kv *ea_gguf_find(const ea_gguf *g, const char *key);

uint64_t ea_gguf_n_tensors(const ea_gguf *g);
const struct ea_gguf_tensor *ea_gguf_tensor_at(const ea_gguf *g, uint64_t i);
const struct ea_gguf_tensor *ea_gguf_find_tensor(const ea_gguf *g, const char *name);

/* Typed getters. EA_ENOTFOUND when the key is absent, EA_EFORMAT when its
 * type does not convert (integers convert between widths when the value fits;
 * floats accept integer values). Messages name the key. */
ea_status ea_gguf_get_u64(const ea_gguf *g, const char *key, uint64_t *out, struct ea_error *err);
ea_status ea_gguf_get_u32(const ea_gguf *g, const char *key, uint32_t *out, struct ea_error *err);
ea_status ea_gguf_get_i64(const ea_gguf *g, const char *key, int64_t *out, struct ea_error *err);
ea_status ea_gguf_get_f64(const ea_gguf *g, const char *key, double *out, struct ea_error *err);
ea_status ea_gguf_get_bool(const ea_gguf *g, const char *key, bool *out, struct ea_error *err);
ea_status ea_gguf_get_str(const ea_gguf *g, const char *key, struct ea_gguf_str *out,
                          struct ea_error *err);
/* Array of elem_type (or any element type if elem_type < 0). */
ea_status ea_gguf_get_arr(const ea_gguf *g, const char *key, int elem_type,
                          const struct ea_gguf_value **out, struct ea_error *err);
/* Value conversions used by the getters. */
ea_status ea_gguf_value_u64(const struct ea_gguf_value *v, uint64_t *out);
ea_status ea_gguf_value_i64(const struct ea_gguf_value *v, int64_t *out);
ea_status ea_gguf_value_f64(const struct ea_gguf_value *v, double *out);
/* Compares an in-file string with a C string. */
bool ea_gguf_str_eq(struct ea_gguf_str s, const char *c);

/* ---- writer ------------------------------------------------------------ */

typedef struct ea_gguf_writer ea_gguf_writer;

/* Fills rows [row0, row0 + n_rows) of a tensor (row = ne[0] elements encoded
 * in the tensor's type) into dst. Called in row order at write time. */
typedef ea_status (*ea_gguf_fill_fn)(void *ctx, uint64_t row0, uint64_t n_rows, void *dst,
                                     struct ea_error *err);

/* NULL when out of memory. Writes GGUF v3, alignment 32 unless set. */
ea_gguf_writer *ea_gguf_writer_create(void);
void ea_gguf_writer_destroy(ea_gguf_writer *w); /* NULL-safe */

/* Metadata, written in the order added; duplicate keys are EA_EINVAL. The
 * key "general.alignment" is added by set_alignment, not by hand. */
ea_status ea_gguf_writer_set_alignment(ea_gguf_writer *w, uint32_t alignment);
ea_status ea_gguf_writer_add_u32(ea_gguf_writer *w, const char *key, uint32_t v);
ea_status ea_gguf_writer_add_i32(ea_gguf_writer *w, const char *key, int32_t v);
ea_status ea_gguf_writer_add_u64(ea_gguf_writer *w, const char *key, uint64_t v);
ea_status ea_gguf_writer_add_f32(ea_gguf_writer *w, const char *key, float v);
ea_status ea_gguf_writer_add_bool(ea_gguf_writer *w, const char *key, bool v);
ea_status ea_gguf_writer_add_str(ea_gguf_writer *w, const char *key, const char *s);
ea_status ea_gguf_writer_add_strn(ea_gguf_writer *w, const char *key, const char *s, uint64_t len);
/* Array of n fixed-size elements in host (little-endian) layout. */
ea_status ea_gguf_writer_add_arr(ea_gguf_writer *w, const char *key, ea_gguf_vtype elem_type,
                                 uint64_t n, const void *data);
ea_status ea_gguf_writer_add_str_arr(ea_gguf_writer *w, const char *key, uint64_t n,
                                     const struct ea_gguf_str *strs);
/* Any value as read by the reader, nested arrays included (used to copy). */
ea_status ea_gguf_writer_add_value(ea_gguf_writer *w, const char *key,
                                   const struct ea_gguf_value *v);

/* Tensors, laid out in the order added, each aligned. data is borrowed and
 * must stay valid until write; fill is called at write time instead. */
ea_status ea_gguf_writer_add_tensor(ea_gguf_writer *w, const char *name, uint32_t type,
                                    uint32_t n_dims, const uint64_t *ne, const void *data);
ea_status ea_gguf_writer_add_tensor_fill(ea_gguf_writer *w, const char *name, uint32_t type,
                                         uint32_t n_dims, const uint64_t *ne, ea_gguf_fill_fn fill,
                                         void *ctx);
/* Writes to path via a temporary file renamed into place. */
ea_status ea_gguf_writer_write_file(ea_gguf_writer *w, const char *path, struct ea_error *err);
/* Writes into a new buffer; the caller owns *out (free with ea_free).
 * EA_ETOOBIG past EA_GGUF_WRITER_MAX_MEMORY bytes: memory images serve
 * tests, fuzz seeds and vocabulary files (a few MB); a model belongs in a
 * file (ea_gguf_writer_write_file), and 1 GiB leaves room for the largest
 * vocabulary many times over without letting a runaway writer take all the
 * memory of an edge board. */
#define EA_GGUF_WRITER_MAX_MEMORY ((size_t)1 << 30)
ea_status ea_gguf_writer_write_memory(ea_gguf_writer *w, void **out, size_t *size,
                                      struct ea_error *err);

#ifdef __cplusplus
}
#endif
#endif
