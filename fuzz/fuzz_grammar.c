/* fuzz_grammar.c - libFuzzer target for the grammar engine's front ends: the
 * JSON Schema compiler and the ECMA regex subset (and choice lists).
 *
 * Input: one mode byte ('r' regex, 'c' choices separated by newlines, 't'
 * an OpenAI tools array, 'T' the same as one JSON array of calls, repeated
 * tagged; any other byte: schema text, compiled strict when the byte is odd,
 * e.g. 's'), then the text. Every compile must succeed or fail with a message and no
 * grammar. A compiled grammar is then driven on a byte vocabulary (tokens
 * 0..255 are the bytes, 256 is EOS) along a pseudo-random walk chosen from
 * its own masks: the mask must agree with accepting each byte, EOS must be
 * set exactly when the matcher accepts, and a state with no allowed token
 * must be complete. Seeds: fuzz/corpus/grammar/. Build: make fuzz; run:
 * make fuzz-smoke. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "edgeagent/grammar.h"

#define WALK_STEPS 64

static ea_grammar_vocab *vocab(void)
{
    static ea_grammar_vocab *v;
    static char bytes[256];
    if (v)
        return v;
    const char *pieces[257];
    uint32_t lens[257];
    for (int i = 0; i < 256; i++) {
        bytes[i] = (char)i;
        pieces[i] = &bytes[i];
        lens[i] = 1;
    }
    pieces[256] = "";
    lens[256] = 0;
    int32_t eos = 256;
    struct ea_error err = {0};
    if (ea_grammar_vocab_create_raw(257, pieces, lens, &eos, 1, &v, &err) != EA_OK)
        abort();
    return v;
}

static void walk(ea_grammar *g, uint32_t seed)
{
    struct ea_error err = {0};
    ea_grammar_matcher *m = NULL;
    if (ea_grammar_matcher_create(g, &m, &err) != EA_OK)
        abort();
    uint32_t mask[9];
    for (int step = 0; step < WALK_STEPS; step++) {
        if (ea_grammar_matcher_fill_mask(m, mask, 9, &err) != EA_OK)
            abort();
        bool eos = (mask[8] & 1u) != 0;
        if (eos != ea_grammar_matcher_is_accepting(m))
            abort();
        uint32_t allowed[256], n = 0;
        for (uint32_t c = 0; c < 256; c++)
            if ((mask[c >> 5] >> (c & 31)) & 1u)
                allowed[n++] = c;
        /* probe one disallowed byte: it must be refused, state unchanged */
        seed = seed * 1103515245u + 12345u;
        uint32_t probe = (seed >> 16) & 255u;
        if (!((mask[probe >> 5] >> (probe & 31)) & 1u) &&
            ea_grammar_matcher_accept_token(m, (int32_t)probe, &err) == EA_OK)
            abort();
        if (n == 0) {
            if (!eos)
                abort(); /* stuck without being complete */
            break;
        }
        uint32_t c = allowed[(seed >> 8) % n];
        if (ea_grammar_matcher_accept_token(m, (int32_t)c, &err) != EA_OK)
            abort();
    }
    ea_grammar_matcher_destroy(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    struct ea_error err = {0};
    ea_grammar *g = NULL;
    ea_status st;
    struct ea_grammar_options o = {.strict = (mode & 1) != 0};
    if (mode == 't' || mode == 'T') {
        json_error_t je;
        json_t *tools = json_loadb(text, n, 0, &je);
        if (!tools)
            return 0;
        struct ea_grammar_tools t = {.tools = tools, .array = mode == 'T'};
        struct ea_grammar_options to = {.prefix = "<c>", .suffix = "</c>", .max_repeat = mode == 'T' ? 3 : 0,
                                        .separator = "\n"};
        st = ea_grammar_compile_tools(vocab(), &t, &to, &g, &err);
        json_decref(tools);
    } else if (mode == 'r') {
        st = ea_grammar_compile_regex(vocab(), text, n, NULL, &g, &err);
    } else if (mode == 'c') {
        char *copy = malloc(n + 1);
        const char *choices[64];
        size_t k = 0;
        memcpy(copy, text, n);
        copy[n] = '\0';
        for (char *p = copy; p && k < 64;) {
            choices[k++] = p;
            char *nl = strchr(p, '\n');
            if (nl)
                *nl++ = '\0';
            p = nl;
        }
        st = ea_grammar_compile_choice(vocab(), choices, k, NULL, &g, &err);
        free(copy);
    } else {
        st = ea_grammar_compile_schema_text(vocab(), text, n, &o, &g, &err);
    }
    if (st != EA_OK) {
        if (g || !err.msg[0])
            abort(); /* every rejection explains itself and leaves nothing */
        return 0;
    }
    if (!g || !ea_grammar_unenforced(g))
        abort();
    walk(g, (uint32_t)size * 2654435761u);
    ea_grammar_destroy(g);
    return 0;
}
