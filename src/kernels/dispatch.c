/* dispatch.c - picks the kernel variant at run time: every variant built
 * into this binary whose CPU check passes is usable; the best one (last in
 * the list) is active until ea_kernels_select names another (the CLI does
 * for EA_KERNELS; the library reads no environment). Each variant's table
 * starts as a copy of the generic one, so missing entries fall back; its
 * packed layouts (ea_pack_ops) start empty.
 * Does not hold: kernels.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels_int.h"

static const struct ea__kernel_variant all_variants[] = {
    {.name = "generic", .install = ea__generic_install},
#if !defined(EA_GENERIC_KERNELS_ONLY) && (defined(__x86_64__) || defined(_M_X64)) && defined(EA_HAVE_X86_KERNELS)
    {.name = "avx2", .available = ea__cpu_has_avx2, .install = ea__avx2_install},
    {.name = "avx512", .available = ea__cpu_has_avx512, .install = ea__avx512_install,
     .install_pack = ea__avx512_install_pack},
#endif
#if !defined(EA_GENERIC_KERNELS_ONLY) && defined(__aarch64__) && defined(EA_HAVE_ARM_KERNELS)
    {.name = "neon", .available = ea__cpu_has_neon, .install = ea__neon_install},
    {.name = "neon-dotprod", .available = ea__cpu_has_dotprod, .install = ea__dotprod_install},
#endif
};
#define N_ALL (sizeof all_variants / sizeof all_variants[0])

struct ready_variant {
    const char *name;
    struct ea_matmul_ops table[EA_TYPE_ID_LIMIT];
    struct ea_vec_ops vec;
    struct ea_pack_ops pack[EA_TYPE_ID_LIMIT]; /* zero = no packed layout */
};

_Static_assert(N_ALL <= 8, "grow ready[]");
static struct ready_variant ready[8]; /* fixed size: keeps GCC bounds checks quiet when N_ALL is 1 */
static unsigned n_ready;
static _Atomic unsigned active; /* index into ready[] */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void)
{
    for (unsigned i = 0; i < N_ALL; i++) {
        const struct ea__kernel_variant *v = &all_variants[i];
        if (v->available && !v->available())
            continue;
        struct ready_variant *r = &ready[n_ready];
        r->name = v->name;
        if (n_ready > 0) { /* start from generic */
            memcpy(r->table, ready[0].table, sizeof r->table);
            r->vec = ready[0].vec;
        }
        v->install(r->table, &r->vec);
        if (v->install_pack)
            v->install_pack(r->pack);
        n_ready++;
    }
    active = n_ready - 1;
}

static void ensure(void) { pthread_once(&once, init); }

const struct ea_matmul_ops *ea_kernels_matmul(uint32_t t)
{
    ensure();
    if (t >= EA_TYPE_ID_LIMIT || !ready[active].table[t].gemm)
        return NULL;
    return &ready[active].table[t];
}

const struct ea_vec_ops *ea_kernels_vec(void)
{
    ensure();
    return &ready[active].vec;
}

const struct ea_pack_ops *ea_kernels_pack(uint32_t t)
{
    ensure();
    if (t >= EA_TYPE_ID_LIMIT || !ready[active].pack[t].gemm)
        return NULL;
    return &ready[active].pack[t];
}

const char *ea_kernels_name(void)
{
    ensure();
    return ready[active].name;
}

unsigned ea_kernels_n_variants(void)
{
    ensure();
    return n_ready;
}

const char *ea_kernels_variant_name(unsigned i)
{
    ensure();
    return i < n_ready ? ready[i].name : NULL;
}

const struct ea_matmul_ops *ea_kernels_variant_matmul(unsigned i, uint32_t t)
{
    ensure();
    if (i >= n_ready || t >= EA_TYPE_ID_LIMIT || !ready[i].table[t].gemm)
        return NULL;
    return &ready[i].table[t];
}

const struct ea_vec_ops *ea_kernels_variant_vec(unsigned i)
{
    ensure();
    return i < n_ready ? &ready[i].vec : NULL;
}

const struct ea_pack_ops *ea_kernels_variant_pack(unsigned i, uint32_t t)
{
    ensure();
    if (i >= n_ready || t >= EA_TYPE_ID_LIMIT || !ready[i].pack[t].gemm)
        return NULL;
    return &ready[i].pack[t];
}

ea_status ea_kernels_select(const char *name, struct ea_error *err)
{
    ensure();
    for (unsigned i = 0; i < n_ready; i++)
        if (name && strcmp(ready[i].name, name) == 0) {
            active = i;
            return EA_OK;
        }
    char list[256] = "";
    for (unsigned i = 0; i < n_ready; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, ready[i].name, sizeof list - strlen(list) - 1);
    }
    return ea_error_set(err, EA_EINVAL, "kernels: no usable variant '%s' (usable here: %s)",
                        name ? name : "", list);
}
