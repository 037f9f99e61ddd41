/* stop.c - stop strings matched across token boundaries (see engine.h).
 * Does not hold: token-level stop conditions (EOS, max tokens: scheduler). */
#include <string.h>

#include "edgeagent/engine.h"

#define MAX_STOPS 16
#define MAX_STOP_LEN 1024

ea_status ea_stop_init(struct ea_stop_matcher *m, const char *const *stops, int n,
                       struct ea_error *err)
{
    memset(m, 0, sizeof *m);
    if (n < 0 || n > MAX_STOPS)
        return ea_error_set(err, EA_EINVAL, "stop: at most %d stop strings", MAX_STOPS);
    if (n == 0)
        return EA_OK;
    m->stops = ea_calloc((size_t)n, sizeof *m->stops);
    m->lens = ea_calloc((size_t)n, sizeof *m->lens);
    if (!m->stops || !m->lens) {
        ea_stop_release(m);
        return ea_error_set(err, EA_ENOMEM, "stop: out of memory");
    }
    m->n = n;
    for (int i = 0; i < n; i++) {
        size_t len = stops[i] ? strlen(stops[i]) : 0;
        if (len == 0 || len > MAX_STOP_LEN) {
            ea_stop_release(m);
            return ea_error_set(err, EA_EINVAL, "stop: stop string %d is empty or longer than %d bytes",
                                i, MAX_STOP_LEN);
        }
        if (!(m->stops[i] = ea_strdup(stops[i]))) {
            ea_stop_release(m);
            return ea_error_set(err, EA_ENOMEM, "stop: out of memory");
        }
        m->lens[i] = len;
        if (len > m->max_len)
            m->max_len = len;
    }
    m->held = ea_malloc(m->max_len);
    if (!m->held) {
        ea_stop_release(m);
        return ea_error_set(err, EA_ENOMEM, "stop: out of memory");
    }
    return EA_OK;
}

void ea_stop_release(struct ea_stop_matcher *m)
{
    for (int i = 0; m->stops && i < m->n; i++)
        ea_free(m->stops[i]);
    ea_free(m->stops);
    ea_free(m->lens);
    ea_free(m->held);
    memset(m, 0, sizeof *m);
}

bool ea_stop_feed(struct ea_stop_matcher *m, const char *piece, size_t len, char *out,
                  size_t *out_len)
{
    size_t n = m->n_held + len;
    if (m->n_held)
        memcpy(out, m->held, m->n_held);
    if (len)
        memcpy(out + m->n_held, piece, len);
    m->n_held = 0;
    if (m->n == 0) {
        *out_len = n;
        return false;
    }
    /* leftmost complete match of any stop string */
    size_t first = n;
    for (int i = 0; i < m->n; i++) {
        if (m->lens[i] > n)
            continue;
        for (size_t at = 0; at + m->lens[i] <= n && at < first; at++)
            if (memcmp(out + at, m->stops[i], m->lens[i]) == 0) {
                first = at;
                break;
            }
    }
    if (first < n) {
        *out_len = first;
        return true;
    }
    /* hold back the longest tail that is a proper prefix of a stop string */
    size_t hold = 0;
    for (int i = 0; i < m->n; i++) {
        size_t maxh = m->lens[i] - 1 < n ? m->lens[i] - 1 : n;
        for (size_t h = maxh; h > hold; h--)
            if (memcmp(out + n - h, m->stops[i], h) == 0) {
                hold = h;
                break;
            }
    }
    if (hold)
        memcpy(m->held, out + n - hold, hold);
    m->n_held = hold;
    *out_len = n - hold;
    return false;
}

size_t ea_stop_flush(struct ea_stop_matcher *m, char *out)
{
    size_t n = m->n_held;
    if (n)
        memcpy(out, m->held, n);
    m->n_held = 0;
    return n;
}
