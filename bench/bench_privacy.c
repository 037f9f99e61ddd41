/* bench_privacy.c - the privacy detector's speed on one core: detection
 * MB/s over prose without personal data (generated: words, punctuation,
 * small numbers), detection MB/s over the evaluation set (each text
 * detected on its own, as requests are), and the time to redact a 2 KB
 * chat request (a fresh map, four messages, a tool call's arguments and a
 * tool result, ea_privacy_redact_texts) as p50/p99. Times are this
 * thread's CPU time (the machine may be shared); wall times are printed
 * beside. Not a test: nothing is asserted.
 *
 *   build/bench/bench_privacy [MB=8] [REQUESTS=2000]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/privacy_eval.h"
#include "bench_util.h"
#include "edgeagent/privacy.h"

static const char *const words[] = {
    "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be", "by",
    "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "had",
    "they", "you", "were", "there", "one", "all", "we", "can", "her", "has", "been", "if", "more",
    "when", "will", "would", "who", "so", "no", "model", "request", "server", "latency", "memory",
    "device", "answer", "question", "weather", "kitchen", "garden", "schedule", "meeting",
    "tomorrow", "because", "through", "between", "important", "different", "following",
    "London", "Monday", "Python", "GPU", "API", "However", "The", "It", "We", "Please", "Thanks",
    "results", "performance", "configuration", "understand", "explain", "summary", "example"};

/* Prose without personal data: n bytes into out. */
static void prose(char *out, size_t n)
{
    size_t o = 0;
    unsigned k = 0;
    while (o + 32 < n) {
        const char *w = PE_PICK(words);
        size_t wl = strlen(w);
        memcpy(out + o, w, wl);
        o += wl;
        k++;
        if (pe_chance(3))
            o += (size_t)snprintf(out + o, n - o, " %u", pe_rand(100));
        out[o++] = k % 13 == 0 ? '.' : k % 7 == 0 ? ',' : ' ';
        if (k % 13 == 0)
            out[o++] = k % 39 == 0 ? '\n' : ' ';
    }
    out[o] = '\0';
}

struct evalset {
    char *buf;
    size_t *off, *len;
    size_t n, bytes, cap;
};

static void collect(const struct pe_text *t, bool negative, void *ud)
{
    (void)negative;
    struct evalset *e = ud;
    if (e->n == e->cap || e->bytes + t->len > (size_t)8 << 20)
        return;
    memcpy(e->buf + e->bytes, t->buf, t->len);
    e->off[e->n] = e->bytes;
    e->len[e->n++] = t->len;
    e->bytes += t->len;
}

/* A 2 KB chat request: system, user, assistant, user, then a tool call's
 * arguments and the tool's result (JSON texts, redacted in the JSON form). */
#define CHAT_TEXTS 6
static size_t chat_request(char *msgs[CHAT_TEXTS], size_t lens[CHAT_TEXTS])
{
    static const char *const parts[CHAT_TEXTS] = {
        "You are a helpful assistant for the support team of a small online shop. Answer briefly, "
        "in the language of the customer, and never promise refunds without a ticket. Always "
        "check the order status in the tool results before answering. Keep a friendly tone and "
        "end with a question when something is unclear. Do not invent tracking numbers.",
        "Hi, my name is Anna Schmidt and I ordered a coffee grinder three weeks ago (order "
        "#112-4567890-1234567) but it has not arrived. My email is anna.schmidt+shop@example.de "
        "and you can call me at +49 30 12345678 or (415) 555-2671. I paid with my card 4111 1111 "
        "1111 1111. Could you check what happened? The delivery address is in Berlin, the package "
        "was sent with DHL according to the confirmation email. Thanks a lot!",
        "Thank you, Anna. I checked your order: the parcel was handed to the carrier on May 2nd "
        "and the last scan was at the Berlin hub on May 4th. Sometimes parcels wait there for a "
        "few days. I can open an investigation with the carrier, which usually takes 2-3 working "
        "days. Would you like me to do that, or would you prefer a replacement to be sent?",
        "Please open the investigation. If it is lost, send a replacement to the same address. "
        "Also my IBAN for any refund is DE89 3704 0044 0532 0130 00. My colleague Jonas Weber "
        "(jonas.weber@example.de) may call you from 030 98765432 about this. Best regards, Anna",
        "{\"order_id\":\"112-4567890-1234567\",\"customer_email\":\"anna.schmidt+shop@example.de\","
        "\"reason\":\"parcel lost\"}",
        "{\"order\":{\"id\":\"112-4567890-1234567\",\"status\":\"in_transit\",\"carrier\":\"DHL\","
        "\"tracking\":\"JJD000390007843215\",\"last_scan\":\"2024-05-04T09:12:44Z\",\"hub\":\"Berlin\","
        "\"customer\":{\"name\":\"Anna Schmidt\",\"email\":\"anna.schmidt+shop@example.de\","
        "\"phone\":\"+49 30 12345678\",\"address\":\"Musterstr. 12, 10115 Berlin\"},"
        "\"payment\":{\"method\":\"card\",\"last4\":\"1111\",\"amount\":\"EUR 89.90\"},"
        "\"investigation\":null,\"notes\":\"Customer called on 2024-05-06, asked for an update.\"}}"};
    size_t total = 0;
    for (int i = 0; i < CHAT_TEXTS; i++) {
        msgs[i] = (char *)parts[i];
        lens[i] = strlen(parts[i]);
        total += lens[i];
    }
    return total;
}

static int cmp_d(const void *a, const void *b) { return bench_cmp_double(a, b); }

/* CPU time of this thread: the machine may be shared, and "one core" is
 * what the targets speak of. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    long mb = argc > 1 ? atol(argv[1]) : 8, reqs = argc > 2 ? atol(argv[2]) : 2000;
    if (mb < 1 || mb > 256 || reqs < 10 || reqs > 1000000) {
        fprintf(stderr, "usage: %s [MB=8 (1..256)] [REQUESTS=2000 (10..1e6)]\n", argv[0]);
        return 2;
    }
    ea_privacy_detector *d = NULL;
    struct ea_error err = {0};
    if (ea_privacy_detector_create(NULL, NULL, &d, &err)) {
        fprintf(stderr, "detector: %s\n", err.msg);
        return 1;
    }
    struct ea_privacy_entities ents = {0};

    /* 1. prose without personal data, in 64 KB texts */
    size_t n = (size_t)mb << 20, chunk = 64 << 10;
    char *text = malloc(n + 64);
    pe_state = 1;
    prose(text, n);
    n = strlen(text);
    size_t found = 0;
    double t0 = bench_now(), c0 = cpu_now();
    for (size_t off = 0; off < n; off += chunk) {
        size_t len = off + chunk <= n ? chunk : n - off;
        if (ea_privacy_detect(d, text + off, len, &ents, &err)) {
            fprintf(stderr, "detect: %s\n", err.msg);
            return 1;
        }
        found += ents.n;
    }
    double dt = bench_now() - t0, dc = cpu_now() - c0;
    printf("prose without PII: %.1f MB in %.3f s wall, %.3f s CPU: %.1f MB/s per CPU second (%.1f wall) "
           "(%zu entities found)\n", (double)n / 1e6, dt, dc, (double)n / 1e6 / dc, (double)n / 1e6 / dt, found);

    /* 2. the evaluation set, text by text */
    struct evalset e = {0};
    e.cap = PE_N_POSITIVE + PE_N_NEGATIVE;
    e.buf = malloc((size_t)8 << 20);
    e.off = malloc(e.cap * sizeof *e.off);
    e.len = malloc(e.cap * sizeof *e.len);
    if (pe_load(pe_default_path(), collect, &e) < 0) /* run from the source directory, or set EA_SOURCE_DIR */
        return 1;
    found = 0;
    int rounds = 5;
    t0 = bench_now();
    c0 = cpu_now();
    for (int r = 0; r < rounds; r++)
        for (size_t i = 0; i < e.n; i++) {
            if (ea_privacy_detect(d, e.buf + e.off[i], e.len[i], &ents, &err)) {
                fprintf(stderr, "detect: %s\n", err.msg);
                return 1;
            }
            found += ents.n;
        }
    dt = bench_now() - t0;
    dc = cpu_now() - c0;
    printf("evaluation set: %zu texts, %.2f MB x %d rounds in %.3f s wall, %.3f s CPU: %.1f MB/s per CPU "
           "second (%.1f wall) (%zu entities per round)\n", e.n, (double)e.bytes / 1e6, rounds, dt, dc,
           (double)e.bytes * rounds / 1e6 / dc, (double)e.bytes * rounds / 1e6 / dt, found / (size_t)rounds);

    /* 3. redaction of a 2 KB chat request: map, four messages, destroy */
    char *msgs[CHAT_TEXTS];
    size_t lens[CHAT_TEXTS], out_lens[CHAT_TEXTS];
    char *outs[CHAT_TEXTS];
    static const enum ea_privacy_text_form forms[CHAT_TEXTS] = {EA_PRIVACY_PLAIN, EA_PRIVACY_PLAIN,
                                                                 EA_PRIVACY_PLAIN, EA_PRIVACY_PLAIN,
                                                                 EA_PRIVACY_JSON, EA_PRIVACY_JSON};
    size_t total = chat_request(msgs, lens);
    double *times = malloc((size_t)reqs * sizeof *times);
    size_t n_ent = 0;
    for (long i = -reqs / 10; i < reqs; i++) { /* the first tenth warms up */
        double a = cpu_now();
        ea_privacy_map *m = NULL;
        if (ea_privacy_map_create(d, &m, &err) ||
            ea_privacy_redact_texts(d, m, CHAT_TEXTS, (const char *const *)msgs, lens, forms, outs, out_lens,
                                    &err)) {
            fprintf(stderr, "redact: %s\n", err.msg);
            return 1;
        }
        n_ent = ea_privacy_map_total(m);
        for (int k = 0; k < CHAT_TEXTS; k++)
            ea_free(outs[k]);
        ea_privacy_map_destroy(m);
        if (i >= 0)
            times[i] = cpu_now() - a;
    }
    qsort(times, (size_t)reqs, sizeof *times, cmp_d);
    printf("redaction of a %zu-byte chat request (%d texts, %zu distinct values), CPU time: p50 %.1f us, p99 %.1f us, "
           "max %.1f us over %ld requests\n",
           total, CHAT_TEXTS, n_ent, times[reqs / 2] * 1e6, times[reqs * 99 / 100] * 1e6, times[reqs - 1] * 1e6, reqs);
    free(times);
    free(e.buf);
    free(e.off);
    free(e.len);
    free(text);
    ea_privacy_entities_release(&ents);
    ea_privacy_detector_destroy(d);
    return 0;
}
