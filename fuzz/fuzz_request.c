/* fuzz_request.c - libFuzzer target for the server's JSON request parser
 * (EA_TEST_NEEDS_NET: built only with the server). Any input is parsed as a
 * chat and as a completions body; it must be either rejected with a status
 * and a message, or accepted with every field inside its documented range,
 * and an accepted chat must render to a prompt (with its tools, tool calls
 * and tool messages). Build: make fuzz; run: make
 * fuzz-smoke. Seeds: fuzz/corpus/request/. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_int.h"

static ea_chat *chat; /* ChatML, no tokenizer: renders text only */

static void check(enum ea__req_kind kind, const uint8_t *data, size_t size)
{
    if (!chat && ea_chat_create(NULL, NULL, &chat, NULL, 0, NULL))
        abort();
    struct ea__req_limits lim = {4096, 8, 32000};
    struct ea__gen_request r;
    struct ea__api_error e = {0};
    if (!ea__gen_request_parse(kind, (const char *)data, size, &lim, &r, &e)) {
        if ((e.status != 400 && e.status != 500) || !e.message[0] || !e.type)
            abort(); /* every rejection is a 400 (or 500 out of memory) that explains itself */
        return;
    }
    if (r.n < 1 || r.n > lim.max_n || r.n_stop > EA__MAX_STOP || r.max_tokens < 0 ||
        r.max_tokens > lim.max_tokens || r.top_logprobs < 0 || r.top_logprobs > 20 ||
        (r.include_usage && !r.stream))
        abort();
    if (r.has_temperature && !(r.temperature >= 0 && r.temperature <= 2))
        abort();
    for (int i = 0; i < r.n_bias; i++)
        if (r.bias[i].token < 0 || r.bias[i].token >= lim.n_vocab)
            abort();
    if (kind == EA__REQ_CHAT) {
        if (r.n_msgs < 1)
            abort();
        struct ea_chat_prompt out;
        struct ea_error err = {0};
        if ((r.tools.json != NULL) != (r.tools.n > 0) || r.tools.n > EA__MAX_TOOLS ||
            ((r.tools.choice == EA__TOOLS_REQUIRED || r.tools.choice == EA__TOOLS_NAMED) && !r.tools.n))
            abort();
        if (ea__chat_prompt_render_tools(chat, r.msgs, r.n_msgs, r.tools.json, r.tools.len, NULL, (size_t)1 << 24,
                                         0, &out, &err) == EA_OK) {
            if (!out.text || strlen(out.text) > out.len) /* content may hold no NUL (jansson rejects \u0000) */
                abort();
        }
        ea_chat_prompt_release(&out);
    } else {
        if (r.n_prompts < 1)
            abort();
        for (int i = 0; i < r.n_prompts; i++)
            for (int32_t k = 0; r.prompts[i].tokens && k < r.prompts[i].n_tokens; k++)
                if (r.prompts[i].tokens[k] < 0 || r.prompts[i].tokens[k] >= lim.n_vocab)
                    abort();
    }
    ea__gen_request_release(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(EA__REQ_CHAT, data, size);
    check(EA__REQ_COMPLETION, data, size);
    return 0;
}
