/* upstream_local.c - the `local` upstream (upstream.h): everything that
 * touches the chat template, the tokenizer and the engine for a generation.
 * prepare renders chat messages (ea_chat_render through
 * ea__chat_prompt_render) or tokenizes completion prompts and checks them
 * against the context; start echoes prompts when asked, submits one engine
 * request per choice (ea_engine_submit) and turns the engine's events into
 * the queue's emit/finish; cancel is ea_engine_cancel, which frees the
 * sequences' KV blocks at the next engine step.
 *
 * Threads. prepare, start and release run on an HTTP thread; cancel on an
 * HTTP thread or the shutdown path. on_engine_event runs on the engine
 * thread and does bounded work only: the streaming detokenizer and the
 * stop-string matcher (engine-thread-only state of the choice), then an
 * emit into the queue (under the queue's mutex; the queue's wake callback
 * may resume the connection, it never waits for the client). A choice's
 * engine id is written and read under the queue's mutex. The job lives
 * until release, which the generation calls once every begun choice has
 * finished, so the callback never sees freed state.
 * Does not hold: HTTP, JSON or SSE (generate.c), the queue (genq.c).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "edgeagent/toolcall.h"
#include "server/gcache.h"
#include "server/genq.h"
#include "server/server_int.h"
#include "server/upstream.h"

/* Bytes of text one token event can produce beyond the detokenizer's largest
 * piece, and a stop-string matcher's extra hold-back. */
#define LOCAL_PIECE_SLACK 8
/* Engine ids collected under the queue's mutex per cancel pass. */
#define LOCAL_CANCEL_BATCH 64
/* Bytes of a grammar cache key besides the texts from the body (kind, flags,
 * syntax, a tool name, choice lengths are under the body's size too). */
#define LOCAL_KEY_SLACK 256

struct ea__upstream_local {
    struct ea__upstream base;
    ea_server *srv; /* logs, ids, limits, the current backend */
};

struct local_choice {
    struct ea__upstream_job *job;
    int index;
    uint64_t engine_id; /* under q->mu */
    /* engine thread only */
    struct ea_detok detok;
    struct ea_stop_matcher stop;
    bool has_stop, stop_init, stopped_by_string;
    char *scratch, *released;
    size_t scratch_cap, released_cap;
    ea_tool_parser *tools; /* tool calls are parsed from the output (engine thread) */
};

struct ea__upstream_job {
    struct ea__upstream_local *u;
    struct ea__backend *b; /* the model it runs on: a reference, held until release */
    /* set by start once c and n_choices are (cancel may run meanwhile, on
     * the shutdown path); NULL before */
    _Atomic(struct ea__genq *) q;
    char req_id[48];
    enum ea__req_kind kind;
    int n_prompts;
    int32_t *ptoks[EA__MAX_PROMPTS];
    int32_t pn[EA__MAX_PROMPTS];
    struct ea_chat_prompt chat; /* the rendered chat prompt (text for log_content) */
    int n_choices;
    struct local_choice *c;
    struct ea__gcache_entry *grammar; /* constrained decoding, or NULL */
    char unenforced[EA__UNENFORCED_MAX]; /* keywords the grammar does not enforce */
    enum ea_tool_syntax syntax;       /* tool calls in the output, when parse_tools */
    bool parse_tools;
    const char *trigger;              /* the grammar waits for this text (tools, auto), or NULL */
    int32_t trigger_token;            /* or for this token (Mistral's [TOOL_CALLS]); EA_TOKEN_NONE: none */
};

/* ---- prepare ---------------------------------------------------------------------------- */

/* Tokenizes a completion prompt (the caller's own text: special tokens are
 * recognised unless parse_special is off) into a fresh array; EA_ETOOBIG
 * when it has more than max tokens. Chat prompts are tokenized by
 * ea_chat_render, which keeps message data from becoming control tokens. */
static ea_status tokenize_prompt(const ea_tokenizer *tok, const char *text, size_t len, bool parse_special,
                                 int32_t max, int32_t **out, int32_t *n_out, struct ea_error *err)
{
    size_t cap = (size_t)max + 1, n = 0;
    /* a prompt far longer in bytes than the context in tokens cannot fit:
     * refuse before spending time on it (no vocabulary averages 64 bytes/token) */
    if (len / 64 > cap)
        return ea_error_set(err, EA_ETOOBIG, "prompt too long");
    int32_t *t = ea_malloc(sizeof *t * cap);
    if (!t)
        return ea_error_set(err, EA_ENOMEM, "out of memory");
    unsigned flags = EA_TOK_ADD_SPECIAL | (parse_special ? EA_TOK_PARSE_SPECIAL : 0);
    ea_status s = ea_tokenize(tok, text, len, flags, t, cap, &n, err);
    if (!s && n >= cap)
        s = ea_error_set(err, EA_ETOOBIG, "prompt too long");
    if (s) {
        ea_free(t);
        return s;
    }
    *out = t;
    *n_out = (int32_t)n;
    return EA_OK;
}

/* Prompt p of the request as token ids in job->ptoks[p] / pn[p]. */
static ea_status prompt_tokens(struct ea__upstream_job *job, const struct ea__gen_request *r, int p,
                               struct ea_error *err)
{
    struct ea__upstream_local *u = job->u;
    struct ea__backend *b = job->b;
    int32_t ctx_max = b->view.max_context;
    if (job->kind == EA__REQ_CHAT) {
        ea_status s = ea__chat_prompt_request(b->chat, b->renders_tools, r, u->srv->p.max_body_bytes * 2,
                                              (size_t)ctx_max, &job->chat, err);
        if (!s) { /* the tokens move to ptoks */
            job->ptoks[p] = job->chat.tokens;
            job->pn[p] = (int32_t)job->chat.n_tokens;
            job->chat.tokens = NULL;
        }
        return s;
    }
    const struct ea__prompt *pr = &r->prompts[p];
    if (pr->text)
        return tokenize_prompt(b->view.tok, pr->text, pr->len, r->parse_special, ctx_max, &job->ptoks[p],
                               &job->pn[p], err);
    /* the request was checked against the vocabulary served when it came
     * in; a switch since may have brought a smaller one */
    uint32_t nv = ea_tokenizer_n_vocab(b->view.tok);
    for (int32_t i = 0; i < pr->n_tokens; i++)
        if (pr->tokens[i] < 0 || (uint32_t)pr->tokens[i] >= nv)
            return ea_error_set(err, EA_EINVAL, "token id %d is not in the vocabulary of %s",
                                (int)pr->tokens[i], b->id);
    job->pn[p] = pr->n_tokens;
    job->ptoks[p] = ea_malloc(sizeof(int32_t) * (size_t)pr->n_tokens);
    if (!job->ptoks[p])
        return EA_ENOMEM;
    memcpy(job->ptoks[p], pr->tokens, sizeof(int32_t) * (size_t)pr->n_tokens);
    return EA_OK;
}

/* ---- grammars ---------------------------------------------------------------------------- */

/* What a grammar is compiled from (the cache key is built from the same). */
struct guide_arg {
    const struct ea__gen_request *r;
    enum ea_tool_syntax syntax;
    bool tools; /* a forced tool call, else r->guide */
};

static ea_status compile_guide(const ea_grammar_vocab *v, const void *arg, ea_grammar **out,
                               struct ea_error *err)
{
    const struct guide_arg *a = arg;
    const struct ea__gen_request *r = a->r;
    const struct ea__guide *g = &r->guide;
    if (a->tools)
        return ea_tool_grammar_compile(v, a->syntax, r->tools.json, r->tools.len,
                                       r->tools.choice == EA__TOOLS_NAMED ? r->tools.name : NULL,
                                       r->tools.parallel, r->tools.strict, out, err);
    struct ea_grammar_options o = {.strict = g->strict};
    switch (g->kind) {
    case EA__GUIDE_JSON_OBJECT:
        return ea_grammar_compile_json_object(v, &o, out, err);
    case EA__GUIDE_SCHEMA:
        return ea_grammar_compile_schema_text(v, g->text, g->len, &o, out, err);
    case EA__GUIDE_REGEX:
        return ea_grammar_compile_regex(v, g->text, g->len, &o, out, err);
    case EA__GUIDE_CHOICE:
        return ea_grammar_compile_choice(v, (const char *const *)g->choices, (size_t)g->n_choices,
                                         &o, out, err);
    default:
        return ea_error_set(err, EA_EINVAL, "no grammar asked for");
    }
}

/* The cache key of a: kind, strict, syntax, then the text(s). */
static ea_status guide_key(const struct guide_arg *a, struct ea_buf *k)
{
    const struct ea__gen_request *r = a->r;
    if (a->tools) {
        ea_status s = ea__buf_printf(k, "T%d%d%d%s:%s\n", (int)a->syntax, r->tools.parallel, r->tools.strict,
                                     r->tools.choice == EA__TOOLS_NAMED ? "=" : "",
                                     r->tools.choice == EA__TOOLS_NAMED ? r->tools.name : "");
        return s ? s : ea__buf_append(k, r->tools.json, r->tools.len);
    }
    const struct ea__guide *g = &r->guide;
    ea_status s = ea__buf_printf(k, "G%d%d:", (int)g->kind, g->strict);
    if (!s && g->text)
        s = ea__buf_append(k, g->text, g->len);
    for (int i = 0; !s && i < g->n_choices; i++) {
        s = ea__buf_printf(k, "%zu:", strlen(g->choices[i]));
        if (!s)
            s = ea__buf_puts(k, g->choices[i]);
    }
    return s;
}

/* The grammar of the request, if it asks for one (job->grammar); false with
 * *e filled when it cannot be compiled: a 400 naming the keyword or the
 * problem (strict, a bad schema or regex), 500 otherwise. */
static bool prepare_grammar(struct ea__upstream_job *job, const struct ea__gen_request *r,
                            struct ea__api_error *e)
{
    struct ea__upstream_local *u = job->u;
    bool forced = job->kind == EA__REQ_CHAT && (r->tools.choice == EA__TOOLS_REQUIRED ||
                                                r->tools.choice == EA__TOOLS_NAMED);
    /* tool_choice auto: a call is constrained from the moment the model
     * opens one (the engine's grammar trigger): the text that opens the
     * syntax, or for Mistral its [TOOL_CALLS] token (a vocabulary without
     * that token: calls are parsed, not constrained) */
    int32_t tc_token = job->syntax == EA_TOOL_SYNTAX_MISTRAL ? job->b->mistral_calls_token : EA_TOKEN_NONE;
    bool lazy = job->kind == EA__REQ_CHAT && job->parse_tools && r->tools.choice == EA__TOOLS_AUTO &&
                r->guide.kind == EA__GUIDE_NONE && (job->syntax != EA_TOOL_SYNTAX_MISTRAL || tc_token >= 0);
    if (!forced && !lazy && r->guide.kind == EA__GUIDE_NONE)
        return true;
    if (lazy && job->syntax == EA_TOOL_SYNTAX_MISTRAL)
        job->trigger_token = tc_token;
    else if (lazy)
        job->trigger = job->syntax == EA_TOOL_SYNTAX_LLAMA3 ? "{\"name\"" : "<tool_call>";
    struct guide_arg a = {r, job->syntax, forced || lazy};
    struct ea_buf key;
    ea__buf_init(&key, 2 * r->body_len + LOCAL_KEY_SLACK); /* the texts come from the body */
    struct ea_error err = {0};
    ea_status s = guide_key(&a, &key);
    if (!s)
        s = ea__gcache_get(job->b->gc, key.data, key.len, compile_guide, &a, &job->grammar, &err);
    else
        snprintf(err.msg, sizeof err.msg, "out of memory");
    ea__buf_release(&key);
    if (s && lazy && !r->tools.strict) { /* auto: a call that cannot be constrained is only parsed */
        job->trigger = NULL;
        job->trigger_token = EA_TOKEN_NONE;
        return true;
    }
    const char *param = forced || lazy ? "tools" : r->guide.param;
    if (s == EA_EUNSUPPORTED || s == EA_EFORMAT || s == EA_EINVAL || s == EA_ETOOBIG)
        return ea__api_errorf(e, 400, "invalid_request_error", NULL, param, "%s: %s", param,
                              err.msg);
    if (s) {
        char id[48];
        ea__server_new_id(u->srv, "err", id, sizeof id);
        ea__server_log(u->srv, "error %s: compiling the grammar: %s", id, err.msg);
        return ea__api_errorf(e, 500, "server_error", NULL, NULL,
                              "internal error compiling the grammar (error id %s)", id);
    }
    snprintf(job->unenforced, sizeof job->unenforced, "%s",
             ea_grammar_unenforced(ea__gcache_grammar(job->grammar)));
    return true;
}

static void local_release(struct ea__upstream_job *job)
{
    if (!job)
        return;
    if (job->b)
        ea__gcache_unref(job->b->gc, job->grammar);
    for (int i = 0; i < job->n_choices && job->c; i++) {
        struct local_choice *c = &job->c[i];
        ea_tool_parser_destroy(c->tools);
        if (c->stop_init)
            ea_stop_release(&c->stop);
        ea_free(c->scratch);
        ea_free(c->released);
    }
    ea_free(job->c);
    for (int p = 0; p < job->n_prompts; p++)
        ea_free(job->ptoks[p]);
    ea_chat_prompt_release(&job->chat);
    ea__backend_release(job->u->srv, job->b); /* the last one: its retire thread unloads it */
    ea_free(job);
}

static bool local_prepare(struct ea__upstream *up, const struct ea__gen_request *r, const char *req_id,
                          struct ea__upstream_job **out, struct ea__api_error *e)
{
    struct ea__upstream_local *u = (struct ea__upstream_local *)up;
    ea_server *srv = u->srv;
    *out = NULL;
    struct ea__upstream_job *job = ea_calloc(1, sizeof *job);
    if (!job)
        return ea__api_errorf(e, 500, "server_error", NULL, NULL, "out of memory");
    job->u = u;
    job->trigger_token = EA_TOKEN_NONE;
    job->b = ea__backend_acquire(srv);
    if (!job->b) {
        ea_free(job);
        return ea__api_errorf(e, 503, "server_error", "model_loading", NULL,
                              "the model is still loading; retry shortly");
    }
    snprintf(job->req_id, sizeof job->req_id, "%s", req_id);
    job->kind = r->kind;
    job->n_prompts = r->kind == EA__REQ_CHAT ? 1 : r->n_prompts;
    job->syntax = (enum ea_tool_syntax)job->b->syntax;
    if (r->tools.syntax[0])
        ea_tool_syntax_from_name(r->tools.syntax, &job->syntax);
    job->parse_tools = r->kind == EA__REQ_CHAT && r->tools.json && r->tools.choice != EA__TOOLS_NONE;
    if (!prepare_grammar(job, r, e))
        goto fail;
    int32_t ctx_max = job->b->view.max_context;
    const char *param = r->kind == EA__REQ_CHAT ? "messages" : "prompt";
    for (int p = 0; p < job->n_prompts; p++) {
        struct ea_error err = {0};
        ea_status s = prompt_tokens(job, r, p, &err);
        /* the prompt must leave room for at least one generated token */
        if (!s && job->pn[p] >= ctx_max)
            s = EA_ETOOBIG;
        if (s == EA_ETOOBIG) {
            ea__api_errorf(e, 400, "invalid_request_error", "context_length_exceeded", param,
                           "this model's maximum context length is %d tokens; the prompt (%d "
                           "tokens) leaves no room for an answer",
                           ctx_max, job->pn[p]);
            goto fail;
        }
        if (s == EA_EINVAL) {
            ea__api_errorf(e, 400, "invalid_request_error", NULL, param, "%s", err.msg);
            goto fail;
        }
        if (s) {
            char id[48];
            ea__server_new_id(srv, "err", id, sizeof id);
            ea__server_log(srv, "error %s: preparing the prompt: %s", id, err.msg);
            ea__api_errorf(e, 500, "server_error", NULL, NULL,
                           "internal error preparing the prompt (error id %s)", id);
            goto fail;
        }
        if (job->pn[p] == 0) {
            ea__api_errorf(e, 400, "invalid_request_error", NULL, param,
                           "the prompt is empty (and this vocabulary adds no BOS token)");
            goto fail;
        }
    }
    *out = job;
    return true;
fail:
    local_release(job);
    return false;
}

/* ---- the engine side: only enqueue ---------------------------------------------------- */

/* The tool parser's sink: content into the queue's text, calls as calls. */
struct tool_sink_ctx {
    struct local_choice *c;
    struct ea__genq *q;
    bool ok;
};

static bool tool_sink(void *user, const struct ea_tool_event *ev)
{
    struct tool_sink_ctx *t = user;
    switch (ev->kind) {
    case EA_TOOL_EV_CONTENT:
        t->ok = ea__genq_emit(t->q, t->c->index, ev->text, ev->len, NULL);
        return t->ok;
    case EA_TOOL_EV_CALL_ARGS:
        t->ok = ea__genq_call_args(t->q, t->c->index, ev->arguments, ev->arguments_len);
        return t->ok;
    case EA_TOOL_EV_CALL_END:
        return true;
    default: /* CALL, CALL_BEGIN */
        break;
    }
    char id[EA__GENQ_CALL_ID_MAX];
    ea__server_new_id(t->c->job->u->srv, "call", id, sizeof id);
    id[4] = '_'; /* OpenAI's shape: call_<hex> */
    t->ok = ea__genq_call_begin(t->q, t->c->index, id, ev->name, strlen(ev->name));
    if (t->ok && ev->kind == EA_TOOL_EV_CALL)
        t->ok = ea__genq_call_args(t->q, t->c->index, ev->arguments, ev->arguments_len);
    return t->ok;
}

/* Text of choice c goes out: through the tool parser when the request has
 * tools (final: the output ended), else straight into the queue. */
static bool put_text(struct local_choice *c, struct ea__genq *q, const char *text, size_t n,
                     const struct ea_sample_result *lp, bool final)
{
    if (!c->tools) {
        if (final)
            return true; /* the caller passes it with finish */
        return ea__genq_emit(q, c->index, text, n, lp);
    }
    struct tool_sink_ctx t = {c, q, true};
    if (lp && !ea__genq_emit(q, c->index, "", 0, lp))
        return false;
    struct ea_error err;
    if (n && ea_tool_parser_feed(c->tools, text, n, tool_sink, &t, &err))
        return false;
    if (final && ea_tool_parser_finish(c->tools, tool_sink, &t, &err))
        return false;
    return t.ok;
}

static bool on_engine_event(const struct ea_engine_event *ev)
{
    struct local_choice *c = ev->user;
    struct ea__genq *q = atomic_load_explicit(&c->job->q, memory_order_relaxed); /* set before submit */
    struct ea_error err;
    if (ev->kind == EA_EVENT_TOKEN) {
        size_t n = 0, rn = 0;
        if (ea_detok_push(&c->detok, ev->sample->token, c->scratch, c->scratch_cap, &n, &err))
            n = 0;
        const char *text = c->scratch;
        bool matched = false;
        if (c->has_stop) {
            matched = ea_stop_feed(&c->stop, c->scratch, n, c->released, &rn);
            text = c->released;
            n = rn;
            c->stopped_by_string = matched;
        }
        return put_text(c, q, text, n, ev->sample, false) && !matched;
    }
    /* DONE: release what the detokenizer and the matcher still hold, unless
     * a stop string ended the text (what is held belongs to it) */
    size_t n = 0, rn = 0;
    const char *text = c->scratch;
    if (!c->stopped_by_string && ev->finish != EA_FINISH_ERROR) {
        if (ea_detok_flush(&c->detok, c->scratch, c->scratch_cap, &n, &err))
            n = 0;
        if (c->has_stop) {
            bool m = ea_stop_feed(&c->stop, c->scratch, n, c->released, &rn);
            if (!m)
                rn += ea_stop_flush(&c->stop, c->released + rn);
            text = c->released;
            n = rn;
        }
    }
    bool calls = false;
    if (c->tools) { /* what the parser holds is resolved now */
        if (ev->finish != EA_FINISH_ERROR)
            put_text(c, q, text, n, NULL, true);
        n = 0;
        calls = ea_tool_parser_n_calls(c->tools) > 0 && ev->finish == EA_FINISH_STOP;
    }
    struct ea__genq_end end = {
        .finish = ev->finish,
        .stop_string = c->stopped_by_string,
        .tool_calls = calls,
        .status = ev->status,
        .error = ev->error,
        .n_prompt = ev->n_prompt,
        .n_generated = ev->n_generated,
        .n_cached = ev->n_cached,
        .ttft_ms = ev->ttft_ms,
        .total_ms = ev->total_ms,
        .queue_ms = ev->queue_ms,
    };
    ea__genq_finish(q, c->index, text, n, &end); /* the last touch of c */
    return true;
}

/* ---- start, cancel ------------------------------------------------------------------------ */

static void local_cancel(struct ea__upstream_job *job)
{
    struct ea__genq *q = job ? atomic_load(&job->q) : NULL;
    if (!q)
        return; /* not started */
    ea_engine *engine = job->b->view.engine;
    uint64_t ids[LOCAL_CANCEL_BATCH];
    int n = 0;
    pthread_mutex_lock(q->lock);
    for (int i = 0; i < job->n_choices; i++) {
        if (q->c[i].started && !q->c[i].done) {
            if (n < LOCAL_CANCEL_BATCH)
                ids[n++] = job->c[i].engine_id;
            else
                ea_engine_cancel(engine, job->c[i].engine_id);
        }
    }
    pthread_mutex_unlock(q->lock);
    for (int i = 0; i < n; i++)
        ea_engine_cancel(engine, ids[i]);
}

/* The prompt text of choice i goes out first, as if generated (echo). */
static bool echo_prompt(struct ea__upstream_job *job, const struct ea__gen_request *r, int i)
{
    const ea_tokenizer *tok = job->b->view.tok;
    const struct ea__prompt *pr = &r->prompts[i / r->n];
    if (pr->text)
        return ea__genq_emit(atomic_load(&job->q), i, pr->text, pr->len, NULL);
    struct ea_error err = {0};
    size_t need = 0, got = 0;
    ea_detokenize(tok, pr->tokens, (size_t)pr->n_tokens, 0, NULL, 0, &need, &err);
    struct ea__genq *q = atomic_load(&job->q);
    if (need >= q->cap)
        return false;
    char *text = ea_malloc(need + 1);
    bool ok = text && !ea_detokenize(tok, pr->tokens, (size_t)pr->n_tokens, 0, text, need + 1, &got, &err) &&
              ea__genq_emit(q, i, text, got, NULL);
    ea_free(text);
    return ok;
}

/* Per-choice state: detokenizer, stop matcher, scratch buffers, echo. */
static bool init_choices(struct ea__upstream_job *job, const struct ea__gen_request *r,
                         struct ea__api_error *e)
{
    const ea_tokenizer *tok = job->b->view.tok;
    size_t piece_max = ea_detok_max_output(tok) + LOCAL_PIECE_SLACK;
    for (int i = 0; i < job->n_choices; i++) {
        struct local_choice *c = &job->c[i];
        struct ea_error err = {0};
        c->job = job;
        c->index = i;
        c->scratch_cap = piece_max;
        c->released_cap = piece_max + EA__MAX_STOP_LEN + LOCAL_PIECE_SLACK;
        c->scratch = ea_malloc(c->scratch_cap);
        c->released = ea_malloc(c->released_cap);
        ea_detok_init(&c->detok, tok, 0);
        if (!c->scratch || !c->released)
            return ea__api_errorf(e, 500, "server_error", NULL, NULL, "out of memory");
        if (r->n_stop) {
            if (ea_stop_init(&c->stop, (const char *const *)r->stops, r->n_stop, &err))
                return ea__api_errorf(e, 500, "server_error", NULL, NULL, "out of memory");
            c->stop_init = true;
        }
        c->has_stop = r->n_stop > 0;
        if (job->parse_tools && ea_tool_parser_create(job->syntax, &c->tools, &err))
            return ea__api_errorf(e, 500, "server_error", NULL, NULL, "out of memory");
        if (r->echo && r->kind == EA__REQ_COMPLETION && !echo_prompt(job, r, i))
            return ea__api_errorf(e, 400, "invalid_request_error", NULL, "echo",
                                  "the prompt is too long to echo");
    }
    return true;
}

/* Submits choice i; false with *e filled when the engine refused it. */
static bool submit_choice(struct ea__upstream_job *job, const struct ea__gen_request *r, uint64_t seed0,
                          int i, struct ea__api_error *e)
{
    struct ea__upstream_local *u = job->u;
    ea_server *srv = u->srv;
    struct local_choice *c = &job->c[i];
    int p = i / r->n;
    struct ea_engine_request er = {0};
    er.prompt = job->ptoks[p];
    er.n_prompt = job->pn[p];
    ea_sampling_params_default(&er.sampling);
    er.sampling.temperature = r->has_temperature ? r->temperature : 1.0f;
    er.sampling.top_p = r->has_top_p ? r->top_p : 1.0f;
    er.sampling.presence_penalty = r->presence_penalty;
    er.sampling.frequency_penalty = r->frequency_penalty;
    er.sampling.seed = seed0 + (uint64_t)i;
    er.sampling.logit_bias = r->bias;
    er.sampling.n_logit_bias = r->n_bias;
    er.sampling.logprobs = r->logprobs;
    er.sampling.n_logprobs = r->top_logprobs;
    int32_t room = job->b->view.max_context - job->pn[p];
    er.max_tokens = r->max_tokens ? r->max_tokens : srv->p.max_tokens;
    if (er.max_tokens > room)
        er.max_tokens = room; /* the context ends it with finish_reason "length" */
    er.cb = on_engine_event;
    er.user = c;
    er.grammar = job->grammar ? ea__gcache_grammar(job->grammar) : NULL;
    er.grammar_trigger = job->trigger;
    er.has_trigger_token = job->trigger_token >= 0;
    er.grammar_trigger_token = job->trigger_token;
    struct ea_error err = {0};
    struct ea__genq *q = atomic_load(&job->q);
    ea__genq_begin(q, i); /* the engine's reference, dropped at DONE */
    uint64_t id = 0;
    ea_status s = ea_engine_submit(job->b->view.engine, &er, &id, &err);
    if (!s) {
        pthread_mutex_lock(q->lock);
        c->engine_id = id;
        pthread_mutex_unlock(q->lock);
        return true;
    }
    ea__genq_abort(q, i); /* on error no callback is ever made */
    if (s == EA_EOVERLOADED)
        return ea__api_errorf(e, 429, "rate_limit_error", "server_overloaded", NULL,
                              "the server is overloaded (%s); retry shortly", err.msg);
    if (s == EA_ETOOBIG)
        return ea__api_errorf(e, 400, "invalid_request_error", "context_length_exceeded",
                              r->kind == EA__REQ_CHAT ? "messages" : "prompt", "%s", err.msg);
    char eid[48];
    ea__server_new_id(srv, "err", eid, sizeof eid);
    ea__server_log(srv, "error %s: submit: %s", eid, err.msg);
    return ea__api_errorf(e, 500, "server_error", NULL, NULL, "internal error (error id %s)", eid);
}

static bool local_start(struct ea__upstream_job *job, const struct ea__gen_request *r, uint64_t seed,
                        struct ea__genq *q, struct ea__api_error *e)
{
    ea_server *srv = job->u->srv;
    job->c = ea_calloc((size_t)q->n_choices, sizeof *job->c);
    if (!job->c)
        return ea__api_errorf(e, 500, "server_error", NULL, NULL, "out of memory");
    job->n_choices = q->n_choices;
    atomic_store(&job->q, q); /* publishes c and n_choices to cancel */
    for (int p = 0; p < job->n_prompts; p++)
        q->n_prompt_tokens += job->pn[p];
    if (srv->p.log_content) {
        if (job->kind == EA__REQ_CHAT)
            ea__server_log_content(srv, job->req_id, "prompt", job->chat.text, job->chat.len);
        else
            for (int p = 0; p < job->n_prompts; p++)
                if (r->prompts[p].text)
                    ea__server_log_content(srv, job->req_id, "prompt", r->prompts[p].text,
                                           r->prompts[p].len);
    }
    bool ok = init_choices(job, r, e);
    for (int i = 0; ok && i < job->n_choices; i++)
        ok = submit_choice(job, r, seed, i, e);
    if (!ok)
        local_cancel(job); /* what went in: their DONE events drop their references */
    /* the engine copied the prompts */
    for (int p = 0; p < job->n_prompts; p++) {
        ea_free(job->ptoks[p]);
        job->ptoks[p] = NULL;
    }
    ea_chat_prompt_release(&job->chat);
    return ok;
}

static bool local_token_piece(const struct ea__upstream_job *job, int32_t token, bool special,
                              const char **p, size_t *n)
{
    return ea_token_piece(job->b->view.tok, token, special, p, n) == EA_OK;
}

static const char *local_model(const struct ea__upstream_job *job) { return job->b->id; }

static const char *local_unenforced(const struct ea__upstream_job *job) { return job->unenforced; }

static const struct ea__upstream_ops local_ops = {
    .kind = "local",
    .prepare = local_prepare,
    .start = local_start,
    .cancel = local_cancel,
    .release = local_release,
    .token_piece = local_token_piece,
    .unenforced = local_unenforced,
    .model = local_model,
};

ea_status ea__upstream_local_create(ea_server *srv, struct ea__upstream **out, struct ea_error *err)
{
    struct ea__upstream_local *u = ea_calloc(1, sizeof *u);
    if (!u)
        return ea_error_set(err, EA_ENOMEM, "server: out of memory");
    u->base.ops = &local_ops;
    u->base.name = "local";
    u->srv = srv;
    *out = &u->base;
    return EA_OK;
}

void ea__upstream_local_destroy(struct ea__upstream *up)
{
    ea_free(up); /* NULL-safe */
}
