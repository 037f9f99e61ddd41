/* cli_common.c - helpers shared by subcommands: the settings read from the
 * environment, loading a model together with its tokenizer, reading a whole
 * file with a cap. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "edgeagent/kernels.h"
#include "util/buf.h"
#include "util/threadpool.h"

struct cli_env cli_env;

bool cli_env_read(void)
{
    const char *k = getenv("EA_KERNELS");
    if (k && *k) {
        struct ea_error err = {0};
        if (ea_kernels_select(k, &err)) {
            cli_errorf("EA_KERNELS", "%s", err.msg);
            return false;
        }
    }
    const char *t = getenv("EA_MAX_THREADS");
    if (t && *t) {
        char *end;
        errno = 0;
        unsigned long n = strtoul(t, &end, 10);
        if (errno || *end || *t == '-' || n > EA_POOL_MAX_THREADS) {
            fprintf(stderr, "edgeagent: EA_MAX_THREADS must be in 0..%d (0: no cap)\n",
                    EA_POOL_MAX_THREADS);
            return false;
        }
        cli_env.max_threads = (int)n;
    }
    const char *r = getenv("EA_REPACK");
    cli_env.no_repack = r && strcmp(r, "0") == 0;
    return true;
}

int cli_threads(int threads)
{
    int n = threads > 0 ? threads : ea__cpu_count();
    return cli_env.max_threads > 0 && cli_env.max_threads < n ? cli_env.max_threads : n;
}

struct ea_model_load_params cli_model_params(int threads)
{
    return (struct ea_model_load_params){.n_threads = cli_threads(threads),
                                         .no_repack = cli_env.no_repack};
}

void cli_print_json_str(FILE *f, const char *s)
{
    struct ea_buf b;
    ea__buf_init(&b, 6 * CLI_JSON_STR_MAX + 2); /* every byte escaped as \u00XX */
    size_t n = strlen(s);
    if (ea__buf_json_str(&b, s, n > CLI_JSON_STR_MAX ? CLI_JSON_STR_MAX : n) == EA_OK)
        fwrite(b.data, 1, b.len, f);
    else
        fputs("\"\"", f);
    ea__buf_release(&b);
}

ea_status cli_load(const char *path, int threads, ea_model **m, ea_tokenizer **tok,
                   struct ea_error *err)
{
    struct ea_model_load_params lp = cli_model_params(threads);
    *m = NULL;
    *tok = NULL;
    ea_status s = ea_model_load(path, &lp, m, err);
    if (s)
        return s;
    if ((s = ea_tokenizer_create(ea_model_gguf(*m), tok, err))) {
        ea_error_prefix(err, "%s", path);
        ea_model_destroy(*m);
        *m = NULL;
    }
    return s;
}

char *cli_read_file(const char *path, size_t max, size_t *len, struct ea_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        ea_error_set(err, EA_EIO, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        ea_error_set(err, EA_EIO, "%s is a directory, not a file", path);
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        if (cap >= max) {
            free(buf);
            fclose(f);
            ea_error_set(err, EA_ETOOBIG, "%s: larger than %zu bytes", path, max);
            return NULL;
        }
        cap = cap * 2 > max ? max : cap * 2;
        char *nb = realloc(buf, cap + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
        } else {
            buf = nb;
        }
    }
    int failed = ferror(f);
    fclose(f);
    if (!buf || failed) {
        free(buf);
        ea_error_set(err, EA_EIO, "%s: read failed", path);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}
