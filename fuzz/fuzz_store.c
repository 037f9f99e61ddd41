/* fuzz_store.c - libFuzzer target for what the model store parses from
 * outside: a manifest file, a Hugging Face file list (the JSON of
 * /api/models/ORG/REPO?blobs=true) and a pull source string. Each input is
 * fed to all three. Rejections must carry a message; an accepted manifest
 * must survive a JSON round trip unchanged; a picked file must be a .gguf
 * name with a sane sha256. Build: make fuzz; run: make fuzz-smoke. Seeds:
 * fuzz/corpus/store/. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "edgeagent/store.h"

static void check_manifest(const uint8_t *data, size_t size)
{
    struct ea_store_manifest m, back;
    struct ea_error err = {0};
    if (ea_store_manifest_parse((const char *)data, size, &m, &err) != EA_OK) {
        if (!err.msg[0])
            abort();
        return;
    }
    if (strlen(m.sha256) != 64 || !m.name[0])
        abort();
    char *j = ea_store_manifest_json(&m);
    if (!j)
        return; /* out of memory */
    struct ea_error e2 = {0};
    if (ea_store_manifest_parse(j, strlen(j), &back, &e2) != EA_OK)
        abort();
    /* dates and other free fields are copied, so the record is identical */
    if (memcmp(&m, &back, sizeof m) != 0)
        abort();
    ea_free(j);
}

static void check_list(const uint8_t *data, size_t size)
{
    static const char *quants[] = {"Q4_K_M", "Q8_0", NULL};
    for (int i = 0; i < 3; i++) {
        char picked[EA_STORE_NAME_MAX], sha[65];
        uint64_t fsize;
        struct ea_error err = {0};
        const char *quant = i < 2 ? quants[i] : NULL;
        const char *file = i == 2 ? "model-Q4_K_M.gguf" : NULL;
        if (ea_pull_pick_file((const char *)data, size, quant, file, picked, sizeof picked, &fsize,
                              sha, &err) != EA_OK) {
            if (!err.msg[0])
                abort();
            continue;
        }
        size_t n = strlen(picked);
        if (n < 5 || strcasecmp(picked + n - 5, ".gguf") != 0 || strstr(picked, ".."))
            abort();
        size_t sl = strlen(sha);
        if (sl != 0 && sl != 64)
            abort();
        for (size_t k = 0; k < sl; k++)
            if (!isxdigit((unsigned char)sha[k]) || isupper((unsigned char)sha[k]))
                abort();
    }
}

static void check_source(const uint8_t *data, size_t size)
{
    char s[EA_STORE_URL_MAX + 8];
    size_t n = size < sizeof s - 1 ? size : sizeof s - 1;
    memcpy(s, data, n);
    s[n] = '\0';
    struct ea_pull_source src;
    struct ea_error err = {0};
    if (ea_pull_parse_source(s, &src, &err) != EA_OK) {
        if (!err.msg[0])
            abort();
        return;
    }
    if (!src.name[0] || strlen(src.name) >= EA_STORE_NAME_MAX)
        abort();
    /* ORG/REPO: two segments, neither "." nor ".." (nor any dot-led name) */
    const char *slash = strchr(src.repo, '/');
    if (src.kind != EA_PULL_URL &&
        (!slash || src.repo[0] == '.' || slash[1] == '.' || !slash[1] || strchr(slash + 1, '/')))
        abort();
    if ((src.kind == EA_PULL_HF_FILE || src.kind == EA_PULL_URL) && strstr(src.file, ".."))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_manifest(data, size);
    check_list(data, size);
    check_source(data, size);
    return 0;
}
