/* cmd_run.c - `edgeagent run`: generates text from a prompt, streaming it
 * to stdout as it is produced (only generated text: no prompt echo, no
 * trailing newline), or, with --chat or without -p on a terminal, an
 * interactive chat rendered with the model's chat template (chat_repl.c).
 * Does not hold: the server, scheduling (a single sequence runs here). */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/run_int.h"
#include "edgeagent/engine.h"
#include "util/threadpool.h"

volatile sig_atomic_t run_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    run_interrupted = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: edgeagent run -m MODEL [-p PROMPT] [-n N] [--temp T] [--top-k K] [--top-p P]\n"
            "                     [--min-p P] [--repeat-penalty R] [--seed S] [--system S] [--chat]\n"
            "                     [-t THREADS] [--ctx N] [--verbose-prompt]\n"
            "  without -p on a terminal: interactive chat (Ctrl-C stops an answer, Ctrl-D quits)\n");
}

ea_status run_session_init(struct run_session *rs, const struct run_options *o, struct ea_error *err)
{
    memset(rs, 0, sizeof *rs);
    rs->o = o;
    ea_status s = cli_load(o->model, o->threads, &rs->m, &rs->tok, err);
    if (s)
        return s;
    const struct ea_model_info *h = ea_model_get_info(rs->m);
    rs->n_ctx = o->ctx > 0 && (uint32_t)o->ctx < h->n_ctx_train ? o->ctx : (int32_t)h->n_ctx_train;
    if (rs->n_ctx > 8192 && o->ctx <= 0)
        rs->n_ctx = 8192;
    struct ea_kv_cache_params kp = {EA_TYPE_F16, 16,
                                    ea_kv_cache_bytes_per_token(rs->m, EA_TYPE_F16) *
                                        (uint64_t)(rs->n_ctx + 16)};
    rs->logits = malloc(sizeof(float) * h->n_vocab);
    if (!rs->logits)
        return ea_error_set(err, EA_ENOMEM, "run: out of memory");
    if ((s = ea_kv_cache_create(rs->m, &kp, &rs->kv, err)))
        return s;
    return ea_sampler_create(&o->sampling, (int32_t)h->n_vocab, &rs->sampler, err);
}

void run_session_release(struct run_session *rs)
{
    ea_kv_seq_release(rs->kv, &rs->seq);
    ea_kv_cache_destroy(rs->kv);
    ea_sampler_destroy(rs->sampler);
    ea_tokenizer_destroy(rs->tok);
    ea_model_destroy(rs->m);
    free(rs->logits);
    free(rs->hist);
}

static ea_status eval_tokens(struct run_session *rs, const int32_t *t, int32_t n,
                             struct ea_error *err)
{
    if (rs->n_hist + n > rs->cap_hist) {
        int32_t cap = (rs->n_hist + n) * 2 + 64;
        int32_t *h = realloc(rs->hist, sizeof *h * (size_t)cap);
        if (!h)
            return ea_error_set(err, EA_ENOMEM, "run: out of memory");
        rs->hist = h;
        rs->cap_hist = cap;
    }
    ea_status s = ea_kv_seq_eval(rs->m, rs->kv, &rs->seq, t, n, EA_LOGITS_LAST, rs->logits, err);
    if (!s) {
        memcpy(rs->hist + rs->n_hist, t, sizeof *t * (size_t)n);
        rs->n_hist += n;
    }
    return s;
}

static ea_status append_text(char **text, size_t *len, const char *p, size_t n)
{
    char *t = realloc(*text, *len + n + 1);
    if (!t)
        return EA_ENOMEM;
    memcpy(t + *len, p, n);
    *len += n;
    t[*len] = '\0';
    *text = t;
    return EA_OK;
}

ea_status run_generate(struct run_session *rs, const int32_t *tokens, int32_t n, int32_t max_new,
                       FILE *out, char **text, int32_t *n_generated, struct ea_error *err)
{
    *n_generated = 0;
    rs->last_was_eog = false;
    size_t text_len = 0;
    if (text) {
        *text = NULL;
        if (append_text(text, &text_len, "", 0))
            return ea_error_set(err, EA_ENOMEM, "run: out of memory");
    }
    if (rs->seq.n_tokens + n >= rs->n_ctx)
        return ea_error_set(err, EA_ETOOBIG, "run: the conversation reached the %d-token context",
                            rs->n_ctx);
    for (int32_t i = 0; i < n; i++)
        ea_sampler_accept(rs->sampler, tokens[i]);
    ea_status s = eval_tokens(rs, tokens, n, err);
    if (s)
        return s;
    struct ea_detok d;
    ea_detok_init(&d, rs->tok, 0);
    size_t cap = ea_detok_max_output(rs->tok) + 8;
    char *piece = malloc(cap);
    if (!piece)
        return ea_error_set(err, EA_ENOMEM, "run: out of memory");
    while (*n_generated < max_new && !run_interrupted) {
        struct ea_sample_result r;
        ea_sampler_sample(rs->sampler, rs->logits, &r);
        ea_sampler_accept(rs->sampler, r.token);
        if (ea_tokenizer_is_eog(rs->tok, r.token)) {
            rs->last_was_eog = true;
            break;
        }
        size_t np = 0;
        if ((s = ea_detok_push(&d, r.token, piece, cap, &np, err)))
            break;
        if (np && fwrite(piece, 1, np, out) != np)
            break;
        if (text && np && append_text(text, &text_len, piece, np)) {
            s = ea_error_set(err, EA_ENOMEM, "run: out of memory");
            break;
        }
        fflush(out);
        (*n_generated)++;
        if (rs->seq.n_tokens + 1 >= rs->n_ctx)
            break;
        if ((s = eval_tokens(rs, &r.token, 1, err)))
            break;
    }
    size_t np = 0;
    if (!s && ea_detok_flush(&d, piece, cap, &np, err) == EA_OK && np) {
        fwrite(piece, 1, np, out);
        if (text)
            append_text(text, &text_len, piece, np);
    }
    fflush(out);
    free(piece);
    return s;
}

/* The sampler's float parameters with the ranges ea_sampler_create accepts
 * (engine.h), so a bad value is refused naming the option. */
struct float_opt {
    const char *name;
    double min, max;
    bool min_open;
    size_t offset; /* of the float in struct ea_sampling_params */
};

static const struct float_opt float_opts[] = {
    {"--temp", 0, 100, false, offsetof(struct ea_sampling_params, temperature)},
    {"--top-p", 0, 1, true, offsetof(struct ea_sampling_params, top_p)},
    {"--min-p", 0, 1, false, offsetof(struct ea_sampling_params, min_p)},
    {"--typical-p", 0, 1, true, offsetof(struct ea_sampling_params, typical_p)},
    {"--repeat-penalty", 0, 100, true, offsetof(struct ea_sampling_params, repeat_penalty)},
};

static const struct float_opt *float_option(const char *name)
{
    for (size_t i = 0; i < sizeof float_opts / sizeof float_opts[0]; i++)
        if (!strcmp(name, float_opts[i].name))
            return &float_opts[i];
    return NULL;
}

static bool parse_f(const struct float_opt *fo, const char *v, struct run_options *o)
{
    double d;
    if (!cli_parse_f64_range("run", fo->name, v, fo->min, fo->min_open, fo->max, &d))
        return false;
    *(float *)((char *)&o->sampling + fo->offset) = (float)d;
    return true;
}

int cmd_run(int argc, char **argv)
{
    struct run_options o = {0};
    ea_sampling_params_default(&o.sampling);
    o.sampling.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    o.n_predict = 256;
    uint64_t u;
    const char *models_dir = cli_take_models_dir(&argc, argv);
    const struct float_opt *fo;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--chat")) {
            o.chat = true;
            continue;
        }
        if (!strcmp(a, "--verbose-prompt")) {
            o.verbose_prompt = true;
            continue;
        }
        if (!v) {
            cli_errorf("run", "option '%s' needs a value (or is unknown)", a);
            return 2;
        }
        i++;
        bool ok = true;
        if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            o.model = v;
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt"))
            o.prompt = v;
        else if (!strcmp(a, "--system"))
            o.system = v;
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            ok = cli_parse_range("run", a, v, 0, RUN_MAX_PREDICT, &u);
            o.n_predict = (int32_t)u;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            ok = cli_parse_range("run", a, v, 0, EA_POOL_MAX_THREADS, &u);
            o.threads = (int)u;
        } else if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) {
            ok = cli_parse_range("run", a, v, 0, RUN_MAX_CTX, &u);
            o.ctx = (int32_t)u;
        } else if (!strcmp(a, "--top-k")) {
            ok = cli_parse_range("run", a, v, 0, RUN_MAX_TOP_K, &u);
            o.sampling.top_k = (int32_t)u;
        } else if ((fo = float_option(a)) != NULL)
            ok = parse_f(fo, v, &o);
        else if (!strcmp(a, "--seed"))
            ok = cli_parse_u64("run", a, v, &o.sampling.seed);
        else {
            cli_errorf("run", "unknown option '%s'", a);
            return 2;
        }
        if (!ok)
            return 2;
    }
    if (!o.model) {
        usage(stderr);
        return 2;
    }
    char model_path[4096];
    if (!cli_resolve_model("run", o.model, models_dir, model_path, sizeof model_path))
        return 1;
    o.model = model_path;
    bool interactive = !o.prompt && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    struct ea_error err = {0};
    struct run_session rs;
    if (run_session_init(&rs, &o, &err)) {
        cli_error("run", &err);
        run_session_release(&rs);
        return 1;
    }
    int rc;
    if (o.chat || interactive)
        rc = run_chat(&rs, interactive);
    else
        rc = run_completion(&rs);
    run_session_release(&rs);
    return rc;
}

int run_completion(struct run_session *rs)
{
    struct ea_error err = {0};
    const char *p = rs->o->prompt ? rs->o->prompt : "";
    size_t len = strlen(p), cap = len + 8, n = 0;
    int32_t *t = malloc(sizeof *t * cap);
    if (!t || ea_tokenize(rs->tok, p, len, EA_TOK_ADD_SPECIAL, t, cap, &n, &err)) {
        cli_error("run", &err);
        free(t);
        return 1;
    }
    if (rs->o->verbose_prompt)
        run_print_prompt(t, n);
    if (n == 0) {
        cli_errorf("run", "the prompt is empty and the vocabulary adds no BOS token");
        free(t);
        return 2;
    }
    int32_t got;
    ea_status s = run_generate(rs, t, (int32_t)n, rs->o->n_predict, stdout, NULL, &got, &err);
    free(t);
    if (s) {
        cli_error("run", &err);
        return 1;
    }
    return 0;
}

void run_print_prompt(const int32_t *t, size_t n)
{
    fprintf(stderr, "prompt: %zu tokens:", n);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %d", t[i]);
    fputc('\n', stderr);
}
