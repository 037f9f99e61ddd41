/* model_int.h - internals shared by the model module's files (gen-model's
 * built-in vocabulary). Not part of the public API. */
#ifndef EDGEAGENT_MODEL_INT_H
#define EDGEAGENT_MODEL_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "edgeagent/model.h"

/* Token types as GGUF stores them (tokenizer.ggml.token_type). */
enum {
    EA_TOKTYPE_NORMAL = 1,
    EA_TOKTYPE_UNKNOWN = 2,
    EA_TOKTYPE_CONTROL = 3,
    EA_TOKTYPE_USER_DEFINED = 4,
    EA_TOKTYPE_UNUSED = 5,
    EA_TOKTYPE_BYTE = 6,
};

/* A byte-level BPE vocabulary made up at generation time. */
struct ea__builtin_vocab {
    uint32_t n_tokens;
    char **tokens; /* NUL-terminated UTF-8 (GPT-2 byte-to-unicode mapped) */
    int32_t *types;
    uint32_t n_merges;
    char **merges; /* "left right" */
    int32_t bos, eos, unk, pad; /* -1 = none */
    bool add_bos;
    const char *chat_template; /* static string */
};

/* Builds the vocabulary of preset p (exactly p->n_vocab tokens, the special
 * tokens of the real model at their real ids). Deterministic. */
ea_status ea__builtin_vocab_build(const struct ea_model_preset *p, struct ea__builtin_vocab *v,
                                  struct ea_error *err);
void ea__builtin_vocab_release(struct ea__builtin_vocab *v);

#endif
