/* test_store.c - the model store without a network: SHA-256 against the
 * FIPS 180-2 example vectors, manifests, pull sources, picking a file from a
 * Hugging Face file list, registering / listing / resolving / removing
 * models, and the CLI's list/show/rm/-m over a store. Downloads are tested
 * in test_pull.c against a local server. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "edgeagent/store.h"
#include "harness.h"
#include "util/sha256.h"

static const char *sha_hex(const void *data, size_t n, char out[65])
{
    struct ea_sha256 c;
    unsigned char d[32];
    ea__sha256_init(&c);
    ea__sha256_update(&c, data, n);
    ea__sha256_final(&c, d);
    ea__sha256_hex(d, out);
    return out;
}

static void sha256_vectors_one(void)
{
    char h[65];
    ASSERT_STR_EQ(sha_hex("", 0, h), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    ASSERT_STR_EQ(sha_hex("abc", 3, h), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    ASSERT_STR_EQ(sha_hex(two, strlen(two), h),
                  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* one million 'a', fed in odd pieces: streaming must not depend on chunking */
    struct ea_sha256 c;
    unsigned char d[32];
    char buf[997];
    memset(buf, 'a', sizeof buf);
    ea__sha256_init(&c);
    size_t left = 1000000;
    for (size_t k = 1; left; k = k * 7 % 997 + 1) {
        size_t n = k < left ? k : left;
        ea__sha256_update(&c, buf, n);
        left -= n;
    }
    ea__sha256_final(&c, d);
    ea__sha256_hex(d, h);
    ASSERT_STR_EQ(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    /* lengths around the padding boundary (55, 56, 63, 64 bytes) */
    ASSERT_STR_EQ(sha_hex(buf, 55, h), "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    ASSERT_STR_EQ(sha_hex(buf, 56, h), "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
    ASSERT_STR_EQ(sha_hex(buf, 64, h), "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

/* the FIPS examples through the portable code and through whatever the CPU offers */
static void sha256_vectors(void)
{
    ea__sha256_use_accel(false);
    sha256_vectors_one();
    ea__sha256_use_accel(true);
    sha256_vectors_one();
}

/* The x86 SHA-extension path and the portable one agree on every length
 * and chunking (skipped where the CPU lacks the extensions). */
static void sha256_accel_matches_portable(void)
{
    ea__sha256_use_accel(true);
    if (!ea__sha256_accel())
        SKIP("no SHA extensions on this CPU: only the portable code runs");
    enum { N = 70000 };
    unsigned char *buf = malloc(N);
    ASSERT(buf);
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (unsigned char)x;
    }
    static const size_t lens[] = {0, 1, 55, 56, 63, 64, 65, 127, 128, 129, 1000, 4096, 65537, N};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
        for (size_t chunk = 1; chunk <= 4097; chunk = chunk * 4 + 1) {
            char h[2][65];
            for (int accel = 0; accel < 2; accel++) {
                ea__sha256_use_accel(accel);
                struct ea_sha256 c;
                unsigned char d[32];
                ea__sha256_init(&c);
                for (size_t o = 0; o < lens[li]; o += chunk)
                    ea__sha256_update(&c, buf + o, lens[li] - o < chunk ? lens[li] - o : chunk);
                ea__sha256_final(&c, d);
                ea__sha256_hex(d, h[accel]);
            }
            if (strcmp(h[0], h[1]) != 0)
                FAIL("length %zu in pieces of %zu: portable %s, accelerated %s", lens[li], chunk, h[0], h[1]);
        }
    ea__sha256_use_accel(true);
    char h[65];
    ASSERT_STR_EQ(sha_hex("abc", 3, h), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    free(buf);
}

static void manifest_roundtrip(void)
{
    struct ea_store_manifest m = {0}, back;
    struct ea_error err = {0};
    snprintf(m.name, sizeof m.name, "qwen2.5:0.5b");
    snprintf(m.source, sizeof m.source, "qwen2.5:0.5b");
    snprintf(m.repo, sizeof m.repo, "Qwen/Qwen2.5-0.5B-Instruct-GGUF");
    snprintf(m.file, sizeof m.file, "qwen2.5-0.5b-instruct-q4_k_m.gguf");
    snprintf(m.sha256, sizeof m.sha256, "%064d", 7);
    m.size = 123456789012ULL;
    m.n_params = 494032768;
    snprintf(m.arch, sizeof m.arch, "qwen2");
    snprintf(m.quant, sizeof m.quant, "Q4_K_M");
    snprintf(m.date, sizeof m.date, "2026-01-02T03:04:05Z");
    char *j = ea_store_manifest_json(&m);
    ASSERT(j);
    ASSERT_OK(ea_store_manifest_parse(j, strlen(j), &back, &err), &err);
    ea_free(j);
    ASSERT(memcmp(&m, &back, sizeof m) == 0);
    const char *bad[] = {
        "", "[]", "{\"name\":\"a\"}",
        "{\"name\":\"a\",\"source\":\"s\",\"sha256\":\"xyz\",\"size\":1,\"parameters\":1}",
        "{\"name\":\"a b\",\"source\":\"s\",\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"size\":1,\"parameters\":1}",
        "{\"name\":\"a\",\"source\":\"s\",\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"size\":-1,\"parameters\":1}",
        "{\"name\":\"a\",\"name\":\"b\",\"source\":\"s\",\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"size\":1,\"parameters\":1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ea_error_clear(&err);
        if (ea_store_manifest_parse(bad[i], strlen(bad[i]), &back, &err) != EA_EFORMAT)
            FAIL("accepted bad manifest %zu: %s", i, bad[i]);
        ASSERT(err.msg[0]);
    }
}

static void sources(void)
{
    struct ea_pull_source s;
    struct ea_error err = {0};
    ASSERT_OK(ea_pull_parse_source("qwen2.5:0.5b", &s, &err), &err);
    ASSERT_EQ(s.kind, EA_PULL_HF_REPO);
    ASSERT_STR_EQ(s.repo, "Qwen/Qwen2.5-0.5B-Instruct-GGUF");
    ASSERT_STR_EQ(s.quant, "Q4_K_M");
    ASSERT_STR_EQ(s.name, "qwen2.5:0.5b");
    ASSERT_OK(ea_pull_parse_source("smollm2:135m:q8_0", &s, &err), &err);
    ASSERT_STR_EQ(s.quant, "Q8_0");
    ASSERT_STR_EQ(s.name, "smollm2:135m:q8_0");
    ASSERT_OK(ea_pull_parse_source("hf.co/org/repo-GGUF", &s, &err), &err);
    ASSERT_EQ(s.kind, EA_PULL_HF_REPO);
    ASSERT_STR_EQ(s.repo, "org/repo-GGUF");
    ASSERT_STR_EQ(s.name, "org/repo-GGUF:Q4_K_M");
    ASSERT_OK(ea_pull_parse_source("huggingface.co/org/repo:q6_k", &s, &err), &err);
    ASSERT_STR_EQ(s.quant, "Q6_K");
    ASSERT_OK(ea_pull_parse_source("hf.co/org/repo/sub/x-Q8_0.gguf", &s, &err), &err);
    ASSERT_EQ(s.kind, EA_PULL_HF_FILE);
    ASSERT_STR_EQ(s.file, "sub/x-Q8_0.gguf");
    ASSERT_STR_EQ(s.name, "org/repo/sub/x-Q8_0");
    ASSERT_OK(ea_pull_parse_source("https://example.com/a/b/m.gguf?download=1", &s, &err), &err);
    ASSERT_EQ(s.kind, EA_PULL_URL);
    ASSERT_STR_EQ(s.file, "m.gguf");
    ASSERT_STR_EQ(s.name, "m");
    const char *bad[] = {"", "nosuch:1b", "hf.co/org", "hf.co/org/", "hf.co/../x",
                         "hf.co/org/repo/../../etc/passwd.gguf", "hf.co/org/repo/x.bin",
                         "https://example.com/", "https://example.com/x.txt", "hf.co/org/repo:Q4 K",
                         "qwen2.5:0.5b:Q4/K", "hf.co/org/re po", "https://host/.gguf?x", "hf.co/org/repo/.gguf", "hf.co/org/repo/d/.gguf"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ea_error_clear(&err);
        if (ea_pull_parse_source(bad[i], &s, &err) == EA_OK)
            FAIL("accepted bad source '%s'", bad[i]);
        ASSERT(err.msg[0]);
    }
    /* the unknown-name message lists the catalog */
    ea_error_clear(&err);
    ea_pull_parse_source("nosuch:1b", &s, &err);
    ASSERT(strstr(err.msg, "smollm2:135m"));
    for (size_t i = 0; ea_store_catalog_at(i); i++) {
        ASSERT_OK(ea_pull_parse_source(ea_store_catalog_at(i)->name, &s, &err), &err);
        ASSERT_STR_EQ(s.repo, ea_store_catalog_at(i)->repo);
    }
}

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
static const char *LIST =
    "{\"id\":\"org/repo\",\"sha\":\"abc\",\"siblings\":["
    "{\"rfilename\":\"README.md\",\"size\":10},"
    "{\"rfilename\":\"model-Q4_K_M.gguf\",\"size\":1000,\"lfs\":{\"sha256\":\"" SHA_A "\",\"size\":1000,\"pointerSize\":130}},"
    "{\"rfilename\":\"model.Q8_0.gguf\",\"size\":2000,\"lfs\":{\"sha256\":\"" SHA_A "\",\"size\":2000}},"
    "{\"rfilename\":\"model-q6_k.gguf\",\"size\":1500},"
    "{\"rfilename\":\"model-Q4_K_L.gguf\",\"size\":1100},"
    "{\"rfilename\":\"other-Q5_K_M.gguf\",\"size\":1},{\"rfilename\":\"more-Q5_K_M.gguf\",\"size\":1}]}";

static void pick_file(void)
{
    char f[256], sha[65];
    uint64_t size;
    struct ea_error err = {0};
    ASSERT_OK(ea_pull_pick_file(LIST, strlen(LIST), "Q4_K_M", NULL, f, sizeof f, &size, sha, &err), &err);
    ASSERT_STR_EQ(f, "model-Q4_K_M.gguf");
    ASSERT_U64_EQ(size, 1000);
    ASSERT_STR_EQ(sha, SHA_A);
    ASSERT_OK(ea_pull_pick_file(LIST, strlen(LIST), "Q6_K", NULL, f, sizeof f, &size, sha, &err), &err);
    ASSERT_STR_EQ(f, "model-q6_k.gguf");
    ASSERT_STR_EQ(sha, ""); /* no LFS record: unknown, not invented */
    ASSERT_OK(ea_pull_pick_file(LIST, strlen(LIST), NULL, "model.Q8_0.gguf", f, sizeof f, &size, sha, &err), &err);
    ASSERT_U64_EQ(size, 2000);
    ASSERT_EQ(ea_pull_pick_file(LIST, strlen(LIST), "Q2_K", NULL, f, sizeof f, &size, sha, &err), EA_ENOTFOUND);
    /* says what exists */
    ASSERT(strstr(err.msg, "Q4_K_M") && strstr(err.msg, "Q8_0") && strstr(err.msg, "Q6_K"));
    ASSERT_EQ(ea_pull_pick_file(LIST, strlen(LIST), "Q5_K_M", NULL, f, sizeof f, &size, sha, &err), EA_EINVAL);
    ASSERT(strstr(err.msg, "other-Q5_K_M.gguf") && strstr(err.msg, "more-Q5_K_M.gguf"));
    const char *bad[] = {"", "{}", "{\"siblings\":3}", "[1,2]", "{\"siblings\":[{\"rfilename\":7}]}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ASSERT_NE(ea_pull_pick_file(bad[i], strlen(bad[i]), "Q4_K_M", NULL, f, sizeof f, &size, sha, &err), EA_OK);
}

/* A fresh store directory and a tiny generated model in it's parent. */
static void fresh(const char *tag, char *store, size_t n, char *model, size_t mn)
{
    snprintf(store, n, "%s", ea_test_tmp_path(tag));
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", store, store);
    ASSERT_EQ(system(cmd), 0);
    snprintf(model, mn, "%s/tiny.gguf", store);
    snprintf(cmd, sizeof cmd, "'%s' gen-model --preset tiny --seed 3 -o '%s'", ea_test_binary(), model);
    ASSERT_EQ(ea_test_run(cmd, NULL, NULL), 0);
    strncat(store, "/store", n - strlen(store) - 1);
}

static void register_list_resolve_remove(void)
{
    char dir[4096], model[4096], path[4096];
    fresh("store-api", dir, sizeof dir, model, sizeof model);
    struct ea_error err = {0};
    ea_store *s = NULL;
    ASSERT_OK(ea_store_open(dir, &s, &err), &err);
    struct ea_store_manifest m = {0};
    snprintf(m.name, sizeof m.name, "team/tiny:Q8_0");
    snprintf(m.source, sizeof m.source, "local");
    ASSERT_OK(ea_store_register(s, model, &m, &err), &err);
    ASSERT(access(model, F_OK) != 0); /* moved, not copied */
    ASSERT_STR_EQ(m.arch, "llama");
    ASSERT(m.n_params > 0 && m.size > 0 && strlen(m.sha256) == 64 && m.date[0]);
    struct ea_store_manifest *v = NULL;
    size_t n = 0, bad = 0;
    ASSERT_OK(ea_store_list(s, &v, &n, &bad, &err), &err);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(bad, 0);
    ASSERT_STR_EQ(v[0].name, "team/tiny:Q8_0");
    ASSERT_STR_EQ(v[0].sha256, m.sha256);
    ea_free(v);
    ASSERT_OK(ea_store_resolve(s, "team/tiny:Q8_0", path, sizeof path, &err), &err);
    ASSERT(strstr(path, dir) == path && strstr(path, "team%2Ftiny%3AQ8_0.gguf"));
    ASSERT_OK(ea_store_resolve(s, "hf.co/team/tiny:Q8_0", path, sizeof path, &err), &err);
    ASSERT_OK(ea_store_resolve(s, path, path, sizeof path, &err), &err); /* a path stays a path */
    ASSERT_EQ(ea_store_resolve(s, "nope", path, sizeof path, &err), EA_ENOTFOUND);
    ASSERT(strstr(err.msg, "nope") && strstr(err.msg, dir));
    /* names that would escape the directory stay inside it */
    char p2[4096];
    ASSERT_EQ(ea_store_get(s, "../x", &m, &err), EA_ENOTFOUND);
    ASSERT_EQ(ea_store_get(s, "a b", &m, &err), EA_EINVAL);
    /* a broken manifest is skipped by list, not fatal */
    snprintf(p2, sizeof p2, "%s/broken.json", dir);
    FILE *f = fopen(p2, "w");
    ASSERT(f);
    fputs("{not json", f);
    fclose(f);
    ASSERT_OK(ea_store_list(s, &v, &n, &bad, &err), &err);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(bad, 1);
    ea_free(v);
    ASSERT_OK(ea_store_remove(s, "team/tiny:Q8_0", &err), &err);
    ASSERT_EQ(ea_store_remove(s, "team/tiny:Q8_0", &err), EA_ENOTFOUND);
    ASSERT_EQ(ea_store_resolve(s, "team/tiny:Q8_0", path, sizeof path, &err), EA_ENOTFOUND);
    ea_store_close(s);
}

static void register_rejects_non_models(void)
{
    char dir[4096], model[4096];
    fresh("store-bad", dir, sizeof dir, model, sizeof model);
    struct ea_error err = {0};
    ea_store *s = NULL;
    ASSERT_OK(ea_store_open(dir, &s, &err), &err);
    /* truncated GGUF */
    ASSERT_EQ(truncate(model, 5000), 0);
    struct ea_store_manifest m = {0};
    snprintf(m.name, sizeof m.name, "broken");
    snprintf(m.source, sizeof m.source, "local");
    ASSERT_NE(ea_store_register(s, model, &m, &err), EA_OK);
    ASSERT(strstr(err.msg, "not a model edgeagent can run"));
    ASSERT(access(model, F_OK) == 0); /* left where it was */
    struct ea_store_manifest *v = NULL;
    size_t n = 9;
    ASSERT_OK(ea_store_list(s, &v, &n, NULL, &err), &err);
    ASSERT_EQ(n, 0);
    ea_free(v);
    ea_store_close(s);
}

static void cli_store_commands(void)
{
    char dir[4096], model[4096], cmd[16384], *out = NULL, *errs = NULL;
    fresh("store-cli", dir, sizeof dir, model, sizeof model);
    struct ea_error err = {0};
    ea_store *s = NULL;
    ASSERT_OK(ea_store_open(dir, &s, &err), &err);
    struct ea_store_manifest m = {0};
    snprintf(m.name, sizeof m.name, "tiny:1m");
    snprintf(m.source, sizeof m.source, "hf.co/x/y:F32");
    ASSERT_OK(ea_store_register(s, model, &m, &err), &err);
    ea_store_close(s);
    /* list --json through EDGEAGENT_MODELS */
    snprintf(cmd, sizeof cmd,
             "EDGEAGENT_MODELS='%s' '%s' list --json | python3 -c 'import json,sys; d=json.load(sys.stdin); "
             "assert len(d)==1 and d[0][\"name\"]==\"tiny:1m\" and d[0][\"source\"]==\"hf.co/x/y:F32\" "
             "and len(d[0][\"sha256\"])==64 and d[0][\"size\"]>0, d; print(\"ok\")'",
             dir, ea_test_binary());
    ASSERT_EQ(ea_test_run(cmd, &out, NULL), 0);
    ASSERT(out && strstr(out, "ok"));
    free(out);
    /* --models-dir wins over the environment */
    snprintf(cmd, sizeof cmd, "EDGEAGENT_MODELS=/nonexistent/x '%s' list --models-dir '%s'", ea_test_binary(), dir);
    ASSERT_EQ(ea_test_run(cmd, &out, NULL), 0);
    ASSERT(out && strstr(out, "tiny:1m") && strstr(out, "llama"));
    free(out);
    /* XDG_DATA_HOME when nothing else is set */
    char xdg[4096];
    snprintf(xdg, sizeof xdg, "%s", dir);
    *strrchr(xdg, '/') = '\0';
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/xdg/edgeagent' && ln -sfn '%s' '%s/xdg/edgeagent/models' && "
             "env -u EDGEAGENT_MODELS XDG_DATA_HOME='%s/xdg' '%s' list", xdg, dir, xdg, xdg, ea_test_binary());
    ASSERT_EQ(ea_test_run(cmd, &out, NULL), 0);
    ASSERT(out && strstr(out, "tiny:1m"));
    free(out);
    /* show: manifest + inspect */
    snprintf(cmd, sizeof cmd, "'%s' show tiny:1m --models-dir '%s'", ea_test_binary(), dir);
    ASSERT_EQ(ea_test_run(cmd, &out, NULL), 0);
    ASSERT(out && strstr(out, "sha256:") && strstr(out, "architecture:  llama") && strstr(out, "tensors ("));
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' show tiny:1m --json --models-dir '%s' | python3 -c 'import json,sys; "
             "d=json.load(sys.stdin); assert d[\"manifest\"][\"name\"]==\"tiny:1m\" and d[\"gguf\"][\"architecture\"]==\"llama\"; print(\"ok\")'",
             ea_test_binary(), dir);
    ASSERT_EQ(ea_test_run(cmd, &out, NULL), 0);
    ASSERT(out && strstr(out, "ok"));
    free(out);
    /* -m NAME for run, bench, tokenize */
    snprintf(cmd, sizeof cmd, "'%s' run -m tiny:1m --models-dir '%s' -p hi -n 4 --temp 0", ea_test_binary(), dir);
    ASSERT_EQ(ea_test_run(cmd, NULL, &errs), 0);
    free(errs);
    snprintf(cmd, sizeof cmd, "EDGEAGENT_MODELS='%s' '%s' bench -m tiny:1m -p 8 -n 2 -r 1 --json", dir, ea_test_binary());
    ASSERT_EQ(ea_test_run(cmd, &out, NULL), 0);
    ASSERT(out && strstr(out, "\"tg2\""));
    free(out);
    snprintf(cmd, sizeof cmd, "EDGEAGENT_MODELS='%s' '%s' tokenize -m tiny:1m hello --ids", dir, ea_test_binary());
    ASSERT_EQ(ea_test_run(cmd, NULL, NULL), 0);
    snprintf(cmd, sizeof cmd, "EDGEAGENT_MODELS='%s' '%s' run -m tiny:2m -p hi", dir, ea_test_binary());
    ASSERT_EQ(ea_test_run(cmd, NULL, &errs), 1);
    ASSERT(errs && strstr(errs, "tiny:2m") && strstr(errs, "no model of that name"));
    free(errs);
    /* rm */
    snprintf(cmd, sizeof cmd, "'%s' rm tiny:1m --models-dir '%s'", ea_test_binary(), dir);
    ASSERT_EQ(ea_test_run(cmd, &out, NULL), 0);
    ASSERT(out && strstr(out, "removed tiny:1m"));
    free(out);
    ASSERT_EQ(ea_test_run(cmd, NULL, &errs), 1);
    ASSERT(errs && strstr(errs, "no model 'tiny:1m'"));
    free(errs);
}

/* quantize and perplexity draw a bar on stderr only when it is a terminal
 * (script(1) gives them one); stdout is the same either way. */
static void progress_on_terminal(void)
{
    if (system("command -v script >/dev/null 2>&1") != 0)
        SKIP("script(1) not found: no pseudo-terminal to test with");
    char dir[4096], model[4096], cmd[16384], *out = NULL, *errs = NULL;
    fresh("progress", dir, sizeof dir, model, sizeof model);
    snprintf(cmd, sizeof cmd, "script -qec \"'%s' quantize '%s' '%s.q8' Q8_0\" /dev/null", ea_test_binary(), model, model);
    ASSERT_EQ(ea_test_run(cmd, &out, NULL), 0);
    ASSERT(out && strstr(out, "\rquantize ") && strstr(out, "100% [########################]"));
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' quantize '%s' '%s.q8' Q8_0", ea_test_binary(), model, model);
    ASSERT_EQ(ea_test_run(cmd, &out, &errs), 0);
    ASSERT_STR_EQ(out, "");
    ASSERT_STR_EQ(errs, ""); /* not a terminal: nothing */
    free(out);
    free(errs);
    /* perplexity: the bar on the terminal's stderr, stdout (a file) unchanged */
    char text[4200];
    snprintf(text, sizeof text, "%s.txt", model);
    FILE *f = fopen(text, "w");
    ASSERT(f);
    for (int i = 0; i < 400; i++)
        fprintf(f, "the cat sat on the mat %d times. ", i);
    fclose(f);
    snprintf(cmd, sizeof cmd, "script -qec \"'%s' perplexity -m '%s' -f '%s' --ctx 64 > '%s.tty'\" /dev/null",
             ea_test_binary(), model, text, text);
    ASSERT_EQ(ea_test_run(cmd, &out, NULL), 0);
    ASSERT(out && strstr(out, "\rperplexity ") && strstr(out, " chunks"));
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' perplexity -m '%s' -f '%s' --ctx 64 2>'%s.err'", ea_test_binary(), model, text, text);
    ASSERT_EQ(ea_test_run(cmd, &out, NULL), 0);
    char p2[4300];
    snprintf(p2, sizeof p2, "%s.tty", text);
    char *tty_out = ea_test_read_file(p2, NULL);
    ASSERT(tty_out && out && strstr(out, "Final estimate"));
    ASSERT_STR_EQ(tty_out, out);
    free(tty_out);
    free(out);
    snprintf(p2, sizeof p2, "%s.err", text);
    errs = ea_test_read_file(p2, NULL);
    ASSERT(errs && !strstr(errs, "\r"));
    free(errs);
}

EA_TESTS(EA_TEST(sha256_vectors), EA_TEST(sha256_accel_matches_portable), EA_TEST(manifest_roundtrip), EA_TEST(sources), EA_TEST(pick_file),
         EA_TEST(register_list_resolve_remove), EA_TEST(register_rejects_non_models),
         EA_TEST(cli_store_commands), EA_TEST(progress_on_terminal))
