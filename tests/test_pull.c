/* test_pull.c (EA_TEST_NEEDS_NET: pull is built only with libcurl) -
 * `edgeagent pull` end to end against tests/node/hf_mock.mjs,
 * a local server that behaves like the Hugging Face Hub (file list with LFS
 * sha256, resolve with a 302 and X-Linked-Etag, Range) and can misbehave on
 * purpose (cut the connection at 40%, ignore Range, report a wrong
 * checksum, demand a token, send slowly). The served files are tiny models
 * made by `gen-model`. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define RECV_BUFFER (512 * 1024) /* pull.c's receive buffer: the most a resume may repeat */
#define TOKEN "hf_test_token_5ecret"

static char root[4096];   /* server root: repos/, mode.json, log.jsonl */
static char endpoint[64];
static pid_t server_pid = -1;

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (system(cmd) != 0)
        FAIL("command failed: %s", cmd);
}

static void gen(const char *type, int seed, const char *out)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' gen-model --preset tiny --type %s --seed %d -o '%s'",
             ea_test_binary(), type, seed, out);
    ASSERT_EQ(ea_test_run(cmd, NULL, NULL), 0);
}

/* The same GGUF with general.architecture "llama" turned into "mamba". */
static void gen_unsupported(const char *src, const char *dst)
{
    size_t n;
    unsigned char *d = ea_test_read_file(src, &n);
    ASSERT(d);
    static const unsigned char pat[] = {5, 0, 0, 0, 0, 0, 0, 0, 'l', 'l', 'a', 'm', 'a'};
    bool done = false;
    for (size_t i = 0; i + sizeof pat <= n && !done; i++)
        if (memcmp(d + i, pat, sizeof pat) == 0) {
            memcpy(d + i + 8, "mamba", 5);
            done = true;
        }
    ASSERT(done);
    FILE *f = fopen(dst, "wb");
    ASSERT(f && fwrite(d, 1, n, f) == n);
    fclose(f);
    free(d);
}

static void stop_server(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
        server_pid = -1;
    }
}

/* Starts the mock once (repos made on the first call). */
static void server(void)
{
    if (server_pid > 0)
        return;
    if (system("node --version >/dev/null 2>&1") != 0)
        SKIP("node not found: the mock Hugging Face server needs it");
    snprintf(root, sizeof root, "%s", ea_test_tmp_path("hf"));
    char p[8192];
    sh("rm -rf '%s' && mkdir -p '%s'/repos/org/tiny-GGUF '%s'/repos/_files", root, root, root);
    sh("mkdir -p '%s'/repos/bartowski/SmolLM2-135M-Instruct-GGUF '%s'/repos/org/odd", root, root);
    snprintf(p, sizeof p, "%s/repos/org/tiny-GGUF/tiny-Q4_K_M.gguf", root);
    gen("Q4_K_M", 1, p);
    snprintf(p, sizeof p, "%s/repos/org/tiny-GGUF/tiny-Q8_0.gguf", root);
    gen("Q8_0", 2, p);
    sh("echo '# tiny' > '%s'/repos/org/tiny-GGUF/README.md", root);
    sh("cp '%s'/repos/org/tiny-GGUF/tiny-Q4_K_M.gguf '%s'/repos/bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf",
       root, root);
    snprintf(p, sizeof p, "%s/repos/_files/plain.gguf", root);
    gen("F16", 3, p);
    char q[8192];
    snprintf(q, sizeof q, "%s/repos/org/odd/odd-Q8_0.gguf", root);
    snprintf(p, sizeof p, "%s/repos/org/tiny-GGUF/tiny-Q8_0.gguf", root);
    gen_unsupported(p, q);

    char script[4096];
    const char *src = getenv("EA_SOURCE_DIR");
    snprintf(script, sizeof script, "%s/tests/node/hf_mock.mjs", src ? src : ".");
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    server_pid = fork();
    ASSERT(server_pid >= 0);
    if (server_pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execlp("node", "node", script, root, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[64] = "";
    size_t o = 0;
    while (o < sizeof line - 1) {
        ssize_t r = read(fds[0], line + o, 1);
        if (r <= 0 || line[o] == '\n')
            break;
        o++;
    }
    line[o] = '\0';
    close(fds[0]);
    int port = 0;
    if (sscanf(line, "PORT %d", &port) != 1 || port <= 0) {
        stop_server();
        FAIL("mock server did not start (said '%s')", line);
    }
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", port);
    atexit(stop_server);
}

static void set_mode(const char *json)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/mode.json", root);
    if (!json) {
        unlink(p);
        return;
    }
    FILE *f = fopen(p, "w");
    ASSERT(f);
    fputs(json, f);
    fclose(f);
}

static void clear_log(void)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/log.jsonl", root);
    unlink(p);
}

/* The logged requests whose path starts with prefix, in order. */
static json_t *requests(const char *prefix)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/log.jsonl", root);
    json_t *arr = json_array();
    FILE *f = fopen(p, "r");
    if (!f)
        return arr;
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        json_t *o = json_loads(line, 0, NULL);
        const char *path = o ? json_string_value(json_object_get(o, "path")) : NULL;
        if (path && strncmp(path, prefix, strlen(prefix)) == 0)
            json_array_append(arr, o);
        json_decref(o);
    }
    fclose(f);
    return arr;
}

static long long req_int(json_t *arr, size_t i, const char *key)
{
    return json_integer_value(json_object_get(json_array_get(arr, i), key));
}

static const char *req_str(json_t *arr, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_array_get(arr, i), key));
}

/* Shell text defining waitfor CONDITION: polls it every 50 ms for up to 30 s
 * (the steps of a case wait for each other, never for a fixed time). */
#define WAITFOR "waitfor() { for i in $(seq 600); do eval \"$1\" && return 0; sleep 0.05; done; return 1; }; "

/* A fresh store for one case. */
static const char *store(const char *tag)
{
    static char dir[4200];
    snprintf(dir, sizeof dir, "%s-%s", root, tag);
    sh("rm -rf '%s'", dir);
    return dir;
}

static int pull(const char *dir, const char *args, const char *env, char **out, char **err)
{
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "%s HF_ENDPOINT='%s' '%s' pull %s --models-dir '%s' </dev/null",
             env ? env : "env -u HF_TOKEN", endpoint, ea_test_binary(), args, dir);
    return ea_test_run(cmd, out, err);
}

static bool same_file(const char *a, const char *b)
{
    size_t na, nb;
    void *da = ea_test_read_file(a, &na), *db = ea_test_read_file(b, &nb);
    bool same = da && db && na == nb && memcmp(da, db, na) == 0;
    free(da);
    free(db);
    return same;
}

static long long file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

static const char *repo_file(const char *rel)
{
    static char p[4400];
    snprintf(p, sizeof p, "%s/repos/%s", root, rel);
    return p;
}

static const char *store_file(const char *dir, const char *enc)
{
    static char p[4400];
    snprintf(p, sizeof p, "%s/%s", dir, enc);
    return p;
}

/* Number of models `list --json` shows. */
static int listed(const char *dir)
{
    char cmd[8192], *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' list --json --models-dir '%s'", ea_test_binary(), dir);
    ASSERT_EQ(ea_test_run(cmd, &out, NULL), 0);
    json_t *a = json_loads(out ? out : "", 0, NULL);
    free(out);
    ASSERT(json_is_array(a));
    int n = (int)json_array_size(a);
    json_decref(a);
    return n;
}

static void source_forms(void)
{
    server();
    set_mode(NULL);
    const char *d = store("forms");
    char *out = NULL, *err = NULL, args[4096];
    /* hf.co/ORG/REPO: Q4_K_M by default */
    clear_log();
    ASSERT_EQ(pull(d, "hf.co/org/tiny-GGUF", NULL, NULL, &err), 0);
    ASSERT(same_file(store_file(d, "org%2Ftiny-GGUF%3AQ4_K_M.gguf"), repo_file("org/tiny-GGUF/tiny-Q4_K_M.gguf")));
    ASSERT(strstr(err, "pulled org/tiny-GGUF:Q4_K_M"));
    free(err);
    json_t *r = requests("/");
    ASSERT_EQ(json_array_size(r), 3); /* file list, resolve (302), bytes */
    ASSERT_STR_EQ(req_str(r, 0, "path"), "/api/models/org/tiny-GGUF");
    ASSERT_EQ(req_int(r, 1, "status"), 302);
    ASSERT_STR_EQ(req_str(r, 1, "path"), "/org/tiny-GGUF/resolve/main/tiny-Q4_K_M.gguf");
    ASSERT_STR_EQ(req_str(r, 2, "path"), "/cdn/org/tiny-GGUF/tiny-Q4_K_M.gguf");
    json_decref(r);
    /* :QUANT, /FILE.gguf, a URL, a catalog name (served by the mock as its repository) */
    ASSERT_EQ(pull(d, "hf.co/org/tiny-GGUF:q8_0 --quiet", NULL, NULL, &err), 0);
    ASSERT_STR_EQ(err, ""); /* --quiet */
    free(err);
    ASSERT(same_file(store_file(d, "org%2Ftiny-GGUF%3AQ8_0.gguf"), repo_file("org/tiny-GGUF/tiny-Q8_0.gguf")));
    ASSERT_EQ(pull(d, "hf.co/org/tiny-GGUF/tiny-Q8_0.gguf", NULL, NULL, NULL), 0);
    ASSERT(same_file(store_file(d, "org%2Ftiny-GGUF%2Ftiny-Q8_0.gguf"), repo_file("org/tiny-GGUF/tiny-Q8_0.gguf")));
    snprintf(args, sizeof args, "%s/files/plain.gguf --json", endpoint);
    ASSERT_EQ(pull(d, args, NULL, &out, NULL), 0);
    ASSERT(same_file(store_file(d, "plain.gguf"), repo_file("_files/plain.gguf")));
    /* --json: progress events then "done", one object per line */
    char *last = strstr(out, "{\"event\":\"done\"");
    ASSERT(last && strstr(out, "\"phase\":\"downloading\""));
    json_t *done = json_loads(last, JSON_DISABLE_EOF_CHECK, NULL);
    ASSERT(done);
    ASSERT_STR_EQ(json_string_value(json_object_get(done, "name")), "plain");
    ASSERT_EQ(json_integer_value(json_object_get(done, "size")), file_size(repo_file("_files/plain.gguf")));
    json_decref(done);
    free(out);
    ASSERT_EQ(pull(d, "smollm2:135m", NULL, NULL, NULL), 0);
    ASSERT(same_file(store_file(d, "smollm2%3A135m.gguf"),
                     repo_file("bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf")));
    ASSERT_EQ(listed(d), 5);
    /* the manifests say where each came from */
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' show smollm2:135m --json --models-dir '%s'", ea_test_binary(), d);
    ASSERT_EQ(ea_test_run(cmd, &out, NULL), 0);
    json_t *sj = json_loads(out, 0, NULL);
    free(out);
    json_t *man = json_object_get(sj, "manifest");
    ASSERT_STR_EQ(json_string_value(json_object_get(man, "repo")), "bartowski/SmolLM2-135M-Instruct-GGUF");
    ASSERT_STR_EQ(json_string_value(json_object_get(man, "file")), "SmolLM2-135M-Instruct-Q4_K_M.gguf");
    ASSERT_STR_EQ(json_string_value(json_object_get(man, "quant")), "Q4_K_M");
    ASSERT_STR_EQ(json_string_value(json_object_get(man, "architecture")), "llama");
    json_decref(sj);
    /* a pulled name runs */
    snprintf(cmd, sizeof cmd, "'%s' run -m smollm2:135m --models-dir '%s' -p hi -n 2 --temp 0", ea_test_binary(), d);
    ASSERT_EQ(ea_test_run(cmd, NULL, NULL), 0);
    /* serve -m NAME: the store name is the model id */
    snprintf(cmd, sizeof cmd,
             "(log='%s.serve.log'; '%s' serve -m smollm2:135m --models-dir '%s' --port 0 >\"$log\" 2>&1 & p=$!; "
             "for i in $(seq 300); do grep -q 'ready' \"$log\" && break; sleep 0.1; done; "
             "port=$(sed -n 's/.*listening on http:\\/\\/127.0.0.1:\\([0-9]*\\).*/\\1/p' \"$log\"); "
             "curl -s \"http://127.0.0.1:$port/v1/models\"; kill $p; wait $p)",
             d, ea_test_binary(), d);
    ASSERT_EQ(ea_test_run(cmd, &out, NULL), 0);
    ASSERT(out && strstr(out, "\"id\":\"smollm2:135m\""));
    free(out);
    /* pulling again downloads nothing */
    clear_log();
    ASSERT_EQ(pull(d, "smollm2:135m", NULL, NULL, &err), 0);
    ASSERT(strstr(err, "already in the store"));
    free(err);
    r = requests("/cdn/");
    ASSERT_EQ(json_array_size(r), 0);
    json_decref(r);
    /* a quant the repository does not have: what it has */
    ASSERT_EQ(pull(d, "hf.co/org/tiny-GGUF:Q2_K", NULL, NULL, &err), 1);
    ASSERT(strstr(err, "no Q2_K") && strstr(err, "Q4_K_M") && strstr(err, "Q8_0") && strstr(err, "org/tiny-GGUF"));
    free(err);
}

static void resume_after_cut(void)
{
    server();
    const char *d = store("cut");
    char *err = NULL;
    const char *src = repo_file("org/tiny-GGUF/tiny-Q8_0.gguf");
    long long size = file_size(src);
    set_mode("{\"cut_fraction\":0.4}");
    clear_log();
    ASSERT_EQ(pull(d, "hf.co/org/tiny-GGUF:Q8_0 --retries 0", NULL, NULL, &err), 1);
    ASSERT(strstr(err, "run the same pull to resume"));
    free(err);
    long long part = file_size(store_file(d, "org%2Ftiny-GGUF%3AQ8_0.gguf.partial"));
    json_t *r = requests("/cdn/");
    ASSERT_EQ(json_array_size(r), 1);
    long long cut = req_int(r, 0, "sent");
    json_decref(r);
    ASSERT_EQ(cut, size * 4 / 10);
    ASSERT(part > 0 && part <= cut);
    ASSERT_EQ(listed(d), 0); /* nothing registered */
    /* resumed: Range from where the partial file ends, the same bytes */
    set_mode(NULL);
    clear_log();
    ASSERT_EQ(pull(d, "hf.co/org/tiny-GGUF:Q8_0", NULL, NULL, &err), 0);
    ASSERT(strstr(err, "resuming at byte"));
    free(err);
    ASSERT(same_file(store_file(d, "org%2Ftiny-GGUF%3AQ8_0.gguf"), src));
    r = requests("/cdn/");
    ASSERT_EQ(json_array_size(r), 1);
    char want[64];
    snprintf(want, sizeof want, "bytes=%lld-", part);
    ASSERT_STR_EQ(req_str(r, 0, "range"), want);
    ASSERT_EQ(req_int(r, 0, "status"), 206);
    ASSERT_EQ(req_int(r, 0, "sent"), size - part);
    /* at most one buffer of what had arrived is fetched again */
    ASSERT(cut - part <= RECV_BUFFER);
    json_decref(r);
    ASSERT(file_size(store_file(d, "org%2Ftiny-GGUF%3AQ8_0.gguf.partial")) < 0);
    ASSERT(file_size(store_file(d, "org%2Ftiny-GGUF%3AQ8_0.partial-meta")) < 0);

    /* within one pull: the broken transfer is resumed by itself */
    d = store("cut2");
    set_mode("{\"cut_fraction\":0.4}");
    clear_log();
    ASSERT_EQ(pull(d, "hf.co/org/tiny-GGUF:Q8_0", NULL, NULL, &err), 0);
    ASSERT(strstr(err, "connection broken: resuming"));
    free(err);
    ASSERT(same_file(store_file(d, "org%2Ftiny-GGUF%3AQ8_0.gguf"), src));
    r = requests("/cdn/");
    ASSERT_EQ(json_array_size(r), 2);
    ASSERT_EQ(req_int(r, 0, "sent") + req_int(r, 1, "sent"), size);
    json_decref(r);
    set_mode(NULL);
}

static void range_ignored(void)
{
    server();
    const char *d = store("norange");
    char *err = NULL;
    const char *src = repo_file("org/tiny-GGUF/tiny-Q8_0.gguf");
    set_mode("{\"cut_fraction\":0.4}");
    ASSERT_EQ(pull(d, "hf.co/org/tiny-GGUF:Q8_0 --retries 0", NULL, NULL, NULL), 1);
    set_mode("{\"ignore_range\":true}");
    clear_log();
    ASSERT_EQ(pull(d, "hf.co/org/tiny-GGUF:Q8_0", NULL, NULL, &err), 0);
    ASSERT(strstr(err, "ignored the range"));
    free(err);
    ASSERT(same_file(store_file(d, "org%2Ftiny-GGUF%3AQ8_0.gguf"), src));
    json_t *r = requests("/cdn/");
    ASSERT_EQ(json_array_size(r), 1);
    ASSERT(req_str(r, 0, "range") != NULL); /* asked for a range ... */
    ASSERT_EQ(req_int(r, 0, "status"), 200); /* ... got the whole file, and used it */
    json_decref(r);
    set_mode(NULL);
}

static void wrong_checksum(void)
{
    server();
    const char *d = store("badsha");
    char *err = NULL;
    set_mode("{\"wrong_sha\":true}");
    ASSERT_EQ(pull(d, "hf.co/org/tiny-GGUF:Q8_0", NULL, NULL, &err), 1);
    ASSERT(strstr(err, "sha256 mismatch") && strstr(err, "deleted"));
    free(err);
    ASSERT(file_size(store_file(d, "org%2Ftiny-GGUF%3AQ8_0.gguf.partial")) < 0);
    ASSERT(file_size(store_file(d, "org%2Ftiny-GGUF%3AQ8_0.gguf")) < 0);
    ASSERT_EQ(listed(d), 0);
    set_mode(NULL);
}

static void not_found_and_auth(void)
{
    server();
    const char *d = store("errs");
    char *err = NULL;
    set_mode(NULL);
    ASSERT_EQ(pull(d, "hf.co/org/missing", NULL, NULL, &err), 1);
    ASSERT(strstr(err, "hf.co/org/missing") && strstr(err, "not found") && strstr(err, "404"));
    free(err);
    ASSERT_EQ(pull(d, "hf.co/org/tiny-GGUF/nope.gguf", NULL, NULL, &err), 1);
    ASSERT(strstr(err, "no file 'nope.gguf'"));
    free(err);
    char url[256];
    snprintf(url, sizeof url, "%s/files/absent.gguf", endpoint);
    ASSERT_EQ(pull(d, url, NULL, NULL, &err), 1);
    ASSERT(strstr(err, "absent.gguf") && strstr(err, "404"));
    free(err);
    /* a gated repository: 401 without a token, in with HF_TOKEN, never printed */
    set_mode("{\"require_token\":\"" TOKEN "\"}");
    ASSERT_EQ(pull(d, "hf.co/org/tiny-GGUF", NULL, NULL, &err), 1);
    ASSERT(strstr(err, "401") && strstr(err, "HF_TOKEN"));
    free(err);
    ASSERT_EQ(pull(d, "hf.co/org/tiny-GGUF", "HF_TOKEN=wrong", NULL, &err), 1);
    ASSERT(strstr(err, "401") && strstr(err, "not accepted") && !strstr(err, "wrong"));
    free(err);
    clear_log();
    char *out = NULL;
    ASSERT_EQ(pull(d, "hf.co/org/tiny-GGUF --json", "HF_TOKEN=" TOKEN, &out, &err), 0);
    ASSERT(!strstr(out, TOKEN) && !strstr(err, TOKEN));
    free(out);
    free(err);
    /* the mock may append its last line just after the client read the end */
    json_t *r = requests("/");
    for (int i = 0; i < 100 && json_array_size(r) < 3; i++) {
        json_decref(r);
        usleep(20000);
        r = requests("/");
    }
    ASSERT_EQ(json_array_size(r), 3);
    for (size_t i = 0; i < 3; i++)
        ASSERT(json_is_true(json_object_get(json_array_get(r, i), "auth")));
    json_decref(r);
    set_mode(NULL);
    ASSERT_EQ(listed(d), 1);
}

static void full_disk(void)
{
    server();
    const char *d = store("full");
    char *err = NULL;
    set_mode(NULL);
    /* a file-size limit of ~500 KB (sh counts 512-byte blocks, bash 1024) */
    ASSERT_EQ(pull(d, "hf.co/org/tiny-GGUF:Q8_0", "ulimit -f 1000; env -u HF_TOKEN", NULL, &err), 1);
    ASSERT(strstr(err, "File too large") && strstr(err, "file size limit"));
    free(err);
    ASSERT_EQ(listed(d), 0);
    ASSERT(file_size(store_file(d, "org%2Ftiny-GGUF%3AQ8_0.gguf")) < 0);
    /* with the limit gone, the same pull completes from what was kept */
    ASSERT_EQ(pull(d, "hf.co/org/tiny-GGUF:Q8_0", NULL, NULL, &err), 0);
    ASSERT(strstr(err, "resuming at byte"));
    free(err);
    ASSERT(same_file(store_file(d, "org%2Ftiny-GGUF%3AQ8_0.gguf"), repo_file("org/tiny-GGUF/tiny-Q8_0.gguf")));
}

static void unsupported_architecture(void)
{
    server();
    const char *d = store("arch");
    char *err = NULL;
    set_mode(NULL);
    ASSERT_EQ(pull(d, "hf.co/org/odd:Q8_0", NULL, NULL, &err), 1);
    ASSERT(strstr(err, "mamba") && strstr(err, "not supported") && strstr(err, "deleted"));
    free(err);
    ASSERT_EQ(listed(d), 0);
    ASSERT(file_size(store_file(d, "org%2Fodd%3AQ8_0.gguf.partial")) < 0);
}

static void concurrent_pulls(void)
{
    server();
    const char *d = store("conc");
    set_mode("{\"rate\":1000000}"); /* ~2 s for the file */
    clear_log();
    char cmd[16384], *out = NULL;
    /* the second starts once the first is downloading (holding the lock) */
    snprintf(cmd, sizeof cmd,
             "(" WAITFOR "for i in 1 2; do (HF_ENDPOINT='%s' '%s' pull hf.co/org/tiny-GGUF:Q8_0 "
             "--models-dir '%s' 2>'%s.err'$i; echo rc$i=$? >'%s.rc'$i) & "
             "[ $i = 1 ] && waitfor \"[ -s '%s/org%%2Ftiny-GGUF%%3AQ8_0.gguf.partial' ]\"; done; wait; "
             "cat '%s'.rc1 '%s'.rc2 '%s'.err1 '%s'.err2)",
             endpoint, ea_test_binary(), d, d, d, d, d, d, d, d);
    ASSERT_EQ(ea_test_run(cmd, &out, NULL), 0);
    ASSERT(out && strstr(out, "rc1=0") && strstr(out, "rc2=0"));
    ASSERT(strstr(out, "waiting for it"));
    free(out);
    json_t *r = requests("/cdn/");
    ASSERT_EQ(json_array_size(r), 1); /* one download */
    json_decref(r);
    ASSERT_EQ(listed(d), 1);
    ASSERT(same_file(store_file(d, "org%2Ftiny-GGUF%3AQ8_0.gguf"), repo_file("org/tiny-GGUF/tiny-Q8_0.gguf")));
    set_mode(NULL);
}

static void ctrl_c_then_resume(void)
{
    server();
    const char *d = store("sigint");
    set_mode("{\"rate\":1000000}");
    clear_log();
    char cmd[16384], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd,
             "(" WAITFOR "HF_ENDPOINT='%s' '%s' pull hf.co/org/tiny-GGUF:Q8_0 --models-dir '%s' & p=$!; "
             "waitfor \"[ -s '%s/org%%2Ftiny-GGUF%%3AQ8_0.gguf.partial' ]\"; "
             "kill -INT $p; wait $p; echo rc=$?)",
             endpoint, ea_test_binary(), d, d);
    ASSERT_EQ(ea_test_run(cmd, &out, &err), 0);
    ASSERT(out && strstr(out, "rc=130"));
    ASSERT(strstr(err, "interrupted") && strstr(err, "resume"));
    free(out);
    free(err);
    long long part = file_size(store_file(d, "org%2Ftiny-GGUF%3AQ8_0.gguf.partial"));
    ASSERT(part > 0);
    ASSERT_EQ(listed(d), 0);
    set_mode(NULL);
    clear_log();
    ASSERT_EQ(pull(d, "hf.co/org/tiny-GGUF:Q8_0", NULL, NULL, NULL), 0);
    ASSERT(same_file(store_file(d, "org%2Ftiny-GGUF%3AQ8_0.gguf"), repo_file("org/tiny-GGUF/tiny-Q8_0.gguf")));
    json_t *r = requests("/cdn/");
    char want[64];
    snprintf(want, sizeof want, "bytes=%lld-", part);
    ASSERT_STR_EQ(req_str(r, 0, "range"), want);
    json_decref(r);
}

/* Starts `serve` on a free port with extra args; returns its pid and port. */
static pid_t start_serve(const char *args, const char *log, int *port)
{
    char cmd[16384], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "(HF_ENDPOINT='%s' '%s' serve -m '%s' --port 0 %s >'%s' 2>&1 & echo $!; "
             "for i in $(seq 300); do grep -q 'ready' '%s' && break; sleep 0.1; done)",
             endpoint, ea_test_binary(), repo_file("org/tiny-GGUF/tiny-Q4_K_M.gguf"), args, log, log);
    ASSERT_EQ(ea_test_run(cmd, &out, NULL), 0);
    pid_t pid = (pid_t)atoi(out);
    free(out);
    char *l = ea_test_read_file(log, NULL);
    const char *at = l ? strstr(l, "listening on http://127.0.0.1:") : NULL;
    *port = at ? atoi(at + strlen("listening on http://127.0.0.1:")) : 0;
    free(l);
    if (*port <= 0 || pid <= 0) {
        if (pid > 0)
            kill(pid, SIGTERM);
        FAIL("serve did not start");
    }
    return pid;
}

static void stop_serve(pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0); /* not our child (started by the shell): best effort */
    for (int i = 0; i < 100 && kill(pid, 0) == 0; i++)
        usleep(100000);
}

/* POST /v1/edgeagent/models/pull: SSE progress, the model registered; API
 * key required; a client that leaves cancels its pull */
static void server_pull_endpoint(void)
{
    server();
    set_mode(NULL);
    const char *d = store("srvpull");
    char dir[4200], log[4300], args[8192], cmd[16384], *out = NULL;
    snprintf(dir, sizeof dir, "%s", d);
    snprintf(log, sizeof log, "%s.serve.log", dir);
    snprintf(args, sizeof args, "--api-key k3y --models-dir '%s'", dir);
    int port;
    pid_t pid = start_serve(args, log, &port);
    const char *curl = "curl -sN -X POST -H 'Content-Type: application/json'";
    snprintf(cmd, sizeof cmd, "%s -H 'Authorization: Bearer k3y' -d '{\"source\":\"hf.co/org/tiny-GGUF:Q8_0\"}' "
             "http://127.0.0.1:%d/v1/edgeagent/models/pull", curl, port);
    ASSERT_EQ(ea_test_run(cmd, &out, NULL), 0);
    if (!out || !strstr(out, "data: {\"event\":\"progress\",\"phase\":\"downloading\"") ||
        !strstr(out, "data: {\"event\":\"done\",\"name\":\"org/tiny-GGUF:Q8_0\"") ||
        !strstr(out, "data: [DONE]\n\n"))
        FAIL("unexpected stream:\n%s", out ? out : "(none)");
    free(out);
    ASSERT(same_file(store_file(dir, "org%2Ftiny-GGUF%3AQ8_0.gguf"), repo_file("org/tiny-GGUF/tiny-Q8_0.gguf")));
    ASSERT_EQ(listed(dir), 1);
    /* a failing pull ends with an error event */
    snprintf(cmd, sizeof cmd, "%s -H 'Authorization: Bearer k3y' -d '{\"source\":\"hf.co/org/missing\"}' "
             "http://127.0.0.1:%d/v1/edgeagent/models/pull", curl, port);
    ASSERT_EQ(ea_test_run(cmd, &out, NULL), 0);
    ASSERT(out && strstr(out, "\"event\":\"error\",\"status\":\"ENOTFOUND\"") && strstr(out, "[DONE]"));
    free(out);
    /* no key, bad bodies */
    snprintf(cmd, sizeof cmd, "%s -o /dev/null -w '%%{http_code}' -d '{\"source\":\"smollm2:135m\"}' "
             "http://127.0.0.1:%d/v1/edgeagent/models/pull", curl, port);
    ASSERT_EQ(ea_test_run(cmd, &out, NULL), 0);
    ASSERT_STR_EQ(out, "401");
    free(out);
    const char *bodies[] = {"[]", "{}", "{\"source\":7}", "{\"source\":\"nosuch:1b\"}",
                            "{\"source\":\"smollm2:135m\",\"name\":5}"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s -H 'Authorization: Bearer k3y' -d '%s' "
                 "http://127.0.0.1:%d/v1/edgeagent/models/pull", curl, bodies[i], port);
        ASSERT_EQ(ea_test_run(cmd, &out, NULL), 0);
        if (!out || !strstr(out, "\"error\":{\"message\":"))
            FAIL("body %s: %s", bodies[i], out ? out : "(none)");
        free(out);
    }
    /* a client that goes away cancels its pull; the partial file stays */
    set_mode("{\"rate\":500000}");
    snprintf(cmd, sizeof cmd, "(" WAITFOR "%s -H 'Authorization: Bearer k3y' -d '{\"source\":\"hf.co/org/tiny-GGUF:Q4_K_M\"}' "
             "http://127.0.0.1:%d/v1/edgeagent/models/pull >/dev/null & c=$!; "
             "waitfor \"[ -s '%s/org%%2Ftiny-GGUF%%3AQ4_K_M.gguf.partial' ]\"; kill $c; wait $c; "
             "waitfor \"grep -q interrupted '%s'\")", curl, port, dir, log);
    ea_test_run(cmd, NULL, NULL);
    char *l = ea_test_read_file(log, NULL);
    ASSERT(l && strstr(l, "interrupted"));
    free(l);
    ASSERT(file_size(store_file(dir, "org%2Ftiny-GGUF%3AQ4_K_M.gguf.partial")) > 0);
    ASSERT_EQ(listed(dir), 1);
    set_mode(NULL);
    stop_serve(pid);
    /* a server without an API key refuses to pull */
    snprintf(args, sizeof args, "--models-dir '%s'", dir);
    pid = start_serve(args, log, &port);
    snprintf(cmd, sizeof cmd, "%s -d '{\"source\":\"smollm2:135m\"}' http://127.0.0.1:%d/v1/edgeagent/models/pull",
             curl, port);
    ASSERT_EQ(ea_test_run(cmd, &out, NULL), 0);
    ASSERT(out && strstr(out, "api_key_required"));
    free(out);
    stop_serve(pid);
}

/* Ctrl-C while waiting for another pull's lock ends the wait */
static void ctrl_c_while_waiting(void)
{
    server();
    if (system("command -v flock >/dev/null 2>&1") != 0)
        SKIP("flock(1) not found");
    const char *d = store("waitint");
    set_mode(NULL);
    char cmd[16384], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd,
             "(" WAITFOR "mkdir -p '%s' && (flock '%s/org%%2Ftiny-GGUF%%3AQ8_0.lock' sh -c 'echo held >\"$0\"; "
             "while [ ! -e \"$0.release\" ]; do sleep 0.05; done' '%s.held') & h=$!; "
             "waitfor \"[ -s '%s.held' ]\"; "
             "HF_ENDPOINT='%s' '%s' pull hf.co/org/tiny-GGUF:Q8_0 --models-dir '%s' 2>'%s.err' & p=$!; "
             "waitfor \"grep -q 'waiting for it' '%s.err'\"; "
             "kill -INT $p; wait $p; echo rc=$?; cat '%s.err' >&2; touch '%s.held.release'; wait $h)",
             d, d, d, d, endpoint, ea_test_binary(), d, d, d, d, d);
    ASSERT_EQ(ea_test_run(cmd, &out, &err), 0);
    ASSERT(out && strstr(out, "rc=130"));
    ASSERT(strstr(err, "waiting for it") && strstr(err, "interrupted while waiting"));
    free(out);
    free(err);
    ASSERT_EQ(listed(d), 0);
}

/* stderr not a terminal: a line per 10%; a terminal: one updating line, then
 * a summary */
static void progress_display(void)
{
    server();
    const char *d = store("progress");
    char *err = NULL, cmd[16384], *out = NULL;
    set_mode("{\"rate\":4000000}");
    ASSERT_EQ(pull(d, "hf.co/org/tiny-GGUF:Q8_0", NULL, NULL, &err), 0);
    for (int pc = 10; pc <= 100; pc += 10) {
        char want[32];
        snprintf(want, sizeof want, "%3d%% (", pc);
        if (!strstr(err, want))
            FAIL("no %d%% line in:\n%s", pc, err);
    }
    ASSERT(!strchr(err, '\r'));
    free(err);
    if (system("command -v script >/dev/null 2>&1") != 0)
        SKIP("script(1) not found: no pseudo-terminal to test with");
    d = store("progress-tty");
    snprintf(cmd, sizeof cmd, "script -qec \"HF_ENDPOINT='%s' '%s' pull hf.co/org/tiny-GGUF:Q8_0 --models-dir '%s'\" /dev/null",
             endpoint, ea_test_binary(), d);
    ASSERT_EQ(ea_test_run(cmd, &out, NULL), 0);
    ASSERT(out && strstr(out, "\rpulling org/tiny-GGUF:Q8_0 ") && strstr(out, " MB/s") && strstr(out, "ETA "));
    ASSERT(strstr(out, "pulled org/tiny-GGUF:Q8_0: tiny-Q8_0.gguf"));
    free(out);
    set_mode(NULL);
}

EA_TESTS(EA_TEST(source_forms), EA_TEST(resume_after_cut), EA_TEST(range_ignored),
         EA_TEST(wrong_checksum), EA_TEST(not_found_and_auth), EA_TEST(full_disk),
         EA_TEST(unsupported_architecture), EA_TEST(concurrent_pulls), EA_TEST(ctrl_c_then_resume),
         EA_TEST(ctrl_c_while_waiting), EA_TEST(progress_display), EA_TEST(server_pull_endpoint))
