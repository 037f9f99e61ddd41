/* upstream.h - where a generation runs. An upstream is a small ops table:
 * prepare a validated request (build what it will send: for the local
 * engine the rendered and tokenized prompts; errors here are the client's,
 * e.g. a prompt too long for the context), start it into a generation
 * queue (genq.h: per choice emit, then finish with the finish reason,
 * usage counts or an error), cancel it, release it. The HTTP side
 * (generate.c) neither knows nor cares which upstream produces the output.
 *
 * Implementations:
 *   local   (upstream_local.c) the in-process engine: chat template,
 *           tokenizer, ea_engine_submit, the engine-thread callback with
 *           the streaming detokenizer and stop-string matcher, ea_engine_cancel.
 *   openai  (upstream_openai.c) an OpenAI-compatible endpoint: prepare
 *           builds the JSON body, start hands it to the cloud client's
 *           thread (router/cloud.h, curl multi) whose SSE parser emits into
 *           the same queue, cancel aborts the transfer; its failures carry
 *           their class in struct ea__genq_end (fail, http_status,
 *           retry_after_ms); token_piece is NULL.
 *
 * Lifetime of a job: prepare creates it (on failure *job is NULL); start
 * begins every choice (ea__genq_begin) or, on failure, ends or undoes what
 * it began; cancel may be called any number of times from any thread until
 * release; release frees it once no producer can touch it any more (every
 * begun choice finished: the queue's producer references are gone), or
 * when start was never called.
 * Does not hold: request validation (request.c), the queue (genq.c),
 * formatting (generate.c).
 */
#ifndef EDGEAGENT_SERVER_UPSTREAM_H
#define EDGEAGENT_SERVER_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgeagent/error.h"

struct ea__gen_request;
struct ea__api_error;
struct ea__genq;
struct ea__upstream;
struct ea__upstream_job;

struct ea__upstream_ops {
    const char *kind; /* "local", "openai" */
    /* Prepares r (valid only during the call) for n_choices choices (r->n
     * per prompt, prompt-major). False with *e filled (a 4xx for the
     * request's own faults, 5xx otherwise). */
    bool (*prepare)(struct ea__upstream *u, const struct ea__gen_request *r, const char *req_id,
                    struct ea__upstream_job **job, struct ea__api_error *e);
    /* Begins every choice of the prepared job into q (seed: the request's,
     * or a fresh one); sets q->n_prompt_tokens. False with *e filled when a
     * choice could not start; what did start is cancelled. */
    bool (*start)(struct ea__upstream_job *job, const struct ea__gen_request *r, uint64_t seed,
                  struct ea__genq *q, struct ea__api_error *e);
    /* Stops every choice still producing; each still finishes (cancelled). */
    void (*cancel)(struct ea__upstream_job *job);
    void (*release)(struct ea__upstream_job *job);
    /* The text of a token id of the job's output in logprob entries
     * (special: control tokens as their text); NULL for upstreams without
     * token ids. */
    bool (*token_piece)(const struct ea__upstream_job *job, int32_t token, bool special,
                        const char **p, size_t *n);
    /* Comma-separated JSON Schema keywords the prepared job's grammar does
     * not enforce ("" when none; the X-EdgeAgent-Unenforced header), or
     * NULL for upstreams that do not constrain. */
    const char *(*unenforced)(const struct ea__upstream_job *job);
    /* The model id the job runs on (local: its backend's, which a switch
     * does not change), or NULL for upstreams that answer with their own. */
    const char *(*model)(const struct ea__upstream_job *job);
};

struct ea__upstream {
    const struct ea__upstream_ops *ops;
    const char *name;
};

struct ea_server;
struct ea_server_backend;
struct ea_chat;
/* The local upstream over the server's current backend (each job holds a
 * reference to the one it was prepared on); logs through srv. Release with
 * ea__upstream_local_destroy. */
ea_status ea__upstream_local_create(struct ea_server *srv, struct ea__upstream **out,
                                    struct ea_error *err);
void ea__upstream_local_destroy(struct ea__upstream *u); /* NULL-safe */

struct ea__cloud;
struct ea_upstream_config;
/* An openai upstream (upstream_openai.c) for cfg (kind openai; copied)
 * over the cloud client c (which must outlive it). api_key: the key the
 * CLI read from cfg->api_key_env, or NULL (copied; wiped on destroy).
 * Release with ea__upstream_openai_destroy once no job of it is left. */
ea_status ea__upstream_openai_create(struct ea__cloud *c, const struct ea_upstream_config *cfg,
                                     const char *api_key, struct ea__upstream **out,
                                     struct ea_error *err);
void ea__upstream_openai_destroy(struct ea__upstream *u); /* NULL-safe */
/* Between prepare and start: wait delay_ms before sending anything (retry
 * backoff, hedging); a cancel before then sends nothing at all. */
void ea__upstream_openai_set_delay(struct ea__upstream_job *job, uint32_t delay_ms);

#endif
