/* fuzz_template.c - libFuzzer target for the chat-template interpreter.
 *
 * Input: template source, a NUL byte, then the JSON render context; without
 * a NUL the whole input is the template and a small chat context is used.
 * Every compile or render must either succeed or fail with a message; a
 * successful render is repeated and must give the same bytes, also when
 * rendered with provenance (whose data ranges must be well formed). Tight render
 * limits (output, memory, steps, iterations) keep any input from hanging.
 * Seeds: fuzz/corpus/template/ (real chat templates with a conversation, and
 * language snippets), made by scripts/gen-template-fuzz-seeds.py.
 * Build: make fuzz; run: make fuzz-smoke. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "edgeagent/template.h"

static const char DEFAULT_CTX[] =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": "
    "\"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello\", \"tool_calls\": [{\"id\": \"c1\", \"type\": "
    "\"function\", \"function\": {\"name\": \"f\", \"arguments\": {\"x\": 1}}}]}, {\"role\": \"tool\", "
    "\"tool_call_id\": \"c1\", \"content\": \"42\"}], \"tools\": [{\"type\": \"function\", \"function\": {\"name\": "
    "\"f\", \"parameters\": {\"type\": \"object\", \"properties\": {\"x\": {\"type\": \"integer\"}}}}}], "
    "\"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}";

static const struct tm NOW = {.tm_year = 125, .tm_mon = 0, .tm_mday = 15, .tm_hour = 10, .tm_min = 30};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *src = (const char *)data;
    const uint8_t *nul = memchr(data, 0, size);
    size_t src_len = nul ? (size_t)(nul - data) : size;
    const char *ctx = nul ? (const char *)nul + 1 : DEFAULT_CTX;
    size_t ctx_len = nul ? size - src_len - 1 : sizeof DEFAULT_CTX - 1;

    ea_template *t = NULL;
    struct ea_error err = {0};
    if (ea_template_compile(src, src_len, &t, &err) != EA_OK) {
        if (!err.msg[0] || t)
            abort(); /* every rejection explains itself and leaves nothing */
        return 0;
    }
    struct ea_template_render_opts o = {
        .max_output = 1u << 20,
        .max_memory = 32u << 20,
        .max_steps = 200000,
        .max_iters = 20000,
        .now = &NOW,
    };
    char *out = NULL;
    size_t n = 0;
    ea_status s = ea_template_render_ex(t, ctx, ctx_len, &o, &out, &n, &err);
    if (s != EA_OK) {
        if (out || (!err.msg[0] && s != EA_EINVAL))
            abort();
    } else {
        if (!out || strlen(out) > n || out[n] != '\0')
            abort();
        char *again = NULL;
        size_t n2 = 0;
        if (ea_template_render_ex(t, ctx, ctx_len, &o, &again, &n2, &err) != EA_OK || n2 != n ||
            memcmp(out, again, n) != 0)
            abort(); /* renders are deterministic */
        ea_free(again);
        /* a render with provenance writes the same text; its data ranges
         * are sorted, disjoint, non-empty and inside it */
        static const char *const keys[] = {"bos_token", "eos_token", "add_generation_prompt", NULL};
        static const char *const roles[] = {"system", "user", "assistant", "tool", NULL};
        struct ea_template_provenance prov = {keys, roles};
        struct ea_template_span *d = NULL;
        size_t nd = 0;
        if (ea_template_render_tracked(t, ctx, ctx_len, &o, &prov, &again, &n2, &d, &nd, &err) != EA_OK || n2 != n ||
            memcmp(out, again, n) != 0)
            abort();
        for (size_t i = 0; i < nd; i++)
            if (!d[i].len || d[i].off + d[i].len > n || (i && d[i].off <= d[i - 1].off + d[i - 1].len - 1))
                abort();
        ea_free(d);
        ea_free(again);
    }
    ea_free(out);
    ea_template_destroy(t);
    return 0;
}
