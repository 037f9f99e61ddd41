/* bench_int.h - shared by the bench subcommand's files. */
#ifndef EDGEAGENT_CLI_BENCH_INT_H
#define EDGEAGENT_CLI_BENCH_INT_H

#include <stdbool.h>
#include <stdint.h>

struct serving_opts {
    const char *model;
    int threads;
    int levels[16];
    int n_levels;
    int prompt, gen, shared_prefix, max_batch;
    uint64_t kv_mem_mb;
    bool json;
};

int bench_serving(const struct serving_opts *o);
/* Peak resident set of this process, KiB (-1 if unknown). */
long bench_rss_kib(void);

#endif
