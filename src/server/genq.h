/* genq.h - the generation queue: what one generation's choices produce,
 * between an upstream (the producer: the local engine's thread, or a cloud
 * client's thread) and the HTTP side (the consumer, which formats JSON or
 * Server-Sent Events).
 *
 * Per choice the producer calls ea__genq_begin once before it may produce,
 * then ea__genq_emit any number of times (text and, with logprobs, the
 * token's entry) and ea__genq_call_begin / ea__genq_call_args for tool
 * calls, then ea__genq_finish exactly once (how it ended, usage
 * counts, the error); a choice whose producer could not start is undone
 * with ea__genq_abort instead. Producers do bounded work and never wait for
 * the client: everything is appended under the queue's mutex, and the wake
 * callback (called under that mutex) is how the consumer learns of output
 * (it resumes a suspended connection) and how it asks the producer to stop.
 *
 * The consumer takes a choice's pending output with ea__genq_take_locked
 * (a swap of buffers under the mutex) and formats it outside the mutex.
 *
 * Lifetime: the queue is reference-counted (under mu). Whoever creates it
 * holds the first reference; ea__genq_begin takes one for the producer,
 * dropped by ea__genq_finish (or ea__genq_abort); the last reference calls
 * the free callback, which releases the queue and what embeds it.
 * Does not hold: formatting (generate.c), engines or clients (upstreams).
 */
#ifndef EDGEAGENT_SERVER_GENQ_H
#define EDGEAGENT_SERVER_GENQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgeagent/engine.h"
#include "util/buf.h"

#define EA__GENQ_MAX_TOP 20 /* alternatives kept per token (OpenAI's maximum) */

/* One token's logprob entry. */
struct ea__genq_lp {
    int32_t token;
    float logprob;
    int32_t n_top;
    struct ea_token_logprob top[EA__GENQ_MAX_TOP];
};

#define EA__GENQ_CALL_ID_MAX 48

/* A tool call of a choice, or more of its arguments (ea__genq_call_begin,
 * ea__genq_call_args): the name and the arguments' text are in the
 * buffer's call_text. A call's arguments may span entries (and takes):
 * an entry with first set opens call `index` (id, name), later entries of
 * the same index continue its arguments. */
struct ea__genq_call {
    int32_t index; /* of the call in the choice, from 0 */
    bool first;    /* opens the call: id and name are set */
    char id[EA__GENQ_CALL_ID_MAX];
    size_t name_off, name_len, args_off, args_len;
};

/* Output of one choice not yet taken: text, logprob entries, tool calls. */
struct ea__genq_buf {
    struct ea_buf text;
    struct ea__genq_lp *lps;
    int32_t n_lps, cap_lps;
    struct ea__genq_call *calls;
    int32_t n_calls, cap_calls;
    struct ea_buf call_text;
};

/* How an upstream failed (with EA_FINISH_ERROR): what the router's
 * fallback triggers (fallback_on) and breakers are decided from. */
enum ea__fail {
    EA__FAIL_NONE,
    EA__FAIL_CONNECT,     /* could not connect (refused, DNS, TLS) */
    EA__FAIL_TIMEOUT,     /* connect, first token, idle gap or total */
    EA__FAIL_HTTP_429,    /* rate limited (retry_after_ms may say when) */
    EA__FAIL_HTTP_5XX,    /* a server error, or a broken reply: malformed, an error
                             event, a stream cut before [DONE] */
    EA__FAIL_REJECTED,    /* 4xx other than 429: the request's own fault, returned as is */
    EA__FAIL_OVERLOADED,  /* the local engine's queue is full */
    EA__FAIL_NOT_LOADED,  /* no model */
    EA__FAIL_CONTEXT,     /* the prompt does not fit the context */
    EA__FAIL_INTERNAL,    /* anything else (out of memory, a bug) */
    EA__FAIL_HANDOFF,     /* not a failure: the edge model handed the request off
                             (task mode cascade; set by the relay, never by a producer) */
};

/* How a choice ended (ea__genq_finish). */
struct ea__genq_end {
    enum ea_finish_reason finish;
    bool stop_string;  /* a stop string ended the text: reported as "stop" */
    bool tool_calls;   /* the choice made tool calls: reported as "tool_calls" */
    ea_status status;  /* with EA_FINISH_ERROR */
    const char *error; /* detail (copied), or NULL */
    int32_t n_prompt, n_generated, n_cached;
    bool estimated;    /* n_generated is an estimate (no usage from the upstream) */
    double ttft_ms, total_ms, queue_ms; /* ttft_ms < 0: no token came */
    enum ea__fail fail;     /* with EA_FINISH_ERROR: its class (NONE reads as INTERNAL) */
    int http_status;        /* an upstream's HTTP status, or 0 */
    double retry_after_ms;  /* its Retry-After, or 0 */
};

#define EA__GENQ_ERRMSG_MAX 160

struct ea__genq_choice {
    /* under mu */
    struct ea__genq_buf pending;
    bool started, done;
    struct ea__genq_end end; /* valid once done; end.error points at errmsg */
    int32_t n_calls;         /* tool calls emitted so far */
    char errmsg[EA__GENQ_ERRMSG_MAX];
};

/* Called under mu after output was added to choice i (finished: its
 * ea__genq_finish). Returns false to ask the producer to stop producing
 * that choice (ignored for finished ones). */
typedef bool (*ea__genq_wake_fn)(void *user, int choice, bool finished);
/* Called once, outside mu, when the last reference is dropped. */
typedef void (*ea__genq_free_fn)(void *user);

struct ea__genq {
    pthread_mutex_t mu;    /* a root queue's own mutex (unused in a child) */
    pthread_mutex_t *lock; /* the mutex of this queue: &mu, or the root's */
    struct ea__genq *root; /* itself, or the queue this child forwards to */
    int refs;      /* under mu; a child's references are its root's */
    int n_choices;
    int n_done;    /* under mu */
    bool overflow; /* under mu: some output passed its cap (the client is not reading) */
    int32_t n_prompt_tokens; /* set by the producer (sum over distinct prompts) */
    size_t cap;    /* per choice: text bytes; logprob entries take at most cap * 4 bytes */
    bool logprobs;
    int top_logprobs;
    struct ea__genq_choice *c;
    ea__genq_wake_fn wake;
    ea__genq_free_fn free_fn;
    void *user;
};

/* The largest number of logprob entries a choice can hold (cap * 4 bytes). */
size_t ea__genq_max_lps(size_t cap);

/* n_choices choices, each capped at cap bytes of text; with logprobs, keeps
 * up to top_logprobs alternatives per token. One reference (the caller's). */
ea_status ea__genq_init(struct ea__genq *q, int n_choices, size_t cap, bool logprobs,
                        int top_logprobs, ea__genq_wake_fn wake, ea__genq_free_fn free_fn,
                        void *user);
/* Frees the choices' buffers (from free_fn, or when init's caller gives up
 * before any producer began). */
void ea__genq_release(struct ea__genq *q);

/* A child of parent (an attempt of a generation that may try several
 * upstreams): as many choices, the same caps, the parent's mutex and
 * reference count (ref, unref, begin, finish act on the root's), no free
 * callback of its own; its wake is called under the shared mutex and
 * decides what reaches the parent (ea__genq_move_locked, ea__genq_end_locked).
 * Release with ea__genq_release once no producer can touch it. */
ea_status ea__genq_init_child(struct ea__genq *q, struct ea__genq *parent, ea__genq_wake_fn wake,
                              void *user);
/* Under the lock: appends src's pending output of choice to dst's (which
 * may hold some already) and empties src's. False (dst->overflow set) past
 * dst's cap. */
bool ea__genq_move_locked(struct ea__genq *dst, struct ea__genq *src, int choice);
/* Under the lock: records how choice ended (done, end, n_done) without
 * calling wake or dropping a reference (the relay finishing a root choice). */
void ea__genq_end_locked(struct ea__genq *q, int choice, const struct ea__genq_end *end);

void ea__genq_ref_locked(struct ea__genq *q);
/* Drops a reference; the last one calls free_fn. */
void ea__genq_unref(struct ea__genq *q);

/* ---- producers (any thread) ---- */

void ea__genq_begin(struct ea__genq *q, int choice);
/* The producer of choice could not start (nothing was emitted): undoes
 * ea__genq_begin. The caller still holds a reference of its own. */
void ea__genq_abort(struct ea__genq *q, int choice);
/* Appends text[0..n) and, when the queue keeps logprobs and lp is not NULL,
 * lp's entry. False when the producer should stop: the output passed its
 * cap (overflow is set) or the consumer asked it to (wake returned false). */
bool ea__genq_emit(struct ea__genq *q, int choice, const char *text, size_t n,
                   const struct ea_sample_result *lp);
/* Opens the choice's next tool call (index: the choice's next); false as
 * for ea__genq_emit. */
bool ea__genq_call_begin(struct ea__genq *q, int choice, const char *id, const char *name,
                         size_t name_len);
/* Appends args[0..n) to the arguments of the choice's last call. Names and
 * arguments count against the text cap. */
bool ea__genq_call_args(struct ea__genq *q, int choice, const char *args, size_t n);
/* Appends the last text[0..n), records end and drops the producer's
 * reference: nothing of the choice may be touched after it. */
void ea__genq_finish(struct ea__genq *q, int choice, const char *text, size_t n,
                     const struct ea__genq_end *end);

/* ---- consumer ---- */

/* Buffers the consumer swaps with the pending ones: init with the queue's cap. */
void ea__genq_buf_init(struct ea__genq_buf *b, size_t cap);
void ea__genq_buf_release(struct ea__genq_buf *b);
/* Empties b (keeps its memory). */
void ea__genq_buf_reset(struct ea__genq_buf *b);
/* Under mu: when choice has pending output, swaps it with *local (which
 * must be empty) and returns true. */
bool ea__genq_take_locked(struct ea__genq *q, int choice, struct ea__genq_buf *local);

#endif
