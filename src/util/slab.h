/* slab.h - large anonymous allocations for data that is streamed from
 * memory again and again: the packed weights (model/pack.c), and the buffer
 * of the bandwidth probe that measures how fast such data can be read
 * (`edgeagent bench --mem-bandwidth`). Transparent huge pages are asked for
 * (madvise), so a stream changes TLB entry every 2 MB instead of every
 * 4 KB; the system may still hand out small pages.
 * Does not hold: general allocation (error.h's ea_malloc and hook).
 */
#ifndef EDGEAGENT_UTIL_SLAB_H
#define EDGEAGENT_UTIL_SLAB_H

#include <stddef.h>

/* bytes of zeroed memory, page aligned; NULL when unavailable. */
void *ea__slab_alloc(size_t bytes);
/* The same in small pages only (MADV_NOHUGEPAGE): what a plain malloc
 * gets where transparent huge pages are opt-in; the bandwidth probe's
 * comparison. */
void *ea__slab_alloc_small_pages(size_t bytes);
/* Frees a slab of bytes (the size it was allocated with); NULL-safe. */
void ea__slab_free(void *p, size_t bytes);

#endif
