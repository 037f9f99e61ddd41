/* test_quantize.c - `quantize` reproduces llama-quantize: for each reference
 * model made by llama-quantize from ref-llama-F32.gguf, our quantization of
 * the same F32 file picks the same type for every tensor and writes the
 * same bytes; gen-model's quantized presets load and run. */
#include <stdlib.h>

#include "edgeagent/engine.h"
#include "edgeagent/gguf.h"
#include "edgeagent/model.h"
#include "harness.h"

static void mix_rules(void)
{
    const struct ea_ftype *q4m = ea_ftype_find("q4_k_m");
    ASSERT(q4m && q4m->file_type == 15);
    /* 22 layers (TinyLlama): more bits in layers 0-1, 19-21 and every third between */
    int more[22] = {0};
    for (int l = 0; l < 22; l++) {
        char n[64];
        snprintf(n, sizeof n, "blk.%d.ffn_down.weight", l);
        more[l] = ea_ftype_tensor_type(q4m, false, n, EA_TYPE_F32, 5632, 2, false, l, 22, 8) == EA_TYPE_Q6_K;
    }
    int expect[22] = {1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 1};
    for (int l = 0; l < 22; l++)
        if (more[l] != expect[l])
            FAIL("layer %d: ffn_down Q6_K %d, expected %d", l, more[l], expect[l]);
    /* rows that are not whole K-blocks fall back (SmolLM2: n_embd 576) */
    ASSERT_EQ(ea_ftype_tensor_type(q4m, false, "blk.3.attn_q.weight", EA_TYPE_F32, 576, 2, true, 3, 30, 3),
              EA_TYPE_Q5_0);
    ASSERT_EQ(ea_ftype_tensor_type(q4m, false, "token_embd.weight", EA_TYPE_F32, 576, 2, true, -1, 30, 3),
              EA_TYPE_Q8_0);
    ASSERT_EQ(ea_ftype_tensor_type(q4m, false, "blk.0.attn_norm.weight", EA_TYPE_F32, 576, 1, true, 0, 30, 3),
              EA_TYPE_F32);
    const struct ea_ftype *q40 = ea_ftype_find("Q4_0");
    ASSERT_EQ(ea_ftype_tensor_type(q40, false, "output.weight", EA_TYPE_F32, 2048, 2, false, -1, 22, 8),
              EA_TYPE_Q6_K);
    ASSERT_EQ(ea_ftype_tensor_type(q40, true, "output.weight", EA_TYPE_F32, 2048, 2, false, -1, 22, 8),
              EA_TYPE_Q4_0);
    ASSERT(ea_ftype_find("Q9_9") == NULL);
}

/* Quantizes ref-llama-F32 to ftype and compares with llama-quantize's file. */
static void compare_with_reference(const char *ftype, bool pure, const char *ref_stem)
{
    char in[4096], ref[4096], cmd[9000];
    snprintf(in, sizeof in, "%s", ea_test_shared_path("reference/models/ref-llama-F32.gguf"));
    char rel[256];
    snprintf(rel, sizeof rel, "reference/models/%s.gguf", ref_stem);
    snprintf(ref, sizeof ref, "%s", ea_test_shared_path(rel));
    char out[4096];
    snprintf(out, sizeof out, "%s", ea_test_tmp_path("quantized.gguf"));
    snprintf(cmd, sizeof cmd, "'%s' quantize '%s' '%s' %s %s", ea_test_binary(), in, out, ftype,
             pure ? "--pure" : "");
    ASSERT_EQ(ea_test_run(cmd, NULL, NULL), 0);
    ea_gguf *a, *b;
    struct ea_error err = {0};
    ASSERT_OK(ea_gguf_open(out, &a, &err), &err);
    ASSERT_OK(ea_gguf_open(ref, &b, &err), &err);
    ASSERT_EQ(ea_gguf_n_tensors(a), ea_gguf_n_tensors(b));
    int same = 0;
    for (uint64_t i = 0; i < ea_gguf_n_tensors(b); i++) {
        const struct ea_gguf_tensor *tb = ea_gguf_tensor_at(b, i);
        const struct ea_gguf_tensor *ta = ea_gguf_find_tensor(a, tb->name);
        ASSERT(ta);
        if (ta->type != tb->type)
            FAIL("%s: %s is %s, llama-quantize wrote %s", ref_stem, tb->name,
                 ea_type_info(ta->type)->name, ea_type_info(tb->type)->name);
        ASSERT_EQ(ta->size, tb->size);
        same += memcmp(ta->data, tb->data, ta->size) == 0;
    }
    uint32_t ft_a, ft_b;
    ASSERT_OK(ea_gguf_get_u32(a, "general.file_type", &ft_a, &err), &err);
    ASSERT_OK(ea_gguf_get_u32(b, "general.file_type", &ft_b, &err), &err);
    printf("    %-9s%s -> %-18s %d/%d tensors byte-identical, file_type %u (llama.cpp %u)\n", ftype,
           pure ? " --pure" : "       ", ref_stem, same, (int)ea_gguf_n_tensors(b), ft_a, ft_b);
    ASSERT_EQ(same, (int)ea_gguf_n_tensors(b));
    ea_gguf_close(a);
    ea_gguf_close(b);
    remove(out);
}

static void reproduces_llama_quantize(void)
{
    if (!ea_test_shared_dir())
        SKIP("../shared not found");
    compare_with_reference("Q8_0", false, "ref-llama-Q8_0");
    compare_with_reference("Q6_K", false, "ref-llama-Q6_K");
    compare_with_reference("Q4_K_M", false, "ref-llama-Q4_K_M");
    compare_with_reference("Q5_K_M", false, "ref-llama-Q5_K_M");
    compare_with_reference("Q3_K_M", false, "ref-llama-Q3_K_M");
    compare_with_reference("Q4_0", true, "ref-llama-Q4_0");
    compare_with_reference("Q4_1", true, "ref-llama-Q4_1");
    compare_with_reference("Q5_0", true, "ref-llama-Q5_0");
    compare_with_reference("Q5_1", true, "ref-llama-Q5_1");
    compare_with_reference("Q2_K", true, "ref-llama-Q2_K");
    compare_with_reference("F16", false, "ref-llama-F16");
    compare_with_reference("BF16", false, "ref-llama-BF16");
}

static void gen_model_quantized_presets(void)
{
    static const char *const types[] = {"Q8_0", "Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        struct ea_error err = {0};
        struct ea_gen_params gp = {.preset = "tiny", .ftype = types[i], .seed = 3};
        const char *path = ea_test_tmp_path("tinyq.gguf");
        ASSERT_OK(ea_model_generate(&gp, path, &err), &err);
        ea_model *m = NULL;
        struct ea_model_load_params lp = {.n_threads = ea_test_threads(0)};
        ASSERT_OK(ea_model_load(path, &lp, &m, &err), &err);
        ea_kv_cache *c = NULL;
        struct ea_kv_cache_params kp = {EA_TYPE_F16, 16, ea_kv_cache_bytes_per_token(m, EA_TYPE_F16) * 64};
        ASSERT_OK(ea_kv_cache_create(m, &kp, &c, &err), &err);
        struct ea_kv_seq s = {0};
        int32_t toks[5] = {1, 50, 60, 70, 80};
        float *lg = malloc(sizeof(float) * ea_model_get_info(m)->n_vocab);
        ASSERT_OK(ea_kv_seq_eval(m, c, &s, toks, 5, EA_LOGITS_LAST, lg, &err), &err);
        for (uint32_t k = 0; k < ea_model_get_info(m)->n_vocab; k++)
            ASSERT(lg[k] == lg[k]); /* no NaN */
        ASSERT_EQ(ea_model_get_info(m)->file_type_major, ea_ftype_find(types[i])->base_type);
        free(lg);
        ea_kv_seq_release(c, &s);
        ea_kv_cache_destroy(c);
        ea_model_destroy(m);
        remove(path);
    }
}

EA_TESTS(EA_TEST(mix_rules), EA_TEST(reproduces_llama_quantize), EA_TEST(gen_model_quantized_presets))
