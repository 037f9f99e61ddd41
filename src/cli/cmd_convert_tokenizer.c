/* cmd_convert_tokenizer.c - `edgeagent convert-tokenizer tokenizer.json -o
 * vocab.gguf [--pre NAME] [--config tokenizer_config.json] [--vocab-size N]
 * [--arch A] [--name N]`: writes a vocab-only GGUF from a Hugging Face
 * byte-level BPE tokenizer, then loads it back to check it.
 * Does not hold: the conversion rules (src/tokenizer/hf_convert.c). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "edgeagent/gguf.h"
#include "edgeagent/tokenizer.h"

/* tokenizer.json and its config are read whole: the largest vocabularies
 * (256k tokens with their merges) make files of a few tens of MB, so 512 MiB
 * only refuses what cannot be a tokenizer. */
#define MAX_JSON ((size_t)512 << 20)

static void usage(FILE *f)
{
    fprintf(f, "usage: edgeagent convert-tokenizer tokenizer.json -o vocab.gguf [--pre NAME]\n"
               "         [--config tokenizer_config.json] [--vocab-size N] [--arch A] [--name N]\n"
               "  --pre         tokenizer.ggml.pre (default: detected from the regex)\n"
               "  --config      special tokens, add_bos/add_eos and chat_template from it\n"
               "  --vocab-size  pad the token list to N with [PAD<i>] (the model's vocab_size)\n"
               "  --arch        general.architecture (default llama)\n");
}

int cmd_convert_tokenizer(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *cfg = NULL, *arch = "llama", *name = NULL;
    struct ea_tokenizer_hf_params p = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (a[0] != '-') {
            if (in) {
                cli_errorf("convert-tokenizer", "more than one input file");
                return 2;
            }
            in = a;
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            cli_errorf("convert-tokenizer", "option '%s' needs a value (or is unknown)", a);
            return 2;
        }
        i++;
        if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0)
            out = v;
        else if (strcmp(a, "--pre") == 0)
            p.pre = v;
        else if (strcmp(a, "--config") == 0)
            cfg = v;
        else if (strcmp(a, "--arch") == 0)
            arch = v;
        else if (strcmp(a, "--name") == 0)
            name = v;
        else if (strcmp(a, "--vocab-size") == 0) {
            uint64_t n;
            if (!cli_parse_u64("convert-tokenizer", a, v, &n))
                return 2;
            if (n == 0 || n > EA_TOKENIZER_MAX_VOCAB) {
                cli_errorf("convert-tokenizer", "--vocab-size must be 1..%u", EA_TOKENIZER_MAX_VOCAB);
                return 2;
            }
            p.vocab_size = (uint32_t)n;
        } else {
            cli_errorf("convert-tokenizer", "unknown option '%s'", a);
            return 2;
        }
    }
    if (!in || !out) {
        usage(stderr);
        return 2;
    }
    struct ea_error err = {0};
    int rc = 1;
    char *json = NULL, *config = NULL;
    ea_gguf_writer *w = NULL;
    ea_gguf *g = NULL;
    ea_tokenizer *t = NULL;
    if (!(json = cli_read_file(in, MAX_JSON, &p.json_len, &err)) ||
        (cfg && !(config = cli_read_file(cfg, MAX_JSON, &p.config_len, &err))))
        goto fail;
    p.json = json;
    p.config = config;
    if (!(w = ea_gguf_writer_create())) {
        ea_error_set(&err, EA_ENOMEM, "out of memory");
        goto fail;
    }
    if (ea_gguf_writer_add_str(w, "general.architecture", arch) ||
        (name && ea_gguf_writer_add_str(w, "general.name", name))) {
        ea_error_set(&err, EA_EINVAL, "cannot add general.* keys");
        goto fail;
    }
    if (ea_tokenizer_hf_to_gguf(&p, w, &err) || ea_gguf_writer_write_file(w, out, &err))
        goto fail;
    /* read it back: what we wrote must load */
    if (ea_gguf_open(out, &g, &err) || ea_tokenizer_create(g, &t, &err)) {
        ea_error_prefix(&err, "%s does not load back", out);
        goto fail;
    }
    printf("wrote %s: %u tokens, pre %s, bos %d, eos %d, eot %d\n", out, ea_tokenizer_n_vocab(t),
           ea_tokenizer_pre(t), ea_tokenizer_bos(t), ea_tokenizer_eos(t), ea_tokenizer_eot(t));
    rc = 0;
    goto out;
fail:
    cli_error("convert-tokenizer", &err);
out:
    ea_tokenizer_destroy(t);
    ea_gguf_close(g);
    ea_gguf_writer_destroy(w);
    free(json);
    free(config);
    return rc;
}
