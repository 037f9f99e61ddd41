/* model.h - model architectures over GGUF files: loading (validated,
 * mmapped weights), the batched forward pass, and synthetic model generation
 * (gen-model presets).
 *
 * The forward pass evaluates a batch made of segments, one per sequence: a
 * run of new tokens at positions n_past.. of that sequence. It writes their
 * K/V into a paged KV store through each sequence's block table and reads
 * attention context the same way; the KV memory and the block allocator
 * belong to the caller (engine.h), which decides what goes in a batch.
 * Does not hold: tokenization (tokenizer.h), scheduling and KV block
 * allocation (engine.h), kernels (kernels.h).
 */
#ifndef EDGEAGENT_MODEL_H
#define EDGEAGENT_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgeagent/error.h"
#include "edgeagent/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- loading ------------------------------------------------------------- */

typedef struct ea_model ea_model;

struct ea_model_info {
    char arch[32];          /* "llama", "qwen2", "qwen3" */
    char name[96];          /* general.name or the file name */
    uint32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_rot;
    uint32_t n_ctx_train;
    float rope_base, rms_eps;
    bool rope_neox;         /* rotate (x[i], x[i + n_rot/2]) instead of adjacent pairs */
    bool tied_embeddings;
    uint64_t n_params;
    uint64_t weight_bytes;
    uint32_t file_type_major; /* the most common 2-D weight type (ea_type) */
};

struct ea_model_load_params {
    int n_threads; /* threads for the forward pass; 0 = number of CPUs */
    /* Keep every weight in the file mapping. By default the weights of types
     * the active kernels pack are copied into their packed layout (faster
     * matmuls) by a background thread started at load: about the model's
     * size in anonymous memory, while the copied pages of the mapping are
     * released; results are the same bits either way. (The edgeagent
     * binary sets this for EA_REPACK=0 in its environment.) */
    bool no_repack;
};

/* Opens path, validates hyper-parameters and every tensor (names, shapes,
 * types computable here) and maps the weights. Errors name the tensor or key.
 * The model owns the GGUF mapping; destroy with ea_model_destroy. */
ea_status ea_model_load(const char *path, const struct ea_model_load_params *params,
                        ea_model **out, struct ea_error *err);
void ea_model_destroy(ea_model *m); /* NULL-safe */
const struct ea_model_info *ea_model_get_info(const ea_model *m);
/* The underlying GGUF (tokenizer and template metadata); owned by the model. */
const struct ea_gguf *ea_model_gguf(const ea_model *m);
int ea_model_threads(const ea_model *m);
/* Attention tiles (one per layer and group of tokens) so far in which decode
 * tokens of several sequences sharing cached prefix blocks read those
 * blocks once (F16 KV). Counted by the thread running forward passes. */
uint64_t ea_model_shared_attention_tiles(const ea_model *m);
/* Waits until the background packing of the weights (see no_repack) is
 * done; the model is usable before, only slower. NULL-safe. */
void ea_model_wait_packed(ea_model *m);
/* Bytes of packed weight copies (0: none). */
size_t ea_model_packed_bytes(const ea_model *m);

/* ---- forward pass ------------------------------------------------------- */

/* Where K/V live: per layer, a pool of blocks of block_size tokens; block b
 * of layer l holds K at k[l] + b * block_size * kv_dim elements (token-major,
 * kv_dim = n_head_kv * head_dim), V likewise. type is F16, F32 or Q8_0
 * (blocks of 32 per row; needs head_dim % 32 == 0). */
struct ea_kv_store {
    uint32_t type;
    uint32_t block_size;
    uint32_t n_blocks;
    void **k;
    void **v;
};

/* Logit rows a segment asks for. */
enum ea_logits_mode { EA_LOGITS_NONE = 0, EA_LOGITS_LAST = 1, EA_LOGITS_ALL = 2 };

struct ea_batch_seg {
    int32_t n_past;               /* tokens of this sequence already in the KV store */
    int32_t n_new;                /* tokens evaluated now, at positions n_past.. */
    const int32_t *tokens;        /* n_new token ids */
    const int32_t *block_table;   /* blocks covering positions 0 .. n_past + n_new - 1 */
    enum ea_logits_mode logits;
};

struct ea_batch {
    int32_t n_segs;
    const struct ea_batch_seg *segs;
};

/* Evaluates the batch. Logit rows (n_vocab floats each) are written to
 * logits in segment order: LAST gives one row, ALL gives n_new rows. The
 * caller guarantees block tables cover the new positions. Errors: token ids
 * out of range, positions past the training context, scratch allocation.
 * The calling thread takes part in the work and needs ~256 KB of free stack
 * (the matmul's activation panel); the library's own threads get 4 MB. */
ea_status ea_model_forward(ea_model *m, const struct ea_kv_store *kv, const struct ea_batch *b,
                           float *logits, struct ea_error *err);
/* Number of logit rows b produces. */
int64_t ea_batch_n_logits(const struct ea_batch *b);

/* ---- quantization mixes and `quantize` ------------------------------------ */

/* A file type as llama-quantize names them: a base tensor type plus the
 * per-tensor choices of its mix (the _M mixes give more bits to output,
 * attn_v and some ffn_down, as llama.cpp does). */
struct ea_ftype {
    const char *name;   /* "Q4_K_M" */
    uint32_t file_type; /* general.file_type value */
    uint32_t base_type; /* ea_type of most 2-D weights */
};

/* The file type named name (case-insensitive), or NULL. */
const struct ea_ftype *ea_ftype_find(const char *name);
const struct ea_ftype *ea_ftype_at(unsigned i);

/* What a tensor becomes under ftype f. src_type is returned for tensors that
 * are never quantized (1-D, norms). pure: every quantizable tensor gets the
 * base type (llama-quantize --pure). i_layer is the tensor's block index (or
 * -1), n_gqa = n_head / n_head_kv. */
uint32_t ea_ftype_tensor_type(const struct ea_ftype *f, bool pure, const char *name,
                              uint32_t src_type, uint64_t ne0, uint32_t n_dims, bool tied,
                              int i_layer, uint32_t n_layer, uint32_t n_gqa);

struct ea_quantize_params {
    const char *ftype; /* ea_ftype name */
    bool pure;
    int n_threads;     /* 0 = number of CPUs */
    /* Called from the calling thread after each piece of a tensor is
     * written: bytes of input tensors done so far, of total. May be NULL. */
    void (*progress)(void *ud, uint64_t done, uint64_t total);
    void *progress_ud;
};

/* Reads in_path, writes out_path with every tensor converted as the mix says
 * (metadata copied, general.file_type updated). */
ea_status ea_model_quantize(const char *in_path, const char *out_path,
                            const struct ea_quantize_params *p, struct ea_error *err);

/* ---- synthetic models --------------------------------------------------- */

struct ea_model_preset {
    const char *name;         /* "smollm2-135m" */
    const char *arch;         /* GGUF general.architecture: "llama", "qwen2", "qwen3" */
    const char *display_name; /* general.name */
    const char *size_label;   /* general.size_label */
    uint32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx;
    float rope_base, rms_eps;
    bool tied_embeddings; /* no output.weight: logits use token_embd */
    bool qkv_bias;        /* qwen2 */
    bool qk_norm;         /* qwen3 */
    /* Llama 3 rope scaling (rope_freqs tensor); factor 0 = none */
    float rope_factor, rope_low_freq, rope_high_freq;
    uint32_t rope_orig_ctx;
    const char *tokenizer_pre; /* tokenizer.ggml.pre of the built-in vocabulary */
};

/* The preset named name, or NULL. */
const struct ea_model_preset *ea_model_preset_find(const char *name);
/* Presets in table order; NULL past the end. */
const struct ea_model_preset *ea_model_preset_at(unsigned i);

struct ea_gen_params {
    const char *preset;     /* ea_model_preset name */
    const char *ftype;      /* ea_ftype name of the 2-D weights ("F16", "Q4_K_M", ...) */
    uint64_t seed;
    const char *vocab_path; /* GGUF whose tokenizer.* keys are copied; NULL = built-in */
};

/* Writes the model to out_path. The same params give byte-identical files. */
ea_status ea_model_generate(const struct ea_gen_params *p, const char *out_path,
                            struct ea_error *err);

#ifdef __cplusplus
}
#endif
#endif
