/* fuzz_privacy_restore.c - libFuzzer target for the streaming restorer
 * (src/privacy/restore.c). The input is split into chunks at positions
 * drawn from its first bytes; fed chunk by chunk, the concatenated output
 * equals the one-shot restoration of the whole, in the plain and the JSON
 * form, and the restorer never holds more than its max_hold bytes of a
 * stream that cannot complete a placeholder. Build: make fuzz; run: make
 * fuzz-smoke. Seeds: fuzz/corpus/privacy_restore/. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "edgeagent/privacy.h"

static ea_privacy_detector *det;
static ea_privacy_map *map;

static void setup(void)
{
    struct ea_error err = {0};
    if (ea_privacy_detector_create(NULL, NULL, &det, &err) || ea_privacy_map_create(det, &map, &err))
        abort();
    static const char t[] = "bob@example.com alice@example.org +44 20 7946 0958 4111 1111 1111 1111 "
                            "postgres://u:p\"w@h.example.com key:\n-----BEGIN PRIVATE KEY-----\nAB\n"
                            "-----END PRIVATE KEY----- 10.0.0.1 fe80::1 00:1A:2B:3C:4D:5E";
    char *out;
    size_t n;
    if (ea_privacy_redact(det, map, t, sizeof t - 1, EA_PRIVACY_PLAIN, &out, &n, NULL, &err))
        abort();
    ea_free(out);
}

static void check(const uint8_t *data, size_t size, enum ea_privacy_text_form form)
{
    struct ea_error err = {0};
    size_t nsplit = size ? data[0] % 16 : 0;
    const uint8_t *cuts = data + (size ? 1 : 0);
    size_t ncuts = nsplit < (size ? size - 1 : 0) ? nsplit : 0;
    const char *text = (const char *)(cuts + ncuts);
    size_t len = size - (size_t)(text - (const char *)data);
    char *whole;
    size_t wn;
    if (ea_privacy_restore(map, form, text, len, &whole, &wn, &err))
        abort();
    ea_privacy_restorer *r;
    if (ea_privacy_restorer_create(map, form, &r, &err))
        abort();
    char *got = malloc(wn + 1);
    size_t g = 0, pos = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t k = c < ncuts ? cuts[c] % 64 : len - pos;
        if (k > len - pos)
            k = len - pos;
        const char *o;
        size_t on;
        if (ea_privacy_restorer_feed(r, text + pos, k, &o, &on, &err) || g + on > wn)
            abort();
        memcpy(got + g, o, on);
        g += on;
        pos += k;
    }
    const char *o;
    size_t on;
    if (ea_privacy_restorer_finish(r, &o, &on, &err) || g + on != wn)
        abort();
    memcpy(got + g, o, on);
    if (memcmp(got, whole, wn))
        abort();
    /* nothing that can start a placeholder: nothing held */
    if (!memchr(text, '<', len) && !memchr(text, '&', len) && !memchr(text, '\\', len) &&
        !memchr(text, '`', len) && !memchr(text, '*', len) && (wn != len || memcmp(whole, text, len)))
        abort();
    free(got);
    ea_free(whole);
    ea_privacy_restorer_destroy(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!map)
        setup();
    check(data, size, EA_PRIVACY_PLAIN);
    check(data, size, EA_PRIVACY_JSON);
    return 0;
}
