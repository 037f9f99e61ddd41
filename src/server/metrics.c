/* metrics.c - the server's Prometheus text exposition (GET /metrics).
 *
 * Names follow the OpenTelemetry GenAI semantic conventions where they exist
 * (gen_ai.server.time_to_first_token -> gen_ai_server_time_to_first_token_seconds,
 * gen_ai.server.time_per_output_token, gen_ai.server.request.duration,
 * gen_ai.client.token.usage with gen_ai_token_type); the rest are edgeagent_*.
 * Counters are lock-free atomics so any thread (HTTP or the last reference
 * holder of a generation) can record without a lock.
 * Does not hold: collection of engine state (read with ea_engine_get_stats at
 * scrape time).
 */
#include <inttypes.h>
#include <stdio.h>

#include "server/server_int.h"

#define EA__CODE_ENTRY(c) c,
static const int codes[EA__N_CODES] = {EA__HTTP_CODE_MAP(EA__CODE_ENTRY) 0}; /* 0: "other" */
#undef EA__CODE_ENTRY

/* seconds for latency histograms; the token histograms use tok_bounds */
static const double sec_bounds[EA__HIST_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                    0.25,  0.5,    1,     2.5,  5,     10,  30};
static const double tok_bounds[EA__HIST_BUCKETS] = {1,    4,    16,    64,    256,   1024,  4096,
                                                    8192, 16384, 32768, 65536, 131072, 262144, 524288};

void ea__metrics_count(struct ea__metrics *m, enum ea__endpoint ep, int status)
{
    int slot = EA__N_CODES - 1; /* "other" */
    for (int i = 0; i < EA__N_CODES - 1; i++)
        if (codes[i] == status)
            slot = i;
    atomic_fetch_add(&m->requests[ep][slot], 1);
}

void ea__metrics_observe(struct ea__hist *h, double value, bool tokens)
{
    const double *bounds = tokens ? tok_bounds : sec_bounds;
    int i = 0;
    while (i < EA__HIST_BUCKETS && value > bounds[i])
        i++;
    atomic_fetch_add(&h->bucket[i], 1);
    atomic_fetch_add(&h->sum_us, (uint64_t)(value < 0 ? 0 : tokens ? value : value * 1e6));
    atomic_fetch_add(&h->count, 1);
}

ea_status ea__metrics_hist(struct ea_buf *o, const char *name, const char *labels,
                           const struct ea__hist *h, bool tokens)
{
    const double *bounds = tokens ? tok_bounds : sec_bounds;
    uint64_t cum = 0;
    ea_status s = EA_OK;
    const char *sep = labels[0] ? "," : "";
    for (int i = 0; i <= EA__HIST_BUCKETS && !s; i++) {
        cum += atomic_load(&h->bucket[i]);
        if (i < EA__HIST_BUCKETS)
            s = ea__buf_printf(o, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name, labels, sep,
                               bounds[i], cum);
        else
            s = ea__buf_printf(o, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep,
                               cum);
    }
    uint64_t sum = atomic_load(&h->sum_us);
    if (!s)
        s = ea__buf_printf(o, "%s_sum{%s} %.6f\n%s_count{%s} %" PRIu64 "\n", name, labels,
                           tokens ? (double)sum : sum / 1e6, name, labels,
                           atomic_load(&h->count));
    return s;
}

ea_status ea__metrics_render(const struct ea__metrics *m, ea_engine *engine, int inflight,
                             bool ready, const struct ea__guard_stats *gs, struct ea_buf *o)
{
    ea_status s = EA_OK;
#define P(...)                                \
    do {                                      \
        if (!s)                               \
            s = ea__buf_printf(o, __VA_ARGS__); \
    } while (0)
    P("# HELP edgeagent_up 1 when a model is loaded and the server answers requests.\n"
      "# TYPE edgeagent_up gauge\nedgeagent_up %d\n",
      ready ? 1 : 0);
    P("# HELP edgeagent_http_requests_total HTTP requests by endpoint and status code.\n"
      "# TYPE edgeagent_http_requests_total counter\n");
    for (int ep = 0; ep < EA__EP_COUNT; ep++)
        for (int c = 0; c < EA__N_CODES; c++) {
            uint64_t v = atomic_load(&m->requests[ep][c]);
            if (!v)
                continue;
            char code[8];
            if (c == EA__N_CODES - 1)
                snprintf(code, sizeof code, "other");
            else
                snprintf(code, sizeof code, "%d", codes[c]);
            P("edgeagent_http_requests_total{endpoint=\"%s\",code=\"%s\"} %" PRIu64 "\n",
              ea__endpoints[ep].path, code, v);
        }
    P("# HELP edgeagent_http_errors_total HTTP responses with status >= 400, by code.\n"
      "# TYPE edgeagent_http_errors_total counter\n");
    for (int c = 0; c < EA__N_CODES; c++) {
        if (c < EA__N_CODES - 1 && codes[c] < 400)
            continue;
        uint64_t v = 0;
        for (int ep = 0; ep < EA__EP_COUNT; ep++)
            v += atomic_load(&m->requests[ep][c]);
        if (c == EA__N_CODES - 1)
            P("edgeagent_http_errors_total{code=\"other\"} %" PRIu64 "\n", v);
        else
            P("edgeagent_http_errors_total{code=\"%d\"} %" PRIu64 "\n", codes[c], v);
    }
    P("# HELP gen_ai_usage_tokens_total Tokens processed (input = prompt, output = generated).\n"
      "# TYPE gen_ai_usage_tokens_total counter\n"
      "gen_ai_usage_tokens_total{gen_ai_token_type=\"input\"} %" PRIu64 "\n"
      "gen_ai_usage_tokens_total{gen_ai_token_type=\"output\"} %" PRIu64 "\n",
      atomic_load(&m->tokens_in), atomic_load(&m->tokens_out));
    P("# HELP edgeagent_client_disconnects_total Generations whose client went away before the end.\n"
      "# TYPE edgeagent_client_disconnects_total counter\nedgeagent_client_disconnects_total %" PRIu64
      "\n",
      atomic_load(&m->disconnects));
    P("# HELP gen_ai_server_time_to_first_token_seconds Time from request to first output token.\n"
      "# TYPE gen_ai_server_time_to_first_token_seconds histogram\n");
    if (!s)
        s = ea__metrics_hist(o, "gen_ai_server_time_to_first_token_seconds", "", &m->ttft, false);
    P("# HELP gen_ai_server_time_per_output_token_seconds Time per output token after the first.\n"
      "# TYPE gen_ai_server_time_per_output_token_seconds histogram\n");
    if (!s)
        s = ea__metrics_hist(o, "gen_ai_server_time_per_output_token_seconds", "", &m->tpot, false);
    P("# HELP gen_ai_server_request_duration_seconds Generation request duration.\n"
      "# TYPE gen_ai_server_request_duration_seconds histogram\n");
    if (!s)
        s = ea__metrics_hist(o, "gen_ai_server_request_duration_seconds", "", &m->duration, false);
    P("# HELP gen_ai_client_token_usage Tokens per request (prompt = input, completion = output).\n"
      "# TYPE gen_ai_client_token_usage histogram\n");
    if (!s)
        s = ea__metrics_hist(o, "gen_ai_client_token_usage", "gen_ai_token_type=\"input\"", &m->usage_in, true);
    if (!s)
        s = ea__metrics_hist(o, "gen_ai_client_token_usage", "gen_ai_token_type=\"output\"", &m->usage_out,
                 true);
    if (gs) {
        P("# HELP edgeagent_http_connections Open HTTP connections (not yet cut by the guard).\n"
          "# TYPE edgeagent_http_connections gauge\nedgeagent_http_connections %u\n"
          "# HELP edgeagent_http_connections_cut_total Connections the server closed, by reason "
          "(header/body/idle deadline, evicted to keep slots free for new clients).\n"
          "# TYPE edgeagent_http_connections_cut_total counter\n"
          "edgeagent_http_connections_cut_total{reason=\"header_timeout\"} %" PRIu64 "\n"
          "edgeagent_http_connections_cut_total{reason=\"body_timeout\"} %" PRIu64 "\n"
          "edgeagent_http_connections_cut_total{reason=\"idle_timeout\"} %" PRIu64 "\n"
          "edgeagent_http_connections_cut_total{reason=\"evicted\"} %" PRIu64 "\n"
          "# HELP edgeagent_http_per_ip_refused_total Requests answered 429 for the per-IP "
          "connection limit.\n# TYPE edgeagent_http_per_ip_refused_total counter\n"
          "edgeagent_http_per_ip_refused_total %" PRIu64 "\n",
          gs->open, gs->head_timeouts, gs->body_timeouts, gs->idle_timeouts, gs->evicted,
          gs->ip_refused);
    }
    P("# HELP edgeagent_requests_inflight Generation requests being served.\n"
      "# TYPE edgeagent_requests_inflight gauge\nedgeagent_requests_inflight %d\n",
      inflight);
    if (engine) {
        struct ea_engine_stats st;
        ea_engine_get_stats(engine, &st);
        P("# HELP edgeagent_queue_depth Requests waiting for a sequence slot.\n"
          "# TYPE edgeagent_queue_depth gauge\nedgeagent_queue_depth %d\n"
          "# HELP edgeagent_running_sequences Sequences being decoded.\n"
          "# TYPE edgeagent_running_sequences gauge\nedgeagent_running_sequences %d\n",
          st.queue_depth, st.running);
        P("# HELP edgeagent_kv_blocks KV cache blocks by state (used = held by sequences).\n"
          "# TYPE edgeagent_kv_blocks gauge\n"
          "edgeagent_kv_blocks{state=\"total\"} %u\nedgeagent_kv_blocks{state=\"used\"} %u\n"
          "edgeagent_kv_blocks{state=\"free\"} %u\nedgeagent_kv_blocks{state=\"cached\"} %u\n"
          "# HELP edgeagent_kv_block_size_tokens Tokens per KV block.\n"
          "# TYPE edgeagent_kv_block_size_tokens gauge\nedgeagent_kv_block_size_tokens %u\n",
          st.kv_blocks_total, st.kv_blocks_used, st.kv_blocks_free, st.kv_blocks_cached,
          st.kv_block_size);
        P("# HELP edgeagent_kv_blocks_peak_used Most KV blocks in use at once.\n"
          "# TYPE edgeagent_kv_blocks_peak_used gauge\nedgeagent_kv_blocks_peak_used %u\n",
          st.peak_kv_blocks_used);
        P("# HELP edgeagent_engine_preemptions_total Sequences preempted for KV space.\n"
          "# TYPE edgeagent_engine_preemptions_total counter\nedgeagent_engine_preemptions_total %" PRIu64
          "\n# HELP edgeagent_engine_rejected_total Submissions refused because the queue was full.\n"
          "# TYPE edgeagent_engine_rejected_total counter\nedgeagent_engine_rejected_total %" PRIu64
          "\n# HELP edgeagent_prefix_cache_tokens_total Prompt tokens served from the prefix cache.\n"
          "# TYPE edgeagent_prefix_cache_tokens_total counter\nedgeagent_prefix_cache_tokens_total %" PRIu64
          "\n",
          st.preemptions, st.rejected_overloaded, st.tokens_cached);
        P("# HELP edgeagent_decode_tokens_per_second Moving average of aggregate decode rate.\n"
          "# TYPE edgeagent_decode_tokens_per_second gauge\nedgeagent_decode_tokens_per_second %.3f\n"
          "# HELP edgeagent_prefill_tokens_per_second Moving average of prefill rate.\n"
          "# TYPE edgeagent_prefill_tokens_per_second gauge\nedgeagent_prefill_tokens_per_second %.3f\n",
          st.decode_tok_s, st.prefill_tok_s);
        P("# HELP edgeagent_grammar_seconds_total Time spent on grammar masks and matchers "
          "(constrained decoding).\n"
          "# TYPE edgeagent_grammar_seconds_total counter\nedgeagent_grammar_seconds_total %.6f\n"
          "# HELP edgeagent_grammar_tokens_total Tokens sampled under a grammar.\n"
          "# TYPE edgeagent_grammar_tokens_total counter\nedgeagent_grammar_tokens_total %" PRIu64 "\n",
          st.grammar_ms / 1e3, st.grammar_steps);
    }
#undef P
    return s;
}
