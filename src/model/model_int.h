/* model_int.h - internals shared by the model module's files: the loaded
 * model, the architecture table, forward-pass scratch and building blocks,
 * and gen-model's built-in vocabulary. Not part of the public API. */
#ifndef EDGEAGENT_MODEL_INT_H
#define EDGEAGENT_MODEL_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "edgeagent/gguf.h"
#include "edgeagent/kernels.h"
#include "edgeagent/model.h"
#include "util/threadpool.h"

/* ---- loaded model ------------------------------------------------------- */

/* A matmul weight: its tensor in the file and, when the active kernels have
 * a packed layout for its type (ea_pack_ops), the packed copy in the
 * model's slab, which the matmul then reads instead of t->data. */
struct ea__mat {
    const struct ea_gguf_tensor *t;
    const struct ea_pack_ops *pack;  /* set at load when the tensor is to be packed */
    _Atomic(const void *) packed;    /* NULL until the packing thread has filled it */
};

/* The background packing of the matmul weights (pack.c). */
struct ea__pack_plan {
    struct ea__mat **mats; /* in packing order */
    size_t *offset;        /* of each in the slab */
    int n, cap;
    void *slab;
    size_t slab_bytes;
    pthread_t thread;
    bool running;          /* thread started and not joined (under join_lock) */
    pthread_mutex_t join_lock;
    pthread_mutex_t lock;  /* with cond: the go signal */
    pthread_cond_t cond;
    _Atomic int go;        /* the thread may start packing */
    _Atomic int stop;
};

struct ea__layer {
    const struct ea_gguf_tensor *attn_norm;
    struct ea__mat wq, wk, wv, wo;
    const struct ea_gguf_tensor *bq, *bk, *bv;         /* optional (qwen2) */
    const struct ea_gguf_tensor *q_norm, *k_norm;      /* optional (qwen3) */
    const struct ea_gguf_tensor *ffn_norm;
    struct ea__mat w_gate, w_up, w_down;
};

struct ea__fwd;

/* One architecture: which tensors it has and how a layer runs. Each lives in
 * its own arch_<name>.c over the shared blocks of blocks.c. */
struct ea__arch {
    const char *name;
    bool rope_neox;
    /* Binds and checks layer l's tensors (ea__bind_tensor) into ly. */
    ea_status (*bind_layer)(ea_model *m, uint32_t l, struct ea__layer *ly, struct ea_error *err);
    /* Runs layer l over the batch: reads and updates f->x in place. */
    void (*layer_forward)(struct ea__fwd *f, uint32_t l);
};

extern const struct ea__arch ea__arch_llama, ea__arch_qwen2, ea__arch_qwen3;

/* Parts per thread of a parallel region (ea__pool_run_parts): a thread
 * slowed down by another process holds back at most a part. Under load
 * (load average 8 on the 2 cores) 1 to 8 parts per thread decoded alike,
 * all about twice as fast as fixed halves. */
#define EA__PARTS_PER_THREAD 2

/* Scratch for one forward pass, grown to the largest batch seen (capped). */
struct ea__scratch {
    int64_t cap_tokens;
    float *x, *h, *q, *k, *v, *att, *gate, *up, *tmp;
    void *act;          /* activation rows converted for the kernels */
    size_t act_bytes;
    /* per region part: an attention tile's working set (ea__att_tile_floats)
     * or, for F32/Q8_0 stores, one head's scores over the context */
    float *scores;
    int64_t scores_per_thread;
    int64_t scores_parts; /* rows of scores: parts an attention region may have */
    int32_t *row_pos, *row_seg;
    int32_t *tile_row;   /* attention tiles: first row of each, then the row count */
    int64_t *tile_cost;  /* keys the tiles before each one attend to (prefix sums) */
    float *rope_cs; /* ea__rope_table of the batch's rows */
};

struct ea_model {
    ea_gguf *gguf;
    struct ea_model_info info;
    const struct ea__arch *arch;
    const struct ea_gguf_tensor *tok_embd, *output_norm;
    struct ea__mat output;   /* token_embd's tensor when the embeddings are tied */
    struct ea__pack_plan pack;
    double *rope_inv_freq;   /* n_rot/2: base^(-2i/n_rot) / factor */
    struct ea__layer *layers;
    ea_pool *pool;
    struct ea__scratch s;
    uint64_t n_att_shared_tiles; /* attention tiles that served several sequences (per layer) */
};

/* Looks up name and checks it: present (unless optional), n_dims/shape
 * (ne1 = 0 means 1-D), and type (matmul: a computable weight; vector: F32).
 * Errors name the tensor. */
enum ea__tensor_use { EA_USE_MATMUL, EA_USE_VECTOR, EA_USE_EMBED };
ea_status ea__bind_tensor(ea_model *m, const char *name, uint64_t ne0, uint64_t ne1,
                          enum ea__tensor_use use, bool optional,
                          const struct ea_gguf_tensor **out, struct ea_error *err);
/* Plans the packed copies of every matmul weight whose type the active
 * kernels pack, reserves their slab and starts the packing thread (none
 * when nothing packs, or without memory: the weights are then read where
 * they are mapped). m->pack's locks and cond must be initialised. */
ea_status ea__pack_start(ea_model *m, struct ea_error *err);
/* Joins the packing thread: after it is done (finish) or asked to stop. */
void ea__pack_stop(ea_model *m, bool finish);
/* Stops packing and frees the slab (model destroy). */
void ea__pack_release(ea_model *m);
/* Called at the end of every forward pass: the first one lets packing
 * begin. Cheap after that. */
void ea__pack_forward_done(ea_model *m);
/* The standard llama-family tensor set of layer l (q/k/v/o, norms, SwiGLU). */
ea_status ea__bind_std_layer(ea_model *m, uint32_t l, struct ea__layer *ly, struct ea_error *err);

/* ---- forward pass --------------------------------------------------------- */

struct ea__fwd {
    ea_model *m;
    const struct ea_kv_store *kv;
    const struct ea_batch *b;
    int64_t n_tokens;
};

/* Building blocks (blocks.c). Matrices are row-major [n_tokens][width]. */
void ea__rmsnorm(const float *x, const float *w, float *y, int64_t n_rows, int64_t width,
                 float eps);
/* ea__rmsnorm over the pool when the batch is big enough (prefill). */
void ea__rmsnorm_rows(struct ea__fwd *f, const float *x, const float *w, float *y, int64_t n_rows, int64_t width,
                      float eps);
/* y[t][0..n_out) = x[t] . W rows for every weight in ws, in one parallel
 * region; x is converted once per activation type. */
void ea__matmul_multi(struct ea__fwd *f, int n, const struct ea__mat *const *ws,
                      const float *x, int64_t n_tokens, float *const *ys);
void ea__matmul(struct ea__fwd *f, const struct ea__mat *w, const float *x, int64_t n_tokens,
                float *y);
void ea__add_bias(float *y, const struct ea_gguf_tensor *b, int64_t n_rows, int64_t width);
/* cs[(t * n_rot/2 + i) * 2 + {0, 1}] = cos, sin of pos[t] * inv_freq[i]:
 * once per forward pass, for every layer's RoPE. */
void ea__rope_table(const ea_model *m, int64_t n_tokens, const int32_t *pos, float *cs);
void ea__rope(const ea_model *m, float *x, int64_t n_tokens, uint32_t n_heads, const float *cs);
/* Stores K/V rows of the batch into the KV store and runs causal attention
 * of q over each token's sequence; writes f->m->s.att. */
void ea__attention(struct ea__fwd *f, uint32_t layer);
/* Floats of scratch one attention part needs for a tile (F16 stores). */
int64_t ea__att_tile_floats(const struct ea_model_info *h);
/* The standard pre-norm decoder layer: attention with optional q/k/v
 * biases and per-head q/k RMSNorm, then a SwiGLU FFN. */
void ea__std_layer_forward(struct ea__fwd *f, uint32_t l);

/* ---- gen-model's vocabulary ----------------------------------------------- */

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
