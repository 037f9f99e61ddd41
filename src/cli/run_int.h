/* run_int.h - state shared by `run`'s completion mode (cmd_run.c) and its
 * chat mode (chat_repl.c). */
#ifndef EDGEAGENT_CLI_RUN_INT_H
#define EDGEAGENT_CLI_RUN_INT_H

#include <signal.h>
#include <stdio.h>

#include "edgeagent/engine.h"
#include "edgeagent/model.h"
#include "edgeagent/tokenizer.h"

/* Option limits (errors name the option and the range). -n: a million
 * tokens is hours of generation, far past any context; --ctx: 0 takes the
 * model's (at most 8192), a larger value is capped at its training context;
 * --top-k above the vocabulary size means no limit, so the largest
 * vocabulary bounds it. */
#define RUN_MAX_PREDICT 1000000
#define RUN_MAX_CTX (1 << 20)
#define RUN_MAX_TOP_K EA_TOKENIZER_MAX_VOCAB

struct run_options {
    const char *model, *prompt, *system;
    int32_t n_predict;
    int threads;
    int32_t ctx;
    bool chat;
    bool verbose_prompt; /* print the prompt's token ids to stderr */
    struct ea_sampling_params sampling;
};

struct run_session {
    const struct run_options *o;
    ea_model *m;
    ea_tokenizer *tok;
    ea_kv_cache *kv;
    struct ea_kv_seq seq;
    ea_sampler *sampler;
    float *logits;
    int32_t n_ctx;
    bool last_was_eog;
    int32_t *hist; /* tokens whose K/V are in the cache, in order */
    int32_t n_hist, cap_hist;
};

extern volatile sig_atomic_t run_interrupted;

ea_status run_session_init(struct run_session *rs, const struct run_options *o, struct ea_error *err);
void run_session_release(struct run_session *rs);
/* Evaluates tokens after what the cache holds, then samples and streams up
 * to max_new tokens to out (and appends their text to *text when text is not
 * NULL; free() it). Stops at end-of-generation, the context, or Ctrl-C. */
ea_status run_generate(struct run_session *rs, const int32_t *tokens, int32_t n, int32_t max_new,
                       FILE *out, char **text, int32_t *n_generated, struct ea_error *err);
int run_completion(struct run_session *rs);
/* --verbose-prompt: "prompt: N tokens: id id ..." on stderr. */
void run_print_prompt(const int32_t *t, size_t n);
int run_chat(struct run_session *rs, bool interactive);

#endif
