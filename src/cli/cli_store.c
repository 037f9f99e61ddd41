/* cli_store.c - the model store commands: `pull`, `list`, `rm`, `show`, and
 * how every -m finds its file (a path, or a name in the store). This is
 * where the environment is read: EDGEAGENT_MODELS, XDG_DATA_HOME, HOME,
 * HF_TOKEN (never printed) and HF_ENDPOINT.
 * Does not hold: the store and the download themselves (src/store/). */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "store/pull_event.h"
#include "edgeagent/store.h"
#include "util/buf.h"

#define DEFAULT_RETRIES 3

bool cli_store_dir(const char *cmd, const char *opt, char *out, size_t size)
{
    const char *e;
    int n;
    if (opt && *opt)
        n = snprintf(out, size, "%s", opt);
    else if ((e = getenv("EDGEAGENT_MODELS")) && *e)
        n = snprintf(out, size, "%s", e);
    else if ((e = getenv("XDG_DATA_HOME")) && *e == '/')
        n = snprintf(out, size, "%s/edgeagent/models", e);
    else if ((e = getenv("HOME")) && *e)
        n = snprintf(out, size, "%s/.local/share/edgeagent/models", e);
    else {
        cli_errorf(cmd, "no model store: set --models-dir, EDGEAGENT_MODELS or HOME");
        return false;
    }
    if (n < 0 || (size_t)n >= size) {
        cli_errorf(cmd, "model store path is too long");
        return false;
    }
    return true;
}

static bool open_store(const char *cmd, const char *opt, ea_store **s)
{
    char dir[EA_STORE_PATH_MAX];
    if (!cli_store_dir(cmd, opt, dir, sizeof dir))
        return false;
    struct ea_error err = {0};
    if (ea_store_open(dir, s, &err)) {
        cli_error(cmd, &err);
        return false;
    }
    return true;
}

bool cli_resolve_model(const char *cmd, const char *arg, const char *models_dir, char *out,
                       size_t size)
{
    struct ea_error err = {0};
    ea_store *s = NULL;
    char dir[EA_STORE_PATH_MAX];
    /* a missing store is not an error here: the argument may be a path */
    if (cli_store_dir(cmd, models_dir, dir, sizeof dir)) {
        struct ea_error e2 = {0};
        if (ea_store_open(dir, &s, &e2))
            s = NULL;
    }
    ea_status st = ea_store_resolve(s, arg, out, size, &err);
    ea_store_close(s);
    if (st) {
        cli_error(cmd, &err);
        return false;
    }
    return true;
}

/* ---- pull --------------------------------------------------------------------- */

#ifdef EA_HAVE_NET
static volatile int pull_cancel;

static void on_sigint(int sig)
{
    (void)sig;
    pull_cancel = 1;
}

struct pull_ui {
    struct cli_progress bar;
    bool json;
    enum ea_pull_phase last_phase;
    double t0;
    uint64_t first_done;
    bool first_seen;
};

static void json_line(struct ea_buf *b)
{
    ea__buf_putc(b, '\n');
    if (b->data)
        fwrite(b->data, 1, b->len, stdout);
    fflush(stdout);
    ea__buf_reset(b);
}

static void on_progress(void *ud, const struct ea_pull_progress *p)
{
    struct pull_ui *u = ud;
    if (u->json) {
        struct ea_buf note, b;
        ea__buf_init(&note, 4096);
        ea__buf_init(&b, 4096);
        ea__pull_event_json(p, &note, &b);
        if (note.len)
            json_line(&note);
        json_line(&b);
        ea__buf_release(&note);
        ea__buf_release(&b);
        return;
    }
    if (p->note)
        cli_progress_note(&u->bar, p->note);
    if (p->phase == EA_PULL_DOWNLOADING) {
        if (!u->first_seen) {
            u->first_seen = true;
            u->first_done = p->done;
            if (p->resumed_from && u->bar.mode != CLI_PROGRESS_QUIET) {
                char msg[96];
                snprintf(msg, sizeof msg, "resuming at byte %" PRIu64, p->resumed_from);
                cli_progress_note(&u->bar, msg);
            }
        }
        cli_progress_update(&u->bar, p->done, p->total);
    } else if (p->phase == EA_PULL_VERIFYING && u->last_phase != EA_PULL_VERIFYING) {
        cli_progress_update(&u->bar, p->done, p->total);
        cli_progress_note(&u->bar, "verifying sha256 and the model file");
    }
    u->last_phase = p->phase;
}

static void pull_usage(FILE *f)
{
    fprintf(f,
            "usage: edgeagent pull SOURCE [--name NAME] [--models-dir DIR] [--revision REV]\n"
            "                      [--retries N] [--quiet | --json]\n"
            "  SOURCE  a short name (");
    for (size_t i = 0; ea_store_catalog_at(i); i++)
        fprintf(f, "%s%s", i ? ", " : "", ea_store_catalog_at(i)->name);
    fprintf(f, "),\n"
               "          hf.co/ORG/REPO[:QUANT] (Q4_K_M by default), hf.co/ORG/REPO/FILE.gguf,\n"
               "          or an https://.../FILE.gguf URL\n"
               "  --name NAME      store the model under NAME (default: from the source)\n"
               "  --revision REV   branch, tag or commit of the repository (default main)\n"
               "  --retries N      resume a broken transfer up to N times (default %d)\n"
               "  --quiet          no progress; --json: progress events as JSON lines on stdout\n"
               "environment: HF_TOKEN (gated repositories), HF_ENDPOINT (mirror),\n"
               "             EDGEAGENT_MODELS (store directory)\n",
            DEFAULT_RETRIES);
}

int cmd_pull(int argc, char **argv)
{
    struct ea_pull_params pp = {.retries = DEFAULT_RETRIES};
    const char *dir = NULL;
    bool quiet = false, json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            pull_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            quiet = true;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (a[0] == '-' && a[1]) {
            if (!v) {
                cli_errorf("pull", "option '%s' needs a value (or is unknown)", a);
                return 2;
            }
            i++;
            if (!strcmp(a, "--name"))
                pp.name = v;
            else if (!strcmp(a, "--models-dir"))
                dir = v;
            else if (!strcmp(a, "--revision"))
                pp.revision = v;
            else if (!strcmp(a, "--retries")) {
                uint64_t n;
                if (!cli_parse_u64("pull", "--retries", v, &n) || n > 100)
                    return 2;
                pp.retries = (int)n;
            } else {
                cli_errorf("pull", "unknown option '%s'", a);
                return 2;
            }
        } else if (!pp.source) {
            pp.source = a;
        } else {
            cli_errorf("pull", "one source at a time ('%s' is extra)", a);
            return 2;
        }
    }
    if (!pp.source) {
        pull_usage(stderr);
        return 2;
    }
    ea_store *s = NULL;
    if (!open_store("pull", dir, &s))
        return 1;
    pp.token = getenv("HF_TOKEN");
    pp.endpoint = getenv("HF_ENDPOINT");
    struct pull_ui ui = {.json = json};
    char label[EA_STORE_NAME_MAX + 16];
    struct ea_pull_source src;
    struct ea_error err = {0};
    snprintf(label, sizeof label, "pulling %s",
             pp.name ? pp.name : ea_pull_parse_source(pp.source, &src, &err) ? pp.source : src.name);
    cli_progress_init(&ui.bar, quiet ? CLI_PROGRESS_QUIET : json ? CLI_PROGRESS_JSON : CLI_PROGRESS_AUTO,
                      label, true, NULL);
    pp.progress = on_progress;
    pp.progress_ud = &ui;
    pp.cancel = &pull_cancel;
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    /* a file-size limit must be a write error we can report, not a kill */
    signal(SIGXFSZ, SIG_IGN);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct ea_store_manifest m;
    ea_error_clear(&err);
    ea_status st = ea_store_pull(s, &pp, &m, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    int rc = 0;
    if (st) {
        cli_progress_end(&ui.bar, NULL);
        cli_error("pull", &err);
        if (json) {
            struct ea_buf b;
            ea__buf_init(&b, 4096);
            ea__buf_printf(&b, "{\"event\":\"error\",\"status\":\"%s\",\"message\":", ea_status_name(st));
            ea__buf_json_str(&b, err.msg, strlen(err.msg));
            ea__buf_putc(&b, '}');
            json_line(&b);
            ea__buf_release(&b);
        }
        rc = st == EA_ECANCELLED ? 130 : 1;
    } else {
        char path[EA_STORE_PATH_MAX];
        struct ea_error e2 = {0};
        ea_store_model_path(s, m.name, path, sizeof path, &e2);
        double secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
        char summary[EA_STORE_NAME_MAX * 2 + 256];
        snprintf(summary, sizeof summary, "pulled %s: %s, %.1f MB, %s %s, sha256 %.16s... (%.1f s)",
                 m.name, m.file, (double)m.size / 1e6, m.arch, m.quant, m.sha256, secs);
        cli_progress_end(&ui.bar, summary);
        if (json) {
            struct ea_buf b;
            ea__buf_init(&b, 8192);
            ea__buf_puts(&b, "{\"event\":\"done\",\"name\":");
            ea__buf_json_str(&b, m.name, strlen(m.name));
            ea__buf_printf(&b, ",\"sha256\":\"%s\",\"size\":%" PRIu64 ",\"path\":", m.sha256, m.size);
            ea__buf_json_str(&b, path, strlen(path));
            ea__buf_putc(&b, '}');
            json_line(&b);
            ea__buf_release(&b);
        }
    }
    ea_store_close(s);
    return rc;
}
#else
int cmd_pull(int argc, char **argv)
{
    cli_errorf("pull", "this build has no network support (libcurl was not found)");
    return 1;
}
#endif

/* ---- list / rm / show ------------------------------------------------------------ */

const char *cli_take_models_dir(int *argc, char **argv)
{
    const char *dir = NULL;
    int o = 1;
    for (int i = 1; i < *argc; i++) {
        if (!strcmp(argv[i], "--models-dir") && i + 1 < *argc)
            dir = argv[++i];
        else
            argv[o++] = argv[i];
    }
    *argc = o;
    return dir;
}

int cmd_list(int argc, char **argv)
{
    const char *dir = cli_take_models_dir(&argc, argv);
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: edgeagent list [--json] [--models-dir DIR]\n");
            return 0;
        } else {
            cli_errorf("list", "unknown argument '%s'", argv[i]);
            return 2;
        }
    }
    ea_store *s = NULL;
    if (!open_store("list", dir, &s))
        return 1;
    struct ea_store_manifest *v = NULL;
    size_t n = 0, bad = 0;
    struct ea_error err = {0};
    if (ea_store_list(s, &v, &n, &bad, &err)) {
        cli_error("list", &err);
        ea_store_close(s);
        return 1;
    }
    struct ea_buf b;
    ea__buf_init(&b, (size_t)1 << 30);
    if (json) {
        ea__buf_putc(&b, '[');
        for (size_t i = 0; i < n; i++) {
            char *one = ea_store_manifest_json(&v[i]);
            char path[EA_STORE_PATH_MAX];
            struct ea_error e2 = {0};
            if (!one || ea_store_model_path(s, v[i].name, path, sizeof path, &e2)) {
                ea_free(one);
                continue;
            }
            /* the manifest object plus the file's path */
            size_t ol = strlen(one);
            while (ol && one[ol - 1] != '}')
                ol--;
            ea__buf_puts(&b, b.len > 1 ? "," : "");
            ea__buf_append(&b, one, ol ? ol - 1 : 0);
            ea__buf_puts(&b, ",\n  \"path\": ");
            ea__buf_json_str(&b, path, strlen(path));
            ea__buf_puts(&b, "\n}");
            ea_free(one);
        }
        ea__buf_puts(&b, "]\n");
    } else if (n == 0) {
        ea__buf_printf(&b, "no models in %s ('edgeagent pull qwen2.5:0.5b' gets one)\n", ea_store_dir(s));
    } else {
        ea__buf_printf(&b, "%-40s %10s  %-8s %-7s %-20s  %s\n", "NAME", "SIZE", "QUANT", "ARCH",
                       "PULLED", "SOURCE");
        for (size_t i = 0; i < n; i++)
            ea__buf_printf(&b, "%-40s %7.1f MB  %-8s %-7s %-20s  %s\n", v[i].name,
                           (double)v[i].size / 1e6, v[i].quant, v[i].arch, v[i].date, v[i].source);
    }
    if (b.len)
        fwrite(b.data, 1, b.len, stdout);
    if (bad)
        fprintf(stderr, "edgeagent: list: %zu unreadable manifest(s) in %s skipped\n", bad,
                ea_store_dir(s));
    ea__buf_release(&b);
    ea_free(v);
    ea_store_close(s);
    return 0;
}

int cmd_rm(int argc, char **argv)
{
    const char *dir = cli_take_models_dir(&argc, argv);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fprintf(argc < 2 ? stderr : stdout, "usage: edgeagent rm NAME... [--models-dir DIR]\n");
        return argc < 2 ? 2 : 0;
    }
    ea_store *s = NULL;
    if (!open_store("rm", dir, &s))
        return 1;
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        struct ea_error err = {0};
        if (ea_store_remove(s, argv[i], &err)) {
            cli_error("rm", &err);
            rc = 1;
        } else {
            printf("removed %s\n", argv[i]);
        }
    }
    ea_store_close(s);
    return rc;
}

int cmd_show(int argc, char **argv)
{
    const char *dir = cli_take_models_dir(&argc, argv);
    const char *name = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: edgeagent show NAME [--json] [--models-dir DIR]\n"
                   "  the store's manifest of NAME, then what 'inspect' says of its file\n");
            return 0;
        } else if (!name && argv[i][0] != '-')
            name = argv[i];
        else {
            cli_errorf("show", "unexpected argument '%s'", argv[i]);
            return 2;
        }
    }
    if (!name) {
        cli_errorf("show", "usage: edgeagent show NAME [--json] [--models-dir DIR]");
        return 2;
    }
    ea_store *s = NULL;
    if (!open_store("show", dir, &s))
        return 1;
    struct ea_store_manifest m;
    char path[EA_STORE_PATH_MAX];
    struct ea_error err = {0};
    if (ea_store_get(s, name, &m, &err) || ea_store_model_path(s, name, path, sizeof path, &err)) {
        cli_error("show", &err);
        ea_store_close(s);
        return 1;
    }
    ea_store_close(s);
    char *inspect_argv[] = {"inspect", path, json ? "--json" : NULL, NULL};
    if (json) {
        char *one = ea_store_manifest_json(&m);
        printf("{\"manifest\": %s,\n\"gguf\": ", one ? one : "null");
        ea_free(one);
        fflush(stdout);
        int rc = cmd_inspect(3, inspect_argv);
        printf("}\n");
        return rc;
    }
    printf("name:          %s\nsource:        %s\n", m.name, m.source);
    if (m.repo[0])
        printf("repository:    %s (revision %s)\n", m.repo, m.revision);
    printf("file:          %s\nsha256:        %s\nsize:          %" PRIu64 " bytes\n"
           "quant:         %s\nparameters:    %" PRIu64 "\npulled:        %s\npath:          %s\n\n",
           m.file, m.sha256, m.size, m.quant, m.n_params, m.date, path);
    fflush(stdout);
    return cmd_inspect(2, inspect_argv);
}
