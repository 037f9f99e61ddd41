/* fuzz_gguf.c - libFuzzer target for the GGUF reader. Any input must be
 * either rejected with a message or accepted with every view inside the
 * input; an accepted file written back by the writer must parse again with
 * the same metadata and tensors. Build: make fuzz; run: make fuzz-smoke. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "edgeagent/gguf.h"

static volatile uint64_t sink;

static void touch_value(const struct ea_gguf_value *v)
{
    if (v->type == EA_GGUF_STRING) {
        for (uint64_t i = 0; i < v->v.str.len; i++)
            sink += (unsigned char)v->v.str.ptr[i];
    } else if (v->type == EA_GGUF_ARRAY) {
        for (uint64_t i = 0; i < v->v.arr.n; i++) {
            if (v->v.arr.elem_type == EA_GGUF_STRING)
                sink += v->v.arr.strs[i].len ? (unsigned char)v->v.arr.strs[i].ptr[0] : 0;
            else if (v->v.arr.elem_type == EA_GGUF_ARRAY)
                touch_value(&v->v.arr.arrs[i]);
            else
                sink += ea_gguf_arr_u64(v, i);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ea_gguf *g = NULL;
    struct ea_error err = {0};
    if (ea_gguf_open_memory(data, size, &g, &err) != EA_OK) {
        if (!err.msg[0])
            abort(); /* every rejection explains itself */
        return 0;
    }
    for (uint64_t i = 0; i < ea_gguf_n_kv(g); i++)
        touch_value(&ea_gguf_kv_at(g, i)->value);
    ea_gguf_writer *w = ea_gguf_writer_create();
    for (uint64_t i = 0; i < ea_gguf_n_kv(g); i++) {
        const struct ea_gguf_kv *kv = ea_gguf_kv_at(g, i);
        if (ea_gguf_writer_add_value(w, kv->key, &kv->value) != EA_OK)
            abort();
    }
    for (uint64_t i = 0; i < ea_gguf_n_tensors(g); i++) {
        const struct ea_gguf_tensor *t = ea_gguf_tensor_at(g, i);
        const uint8_t *p = t->data;
        if (p < data || p + t->size > data + size)
            abort();
        if (t->size)
            sink += p[0] + p[t->size - 1];
        if (ea_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data) != EA_OK)
            abort();
    }
    void *out = NULL;
    size_t n = 0;
    if (ea_gguf_writer_write_memory(w, &out, &n, &err) != EA_OK)
        abort();
    ea_gguf *g2 = NULL;
    if (ea_gguf_open_memory(out, n, &g2, &err) != EA_OK)
        abort(); /* the writer must produce what the reader accepts */
    if (ea_gguf_n_kv(g2) != ea_gguf_n_kv(g) || ea_gguf_n_tensors(g2) != ea_gguf_n_tensors(g))
        abort();
    for (uint64_t i = 0; i < ea_gguf_n_tensors(g); i++) {
        const struct ea_gguf_tensor *a = ea_gguf_tensor_at(g, i), *b = ea_gguf_tensor_at(g2, i);
        if (strcmp(a->name, b->name) || a->size != b->size || memcmp(a->data, b->data, a->size))
            abort();
    }
    ea_gguf_close(g2);
    ea_gguf_writer_destroy(w);
    free(out);
    ea_gguf_close(g);
    return 0;
}
