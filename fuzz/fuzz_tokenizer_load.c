/* fuzz_tokenizer_load.c - libFuzzer target for the two ways a tokenizer is
 * built from bytes: the first input byte picks a GGUF image (even) or a
 * tokenizer.json (odd) for the rest. Either must be rejected with a message
 * or give a tokenizer that tokenizes a probe text into in-range ids and
 * decodes them back without fault. Build: make fuzz; run: make fuzz-smoke. */
#include <stdlib.h>
#include <string.h>

#include "edgeagent/gguf.h"
#include "edgeagent/tokenizer.h"

static void probe(const ea_tokenizer *t)
{
    static const char text[] = "Hello world <|im_start|> \xe6\x97\xa5\xe6\x9c\xac \xff 123";
    struct ea_error err = {0};
    int32_t ids[256];
    size_t n = 0;
    for (unsigned flags = 0; flags < 4; flags++) {
        if (ea_tokenize(t, text, sizeof text - 1, flags, ids, 256, &n, &err) != EA_OK)
            abort();
        for (size_t i = 0; i < n; i++)
            if (ids[i] < 0 || (uint32_t)ids[i] >= ea_tokenizer_n_vocab(t))
                abort();
        char out[1 << 16];
        size_t len;
        ea_status s = ea_detokenize(t, ids, n, EA_DETOK_SPECIAL | EA_DETOK_REPLACE_INVALID, out,
                                    sizeof out, &len, &err);
        if (s != EA_OK && s != EA_ETOOBIG)
            abort();
    }
    for (int32_t id = 0; id < (int32_t)ea_tokenizer_n_vocab(t) && id < 4096; id++) {
        const char *p;
        size_t pn;
        if (ea_token_piece(t, id, true, &p, &pn) != EA_OK || pn > ea_tokenizer_max_piece(t))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct ea_error err = {0};
    ea_tokenizer *t = NULL;
    if (data[0] & 1) {
        ea_gguf_writer *w = ea_gguf_writer_create();
        struct ea_tokenizer_hf_params p = {(const char *)data + 1, size - 1, NULL, 0, NULL, 0};
        void *img = NULL;
        size_t n = 0;
        ea_gguf *g = NULL;
        ea_status s = ea_tokenizer_hf_to_gguf(&p, w, &err);
        if (s == EA_OK) {
            if (ea_gguf_writer_write_memory(w, &img, &n, &err) ||
                ea_gguf_open_memory(img, n, &g, &err))
                abort(); /* what the converter wrote must be a valid GGUF */
            if (ea_tokenizer_create(g, &t, &err) != EA_OK && !err.msg[0])
                abort();
        } else if (!err.msg[0]) {
            abort(); /* every rejection explains itself */
        }
        ea_gguf_close(g);
        ea_free(img);
        ea_gguf_writer_destroy(w);
    } else {
        ea_gguf *g = NULL;
        if (ea_gguf_open_memory(data + 1, size - 1, &g, &err) == EA_OK) {
            if (ea_tokenizer_create(g, &t, &err) != EA_OK && !err.msg[0])
                abort();
            ea_gguf_close(g); /* the tokenizer must not point into the image */
        }
    }
    if (t)
        probe(t);
    ea_tokenizer_destroy(t);
    return 0;
}
