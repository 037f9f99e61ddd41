/* fuzz_privacy_detect.c - libFuzzer target for the privacy detector and
 * redaction (src/privacy/). Any input is detected without error (or with
 * a reported match-limit error), giving entities that are in range, sorted,
 * disjoint and of known types; redacting then restoring gives the input
 * back when it holds nothing that reads as a placeholder; JSON text stays
 * JSON when redacted in the JSON form. Build: make fuzz; run: make
 * fuzz-smoke. Seeds: fuzz/corpus/privacy_detect/. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "edgeagent/privacy.h"

static ea_privacy_detector *det;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ea_error err = {0};
    if (!det && ea_privacy_detector_create(NULL, NULL, &det, &err))
        abort();
    const char *text = (const char *)data;
    struct ea_privacy_entities e = {0};
    ea_status s = ea_privacy_detect(det, text, size, &e, &err);
    if (s && s != EA_EINTERNAL && s != EA_ETOOBIG)
        abort();
    for (size_t i = 0; !s && i < e.n; i++) {
        const struct ea_privacy_entity *x = &e.v[i];
        if (x->start >= x->end || x->end > size || x->type >= ea_privacy_type_count(det) ||
            !(x->score >= 0.5f && x->score <= 1.0f) || (i && e.v[i - 1].end > x->start))
            abort();
    }
    ea_privacy_entities_release(&e);

    ea_privacy_map *m = NULL;
    if (ea_privacy_map_create(det, &m, &err))
        abort();
    char *red = NULL, *back = NULL;
    size_t rn = 0, bn = 0;
    if (!ea_privacy_redact(det, m, text, size, EA_PRIVACY_PLAIN, &red, &rn, NULL, &err)) {
        if (ea_privacy_restore(m, EA_PRIVACY_PLAIN, red, rn, &back, &bn, &err))
            abort();
        bool marks = false; /* what could read as a placeholder already */
        for (size_t i = 0; i < size && !marks; i++)
            marks = strchr("<`*&\\", data[i]) && data[i];
        if (!marks && (bn != size || memcmp(back, data, size)))
            abort();
    }
    ea_free(red);
    ea_free(back);
    red = NULL;
    json_error_t je;
    json_t *j = json_loadb(text, size, JSON_DECODE_ANY, &je);
    if (j && !ea_privacy_redact(det, m, text, size, EA_PRIVACY_JSON, &red, &rn, NULL, &err)) {
        json_t *k = json_loadb(red, rn, JSON_DECODE_ANY, &je);
        if (!k)
            abort(); /* a placeholder cut a JSON escape */
        json_decref(k);
    }
    json_decref(j);
    ea_free(red);
    ea_privacy_map_destroy(m);
    return 0;
}
