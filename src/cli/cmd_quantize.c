/* cmd_quantize.c - `edgeagent quantize IN.gguf OUT.gguf TYPE [--pure]`. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "edgeagent/model.h"
#include "util/threadpool.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: edgeagent quantize IN.gguf OUT.gguf TYPE [--pure] [-t THREADS]\n  types:");
    for (unsigned i = 0; ea_ftype_at(i); i++)
        fprintf(f, " %s", ea_ftype_at(i)->name);
    fprintf(f, "\n  --pure  every quantizable tensor gets TYPE (no mix)\n");
}

static void on_progress(void *ud, uint64_t done, uint64_t total)
{
    cli_progress_update(ud, done, total);
}

int cmd_quantize(int argc, char **argv)
{
    const char *pos[3] = {0};
    int n_pos = 0;
    struct ea_quantize_params p = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--pure")) {
            p.pure = true;
        } else if (!strcmp(argv[i], "-t") && i + 1 < argc) {
            uint64_t t;
            if (!cli_parse_range("quantize", "-t", argv[++i], 0, EA_POOL_MAX_THREADS, &t))
                return 2;
            p.n_threads = (int)t;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            cli_errorf("quantize", "unknown option '%s'", argv[i]);
            return 2;
        } else if (n_pos < 3) {
            pos[n_pos++] = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (n_pos != 3) {
        usage(stderr);
        return 2;
    }
    if (!ea_ftype_find(pos[2])) {
        cli_errorf("quantize", "unknown type '%s' (see --help)", pos[2]);
        return 2;
    }
    p.ftype = pos[2];
    p.n_threads = cli_threads(p.n_threads);
    /* a bar on a terminal only: nothing extra for scripts */
    struct cli_progress bar;
    cli_progress_init(&bar, CLI_PROGRESS_TTY_ONLY, "quantize", true, NULL);
    p.progress = on_progress;
    p.progress_ud = &bar;
    struct ea_error err = {0};
    ea_status st = ea_model_quantize(pos[0], pos[1], &p, &err);
    cli_progress_end(&bar, NULL);
    if (st) {
        cli_error("quantize", &err);
        return 1;
    }
    return 0;
}
