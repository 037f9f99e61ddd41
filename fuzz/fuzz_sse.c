/* fuzz_sse.c - libFuzzer target for the Server-Sent Events parser
 * (src/router/sse.h; EA_TEST_NEEDS_NET: src/router/ is built only with the
 * server's libraries). The first byte picks the per-event cap (small caps
 * reach the cap paths), the second seeds how the rest is cut into chunks;
 * the rest is the stream. It is parsed whole and cut into chunks: both must
 * end with the same status and dispatch the same events (names and data,
 * hashed), every event within the cap. Build: make fuzz; run: make
 * fuzz-smoke. Seeds: fuzz/corpus/sse/. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "router/sse.h"

struct digest {
    uint64_t hash;
    unsigned long n;
    size_t max;
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static bool on_event(void *user, const char *event, const char *data, size_t len)
{
    struct digest *d = user;
    size_t en = strlen(event);
    /* the default name "message" may be longer than a tiny cap */
    if (len > d->max || (en > d->max && strcmp(event, "message")) || data[len] != '\0' || !en)
        abort();
    d->hash = fnv(d->hash, event, en + 1);
    d->hash = fnv(d->hash, &len, sizeof len);
    d->hash = fnv(d->hash, data, len);
    d->n++;
    return true;
}

static ea_status run(const char *s, size_t n, size_t cap, unsigned seed, struct digest *d)
{
    struct ea__sse p;
    ea__sse_init(&p, cap, on_event, d);
    d->hash = 0xcbf29ce484222325ull;
    d->n = 0;
    d->max = p.max_event;
    struct ea_error err = {0};
    ea_status st = EA_OK;
    size_t at = 0;
    uint32_t x = seed * 2654435761u + 1;
    while (at < n && !st) {
        size_t k = n - at;
        if (seed) { /* pieces of 0..16 bytes */
            x = x * 1103515245u + 12345u;
            size_t want = (x >> 16) % 17;
            if (want < k)
                k = want;
        }
        st = ea__sse_feed(&p, s + at, k, &err);
        at += k;
    }
    if (st && !err.msg[0])
        abort(); /* a failure explains itself */
    ea__sse_release(&p);
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t cap = data[0] < 128 ? (size_t)data[0] + 1 : 0; /* 0: the default cap */
    unsigned seed = (unsigned)data[1] + 1;
    const char *s = (const char *)data + 2;
    size_t n = size - 2;
    struct digest whole, cut;
    ea_status a = run(s, n, cap, 0, &whole);
    ea_status b = run(s, n, cap, seed, &cut);
    if (a != b || whole.n != cut.n || whole.hash != cut.hash)
        abort(); /* where the stream is cut must not matter */
    if (a != EA_OK && a != EA_ETOOBIG)
        abort();
    return 0;
}
