/* cli.h - the edgeagent subcommands (one file each) and small helpers they
 * share: argument parsing and error printing. Only this layer exits. */
#ifndef EDGEAGENT_CLI_H
#define EDGEAGENT_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include <stddef.h>
#include <stdio.h>

#include "edgeagent/error.h"
#include "edgeagent/model.h"
#include "edgeagent/tokenizer.h"

int cmd_inspect(int argc, char **argv);
int cmd_gen_model(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_route(int argc, char **argv);
int cmd_redact(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_convert_tokenizer(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_report(int argc, char **argv);

/* Prints "edgeagent: <cmd>: <detail>" on one line (control bytes replaced). */
void cli_error(const char *cmd, const struct ea_error *err);
void cli_errorf(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Parses an unsigned integer / float argument; false (after printing an
 * error naming the option) when it is not one. */
bool cli_parse_u64(const char *cmd, const char *opt, const char *s, uint64_t *out);
bool cli_parse_f64(const char *cmd, const char *opt, const char *s, double *out);
/* The same with a range: false (after printing "<opt> must be in
 * min..max (got s)") when the value is outside [min, max] (for the float
 * form, (min, max] when min_open). */
bool cli_parse_range(const char *cmd, const char *opt, const char *s, uint64_t min, uint64_t max,
                     uint64_t *out);
bool cli_parse_f64_range(const char *cmd, const char *opt, const char *s, double min,
                         bool min_open, double max, double *out);
/* Settings the binary takes from its environment, read once by main()
 * before any subcommand runs (the library reads no environment):
 *   EA_KERNELS=name  the kernel variant (ea_kernels_select; an unknown or
 *                    unusable name is an error listing the usable ones)
 *   EA_MAX_THREADS=N caps every thread count (deployments sharing cores; CI
 *                    under emulation, where spinning workers are slow); 0
 *                    or unset: no cap
 *   EA_REPACK=0      keeps weights in the file mapping (no_repack) */
struct cli_env {
    int max_threads; /* 0: no cap */
    bool no_repack;
};
extern struct cli_env cli_env;
/* Reads the variables above; false after printing why one is invalid. */
bool cli_env_read(void);
/* threads (0 = one per CPU) after the EA_MAX_THREADS cap. */
int cli_threads(int threads);
/* Model load parameters for threads with the environment's settings. */
struct ea_model_load_params cli_model_params(int threads);
/* Loads a model (cli_model_params(threads)) and the tokenizer in its
 * metadata. */
ea_status cli_load(const char *path, int threads, ea_model **m, ea_tokenizer **tok,
                   struct ea_error *err);
/* Whole file, NUL-terminated, at most max bytes; free() it. */
char *cli_read_file(const char *path, size_t max, size_t *len, struct ea_error *err);
/* Prints s as a JSON string (quoted, escaped) to f; s is a short name
 * (model names, at most CLI_JSON_STR_MAX bytes; longer ones are cut). */
#define CLI_JSON_STR_MAX 1024
void cli_print_json_str(FILE *f, const char *s);
/* "1,234,567" into buf. */
const char *cli_thousands(uint64_t v, char *buf, unsigned size);


/* ---- the model store (cli_store.c) ---------------------------------------- */

/* The store directory: opt (--models-dir) if given, else EDGEAGENT_MODELS,
 * else $XDG_DATA_HOME/edgeagent/models, else ~/.local/share/edgeagent/models.
 * false (after printing an error) when none can be formed. */
bool cli_store_dir(const char *cmd, const char *opt, char *out, size_t size);
/* What -m names: an existing file, or a model in the store (models_dir as
 * for cli_store_dir). Writes the file path into out; false after printing
 * an error. */
/* Removes "--models-dir DIR" from argv (argc updated) and returns DIR or NULL. */
const char *cli_take_models_dir(int *argc, char **argv);
bool cli_resolve_model(const char *cmd, const char *arg, const char *models_dir, char *out,
                       size_t size);

/* ---- the ledger (cmd_report.c) -------------------------------------------- */

/* The ledger's data directory: opt (--data-dir) if given, else from_config
 * (ledger.data_dir), else $XDG_DATA_HOME/edgeagent, else
 * ~/.local/share/edgeagent. false (after printing an error) when none can
 * be formed. Built with EA_HAVE_NET only. */
bool cli_ledger_dir(const char *cmd, const char *opt, const char *from_config, char *out, size_t size);

/* ---- progress on stderr (progress.c) --------------------------------------- */

enum cli_progress_mode {
    CLI_PROGRESS_AUTO,  /* a bar on a terminal, a line per 10% otherwise */
    CLI_PROGRESS_QUIET, /* nothing */
    CLI_PROGRESS_JSON,  /* one JSON object per line on stdout */
    CLI_PROGRESS_TTY_ONLY, /* a bar on a terminal, nothing otherwise */
};

struct cli_progress {
    enum cli_progress_mode mode;
    bool tty;
    bool bytes;          /* done/total are bytes (MB, MB/s) rather than items */
    const char *label;
    const char *unit;    /* items: "tensors", "chunks" */
    double t0, last_draw, rate_t, rate;
    uint64_t rate_done, base; /* base: done at start (not counted in the rate) */
    int last_decile;
    bool drawn;
};

void cli_progress_init(struct cli_progress *p, enum cli_progress_mode mode, const char *label,
                       bool bytes, const char *unit);
/* Redraws (at most ~10 times a second on a terminal). */
void cli_progress_update(struct cli_progress *p, uint64_t done, uint64_t total);
/* Clears the bar; prints summary (may be NULL) on its own line. */
void cli_progress_end(struct cli_progress *p, const char *summary);
/* Writes a line on stderr above the bar (the bar is redrawn on the next update). */
void cli_progress_note(struct cli_progress *p, const char *msg);

#endif
