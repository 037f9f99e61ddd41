/* gguf_types.c - the tensor type table (names, block sizes) and the metadata
 * value type table of the GGUF format.
 * Does not hold: any arithmetic on tensor data (see src/kernels).
 */
#include "edgeagent/gguf.h"

#include <ctype.h>
#include <string.h>

static const struct ea_type_info type_table[EA_TYPE_ID_LIMIT] = {
#define EA__TYPE_ROW(name, id, bs, ts) [id] = {#name, bs, ts},
    EA_TYPE_MAP(EA__TYPE_ROW)
#undef EA__TYPE_ROW
};

const struct ea_type_info *ea_type_info(uint32_t id)
{
    if (id >= EA_TYPE_ID_LIMIT || type_table[id].name == NULL)
        return NULL;
    return &type_table[id];
}

int ea_type_from_name(const char *name)
{
    if (!name)
        return -1;
    for (uint32_t id = 0; id < EA_TYPE_ID_LIMIT; id++) {
        const char *t = type_table[id].name;
        if (!t)
            continue;
        size_t i = 0;
        while (t[i] && name[i] && toupper((unsigned char)name[i]) == t[i])
            i++;
        if (t[i] == '\0' && name[i] == '\0')
            return (int)id;
    }
    return -1;
}

ea_status ea_type_bytes(uint32_t id, uint64_t n, uint64_t *bytes)
{
    const struct ea_type_info *ti = ea_type_info(id);
    if (!ti)
        return EA_EUNSUPPORTED;
    if (n % ti->block_size != 0)
        return EA_EFORMAT;
    uint64_t blocks = n / ti->block_size;
    if (blocks != 0 && ti->type_size > UINT64_MAX / blocks)
        return EA_ERANGE;
    *bytes = blocks * ti->type_size;
    return EA_OK;
}

static const char *const vtype_names[] = {
#define EA__VT_NAME(name, id, size) [id] = #name,
    EA_GGUF_VTYPE_MAP(EA__VT_NAME)
#undef EA__VT_NAME
};

static const size_t vtype_sizes[] = {
#define EA__VT_SIZE(name, id, size) [id] = size,
    EA_GGUF_VTYPE_MAP(EA__VT_SIZE)
#undef EA__VT_SIZE
};

const char *ea_gguf_vtype_name(uint32_t vt)
{
    return vt < EA_GGUF_VTYPE_COUNT ? vtype_names[vt] : "?";
}

size_t ea_gguf_vtype_size(uint32_t vt)
{
    return vt < EA_GGUF_VTYPE_COUNT ? vtype_sizes[vt] : 0;
}
