/* generic_quants.c - scalar reference matmul for quantized weight formats.
 * (Formats arrive with the engine issue; none are installed yet.) */
#include "kernels/generic/generic_int.h"
#include "kernels/quant_blocks.h"

void ea__generic_install_quants(struct ea_matmul_ops table[EA_TYPE_ID_LIMIT]) { (void)table; }
