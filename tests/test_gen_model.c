/* test_gen_model.c - gen-model: determinism, real tensor names/shapes per
 * preset, vocabulary copied from a vocab GGUF, error cases. */
#include <stdlib.h>

#include "edgeagent/gguf.h"
#include "edgeagent/model.h"
#include "harness.h"

static void same_seed_same_bytes(void)
{
    struct ea_error err = {0};
    struct ea_gen_params p = {.preset = "tiny", .ftype = "F16", .seed = 7};
    char a[4096], b[4096], c[4096];
    snprintf(a, sizeof a, "%s", ea_test_tmp_path("gen_a.gguf"));
    snprintf(b, sizeof b, "%s", ea_test_tmp_path("gen_b.gguf"));
    snprintf(c, sizeof c, "%s", ea_test_tmp_path("gen_c.gguf"));
    ASSERT_OK(ea_model_generate(&p, a, &err), &err);
    ASSERT_OK(ea_model_generate(&p, b, &err), &err);
    p.seed = 8;
    ASSERT_OK(ea_model_generate(&p, c, &err), &err);
    size_t na, nb, nc;
    uint8_t *da = ea_test_read_file(a, &na), *db = ea_test_read_file(b, &nb),
            *dc = ea_test_read_file(c, &nc);
    ASSERT(da && db && dc);
    ASSERT_EQ(na, nb);
    ASSERT(memcmp(da, db, na) == 0);
    ASSERT_EQ(na, nc);
    ASSERT(memcmp(da, dc, na) != 0); /* a different seed changes the weights */
    free(da);
    free(db);
    free(dc);
    remove(a);
    remove(b);
    remove(c);
}

/* Checks names and shapes against the preset for every layer. */
static void check_shapes(const ea_gguf *g, const struct ea_model_preset *p, uint32_t n_vocab)
{
    char name[64];
    const struct ea_gguf_tensor *t;
    uint32_t qd = p->n_head * p->head_dim, kvd = p->n_head_kv * p->head_dim;
#define SHAPE(nm, a, b)                                                            \
    do {                                                                           \
        t = ea_gguf_find_tensor(g, nm);                                            \
        if (!t)                                                                    \
            FAIL("%s: missing tensor %s", p->name, nm);                            \
        ASSERT_EQ(t->ne[0], a);                                                    \
        ASSERT_EQ(t->ne[1], b);                                                    \
    } while (0)
    SHAPE("token_embd.weight", p->n_embd, n_vocab);
    SHAPE("output_norm.weight", p->n_embd, 1);
    if (p->tied_embeddings)
        ASSERT(ea_gguf_find_tensor(g, "output.weight") == NULL);
    else
        SHAPE("output.weight", p->n_embd, n_vocab);
    for (uint32_t l = 0; l < p->n_layer; l++) {
#define N(s) (snprintf(name, sizeof name, "blk.%u.%s", l, s), name)
        SHAPE(N("attn_norm.weight"), p->n_embd, 1);
        SHAPE(N("attn_q.weight"), p->n_embd, qd);
        SHAPE(N("attn_k.weight"), p->n_embd, kvd);
        SHAPE(N("attn_v.weight"), p->n_embd, kvd);
        SHAPE(N("attn_output.weight"), qd, p->n_embd);
        SHAPE(N("ffn_norm.weight"), p->n_embd, 1);
        SHAPE(N("ffn_gate.weight"), p->n_embd, p->n_ff);
        SHAPE(N("ffn_up.weight"), p->n_embd, p->n_ff);
        SHAPE(N("ffn_down.weight"), p->n_ff, p->n_embd);
        if (p->qkv_bias) {
            SHAPE(N("attn_q.bias"), qd, 1);
            SHAPE(N("attn_k.bias"), kvd, 1);
        }
        if (p->qk_norm)
            SHAPE(N("attn_q_norm.weight"), p->head_dim, 1);
#undef N
    }
    if (p->rope_factor > 0)
        SHAPE("rope_freqs.weight", p->head_dim / 2, 1);
#undef SHAPE
    struct ea_error err = {0};
    uint32_t v;
    char key[96];
    snprintf(key, sizeof key, "%s.block_count", p->arch);
    ASSERT_OK(ea_gguf_get_u32(g, key, &v, &err), &err);
    ASSERT_EQ(v, p->n_layer);
    snprintf(key, sizeof key, "%s.attention.head_count_kv", p->arch);
    ASSERT_OK(ea_gguf_get_u32(g, key, &v, &err), &err);
    ASSERT_EQ(v, p->n_head_kv);
    const struct ea_gguf_value *tok;
    ASSERT_OK(ea_gguf_get_arr(g, "tokenizer.ggml.tokens", EA_GGUF_STRING, &tok, &err), &err);
    ASSERT_EQ(tok->v.arr.n, n_vocab);
}

static void tiny_shapes_and_values(void)
{
    struct ea_error err = {0};
    struct ea_gen_params p = {.preset = "tiny", .ftype = "F32", .seed = 3};
    const char *path = ea_test_tmp_path("tiny.gguf");
    ASSERT_OK(ea_model_generate(&p, path, &err), &err);
    ea_gguf *g;
    ASSERT_OK(ea_gguf_open(path, &g, &err), &err);
    const struct ea_model_preset *pr = ea_model_preset_find("tiny");
    check_shapes(g, pr, pr->n_vocab);
    /* weights look like N(0, std): mean ~0, std ~ 1.5/sqrt(n_embd) for attn_q */
    const struct ea_gguf_tensor *t = ea_gguf_find_tensor(g, "blk.1.attn_q.weight");
    const float *w = t->data;
    size_t n = (size_t)(t->ne[0] * t->ne[1]);
    double sum = 0, sq = 0;
    for (size_t i = 0; i < n; i++)
        sum += w[i], sq += (double)w[i] * w[i];
    double mean = sum / n, sd = sqrt(sq / n - mean * mean);
    ASSERT_NEAR(mean, 0.0, 0.01);
    ASSERT_NEAR(sd, 1.5 / sqrt(pr->n_embd), 0.005);
    const float *norm = ea_gguf_find_tensor(g, "blk.0.attn_norm.weight")->data;
    ASSERT_NEAR(norm[0], 1.0, 0.5);
    /* built-in vocab: byte tokens and merges present, specials at real ids */
    const struct ea_gguf_value *merges;
    ASSERT_OK(ea_gguf_get_arr(g, "tokenizer.ggml.merges", EA_GGUF_STRING, &merges, &err), &err);
    ASSERT(merges->v.arr.n > 500);
    const struct ea_gguf_value *tok;
    ASSERT_OK(ea_gguf_get_arr(g, "tokenizer.ggml.tokens", EA_GGUF_STRING, &tok, &err), &err);
    ASSERT(ea_gguf_str_eq(tok->v.arr.strs[1], "<|im_start|>"));
    ea_gguf_close(g);
    remove(path);
}

static void real_presets_shapes(void)
{
    /* Generate the metadata-heavy presets at their real size only where cheap:
     * smollm2-135m in F16 is 270 MB and takes a few seconds. */
    struct ea_error err = {0};
    struct ea_gen_params p = {.preset = "smollm2-135m", .ftype = "F16", .seed = 1};
    const char *path = ea_test_tmp_path("smollm2.gguf");
    ASSERT_OK(ea_model_generate(&p, path, &err), &err);
    ea_gguf *g;
    ASSERT_OK(ea_gguf_open(path, &g, &err), &err);
    check_shapes(g, ea_model_preset_find("smollm2-135m"), 49152);
    uint64_t params = 0;
    for (uint64_t i = 0; i < ea_gguf_n_tensors(g); i++) {
        const struct ea_gguf_tensor *t = ea_gguf_tensor_at(g, i);
        params += t->ne[0] * t->ne[1];
    }
    ASSERT_U64_EQ(params, 134515008); /* SmolLM2-135M's published parameter count */
    ea_gguf_close(g);
    remove(path);
}

static void vocab_from_file(void)
{
    const char *vocab = ea_test_shared_path("vocab/ggml-vocab-llama-spm.gguf");
    char vp[4096];
    snprintf(vp, sizeof vp, "%s", vocab);
    struct ea_error err = {0};
    struct ea_gen_params p = {.preset = "tiny", .ftype = "F32", .seed = 1, .vocab_path = vp};
    const char *path = ea_test_tmp_path("tiny_spm.gguf");
    ASSERT_OK(ea_model_generate(&p, path, &err), &err);
    ea_gguf *g, *v;
    ASSERT_OK(ea_gguf_open(path, &g, &err), &err);
    ASSERT_OK(ea_gguf_open(vp, &v, &err), &err);
    check_shapes(g, ea_model_preset_find("tiny"), 32000);
    /* every tokenizer.* key is copied with identical encoded bytes */
    int copied = 0;
    for (uint64_t i = 0; i < ea_gguf_n_kv(v); i++) {
        const struct ea_gguf_kv *kv = ea_gguf_kv_at(v, i);
        if (strncmp(kv->key, "tokenizer.", 10))
            continue;
        const struct ea_gguf_kv *kg = ea_gguf_find(g, kv->key);
        ASSERT(kg);
        ASSERT_EQ(kg->value.type, kv->value.type);
        copied++;
    }
    ASSERT(copied >= 5);
    struct ea_gguf_str model;
    ASSERT_OK(ea_gguf_get_str(g, "tokenizer.ggml.model", &model, &err), &err);
    ASSERT(ea_gguf_str_eq(model, "llama"));
    ea_gguf_close(g);
    ea_gguf_close(v);
    remove(path);
}

static void errors(void)
{
    struct ea_error err = {0};
    struct ea_gen_params p = {.preset = "nope", .ftype = "F32"};
    ASSERT_EQ(ea_model_generate(&p, ea_test_tmp_path("x.gguf"), &err), EA_EINVAL);
    ASSERT(strstr(err.msg, "tiny") != NULL); /* lists the known presets */
    p.preset = "tiny";
    p.ftype = "IQ2_XXS";
    ASSERT_EQ(ea_model_generate(&p, ea_test_tmp_path("x.gguf"), &err), EA_EUNSUPPORTED);
    p.ftype = "F32";
    p.vocab_path = "/nonexistent/vocab.gguf";
    ASSERT_EQ(ea_model_generate(&p, ea_test_tmp_path("x.gguf"), &err), EA_ENOTFOUND);
    p.vocab_path = NULL;
    ASSERT_EQ(ea_model_generate(&p, "/nonexistent-dir/x.gguf", &err), EA_EIO);
}

EA_TESTS(EA_TEST(same_seed_same_bytes), EA_TEST(tiny_shapes_and_values),
         EA_TEST(real_presets_shapes), EA_TEST(vocab_from_file), EA_TEST(errors))
