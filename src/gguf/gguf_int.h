/* gguf_int.h - internal layout of the GGUF reader handle, shared by the
 * reader's translation units. Not part of the public API. */
#ifndef EDGEAGENT_GGUF_INT_H
#define EDGEAGENT_GGUF_INT_H

#include <stdio.h>

#include "edgeagent/gguf.h"

struct arena_chunk;

struct name_index {
    uint64_t cap;    /* power of two, 0 when empty */
    uint64_t *slots; /* index + 1, 0 = free */
};

struct ea_gguf {
    const uint8_t *base;
    uint64_t size;
    void *map; /* non-NULL when we own an mmap */
    size_t map_len;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;
    uint64_t n_kv;
    struct ea_gguf_kv *kvs;
    uint64_t n_tensors;
    struct ea_gguf_tensor *tensors;
    struct name_index kv_index, tensor_index;
    struct arena_chunk *arena; /* keys, names, string tables, nested arrays */
};

#endif
