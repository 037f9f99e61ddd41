/* test_gguf.c - GGUF reader and writer: round trips, every shared model,
 * and a corpus of malformed files that must all be rejected cleanly. */
#include <stdlib.h>

#include "edgeagent/gguf.h"
#include "harness.h"

/* ---- a small file with every metadata type ------------------------------ */

static uint8_t q4_0_data[2 * 18 * 2]; /* 2 rows of 64 Q4_0 values */
static float f32_data[8 * 4];
static uint16_t f16_data[32];

static ea_gguf_writer *sample_writer(void)
{
    ea_gguf_writer *w = ea_gguf_writer_create();
    ASSERT(w);
    for (size_t i = 0; i < sizeof q4_0_data; i++)
        q4_0_data[i] = (uint8_t)(i * 7 + 3);
    for (size_t i = 0; i < 32; i++) {
        f32_data[i] = (float)i * 0.5f - 3.0f;
        f16_data[i] = (uint16_t)(0x3C00 + i);
    }
    uint8_t u8s[3] = {1, 2, 255};
    int16_t i16s[2] = {-5, 7};
    double f64s[2] = {1.5, -2.25};
    struct ea_gguf_str strs[3] = {{"alpha", 5}, {"", 0}, {"g\0mma", 5}};
    ASSERT_EQ(ea_gguf_writer_add_str(w, "general.architecture", "llama"), EA_OK);
    ASSERT_EQ(ea_gguf_writer_add_u32(w, "t.u32", 4000000000u), EA_OK);
    ASSERT_EQ(ea_gguf_writer_add_i32(w, "t.i32", -123456), EA_OK);
    ASSERT_EQ(ea_gguf_writer_add_u64(w, "t.u64", 1ull << 60), EA_OK);
    ASSERT_EQ(ea_gguf_writer_add_f32(w, "t.f32", 0.25f), EA_OK);
    ASSERT_EQ(ea_gguf_writer_add_bool(w, "t.bool", true), EA_OK);
    ASSERT_EQ(ea_gguf_writer_add_arr(w, "t.arr_u8", EA_GGUF_UINT8, 3, u8s), EA_OK);
    ASSERT_EQ(ea_gguf_writer_add_arr(w, "t.arr_i16", EA_GGUF_INT16, 2, i16s), EA_OK);
    ASSERT_EQ(ea_gguf_writer_add_arr(w, "t.arr_f64", EA_GGUF_FLOAT64, 2, f64s), EA_OK);
    ASSERT_EQ(ea_gguf_writer_add_str_arr(w, "t.arr_str", 3, strs), EA_OK);
    /* nested: [[1,2],[3]] of INT8 arrays */
    int8_t a1[2] = {1, 2}, a2[1] = {3};
    struct ea_gguf_value inner[2] = {
        {.type = EA_GGUF_ARRAY, .v.arr = {EA_GGUF_INT8, 2, (const uint8_t *)a1, NULL, NULL}},
        {.type = EA_GGUF_ARRAY, .v.arr = {EA_GGUF_INT8, 1, (const uint8_t *)a2, NULL, NULL}},
    };
    struct ea_gguf_value outer = {.type = EA_GGUF_ARRAY,
                                  .v.arr = {EA_GGUF_ARRAY, 2, NULL, NULL, inner}};
    ASSERT_EQ(ea_gguf_writer_add_value(w, "t.nested", &outer), EA_OK);
    struct ea_gguf_value i8 = {.type = EA_GGUF_INT8, .v.i64 = -7};
    ASSERT_EQ(ea_gguf_writer_add_value(w, "t.i8", &i8), EA_OK);
    struct ea_gguf_value f64 = {.type = EA_GGUF_FLOAT64, .v.f64 = 3.0e300};
    ASSERT_EQ(ea_gguf_writer_add_value(w, "t.f64", &f64), EA_OK);
    ASSERT_EQ(ea_gguf_writer_add_str(w, "dup.aaa", "x"), EA_OK);
    ASSERT_EQ(ea_gguf_writer_add_str(w, "dup.bbb", "y"), EA_OK);

    uint64_t ne_q[2] = {64, 2}, ne_f[2] = {8, 4}, ne_h[1] = {32};
    ASSERT_EQ(ea_gguf_writer_add_tensor(w, "blk.0.q", EA_TYPE_Q4_0, 2, ne_q, q4_0_data), EA_OK);
    ASSERT_EQ(ea_gguf_writer_add_tensor(w, "blk.0.f", EA_TYPE_F32, 2, ne_f, f32_data), EA_OK);
    ASSERT_EQ(ea_gguf_writer_add_tensor(w, "blk.0.h", EA_TYPE_F16, 1, ne_h, f16_data), EA_OK);
    return w;
}

static uint8_t *sample_image(size_t *size)
{
    ea_gguf_writer *w = sample_writer();
    void *img;
    struct ea_error err = {0};
    ASSERT_OK(ea_gguf_writer_write_memory(w, &img, size, &err), &err);
    ea_gguf_writer_destroy(w);
    return img;
}

static void check_sample(const ea_gguf *g)
{
    struct ea_error err = {0};
    ASSERT_EQ(ea_gguf_version(g), 3);
    ASSERT_EQ(ea_gguf_n_kv(g), 15);
    ASSERT_EQ(ea_gguf_n_tensors(g), 3);
    uint64_t u;
    int64_t i;
    double f;
    bool b;
    struct ea_gguf_str s;
    ASSERT_OK(ea_gguf_get_u64(g, "t.u32", &u, &err), &err);
    ASSERT_U64_EQ(u, 4000000000u);
    ASSERT_OK(ea_gguf_get_i64(g, "t.i32", &i, &err), &err);
    ASSERT_EQ(i, -123456);
    ASSERT_OK(ea_gguf_get_u64(g, "t.u64", &u, &err), &err);
    ASSERT_U64_EQ(u, 1ull << 60);
    ASSERT_OK(ea_gguf_get_f64(g, "t.f32", &f, &err), &err);
    ASSERT_NEAR(f, 0.25, 0);
    ASSERT_OK(ea_gguf_get_bool(g, "t.bool", &b, &err), &err);
    ASSERT(b);
    ASSERT_OK(ea_gguf_get_str(g, "general.architecture", &s, &err), &err);
    ASSERT(ea_gguf_str_eq(s, "llama"));
    ASSERT_OK(ea_gguf_get_i64(g, "t.i8", &i, &err), &err);
    ASSERT_EQ(i, -7);
    ASSERT_OK(ea_gguf_get_f64(g, "t.f64", &f, &err), &err);
    ASSERT_NEAR(f, 3.0e300, 0);
    /* conversions that must fail */
    ASSERT_EQ(ea_gguf_get_u64(g, "t.i32", &u, &err), EA_EFORMAT);
    ASSERT(strstr(err.msg, "t.i32") != NULL);
    ASSERT_EQ(ea_gguf_get_u32(g, "t.u64", (uint32_t *)&u, &err), EA_ERANGE);
    ASSERT_EQ(ea_gguf_get_str(g, "t.u32", &s, &err), EA_EFORMAT);
    ASSERT_EQ(ea_gguf_get_u64(g, "no.such.key", &u, &err), EA_ENOTFOUND);
    ASSERT(strstr(err.msg, "no.such.key") != NULL);

    const struct ea_gguf_value *arr;
    ASSERT_OK(ea_gguf_get_arr(g, "t.arr_u8", EA_GGUF_UINT8, &arr, &err), &err);
    ASSERT_EQ(arr->v.arr.n, 3);
    ASSERT_EQ(ea_gguf_arr_u64(arr, 2), 255);
    ASSERT_OK(ea_gguf_get_arr(g, "t.arr_i16", EA_GGUF_INT16, &arr, &err), &err);
    ASSERT_EQ(ea_gguf_arr_i64(arr, 0), -5);
    ASSERT_OK(ea_gguf_get_arr(g, "t.arr_f64", -1, &arr, &err), &err);
    ASSERT_NEAR(ea_gguf_arr_f64(arr, 1), -2.25, 0);
    ASSERT_EQ(ea_gguf_get_arr(g, "t.arr_f64", EA_GGUF_UINT8, &arr, &err), EA_EFORMAT);
    ASSERT_OK(ea_gguf_get_arr(g, "t.arr_str", EA_GGUF_STRING, &arr, &err), &err);
    ASSERT_EQ(arr->v.arr.n, 3);
    ASSERT(ea_gguf_str_eq(arr->v.arr.strs[0], "alpha"));
    ASSERT_EQ(arr->v.arr.strs[1].len, 0);
    ASSERT_EQ(arr->v.arr.strs[2].len, 5);
    ASSERT(memcmp(arr->v.arr.strs[2].ptr, "g\0mma", 5) == 0);
    ASSERT_OK(ea_gguf_get_arr(g, "t.nested", EA_GGUF_ARRAY, &arr, &err), &err);
    ASSERT_EQ(arr->v.arr.n, 2);
    ASSERT_EQ(arr->v.arr.arrs[0].v.arr.n, 2);
    ASSERT_EQ(ea_gguf_arr_i64(&arr->v.arr.arrs[0], 1), 2);
    ASSERT_EQ(ea_gguf_arr_i64(&arr->v.arr.arrs[1], 0), 3);

    const struct ea_gguf_tensor *t = ea_gguf_find_tensor(g, "blk.0.q");
    ASSERT(t);
    ASSERT_EQ(t->type, EA_TYPE_Q4_0);
    ASSERT_EQ(t->n_dims, 2);
    ASSERT_EQ(t->ne[0], 64);
    ASSERT_EQ(t->ne[1], 2);
    ASSERT_EQ(t->size, sizeof q4_0_data);
    ASSERT(memcmp(t->data, q4_0_data, sizeof q4_0_data) == 0);
    t = ea_gguf_find_tensor(g, "blk.0.f");
    ASSERT(t && t->size == sizeof f32_data && memcmp(t->data, f32_data, sizeof f32_data) == 0);
    ASSERT_EQ((uintptr_t)t->data % 32, (uintptr_t)ea_gguf_base(g) % 32);
    t = ea_gguf_find_tensor(g, "blk.0.h");
    ASSERT(t && t->size == 64 && memcmp(t->data, f16_data, 64) == 0);
    ASSERT(ea_gguf_find_tensor(g, "nope") == NULL);
    ASSERT(ea_gguf_find(g, "t.u32") == ea_gguf_kv_at(g, 1));
}

/* Writes everything g holds into a new image, in the same order. */
static uint8_t *copy_image(const ea_gguf *g, size_t *size)
{
    ea_gguf_writer *w = ea_gguf_writer_create();
    struct ea_error err = {0};
    for (uint64_t i = 0; i < ea_gguf_n_kv(g); i++) {
        const struct ea_gguf_kv *kv = ea_gguf_kv_at(g, i);
        ASSERT_EQ(ea_gguf_writer_add_value(w, kv->key, &kv->value), EA_OK);
    }
    for (uint64_t i = 0; i < ea_gguf_n_tensors(g); i++) {
        const struct ea_gguf_tensor *t = ea_gguf_tensor_at(g, i);
        ASSERT_EQ(ea_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data), EA_OK);
    }
    void *img;
    ASSERT_OK(ea_gguf_writer_write_memory(w, &img, size, &err), &err);
    ea_gguf_writer_destroy(w);
    return img;
}

static void roundtrip_in_memory(void)
{
    size_t n;
    uint8_t *img = sample_image(&n);
    ea_gguf *g = NULL;
    struct ea_error err = {0};
    ASSERT_OK(ea_gguf_open_memory(img, n, &g, &err), &err);
    check_sample(g);
    size_t n2;
    uint8_t *img2 = copy_image(g, &n2);
    ASSERT_EQ(n2, n);
    ASSERT(memcmp(img, img2, n) == 0);
    ea_gguf_close(g);
    free(img2);
    free(img);
}

static void roundtrip_file(void)
{
    ea_gguf_writer *w = sample_writer();
    struct ea_error err = {0};
    const char *path = ea_test_tmp_path("sample.gguf");
    ASSERT_OK(ea_gguf_writer_write_file(w, path, &err), &err);
    ea_gguf_writer_destroy(w);
    ea_gguf *g = NULL;
    ASSERT_OK(ea_gguf_open(path, &g, &err), &err);
    check_sample(g);
    ea_gguf_close(g);
    size_t n, n2;
    uint8_t *a = ea_test_read_file(path, &n), *b = sample_image(&n2);
    ASSERT(a && n == n2 && memcmp(a, b, n) == 0);
    free(a);
    free(b);
    remove(path);
    ASSERT_EQ(ea_gguf_open(path, &g, &err), EA_ENOTFOUND);
}

static void writer_rejects_bad_input(void)
{
    ea_gguf_writer *w = ea_gguf_writer_create();
    uint64_t ne[2] = {33, 1};
    float data[33] = {0};
    ASSERT_EQ(ea_gguf_writer_add_u32(w, "k", 1), EA_OK);
    ASSERT_EQ(ea_gguf_writer_add_u32(w, "k", 2), EA_EINVAL);  /* duplicate key */
    ASSERT_EQ(ea_gguf_writer_add_tensor(w, "t", EA_TYPE_Q4_0, 1, ne, data), EA_EINVAL);
    ASSERT_EQ(ea_gguf_writer_add_tensor(w, "t", 4, 1, ne, data), EA_EINVAL); /* removed type */
    ASSERT_EQ(ea_gguf_writer_set_alignment(w, 48), EA_EINVAL);
    void *img;
    size_t n;
    struct ea_error err = {0};
    ASSERT_EQ(ea_gguf_writer_write_memory(w, &img, &n, &err), EA_EINVAL); /* sticky */
    ea_gguf_writer_destroy(w);
    ea_gguf_writer_destroy(NULL);
}

static void custom_alignment(void)
{
    ea_gguf_writer *w = ea_gguf_writer_create();
    ASSERT_EQ(ea_gguf_writer_set_alignment(w, 64), EA_OK);
    float a[3] = {1, 2, 3}, b[5] = {4, 5, 6, 7, 8};
    uint64_t na = 3, nb = 5;
    ASSERT_EQ(ea_gguf_writer_add_tensor(w, "a", EA_TYPE_F32, 1, &na, a), EA_OK);
    ASSERT_EQ(ea_gguf_writer_add_tensor(w, "b", EA_TYPE_F32, 1, &nb, b), EA_OK);
    void *img;
    size_t n;
    struct ea_error err = {0};
    ASSERT_OK(ea_gguf_writer_write_memory(w, &img, &n, &err), &err);
    ea_gguf_writer_destroy(w);
    ea_gguf *g;
    ASSERT_OK(ea_gguf_open_memory(img, n, &g, &err), &err);
    ASSERT_EQ(ea_gguf_alignment(g), 64);
    ASSERT_EQ(ea_gguf_data_offset(g) % 64, 0);
    ASSERT_EQ(ea_gguf_find_tensor(g, "b")->offset, 64);
    ASSERT_EQ(n % 64, 0);
    ASSERT(memcmp(ea_gguf_find_tensor(g, "b")->data, b, sizeof b) == 0);
    ea_gguf_close(g);
    free(img);
}

/* ---- shared models ------------------------------------------------------ */

static void shared_files_parse(void)
{
    static const char *const files[] = {
        "models/stories260K.gguf",
        "models/llama-2-tiny-random.gguf",
        "vocab/ggml-vocab-baichuan.gguf",
        "vocab/ggml-vocab-bert-bge.gguf",
        "vocab/ggml-vocab-deepseek-coder.gguf",
        "vocab/ggml-vocab-deepseek-llm.gguf",
        "vocab/ggml-vocab-falcon.gguf",
        "vocab/ggml-vocab-gpt-2.gguf",
        "vocab/ggml-vocab-gpt-neox.gguf",
        "vocab/ggml-vocab-llama-bpe.gguf",
        "vocab/ggml-vocab-llama-spm.gguf",
        "vocab/ggml-vocab-mpt.gguf",
        "vocab/ggml-vocab-phi-3.gguf",
        "vocab/ggml-vocab-qwen2.gguf",
        "vocab/ggml-vocab-refact.gguf",
        "vocab/ggml-vocab-starcoder.gguf",
        "reference/models/ref-llama-Q4_K_M.gguf",
        "reference/models/ref-qwen2-Q8_0.gguf",
        "reference/models/ref-qwen3-F32.gguf",
        "reference/models/ref-llama-llama3rope-F32.gguf",
    };
    if (!ea_test_shared_dir())
        SKIP("../shared not found; skipping shared-model parsing");
    int parsed = 0, identical = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", ea_test_shared_dir(), files[i]);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue; /* not every vocab is shipped */
        fclose(f);
        ea_gguf *g = NULL;
        struct ea_error err = {0};
        ASSERT_OK(ea_gguf_open(path, &g, &err), &err);
        ASSERT(ea_gguf_find(g, "general.architecture") != NULL);
        const struct ea_gguf_value *tok;
        ASSERT_OK(ea_gguf_get_arr(g, "tokenizer.ggml.tokens", EA_GGUF_STRING, &tok, &err), &err);
        ASSERT(tok->v.arr.n >= 512);
        /* reader -> writer reproduces the file byte for byte */
        size_t n;
        uint8_t *copy = copy_image(g, &n);
        size_t orig_n;
        uint8_t *orig = ea_test_read_file(path, &orig_n);
        ASSERT(orig);
        if (n != orig_n || memcmp(copy, orig, n) != 0)
            FAIL("%s: reader->writer copy differs from the original (%zu vs %zu bytes)", files[i], n,
                 orig_n);
        identical++;
        free(copy);
        free(orig);
        ea_gguf_close(g);
        parsed++;
    }
    printf("    parsed %d shared GGUF files, %d reproduced byte for byte\n", parsed, identical);
    ASSERT(parsed >= 10);
}

static void stories_facts(void)
{
    const char *path = ea_test_shared_path("models/stories260K.gguf");
    ea_gguf *g = NULL;
    struct ea_error err = {0};
    ASSERT_OK(ea_gguf_open(path, &g, &err), &err);
    ASSERT_EQ(ea_gguf_n_tensors(g), 48);
    uint64_t params = 0;
    for (uint64_t i = 0; i < ea_gguf_n_tensors(g); i++) {
        const struct ea_gguf_tensor *t = ea_gguf_tensor_at(g, i);
        params += t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    }
    ASSERT_U64_EQ(params, 292800);
    uint32_t n_layer;
    ASSERT_OK(ea_gguf_get_u32(g, "llama.block_count", &n_layer, &err), &err);
    ASSERT_EQ(n_layer, 5);
    ASSERT_EQ(ea_gguf_alignment(g), 32);
    ea_gguf_close(g);
}

static void rejects_v1(void)
{
    const char *path = ea_test_shared_path("models/tinyllamas-stories-260k-f32.gguf");
    ea_gguf *g = NULL;
    struct ea_error err = {0};
    ASSERT_EQ(ea_gguf_open(path, &g, &err), EA_EUNSUPPORTED);
    ASSERT(g == NULL);
    ASSERT(strstr(err.msg, "version 1") != NULL);
}

/* ---- malformed corpus --------------------------------------------------- */

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Opens a mutated copy; the open must fail with one of the expected codes
 * and a non-empty message. */
static void expect_reject(const uint8_t *img, size_t n, const char *what, const char *needle)
{
    ea_gguf *g = NULL;
    struct ea_error err = {0};
    ea_status s = ea_gguf_open_memory(img, n, &g, &err);
    if (s == EA_OK) {
        ea_gguf_close(g);
        FAIL("%s: accepted", what);
    }
    if (s != EA_EFORMAT && s != EA_EUNSUPPORTED)
        FAIL("%s: status %s (%s)", what, ea_status_name(s), err.msg);
    ASSERT(g == NULL);
    ASSERT(err.msg[0] != '\0');
    ASSERT(strchr(err.msg, '\n') == NULL);
    if (needle && !strstr(err.msg, needle))
        FAIL("%s: message '%s' lacks '%s'", what, err.msg, needle);
}

struct fixture {
    uint8_t *img, *mut;
    size_t n;
    ea_gguf *g; /* parsed original, for field offsets */
};

static void fixture_init(struct fixture *f)
{
    struct ea_error err = {0};
    f->img = sample_image(&f->n);
    f->mut = malloc(f->n);
    ASSERT_OK(ea_gguf_open_memory(f->img, f->n, &f->g, &err), &err);
}

static uint8_t *fresh(struct fixture *f)
{
    memcpy(f->mut, f->img, f->n);
    return f->mut;
}

static void fixture_release(struct fixture *f)
{
    ea_gguf_close(f->g);
    free(f->img);
    free(f->mut);
}

/* Offset of a tensor's fields: name length, name, n_dims, ne..., type, offset */
static size_t tensor_field(const struct fixture *f, const char *name, int field)
{
    const struct ea_gguf_tensor *t = ea_gguf_find_tensor(f->g, name);
    size_t o = (size_t)t->info_offset + 8 + strlen(name);
    if (field == 0)
        return o; /* n_dims */
    if (field == 1)
        return o + 4; /* ne[0] */
    if (field == 2)
        return o + 4 + 8 * t->n_dims; /* type */
    return o + 8 + 8 * t->n_dims;     /* offset */
}

static size_t kv_value(const struct fixture *f, const char *key)
{
    const struct ea_gguf_kv *kv = ea_gguf_find(f->g, key);
    return (size_t)kv->file_offset + 8 + strlen(key) + 4;
}

static void malformed_truncations(void)
{
    struct fixture f;
    fixture_init(&f);
    /* The last tensor ends exactly at the end of the file, so every shorter
     * prefix is invalid. */
    ASSERT_EQ(ea_gguf_find_tensor(f.g, "blk.0.h")->offset + 64 + ea_gguf_data_offset(f.g), f.n);
    for (size_t len = 0; len < f.n; len++) {
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu of %zu", len, f.n);
        uint8_t *cut = malloc(len ? len : 1);
        memcpy(cut, f.img, len);
        expect_reject(cut, len, what, NULL);
        free(cut);
    }
    fixture_release(&f);
}

static void malformed_headers(void)
{
    struct fixture f;
    fixture_init(&f);
    uint8_t *m;
    m = fresh(&f);
    m[0] = 'X';
    expect_reject(m, f.n, "bad magic", "magic");
    m = fresh(&f);
    put_le(m + 4, 1, 4);
    expect_reject(m, f.n, "version 1", "version 1");
    m = fresh(&f);
    put_le(m + 4, 4, 4);
    expect_reject(m, f.n, "version 4", "version 4");
    m = fresh(&f);
    put_le(m + 4, 0x03000000, 4);
    expect_reject(m, f.n, "big-endian", "big-endian");
    m = fresh(&f);
    put_le(m + 8, 1ull << 62, 8);
    expect_reject(m, f.n, "huge tensor count", "tensor count");
    m = fresh(&f);
    put_le(m + 16, UINT64_MAX, 8);
    expect_reject(m, f.n, "huge kv count", "metadata count");
    m = fresh(&f);
    put_le(m + 16, 16, 8); /* one more kv than present: reads tensor info as kv */
    expect_reject(m, f.n, "kv count + 1", NULL);
    m = fresh(&f);
    put_le(m + 8, 4, 8); /* one more tensor than present */
    expect_reject(m, f.n, "tensor count + 1", NULL);
    fixture_release(&f);
}

static void malformed_metadata(void)
{
    struct fixture f;
    fixture_init(&f);
    uint8_t *m;
    const struct ea_gguf_kv *kv = ea_gguf_find(f.g, "t.u32");
    m = fresh(&f);
    put_le(m + kv->file_offset, 1ull << 40, 8); /* key length past the end */
    expect_reject(m, f.n, "key length", "length");
    m = fresh(&f);
    put_le(m + kv->file_offset, 0, 8); /* empty key */
    expect_reject(m, f.n, "empty key", "empty key");
    m = fresh(&f);
    put_le(m + kv_value(&f, "t.u32") - 4, 13, 4);
    expect_reject(m, f.n, "unknown value type", "unknown value type");
    m = fresh(&f);
    put_le(m + kv_value(&f, "general.architecture"), f.n, 8); /* string value length */
    expect_reject(m, f.n, "string length past end", "general.architecture");
    m = fresh(&f);
    put_le(m + kv_value(&f, "t.arr_u8"), 13, 4); /* array element type */
    expect_reject(m, f.n, "unknown array element type", "element type");
    m = fresh(&f);
    put_le(m + kv_value(&f, "t.arr_str") + 4, 1ull << 59, 8); /* array count */
    expect_reject(m, f.n, "huge array count", "array count");
    m = fresh(&f);
    put_le(m + kv_value(&f, "t.arr_str") + 12, 1ull << 50, 8); /* first string's length */
    expect_reject(m, f.n, "array string length", NULL);
    m = fresh(&f);
    put_le(m + kv_value(&f, "t.nested") + 4, 1ull << 40, 8);
    expect_reject(m, f.n, "nested count", "array count");
    m = fresh(&f);
    memcpy(m + ea_gguf_find(f.g, "dup.bbb")->file_offset + 8, "dup.aaa", 7);
    expect_reject(m, f.n, "duplicate key", "duplicate");
    fixture_release(&f);
}

static void malformed_alignment(void)
{
    /* A file with general.alignment and one tensor. */
    for (int mode = 0; mode < 3; mode++) {
        ea_gguf_writer *w = ea_gguf_writer_create();
        ea_gguf_writer_set_alignment(w, 64);
        float a[16] = {0};
        uint64_t ne = 16;
        ea_gguf_writer_add_tensor(w, "a", EA_TYPE_F32, 1, &ne, a);
        void *img;
        size_t n;
        struct ea_error err = {0};
        ASSERT_OK(ea_gguf_writer_write_memory(w, &img, &n, &err), &err);
        ea_gguf_writer_destroy(w);
        uint8_t *m = img;
        size_t val = 24 + 8 + strlen("general.alignment") + 4;
        if (mode == 0) {
            put_le(m + val, 48, 4);
            expect_reject(m, n, "alignment 48", "power of two");
        } else if (mode == 1) {
            put_le(m + val, 0, 4);
            expect_reject(m, n, "alignment 0", "power of two");
        } else {
            put_le(m + val - 4, EA_GGUF_INT32, 4);
            expect_reject(m, n, "alignment type", "UINT32");
        }
        free(img);
    }
}

static void malformed_tensors(void)
{
    struct fixture f;
    fixture_init(&f);
    uint8_t *m;
    m = fresh(&f);
    put_le(m + tensor_field(&f, "blk.0.f", 0), 0, 4);
    expect_reject(m, f.n, "0 dims", "dimensions");
    m = fresh(&f);
    put_le(m + tensor_field(&f, "blk.0.f", 0), 5, 4);
    expect_reject(m, f.n, "5 dims", "dimensions");
    m = fresh(&f);
    put_le(m + tensor_field(&f, "blk.0.f", 1), 1ull << 62, 8);
    expect_reject(m, f.n, "huge dimension", "blk.0.f");
    m = fresh(&f);
    put_le(m + tensor_field(&f, "blk.0.f", 1) + 8, 1ull << 40, 8); /* ne[1]: fits, data does not */
    expect_reject(m, f.n, "data past end", "past");
    m = fresh(&f);
    put_le(m + tensor_field(&f, "blk.0.f", 1), 0, 8);
    expect_reject(m, f.n, "zero dimension", "zero");
    m = fresh(&f);
    put_le(m + tensor_field(&f, "blk.0.f", 2), 4, 4);
    expect_reject(m, f.n, "removed type 4", "unknown tensor type");
    m = fresh(&f);
    put_le(m + tensor_field(&f, "blk.0.f", 2), 1000, 4);
    expect_reject(m, f.n, "unknown type 1000", "unknown tensor type");
    m = fresh(&f);
    put_le(m + tensor_field(&f, "blk.0.f", 2), EA_TYPE_Q4_0, 4); /* 8 is not a block of 32 */
    expect_reject(m, f.n, "row not whole blocks", "block size");
    m = fresh(&f);
    uint64_t off = ea_gguf_find_tensor(f.g, "blk.0.f")->offset;
    put_le(m + tensor_field(&f, "blk.0.f", 3), off + 4, 8);
    expect_reject(m, f.n, "misaligned offset", "alignment");
    m = fresh(&f);
    put_le(m + tensor_field(&f, "blk.0.f", 3), 0, 8); /* same offset as blk.0.q */
    expect_reject(m, f.n, "overlapping tensors", "overlap");
    m = fresh(&f);
    put_le(m + tensor_field(&f, "blk.0.h", 3), 1ull << 60, 8);
    expect_reject(m, f.n, "offset past end", "past");
    m = fresh(&f);
    put_le(m + tensor_field(&f, "blk.0.h", 3), UINT64_MAX - 31, 8);
    expect_reject(m, f.n, "offset overflow", NULL);
    m = fresh(&f);
    size_t name_at = (size_t)ea_gguf_find_tensor(f.g, "blk.0.h")->info_offset + 8;
    memcpy(m + name_at, "blk.0.f", 7);
    expect_reject(m, f.n, "duplicate tensor name", "duplicate");
    m = fresh(&f);
    put_le(m + ea_gguf_find_tensor(f.g, "blk.0.h")->info_offset, 64, 8);
    expect_reject(m, f.n, "tensor name too long", "name length");
    fixture_release(&f);
}

static void malformed_nesting(void)
{
    /* Array of array of ... 20 deep, built by hand. */
    uint8_t img[1024];
    size_t o = 0;
    memcpy(img, "GGUF", 4);
    put_le(img + 4, 3, 4);
    put_le(img + 8, 0, 8);
    put_le(img + 16, 1, 8);
    o = 24;
    put_le(img + o, 1, 8);
    img[o + 8] = 'k';
    o += 9;
    put_le(img + o, EA_GGUF_ARRAY, 4);
    o += 4;
    for (int d = 0; d < 20; d++) {
        put_le(img + o, EA_GGUF_ARRAY, 4);
        put_le(img + o + 4, 1, 8);
        o += 12;
    }
    put_le(img + o, EA_GGUF_UINT8, 4);
    put_le(img + o + 4, 0, 8);
    o += 12;
    expect_reject(img, o, "20-deep arrays", "nested");
}

/* Random byte mutations of the header region: any outcome but a crash;
 * rejections carry a message. Run under ASan/UBSan in CI. */
static void random_mutations(void)
{
    struct fixture f;
    fixture_init(&f);
    uint64_t rng = 12345;
    int rejected = 0;
    for (int iter = 0; iter < 20000; iter++) {
        uint8_t *m = fresh(&f);
        int flips = 1 + iter % 4;
        for (int k = 0; k < flips; k++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            size_t pos = (size_t)((rng >> 33) % ea_gguf_data_offset(f.g));
            m[pos] ^= (uint8_t)(1u << ((rng >> 20) & 7));
            if ((rng >> 40) % 3 == 0)
                m[pos] = (uint8_t)(rng >> 48);
        }
        ea_gguf *g = NULL;
        struct ea_error err = {0};
        if (ea_gguf_open_memory(m, f.n, &g, &err) != EA_OK) {
            ASSERT(err.msg[0]);
            rejected++;
            continue;
        }
        /* Accepted: everything reachable must be inside the image. */
        for (uint64_t i = 0; i < ea_gguf_n_tensors(g); i++) {
            const struct ea_gguf_tensor *t = ea_gguf_tensor_at(g, i);
            ASSERT((const uint8_t *)t->data >= m && (const uint8_t *)t->data + t->size <= m + f.n);
        }
        ea_gguf_close(g);
    }
    printf("    20000 mutations: %d rejected, %d still valid\n", rejected, 20000 - rejected);
    ASSERT(rejected > 1000);
    fixture_release(&f);
}

static void allocation_failures(void)
{
    size_t n;
    uint8_t *img = sample_image(&n);
    int failures = 0;
    for (long at = 1; at < 200; at++) {
        ea_gguf *g = NULL;
        struct ea_error err = {0};
        ea_alloc_fail_after(at);
        ea_status s = ea_gguf_open_memory(img, n, &g, &err);
        ea_alloc_fail_after(0);
        if (s == EA_OK) {
            check_sample(g);
            ea_gguf_close(g);
            break;
        }
        ASSERT_EQ(s, EA_ENOMEM);
        ASSERT(g == NULL);
        failures++;
    }
    ASSERT(failures >= 3);
    /* writer under allocation failure: an error, never a crash */
    for (long at = 1; at < 300; at++) {
        ea_alloc_fail_after(at);
        ea_gguf_writer *w = ea_gguf_writer_create();
        void *out = NULL;
        size_t sz;
        struct ea_error err = {0};
        ea_status s = EA_ENOMEM;
        if (w) {
            ea_gguf_writer_add_str(w, "a", "b");
            uint64_t ne = 8;
            ea_gguf_writer_add_tensor(w, "t", EA_TYPE_F32, 1, &ne, f32_data);
            s = ea_gguf_writer_write_memory(w, &out, &sz, &err);
        }
        ea_alloc_fail_after(0);
        ea_gguf_writer_destroy(w);
        free(out);
        if (s == EA_OK)
            break;
        ASSERT(s == EA_ENOMEM || s == EA_ETOOBIG);
    }
    free(img);
}

static void type_table(void)
{
    ASSERT_STR_EQ(ea_type_info(EA_TYPE_Q4_K)->name, "Q4_K");
    ASSERT_EQ(ea_type_info(EA_TYPE_Q4_K)->block_size, 256);
    ASSERT_EQ(ea_type_info(EA_TYPE_Q4_K)->type_size, 144);
    ASSERT_EQ(ea_type_info(EA_TYPE_Q8_0)->type_size, 34);
    ASSERT_EQ(ea_type_info(EA_TYPE_IQ4_XS)->type_size, 136);
    ASSERT(ea_type_info(4) == NULL);
    ASSERT(ea_type_info(31) == NULL);
    ASSERT(ea_type_info(1000) == NULL);
    ASSERT_EQ(ea_type_from_name("q6_k"), EA_TYPE_Q6_K);
    ASSERT_EQ(ea_type_from_name("BF16"), EA_TYPE_BF16);
    ASSERT_EQ(ea_type_from_name("Q4"), -1);
    uint64_t b;
    ASSERT_EQ(ea_type_bytes(EA_TYPE_Q4_0, 64, &b), EA_OK);
    ASSERT_EQ(b, 36);
    ASSERT_EQ(ea_type_bytes(EA_TYPE_Q4_0, 65, &b), EA_EFORMAT);
    ASSERT_EQ(ea_type_bytes(EA_TYPE_F32, UINT64_MAX, &b), EA_ERANGE);
}

EA_TESTS(EA_TEST(type_table), EA_TEST(roundtrip_in_memory), EA_TEST(roundtrip_file),
         EA_TEST(writer_rejects_bad_input), EA_TEST(custom_alignment), EA_TEST(shared_files_parse),
         EA_TEST(stories_facts), EA_TEST(rejects_v1), EA_TEST(malformed_truncations),
         EA_TEST(malformed_headers), EA_TEST(malformed_metadata), EA_TEST(malformed_alignment),
         EA_TEST(malformed_tensors), EA_TEST(malformed_nesting), EA_TEST(random_mutations),
         EA_TEST(allocation_failures))
