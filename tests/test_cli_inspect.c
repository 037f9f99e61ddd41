/* test_cli_inspect.c - `edgeagent inspect` and `gen-model` as a user runs
 * them: facts of stories260K, JSON that parses, one-line errors, and 2,000
 * randomly mutated copies of the shared models that never crash it. */
#include <stdlib.h>
#include <unistd.h>

#include "edgeagent/gguf.h"
#include "harness.h"

static void inspect_stories(void)
{
    const char *model = ea_test_shared_path("models/stories260K.gguf");
    char cmd[8192], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "'%s' inspect '%s'", ea_test_binary(), model);
    ASSERT_EQ(ea_test_run(cmd, &out, &err), 0);
    ASSERT(strstr(out, "architecture:  llama") != NULL);
    ASSERT(strstr(out, "tensors:       48") != NULL);
    ASSERT(strstr(out, "parameters:    292,800") != NULL);
    ASSERT(strstr(out, "blk.4.ffn_down.weight") != NULL);
    ASSERT(strstr(out, "... 504 more") != NULL); /* long arrays abbreviated */
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd, "'%s' inspect --json '%s' | python3 -c 'import json,sys; d=json.load(sys.stdin); "
                              "assert d[\"architecture\"]==\"llama\" and d[\"n_tensors\"]==48 and "
                              "d[\"n_params\"]==292800, d; print(\"json ok\")'",
             ea_test_binary(), model);
    ASSERT_EQ(ea_test_run(cmd, &out, NULL), 0);
    ASSERT(strstr(out, "json ok") != NULL);
    free(out);
}

static void inspect_errors(void)
{
    char cmd[8192], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "'%s' inspect /nonexistent.gguf", ea_test_binary());
    ASSERT_EQ(ea_test_run(cmd, &out, &err), 1);
    ASSERT(strstr(err, "edgeagent: inspect: /nonexistent.gguf") == err);
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd, "'%s' inspect", ea_test_binary());
    ASSERT_EQ(ea_test_run(cmd, NULL, NULL), 2);
    snprintf(cmd, sizeof cmd, "'%s' inspect --bogus x", ea_test_binary());
    ASSERT_EQ(ea_test_run(cmd, NULL, NULL), 2);
    snprintf(cmd, sizeof cmd, "'%s' no-such-command", ea_test_binary());
    ASSERT_EQ(ea_test_run(cmd, NULL, NULL), 2);
    const char *v1 = ea_test_shared_path("models/tinyllamas-stories-260k-f32.gguf");
    snprintf(cmd, sizeof cmd, "'%s' inspect '%s'", ea_test_binary(), v1);
    ASSERT_EQ(ea_test_run(cmd, &out, &err), 1);
    ASSERT(strstr(err, "version 1") != NULL);
    free(out);
    free(err);
}

static void gen_model_cli(void)
{
    char a[4096], b[4096], cmd[8192 * 2];
    snprintf(a, sizeof a, "%s", ea_test_tmp_path("cli_a.gguf"));
    snprintf(b, sizeof b, "%s", ea_test_tmp_path("cli_b.gguf"));
    snprintf(cmd, sizeof cmd, "'%s' gen-model --preset tiny --type f16 --seed 5 -o '%s' && "
                              "'%s' gen-model --preset tiny --type f16 --seed 5 -o '%s' && cmp '%s' '%s'",
             ea_test_binary(), a, ea_test_binary(), b, a, b);
    ASSERT_EQ(ea_test_run(cmd, NULL, NULL), 0);
    char *err = NULL;
    snprintf(cmd, sizeof cmd, "'%s' gen-model --preset tiny --type q9_9 -o '%s'", ea_test_binary(), a);
    ASSERT_EQ(ea_test_run(cmd, NULL, &err), 2);
    ASSERT(strstr(err, "q9_9") != NULL);
    free(err);
    remove(a);
    remove(b);
}

/* 2,000 mutated copies of the shared models through the binary: exit 0 for
 * the still-valid ones, exit 1 with exactly one line for the rest; never a
 * signal (CI runs this under ASan/UBSan too). */
static void mutated_models(void)
{
    static const char *const models[] = {"models/stories260K.gguf",
                                         "models/llama-2-tiny-random.gguf"};
    if (!ea_test_shared_dir())
        SKIP("../shared not found");
    uint64_t rng = 20261127;
    int invalid = 0, valid = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s", ea_test_tmp_path("mutated.gguf"));
    /* EA_TEST_LOAD_N shrinks the run under emulation (CI's qemu stage) */
    const char *env = getenv("EA_TEST_LOAD_N");
    int n_iter = env && atoi(env) > 0 ? atoi(env) : 2000;
    for (int iter = 0; iter < n_iter; iter++) {
        const char *model = ea_test_shared_path(models[iter % 2]);
        size_t n;
        uint8_t *img = ea_test_read_file(model, &n);
        ASSERT(img);
        ea_gguf *g;
        struct ea_error e = {0};
        ASSERT_OK(ea_gguf_open_memory(img, n, &g, &e), &e);
        uint64_t head = ea_gguf_data_offset(g);
        ea_gguf_close(g);
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        int kind = (int)((rng >> 33) % 10);
        if (kind == 0) {
            n = (size_t)((rng >> 13) % n); /* truncate */
        } else {
            int flips = 1 + (int)((rng >> 40) % 8);
            for (int k = 0; k < flips; k++) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                size_t pos = (size_t)((rng >> 24) % (kind < 8 ? head : n));
                img[pos] = (rng >> 60) & 1 ? (uint8_t)(rng >> 8) : img[pos] ^ (uint8_t)(1u << ((rng >> 5) & 7));
            }
        }
        FILE *f = fopen(path, "wb");
        ASSERT(f);
        if (n)
            ASSERT_EQ(fwrite(img, 1, n, f), n);
        fclose(f);
        free(img);
        char cmd[8192 + 64], *out = NULL, *err = NULL;
        snprintf(cmd, sizeof cmd, "'%s' inspect %s'%s'", ea_test_binary(), iter % 3 ? "" : "--json ",
                 path);
        int rc = ea_test_run(cmd, &out, &err);
        if (rc < 0)
            FAIL("mutation %d: inspect died with signal %d: %s", iter, -rc, err ? err : "");
        if (rc == 0) {
            valid++;
        } else {
            ASSERT_EQ(rc, 1);
            size_t len = strlen(err);
            ASSERT(len > 0 && err[len - 1] == '\n');
            if (memchr(err, '\n', len - 1))
                FAIL("mutation %d: error is not one line: %s", iter, err);
            ASSERT(strncmp(err, "edgeagent: inspect: ", 20) == 0);
            invalid++;
        }
        free(out);
        free(err);
    }
    remove(path);
    printf("    %d mutated files: %d rejected with one line, %d still valid\n", n_iter, invalid, valid);
    ASSERT(invalid > n_iter / 4);
}

EA_TESTS(EA_TEST(inspect_stories), EA_TEST(inspect_errors), EA_TEST(gen_model_cli),
         EA_TEST(mutated_models))
