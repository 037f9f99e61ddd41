/* tokenizer.h - text <-> token ids for the vocabularies GGUF files carry, with
 * the rules llama.cpp applies to them, and import of Hugging Face
 * tokenizer.json files into vocab-only GGUFs.
 *
 * Holds: ea_tokenizer (built from the tokenizer.* keys of an open ea_gguf:
 * SentencePiece-style "llama" vocabularies with scores and <0xNN> byte
 * fallback, byte-level BPE "gpt2" vocabularies with the pre-tokenizer named by
 * tokenizer.ggml.pre, BERT WordPiece "bert"), special/added token handling,
 * BOS/EOS/EOT/EOM and end-of-generation ids, token pieces, whole-list and
 * streaming detokenization, and the tokenizer.json -> GGUF converter.
 * Does not hold: chat templates (template.h), sampling, model weights.
 *
 * Threads: a tokenizer is immutable after ea_tokenizer_create; every function
 * taking a const ea_tokenizer * may run concurrently on the same tokenizer.
 * A struct ea_detok belongs to one caller at a time.
 */
#ifndef EDGEAGENT_TOKENIZER_H
#define EDGEAGENT_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgeagent/error.h"
#include "edgeagent/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ea_tokenizer ea_tokenizer;

/* "No such token": returned by the id getters when the vocabulary has none. */
#define EA_TOKEN_NONE (-1)

enum ea_tokenizer_kind {
    EA_TOKENIZER_SPM = 1, /* tokenizer.ggml.model "llama" */
    EA_TOKENIZER_BPE = 2, /* "gpt2" */
    EA_TOKENIZER_WPM = 3, /* "bert" */
};

/* Token attributes (bits), from tokenizer.ggml.token_type plus llama.cpp's
 * fix-ups (EOG-looking tokens become CONTROL, "unused" control tokens become
 * UNUSED, Phi-3 special tokens strip the whitespace to their right). */
#define EA_TOKEN_ATTR_NORMAL 0x001u
#define EA_TOKEN_ATTR_UNKNOWN 0x002u
#define EA_TOKEN_ATTR_CONTROL 0x004u
#define EA_TOKEN_ATTR_USER_DEFINED 0x008u
#define EA_TOKEN_ATTR_UNUSED 0x010u
#define EA_TOKEN_ATTR_BYTE 0x020u
#define EA_TOKEN_ATTR_LSTRIP 0x040u /* eats whitespace before it in text */
#define EA_TOKEN_ATTR_RSTRIP 0x080u /* eats whitespace after it in text */

/* Limits: vocabularies of at most EA_TOKENIZER_MAX_VOCAB tokens, token texts
 * of at most EA_TOKENIZER_MAX_TOKEN_LEN bytes; ea_tokenize accepts at most
 * EA_TOKENIZE_MAX_INPUT bytes of text per call. */
#define EA_TOKENIZER_MAX_VOCAB (1u << 24)
#define EA_TOKENIZER_MAX_TOKEN_LEN 4096u
#define EA_TOKENIZE_MAX_INPUT ((size_t)256 << 20)

/* ---- lifecycle ---------------------------------------------------------- */

/* Builds a tokenizer from the tokenizer.* metadata of g. Everything needed is
 * copied, so g may be closed afterwards. Errors: EA_ENOTFOUND when a required
 * key is absent (tokenizer.ggml.model, .tokens, .merges for BPE), EA_EFORMAT
 * for malformed metadata (wrong types, short arrays, duplicate tokens, bad
 * merges), EA_EUNSUPPORTED for an unknown tokenizer model or pre-tokenizer.
 * On success the caller owns *out; free with ea_tokenizer_destroy. */
ea_status ea_tokenizer_create(const ea_gguf *g, ea_tokenizer **out, struct ea_error *err);
void ea_tokenizer_destroy(ea_tokenizer *t); /* NULL-safe */

/* ---- properties --------------------------------------------------------- */

enum ea_tokenizer_kind ea_tokenizer_kind(const ea_tokenizer *t);
/* Pre-tokenizer name as used ("llama-bpe", "qwen2", "default"); owned by t. */
const char *ea_tokenizer_pre(const ea_tokenizer *t);
uint32_t ea_tokenizer_n_vocab(const ea_tokenizer *t);
/* Special ids, EA_TOKEN_NONE when the vocabulary has none. EOT/EOM come from
 * metadata or, like llama.cpp, from token texts such as <|eot_id|>,
 * <|im_end|>, <|end|>, <|eom_id|>. */
int32_t ea_tokenizer_bos(const ea_tokenizer *t);
int32_t ea_tokenizer_eos(const ea_tokenizer *t);
int32_t ea_tokenizer_eot(const ea_tokenizer *t);
int32_t ea_tokenizer_eom(const ea_tokenizer *t);
int32_t ea_tokenizer_unk(const ea_tokenizer *t);
int32_t ea_tokenizer_pad(const ea_tokenizer *t);
int32_t ea_tokenizer_sep(const ea_tokenizer *t);
/* Whether EA_TOK_ADD_SPECIAL adds BOS / EOS (tokenizer.ggml.add_bos_token and
 * add_eos_token, or the default of the tokenizer model and pre-tokenizer). */
bool ea_tokenizer_adds_bos(const ea_tokenizer *t);
bool ea_tokenizer_adds_eos(const ea_tokenizer *t);
/* True when generating id ends the generation: EOS, EOT, EOM and the tokens
 * llama.cpp recognises by text (<|eot_id|>, <|im_end|>, <|end|>,
 * <|endoftext|>, <end_of_turn>, ...). False for out-of-range ids. */
bool ea_tokenizer_is_eog(const ea_tokenizer *t, int32_t id);
/* EA_TOKEN_ATTR_* bits of id; 0 for out-of-range ids. */
unsigned ea_token_attr(const ea_tokenizer *t, int32_t id);
/* The id whose vocabulary text is exactly s[0..n), or EA_TOKEN_NONE. The text
 * is the stored form (GPT-2 byte-mapped for BPE, U+2581 for SPM spaces). */
int32_t ea_tokenizer_find(const ea_tokenizer *t, const char *s, size_t n);

/* ---- text -> ids -------------------------------------------------------- */

#define EA_TOK_ADD_SPECIAL 0x1u   /* add BOS/EOS (SEP/CLS for BERT) as the vocabulary asks */
#define EA_TOK_PARSE_SPECIAL 0x2u /* recognise control tokens written in the text */

/* Tokenizes text[0..len) (any bytes; it need not be valid UTF-8 nor
 * NUL-terminated) into out[0..cap). User-defined added tokens are always
 * recognised in the text; control tokens only with EA_TOK_PARSE_SPECIAL.
 * *n_out receives the number of ids. When cap is too small the call fails
 * with EA_ETOOBIG, *n_out is the count needed and out holds the first cap
 * ids. Invalid UTF-8: SPM keeps the raw bytes (byte-fallback tokens); BPE
 * and WordPiece first replace each byte that does not start a valid UTF-8
 * sequence by U+FFFD, as llama.cpp does. */
ea_status ea_tokenize(const ea_tokenizer *t, const char *text, size_t len, unsigned flags,
                      int32_t *out, size_t cap, size_t *n_out, struct ea_error *err);

/* Like ea_tokenize, into a new array of at most max ids: *out is owned by the
 * caller (free with ea_free) and non-NULL on success even for no ids.
 * EA_ETOOBIG when the text has more than max tokens. */
ea_status ea_tokenize_alloc(const ea_tokenizer *t, const char *text, size_t len, unsigned flags,
                            size_t max, int32_t **out, size_t *n_out, struct ea_error *err);

/* A byte range [off, off+len) of a text. */
struct ea_text_span {
    size_t off, len;
};

/* Like ea_tokenize_alloc, but no special or added token (control,
 * user-defined or unknown, whatever the flags) is recognised where its text
 * overlaps one of plain[0..n_plain) (sorted, disjoint, inside the text;
 * EA_EINVAL otherwise): those bytes are always encoded as plain text. The
 * fragments between the recognised tokens are encoded as ea_tokenize would,
 * so a text whose plain ranges hold no token text gives the same ids. Chat
 * prompts pass the ranges that came from message data (template.h). */
ea_status ea_tokenize_plain(const ea_tokenizer *t, const char *text, size_t len, unsigned flags,
                            const struct ea_text_span *plain, size_t n_plain, size_t max,
                            int32_t **out, size_t *n_out, struct ea_error *err);

/* ---- ids -> text -------------------------------------------------------- */

/* The bytes token id stands for in generated text (llama.cpp's
 * token_to_piece): SPM U+2581 becomes a space, <0xNN> byte tokens become the
 * raw byte, byte-level BPE text is mapped back to bytes. Control and unknown
 * tokens give their text when special is true and nothing otherwise. *p
 * points into t (valid until ea_tokenizer_destroy), not NUL-terminated; it may
 * be an incomplete or invalid UTF-8 sequence. EA_ERANGE for a bad id. */
ea_status ea_token_piece(const ea_tokenizer *t, int32_t id, bool special, const char **p,
                         size_t *n);
/* The stored vocabulary text of id (NUL-terminated, owned by t); NULL for a
 * bad id. */
const char *ea_token_text(const ea_tokenizer *t, int32_t id);
/* Longest piece of any token, in bytes. */
size_t ea_tokenizer_max_piece(const ea_tokenizer *t);

#define EA_DETOK_SPECIAL 0x1u         /* render control/unknown tokens' text */
#define EA_DETOK_STRIP_SPACE 0x2u     /* undo the space prefix SPM adds: drop one
                                       * leading space of the first non-empty piece */
#define EA_DETOK_REPLACE_INVALID 0x4u /* invalid UTF-8 -> U+FFFD (rules below) */

/* Concatenates the pieces of ids[0..n) into out[0..cap); *n_out receives the
 * byte count and a NUL follows the text when cap > *n_out. Without
 * EA_DETOK_REPLACE_INVALID the bytes are raw (possibly invalid UTF-8), so
 * detokenize(tokenize(s)) == s for SPM and for valid UTF-8 s with BPE;
 * with EA_DETOK_STRIP_SPACE also when tokenize added the SPM space prefix.
 * EA_ETOOBIG when cap is too small (*n_out = bytes needed, excluding the NUL);
 * EA_ERANGE for an id outside the vocabulary. */
ea_status ea_detokenize(const ea_tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                        char *out, size_t cap, size_t *n_out, struct ea_error *err);

/* Streaming detokenizer for generation: feed ids one at a time, get only
 * complete, valid UTF-8 back. Bytes that begin a character whose remaining
 * bytes have not arrived yet are held until the next token (at most 3 bytes).
 * A byte sequence that can never become valid UTF-8 is replaced by U+FFFD as
 * soon as that is certain (one U+FFFD per maximal invalid subpart, the
 * Unicode recommended practice); held bytes become one U+FFFD only at
 * ea_detok_flush. Pieces are emitted raw otherwise: no space stripping.
 * Caller-allocated; it holds no memory, so there is nothing to release. */
struct ea_detok {
    const ea_tokenizer *tok;
    unsigned flags;         /* EA_DETOK_SPECIAL */
    unsigned char held[4];  /* incomplete UTF-8 prefix carried to the next push */
    unsigned n_held;
};

void ea_detok_init(struct ea_detok *d, const ea_tokenizer *t, unsigned flags);
/* Bytes one push or flush can produce at most; size out buffers with it. */
size_t ea_detok_max_output(const ea_tokenizer *t);
/* Appends the text of id to out[0..cap): *n_out bytes, all complete UTF-8
 * characters. EA_ETOOBIG (state unchanged, *n_out = bytes needed) when cap is
 * too small; EA_ERANGE for a bad id. */
ea_status ea_detok_push(struct ea_detok *d, int32_t id, char *out, size_t cap, size_t *n_out,
                        struct ea_error *err);
/* Emits what is held (as U+FFFD) and resets d for a new stream. */
ea_status ea_detok_flush(struct ea_detok *d, char *out, size_t cap, size_t *n_out,
                         struct ea_error *err);

/* ---- Hugging Face tokenizer.json import --------------------------------- */

struct ea_tokenizer_hf_params {
    const char *json;       /* tokenizer.json text (required) */
    size_t json_len;
    const char *config;     /* tokenizer_config.json text, or NULL */
    size_t config_len;
    const char *pre;        /* tokenizer.ggml.pre; NULL: detect from the regex */
    uint32_t vocab_size;    /* 0: highest id + 1; larger pads with [PAD<i>] */
};

/* Adds the tokenizer.* keys llama.cpp's converter writes for a byte-level BPE
 * tokenizer.json (model "gpt2", pre, tokens, token_type, merges, special ids,
 * add_bos/add_eos, chat_template from the config) to w. Added tokens marked
 * special, or that look special (<|...|>), become CONTROL, other added tokens
 * USER_DEFINED. EA_EFORMAT for JSON that is not a valid tokenizer file,
 * EA_EUNSUPPORTED for other model types or an undetectable pre-tokenizer
 * (then pass pre). On failure w may hold some of the keys. */
ea_status ea_tokenizer_hf_to_gguf(const struct ea_tokenizer_hf_params *p, ea_gguf_writer *w,
                                  struct ea_error *err);
/* The tokenizer.ggml.pre name for a pre-tokenizer regex taken from a
 * tokenizer.json Split step ("llama-bpe", "qwen2", ...); NULL when unknown. */
const char *ea_tokenizer_pre_from_regex(const char *regex);

#ifdef __cplusplus
}
#endif
#endif
