/* cmd_perplexity.c - `edgeagent perplexity -m MODEL -f TEXT [--ctx N]`:
 * negative log-likelihood and perplexity computed the way llama.cpp's
 * llama-perplexity does, so figures compare with published ones: one
 * trailing newline of the file dropped, tokens with BOS as the vocabulary
 * asks, floor(n_tokens / ctx) chunks each evaluated from an empty cache with
 * its first token replaced by BOS, rows ctx/2 .. ctx-2 scored; cumulative
 * perplexity printed per chunk, then `PPL = <value> +/- <error>`.
 * Does not hold: other scoring modes (HellaSwag, KL divergence). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "cli/cli.h"
#include "edgeagent/engine.h"
#include "edgeagent/model.h"
#include "edgeagent/tokenizer.h"
#include "util/threadpool.h"

/* --ctx: rows ctx/2 .. ctx-2 of a chunk are scored, so below 8 there is
 * next to nothing to score; 16384 is past the training context of every
 * model this runtime targets. */
#define PPL_MIN_CTX 8
#define PPL_MAX_CTX 16384
/* The text is read whole: 1 GiB is far more than any evaluation corpus
 * (wikitext-2's test set is 1.3 MB) and still fits edge-board memory. */
#define PPL_MAX_TEXT_BYTES ((size_t)1 << 30)

static void usage(FILE *f)
{
    fprintf(f, "usage: edgeagent perplexity -m MODEL -f TEXT [--ctx 512] [-t THREADS] [--kv f16|q8_0|f32]\n");
}

int cmd_perplexity(int argc, char **argv)
{
    const char *model = NULL, *file = NULL;
    const char *models_dir = cli_take_models_dir(&argc, argv);
    uint64_t ctx = 512, threads = 0;
    uint32_t kv_type = EA_TYPE_F16;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            cli_errorf("perplexity", "option '%s' needs a value (or is unknown)", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "-f") || !strcmp(a, "--file"))
            file = v;
        else if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) {
            if (!cli_parse_range("perplexity", a, v, PPL_MIN_CTX, PPL_MAX_CTX, &ctx))
                return 2;
        } else if (!strcmp(a, "-t")) {
            if (!cli_parse_range("perplexity", a, v, 0, EA_POOL_MAX_THREADS, &threads))
                return 2;
        } else if (!strcmp(a, "--kv")) {
            if (!strcmp(v, "f32"))
                kv_type = EA_TYPE_F32;
            else if (!strcmp(v, "q8_0"))
                kv_type = EA_TYPE_Q8_0;
            else if (!strcmp(v, "f16"))
                kv_type = EA_TYPE_F16;
            else {
                cli_errorf("perplexity", "--kv must be f16, q8_0 or f32");
                return 2;
            }
        } else {
            cli_errorf("perplexity", "unknown option '%s'", a);
            return 2;
        }
    }
    if (!model || !file) {
        usage(stderr);
        return 2;
    }
    char model_path[4096];
    if (!cli_resolve_model("perplexity", model, models_dir, model_path, sizeof model_path))
        return 1;
    model = model_path;
    struct ea_error err = {0};
    size_t len = 0;
    char *text = cli_read_file(file, PPL_MAX_TEXT_BYTES, &len, &err);
    if (!text) {
        cli_error("perplexity", &err);
        return 1;
    }
    if (len > 0 && text[len - 1] == '\n')
        len--; /* as llama-perplexity: one trailing newline is not part of the text */
    ea_model *m = NULL;
    ea_tokenizer *tok = NULL;
    ea_kv_cache *c = NULL;
    int32_t *tokens = NULL;
    float *logits = NULL;
    int rc = 1;
    if (cli_load(model, (int)threads, &m, &tok, &err)) {
        cli_error("perplexity", &err);
        goto out;
    }
    const struct ea_model_info *h = ea_model_get_info(m);
    if (ctx > h->n_ctx_train) {
        cli_errorf("perplexity", "--ctx %llu exceeds the model's %u-token context",
                   (unsigned long long)ctx, h->n_ctx_train);
        goto out;
    }
    size_t cap = len + 16, n_tok = 0;
    tokens = malloc(sizeof *tokens * cap);
    if (!tokens || ea_tokenize(tok, text, len, EA_TOK_ADD_SPECIAL, tokens, cap, &n_tok, &err)) {
        cli_error("perplexity", &err);
        goto out;
    }
    size_t n_chunks = n_tok / ctx;
    if (n_chunks == 0) {
        cli_errorf("perplexity", "the text has %zu tokens, fewer than one %llu-token chunk", n_tok,
                   (unsigned long long)ctx);
        goto out;
    }
    struct ea_kv_cache_params kp = {kv_type, 16, ea_kv_cache_bytes_per_token(m, kv_type) * (ctx + 16)};
    logits = malloc(sizeof(float) * ctx * h->n_vocab);
    if (!logits || ea_kv_cache_create(m, &kp, &c, &err)) {
        cli_error("perplexity", &err);
        goto out;
    }
    fprintf(stderr, "perplexity: %zu tokens, %zu chunks of %llu, scoring the second half of each\n",
            n_tok, n_chunks, (unsigned long long)ctx);
    int first = (int)ctx / 2;
    double nll = 0, nll2 = 0;
    long count = 0;
    int32_t bos = ea_tokenizer_bos(tok);
    /* a bar on stderr when it is a terminal and stdout is not (stdout keeps
     * llama.cpp's format; on the same terminal its running [i] values are
     * the progress, and a bar would overwrite them) */
    struct cli_progress bar;
    cli_progress_init(&bar, isatty(STDOUT_FILENO) ? CLI_PROGRESS_QUIET : CLI_PROGRESS_TTY_ONLY,
                      "perplexity", false, "chunks");
    cli_progress_update(&bar, 0, n_chunks);
    for (size_t ch = 0; ch < n_chunks; ch++) {
        int32_t *t = tokens + ch * ctx;
        int32_t saved = t[0];
        if (ea_tokenizer_adds_bos(tok) && bos >= 0)
            t[0] = bos;
        struct ea_kv_seq s = {0};
        ea_status st = ea_kv_seq_eval(m, c, &s, t, (int32_t)ctx, EA_LOGITS_ALL, logits, &err);
        ea_kv_seq_release(c, &s);
        t[0] = saved;
        if (st) {
            cli_progress_end(&bar, NULL);
            cli_error("perplexity", &err);
            goto out;
        }
        for (int i = first; i < (int)ctx - 1; i++) {
            const float *row = logits + (size_t)i * h->n_vocab;
            float mx = row[0];
            for (uint32_t k = 1; k < h->n_vocab; k++)
                mx = row[k] > mx ? row[k] : mx;
            double z = 0;
            for (uint32_t k = 0; k < h->n_vocab; k++)
                z += exp((double)row[k] - mx);
            double v = -((double)row[tokens[ch * ctx + i + 1]] - mx - log(z));
            nll += v;
            nll2 += v * v;
            count++;
        }
        printf("[%zu]%.4f,", ch + 1, exp(nll / count));
        fflush(stdout);
        cli_progress_update(&bar, ch + 1, n_chunks);
    }
    cli_progress_end(&bar, NULL);
    printf("\n");
    double mean = nll / count, var = nll2 / count - mean * mean;
    double ppl = exp(mean), sd = var > 0 ? sqrt(var / (count - 1)) : 0;
    printf("NLL = %.6f over %ld tokens\n", nll, count);
    printf("Final estimate: PPL = %.4f +/- %.5f\n", ppl, sd * ppl);
    rc = 0;
out:
    free(text);
    free(tokens);
    free(logits);
    ea_kv_cache_destroy(c);
    ea_tokenizer_destroy(tok);
    ea_model_destroy(m);
    return rc;
}
