/* kernels_int.h - how kernel variants plug into the dispatch table.
 *
 * A variant is a row in the variant list of dispatch.c: a name, a CPU check,
 * and an install function that fills (or overrides) entries of a matmul
 * table and a vec table that start as copies of the generic ones. So a
 * variant only provides what it accelerates; everything else stays generic.
 * Does not hold: any kernel code.
 */
#ifndef EDGEAGENT_KERNELS_INT_H
#define EDGEAGENT_KERNELS_INT_H

#include "edgeagent/kernels.h"

struct ea__kernel_variant {
    const char *name;
    bool (*available)(void);
    void (*install)(struct ea_matmul_ops table[EA_TYPE_ID_LIMIT], struct ea_vec_ops *vec);
    /* optional: packed layouts (ea_pack_ops); the table starts empty */
    void (*install_pack)(struct ea_pack_ops table[EA_TYPE_ID_LIMIT]);
};

/* generic/: always present. */
void ea__generic_install(struct ea_matmul_ops table[EA_TYPE_ID_LIMIT], struct ea_vec_ops *vec);

/* x86/ and arm/: declared here, defined only where built (see CMakeLists). */
bool ea__cpu_has_avx2(void);
bool ea__cpu_has_avx512(void);
bool ea__cpu_has_neon(void);
bool ea__cpu_has_dotprod(void);
void ea__avx2_install(struct ea_matmul_ops table[EA_TYPE_ID_LIMIT], struct ea_vec_ops *vec);
void ea__avx512_install(struct ea_matmul_ops table[EA_TYPE_ID_LIMIT], struct ea_vec_ops *vec);
void ea__neon_install(struct ea_matmul_ops table[EA_TYPE_ID_LIMIT], struct ea_vec_ops *vec);
void ea__dotprod_install(struct ea_matmul_ops table[EA_TYPE_ID_LIMIT], struct ea_vec_ops *vec);
void ea__avx512_install_pack(struct ea_pack_ops table[EA_TYPE_ID_LIMIT]);

#endif
