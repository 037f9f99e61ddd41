/* bench_int.h - shared by the bench subcommand's files. */
#ifndef EDGEAGENT_CLI_BENCH_INT_H
#define EDGEAGENT_CLI_BENCH_INT_H

#include <stdbool.h>
#include <stdint.h>

/* Option limits (the error names the option and the range):
 * pp/tg tests run one sequence whose KV cache is sized for it; 16384 tokens
 * is beyond the training context of every model this runtime targets. */
#define BENCH_MAX_TEST_TOKENS 16384
#define BENCH_MAX_REPS 1000
/* --concurrency: requests submitted at once per level (each gets its own
 * latency arrays and a place in the engine's queue), up to 16 levels. */
#define BENCH_MAX_CONCURRENCY 1024
#define BENCH_MAX_LEVELS 16
/* --prompt, --gen, --shared-prefix, --max-batch: tokens; a million is far
 * above any context length while keeping prompt * concurrency in size_t. */
#define BENCH_MAX_SEQ_TOKENS (1 << 20)
/* --kv-mem in MiB: up to 1 TiB (the engine then fails cleanly if that
 * much memory is not there). */
#define BENCH_MAX_KV_MEM_MB (1 << 20)

struct serving_opts {
    const char *model;
    int threads;
    int levels[BENCH_MAX_LEVELS];
    int n_levels;
    int prompt, gen, shared_prefix, max_batch;
    uint64_t kv_mem_mb;
    bool json;
};

int bench_serving(const struct serving_opts *o);
/* --mem-bandwidth (bench_membw.c); threads 0 = one per CPU. */
int bench_mem_bandwidth(int threads, bool json);
/* Peak resident set of this process, KiB (-1 if unknown). */
long bench_rss_kib(void);

#endif
