/* test_privacy.c - the privacy guard's engine (src/privacy/): the
 * evaluation set (tests/privacy_eval.h, generated from a seed) with
 * precision and recall per type printed and held to the targets; checksums,
 * context words, hard negatives and overlap resolution one by one; the
 * placeholder map across the texts of a request; JSON texts kept valid; the
 * streaming restorer over every split of a stream, with changed case,
 * escapes and markdown; the `privacy:` configuration (custom patterns, deny
 * lists, names, allow list, types, threshold) and its error messages;
 * concurrent detection; failures (allocation, match limit) reported, never
 * a crash; `edgeagent redact` as a user runs it. */
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>

#include "edgeagent/privacy.h"
#include "harness.h"
#include "privacy_eval.h"
#ifdef EA_HAVE_NET
#include "edgeagent/router.h"
#endif

static ea_privacy_detector *det_default(void)
{
    ea_privacy_detector *d = NULL;
    struct ea_error e = {0};
    ASSERT_OK(ea_privacy_detector_create(NULL, NULL, &d, &e), &e);
    return d;
}

/* ---- the evaluation set ---------------------------------------------- */

struct eval {
    const ea_privacy_detector *d;
    struct ea_privacy_entities ents;
    uint64_t tp[EA_PII_BUILTIN_COUNT], fp[EA_PII_BUILTIN_COUNT], fn[EA_PII_BUILTIN_COUNT];
    uint64_t exact[EA_PII_BUILTIN_COUNT];
    uint64_t texts, negatives, negative_fp, bytes;
    int shown_misses;
    bool overflow;
};

static const ea_privacy_detector *shown_det;
static void show(const char *what, const struct pe_text *t, size_t s, size_t e, uint32_t type)
{
    fprintf(stderr, "  %s %s [%zu,%zu) \"%.*s\" in: %.*s\n", what, ea_privacy_type_name(shown_det, type), s, e,
            (int)(e - s), t->buf + s, (int)(t->len < 300 ? t->len : 300), t->buf);
}

static void eval_one(const struct pe_text *t, bool negative, void *ud)
{
    struct eval *ev = ud;
    struct ea_error err = {0};
    ev->overflow |= t->overflow;
    ev->texts++;
    ev->negatives += negative;
    ev->bytes += t->len;
    if (ea_privacy_detect(ev->d, t->buf, t->len, &ev->ents, &err)) {
        fprintf(stderr, "detect failed: %s\n", err.msg);
        ev->overflow = true;
        return;
    }
    /* a gold span is found when a prediction of its type covers it */
    for (int g = 0; g < t->n; g++) {
        const struct pe_span *s = &t->spans[g];
        bool found = false, exact = false;
        for (size_t k = 0; k < ev->ents.n && !found; k++) {
            const struct ea_privacy_entity *p = &ev->ents.v[k];
            if (p->type == s->type && p->start <= s->start && p->end >= s->end) {
                found = true;
                exact = p->start == s->start && p->end == s->end;
            }
        }
        if (found) {
            ev->tp[s->type]++;
            ev->exact[s->type] += exact;
        } else {
            ev->fn[s->type]++;
            if (ev->shown_misses++ < 12)
                show("missed", t, s->start, s->end, s->type);
        }
    }
    /* a prediction is right when it overlaps a gold span of its type */
    for (size_t k = 0; k < ev->ents.n; k++) {
        const struct ea_privacy_entity *p = &ev->ents.v[k];
        bool ok = false;
        for (int g = 0; g < t->n && !ok; g++)
            ok = t->spans[g].type == p->type && p->start < t->spans[g].end && t->spans[g].start < p->end;
        if (!ok && p->type < EA_PII_BUILTIN_COUNT) {
            ev->fp[p->type]++;
            ev->negative_fp += negative;
            if (ev->shown_misses++ < 12)
                show("false", t, p->start, p->end, p->type);
        }
    }
}

/* Targets (issue 12): structured types recall >= 99%, precision >= 97%;
 * PERSON recall >= 90% (its precision is printed, not held). */
#define TARGET_RECALL 0.99
#define TARGET_PRECISION 0.97
#define TARGET_PERSON_RECALL 0.90

/* tests/data/privacy_eval.jsonl is what the generator (privacy_eval.h,
 * PE_SEED) makes: the file the tests read is not stale. */
static void collect_line(const struct pe_text *t, bool negative, void *ud)
{
    ASSERT(!t->overflow);
    ASSERT(pe_write_line(ud, t, negative));
}

static void eval_file_current(void)
{
#if !defined(__x86_64__)
    /* the generator calls its random source inside function arguments,
     * whose order of evaluation C leaves to the compiler: another
     * architecture makes other (equally valid) texts. The file is the set
     * every architecture tests against; it is made and checked on x86-64. */
    printf("    not compared here: tests/data/privacy_eval.jsonl is generated on x86-64\n");
    return;
#endif
    char *mem = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&mem, &n);
    ASSERT(f);
    pe_generate(PE_SEED, collect_line, f);
    fclose(f);
    size_t fn = 0;
    char *file = ea_test_read_file(pe_default_path(), &fn);
    if (!file)
        FAIL("%s is missing (make privacy-eval-data)", pe_default_path());
    if (fn != n || memcmp(file, mem, n))
        FAIL("%s is not what tests/privacy_eval.h generates: run make privacy-eval-data", pe_default_path());
    free(file);
    free(mem);
}

static void eval_set(void)
{
    static struct eval ev;
    memset(&ev, 0, sizeof ev);
    ev.d = shown_det = det_default();
    ASSERT(pe_load(pe_default_path(), eval_one, &ev) == PE_N_POSITIVE + PE_N_NEGATIVE);
    ASSERT(!ev.overflow);
    ASSERT(ev.texts - ev.negatives >= 3000);
    ASSERT(ev.negatives >= 1000);
    printf("evaluation set: %llu texts (%llu hard negatives), %llu bytes, seed %u\n",
           (unsigned long long)ev.texts, (unsigned long long)ev.negatives, (unsigned long long)ev.bytes,
           PE_SEED);
    printf("%-16s %6s %6s %6s %6s %9s %9s %7s\n", "type", "gold", "tp", "fn", "fp", "recall",
           "precision", "exact");
    bool ok = true;
    for (uint32_t t = 0; t < EA_PII_BUILTIN_COUNT; t++) {
        uint64_t gold = ev.tp[t] + ev.fn[t];
        double recall = gold ? (double)ev.tp[t] / (double)gold : 1.0;
        double precision = ev.tp[t] + ev.fp[t] ? (double)ev.tp[t] / (double)(ev.tp[t] + ev.fp[t]) : 1.0;
        printf("%-16s %6llu %6llu %6llu %6llu %8.2f%% %8.2f%% %6.1f%%\n", ea_privacy_type_name(ev.d, t),
               (unsigned long long)gold, (unsigned long long)ev.tp[t], (unsigned long long)ev.fn[t],
               (unsigned long long)ev.fp[t], 100 * recall, 100 * precision,
               ev.tp[t] ? 100.0 * (double)ev.exact[t] / (double)ev.tp[t] : 0.0);
        if (gold < 100) {
            printf("  too few gold spans of %s\n", ea_privacy_type_name(ev.d, t));
            ok = false;
        }
        if (t == EA_PII_PERSON ? recall < TARGET_PERSON_RECALL
                               : recall < TARGET_RECALL || precision < TARGET_PRECISION) {
            printf("  %s below target\n", ea_privacy_type_name(ev.d, t));
            ok = false;
        }
    }
    printf("false positives in the hard negatives: %llu\n", (unsigned long long)ev.negative_fp);
    ea_privacy_entities_release(&ev.ents);
    ea_privacy_detector_destroy((ea_privacy_detector *)ev.d);
    ASSERT(ok);
}


/* ---- one by one ------------------------------------------------------ */

/* The entities of text as "TYPE:value;TYPE:value" (sorted by start). */
static char *found(const ea_privacy_detector *d, const char *text)
{
    static char out[4096];
    struct ea_privacy_entities e = {0};
    struct ea_error err = {0};
    ASSERT_OK(ea_privacy_detect(d, text, strlen(text), &e, &err), &err);
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < e.n; i++) {
        ASSERT(e.v[i].start < e.v[i].end && e.v[i].end <= strlen(text));
        if (i)
            ASSERT(e.v[i - 1].end <= e.v[i].start); /* disjoint, in order */
        o += (size_t)snprintf(out + o, sizeof out - o, "%s%s:%.*s", i ? ";" : "", ea_privacy_type_name(d, e.v[i].type),
                              (int)(e.v[i].end - e.v[i].start), text + e.v[i].start);
    }
    ea_privacy_entities_release(&e);
    return out;
}

static void checksums(void)
{
    ea_privacy_detector *d = det_default();
    ASSERT_STR_EQ(found(d, "card 4111 1111 1111 1111 ok"), "CREDIT_CARD:4111 1111 1111 1111");
    ASSERT_STR_EQ(found(d, "card 4111 1111 1111 1112 ok"), ""); /* fails Luhn: nothing, not a phone */
    ASSERT_STR_EQ(found(d, "amex 3782-822463-10005"), "CREDIT_CARD:3782-822463-10005");
    ASSERT_STR_EQ(found(d, "grouped wrong 41 11111111 111111"), "");
    ASSERT_STR_EQ(found(d, "IBAN DE89 3704 0044 0532 0130 00."), "IBAN:DE89 3704 0044 0532 0130 00");
    ASSERT_STR_EQ(found(d, "IBAN DE88 3704 0044 0532 0130 00."), ""); /* mod-97 fails: no phone either */
    ASSERT_STR_EQ(found(d, "GB82WEST12345698765432 and GB82WEST1234569876543"), "IBAN:GB82WEST12345698765432");
    ASSERT_STR_EQ(found(d, "SSN 123-45-6789"), "US_SSN:123-45-6789");
    ASSERT_STR_EQ(found(d, "SSN 000-45-6789, 666-45-6789, 912-45-6789, 123-00-6789, 123-45-0000"), "");
    ASSERT_STR_EQ(found(d, "ip 256.1.1.1 and 10.0.0.256"), "");
    ASSERT_STR_EQ(found(d, "ip 2001:db8::ff00:42:8329 and fe80::1"), "IP_ADDRESS:2001:db8::ff00:42:8329;IP_ADDRESS:fe80::1");
    ASSERT_STR_EQ(found(d, "at 10:22:33 and 12:30, c++ std::vector"), "");
    ASSERT_STR_EQ(found(d, "born on 31 February 1990, born on 1990-13-01"), "");
    ASSERT_STR_EQ(found(d, "born on 29 February 1992"), "DATE_OF_BIRTH:29 February 1992");
    ea_privacy_detector_destroy(d);
}

static void context_words(void)
{
    ea_privacy_detector *d = det_default();
    ASSERT_STR_EQ(found(d, "call 4155552671 now"), "PHONE:4155552671"); /* a bare run needs a context word */
    ASSERT_STR_EQ(found(d, "we saw 4155552671 there"), "");
    ASSERT_STR_EQ(found(d, "order no. 415-555-2671 shipped"), ""); /* an order number, not a phone */
    ASSERT_STR_EQ(found(d, "phone 415-555-2671"), "PHONE:415-555-2671");
    ASSERT_STR_EQ(found(d, "account 1, call me at 415-555-2671"), "PHONE:415-555-2671"); /* the nearer word decides */
    ASSERT_STR_EQ(found(d, "order +44 20 7946 0958"), "PHONE:+44 20 7946 0958"); /* +CC stays a phone */
    ASSERT_STR_EQ(found(d, "my SSN is 123456789"), "US_SSN:123456789");
    ASSERT_STR_EQ(found(d, "the code 123456789"), "");
    ASSERT_STR_EQ(found(d, "server 10.1.2.3 is down"), "IP_ADDRESS:10.1.2.3");
    ASSERT_STR_EQ(found(d, "firmware version 1.2.3.4 is out"), "");
    ASSERT_STR_EQ(found(d, "the date 17 May 1990"), ""); /* a date is a birth date only with a context word */
    ASSERT_STR_EQ(found(d, "Ich bin am 17. Mai 1990 geboren."), "DATE_OF_BIRTH:17. Mai 1990");
    ASSERT_STR_EQ(found(d, "Hello John, this is Maria Lopez."), "PERSON:John;PERSON:Maria Lopez");
    ASSERT_STR_EQ(found(d, "Hello there, thanks Team."), "");
    ea_privacy_detector_destroy(d);
}

static void hard_negatives(void)
{
    static const char *const texts[] = {
        "request 123e4567-e89b-12d3-a456-426614174000 failed",
        "commit 3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39 fixed it, see 3f2a9c1",
        "upgrade to v2.14.1 or 10.0.19041.1508",
        "at 2024-05-17T10:22:33.123Z and 2024-05-17 10:22",
        "ISBN 978-3-16-148410-0 and ISBN-10: 0-306-40615-2",
        "it costs $1,234.56, 1.234,56 \xe2\x82\xac, EUR 99.90 or \xc2\xa3" "12.50",
        "Order #112-4567890-1234567 and order number 4155552671",
        "ts=1715940000 took 1715940000123 ms",
        "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "max_tokens: 4096, tokenizer: bpe-large, password: required",
    };
    ea_privacy_detector *d = det_default();
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        const char *f = found(d, texts[i]);
        if (f[0])
            FAIL("'%s' reported %s", texts[i], f);
    }
    ea_privacy_detector_destroy(d);
}

static void overlaps(void)
{
    ea_privacy_detector *d = det_default();
    /* the password@host of a URL is no e-mail address: the longer URL_CREDENTIALS wins */
    ASSERT_STR_EQ(found(d, "postgres://app:s3cret@db.example.com/prod"), "URL_CREDENTIALS:app:s3cret");
    ASSERT_STR_EQ(found(d, "mailto:bob.smith+x@mail.example.co.uk."), "EMAIL:bob.smith+x@mail.example.co.uk");
    ASSERT_STR_EQ(found(d, "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
                  "SECRET:eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk");
    ASSERT_STR_EQ(found(d, "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n-----END RSA PRIVATE KEY-----\n"),
                  "SECRET:-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n-----END RSA PRIVATE KEY-----");
    ASSERT_STR_EQ(found(d, "AKIAIOSFODNN7EXAMPLE,ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"),
                  "SECRET:AKIAIOSFODNN7EXAMPLE;SECRET:ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789");
    ASSERT_STR_EQ(found(d, "MAC 00:1A:2B:3C:4D:5E, 001a.2b3c.4d5e"), "MAC_ADDRESS:00:1A:2B:3C:4D:5E;MAC_ADDRESS:001a.2b3c.4d5e");
    ASSERT_STR_EQ(found(d, "Tel.: 090-4560-8075 496-16-0700"), "PHONE:090-4560-8075;US_SSN:496-16-0700");
    ea_privacy_detector_destroy(d);
}

/* ---- the map and redaction ------------------------------------------- */

static void map_across_texts(void)
{
    ea_privacy_detector *d = det_default();
    ea_privacy_map *m = NULL;
    struct ea_error err = {0};
    ASSERT_OK(ea_privacy_map_create(d, &m, &err), &err);
    const char *texts[3] = {"Mail bob@example.com or alice@example.org.", "As I said: bob@example.com.",
                            "call +1 415 555 2671, bob@example.com"};
    size_t lens[3], out_lens[3];
    char *outs[3];
    for (int i = 0; i < 3; i++)
        lens[i] = strlen(texts[i]);
    ASSERT_OK(ea_privacy_redact_texts(d, m, 3, texts, lens, NULL, outs, out_lens, &err), &err);
    ASSERT_STR_EQ(outs[0], "Mail <EMAIL_1> or <EMAIL_2>.");
    ASSERT_STR_EQ(outs[1], "As I said: <EMAIL_1>.");
    ASSERT_STR_EQ(outs[2], "call <PHONE_1>, <EMAIL_1>");
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(out_lens[i], strlen(outs[i]));
        ea_free(outs[i]);
    }
    ASSERT_EQ(ea_privacy_map_count(m, EA_PII_EMAIL), 2);
    ASSERT_EQ(ea_privacy_map_count(m, EA_PII_PHONE), 1);
    ASSERT_EQ(ea_privacy_map_count(m, EA_PII_IBAN), 0);
    ASSERT_EQ(ea_privacy_map_total(m), 3);
    /* the answer comes back with the values */
    char *back;
    size_t n;
    const char *answer = "Sent to <EMAIL_2>, cc <email_1>.";
    ASSERT_OK(ea_privacy_restore(m, EA_PRIVACY_PLAIN, answer, strlen(answer), &back, &n, &err), &err);
    ASSERT_STR_EQ(back, "Sent to alice@example.org, cc bob@example.com.");
    ea_free(back);
    /* entities with numbers and offsets into the input */
    struct ea_privacy_entities e = {0};
    char *out;
    ASSERT_OK(ea_privacy_redact(d, m, texts[0], lens[0], EA_PRIVACY_PLAIN, &out, &n, &e, &err), &err);
    ASSERT_EQ(e.n, 2);
    ASSERT_EQ(e.v[0].start, 5);
    ASSERT_EQ(e.v[0].end, 20);
    ASSERT_EQ(e.v[0].number, 1);
    ASSERT_EQ(e.v[1].number, 2);
    ea_free(out);
    ea_privacy_entities_release(&e);
    ea_privacy_map_destroy(m);
    ea_privacy_detector_destroy(d);
}

/* Tool-call arguments are JSON text: redacted, they stay JSON; restored
 * (JSON form), they are the original again, also with values that need
 * escaping (a private key's line breaks). */
static void json_texts(void)
{
    static const char args[] =
        "{\"to\":\"anna.schmidt@example.de\",\"body\":\"Dear Anna,\\nmy key:\\n-----BEGIN PRIVATE KEY-----\\n"
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n-----END PRIVATE KEY-----\\nCall +49 30 12345678\",\"n\":3}";
    ea_privacy_detector *d = det_default();
    ea_privacy_map *m = NULL;
    struct ea_error err = {0};
    ASSERT_OK(ea_privacy_map_create(d, &m, &err), &err);
    char *red, *back;
    size_t n, bn;
    ASSERT_OK(ea_privacy_redact(d, m, args, strlen(args), EA_PRIVACY_JSON, &red, &n, NULL, &err), &err);
    json_error_t je;
    json_t *j = json_loads(red, 0, &je);
    if (!j)
        FAIL("redacted JSON does not parse (%s): %s", je.text, red);
    const char *body = json_string_value(json_object_get(j, "body"));
    ASSERT(body && !strstr(body, "PRIVATE KEY") && !strstr(body, "12345678") && strstr(body, "<SECRET_1>"));
    ASSERT_STR_EQ(json_string_value(json_object_get(j, "to")), "<EMAIL_1>");
    json_decref(j);
    ASSERT_OK(ea_privacy_restore(m, EA_PRIVACY_JSON, red, n, &back, &bn, &err), &err);
    ASSERT_STR_EQ(back, args);
    ea_free(back);
    ea_free(red);
    /* a number outside strings becomes a string placeholder: still JSON */
    const char *num = "{\"phone\": 4155552671, \"note\": \"call +1 415 555 2671\"}";
    ASSERT_OK(ea_privacy_redact(d, m, num, strlen(num), EA_PRIVACY_JSON, &red, &n, NULL, &err), &err);
    ASSERT_STR_EQ(red, "{\"phone\": \"<PHONE_2>\", \"note\": \"call <PHONE_3>\"}"); /* PHONE_1: above */
    /* a value with quotes and a line break, restored into a JSON string */
    ea_privacy_map_destroy(m);
    ASSERT_OK(ea_privacy_map_create(d, &m, &err), &err);
    const char *plain = "key:\n-----BEGIN PRIVATE KEY-----\nAB\"C\\D\n-----END PRIVATE KEY-----";
    char *r2;
    ASSERT_OK(ea_privacy_redact(d, m, plain, strlen(plain), EA_PRIVACY_PLAIN, &r2, &n, NULL, &err), &err);
    ASSERT_STR_EQ(r2, "key:\n<SECRET_1>");
    const char *answer = "{\"a\":\"\\u003cSECRET_1\\u003e\"}";
    ASSERT_OK(ea_privacy_restore(m, EA_PRIVACY_JSON, answer, strlen(answer), &back, &bn, &err), &err);
    j = json_loads(back, 0, &je);
    if (!j)
        FAIL("restored JSON does not parse (%s): %s", je.text, back);
    ASSERT_STR_EQ(json_string_value(json_object_get(j, "a")), plain + 5);
    json_decref(j);
    ea_free(back);
    ea_free(r2);
    ea_free(red);
    ea_privacy_map_destroy(m);
    ea_privacy_detector_destroy(d);
}

/* ---- restoration ----------------------------------------------------- */

static ea_privacy_map *sample_map(ea_privacy_detector *d)
{
    ea_privacy_map *m = NULL;
    struct ea_error err = {0};
    ASSERT_OK(ea_privacy_map_create(d, &m, &err), &err);
    const char *t = "bob@example.com alice@example.org +44 20 7946 0958 4111 1111 1111 1111 "
                    "postgres://u:pw12@h.example.com";
    char *out;
    size_t n;
    ASSERT_OK(ea_privacy_redact(d, m, t, strlen(t), EA_PRIVACY_PLAIN, &out, &n, NULL, &err), &err);
    ASSERT_STR_EQ(out, "<EMAIL_1> <EMAIL_2> <PHONE_1> <CREDIT_CARD_1> postgres://<URL_CREDENTIALS_1>@h.example.com");
    ea_free(out);
    return m;
}

static char *restore_all(const ea_privacy_map *m, enum ea_privacy_text_form form, const char *t)
{
    static char buf[8192];
    char *out;
    size_t n;
    struct ea_error err = {0};
    ASSERT_OK(ea_privacy_restore(m, form, t, strlen(t), &out, &n, &err), &err);
    snprintf(buf, sizeof buf, "%s", out);
    ea_free(out);
    return buf;
}

static void restore_forms(void)
{
    ea_privacy_detector *d = det_default();
    ea_privacy_map *m = sample_map(d);
    ASSERT_STR_EQ(restore_all(m, EA_PRIVACY_PLAIN, "to <EMAIL_1>."), "to bob@example.com.");
    ASSERT_STR_EQ(restore_all(m, EA_PRIVACY_PLAIN, "to <email_1> and <Email_2>"), "to bob@example.com and alice@example.org");
    ASSERT_STR_EQ(restore_all(m, EA_PRIVACY_PLAIN, "**<EMAIL_1>**"), "**bob@example.com**");
    ASSERT_STR_EQ(restore_all(m, EA_PRIVACY_PLAIN, "`<PHONE_1>`"), "`+44 20 7946 0958`");
    ASSERT_STR_EQ(restore_all(m, EA_PRIVACY_PLAIN, "`EMAIL_2` and **CREDIT_CARD_1**"),
                  "`alice@example.org` and **4111 1111 1111 1111**");
    ASSERT_STR_EQ(restore_all(m, EA_PRIVACY_PLAIN, "<**EMAIL_1**> \\<EMAIL\\_2\\> &lt;PHONE_1&gt; < EMAIL_1 >"),
                  "**bob@example.com** alice@example.org +44 20 7946 0958 bob@example.com");
    ASSERT_STR_EQ(restore_all(m, EA_PRIVACY_PLAIN, "<credit_card_1> <URL_CREDENTIALS_1>"), "4111 1111 1111 1111 u:pw12");
    /* not the map's: left alone */
    ASSERT_STR_EQ(restore_all(m, EA_PRIVACY_PLAIN, "<EMAIL_3> <EMAIL_10> <EMAIL_01> <IBAN_1> EMAIL_1 <EMAIL_1x> <EMAIL 1>"),
                  "<EMAIL_3> <EMAIL_10> <EMAIL_01> <IBAN_1> EMAIL_1 <EMAIL_1x> <EMAIL 1>");
    ASSERT_STR_EQ(restore_all(m, EA_PRIVACY_PLAIN, "a <b> c <EMAIL_1"), "a <b> c <EMAIL_1");
    ASSERT_STR_EQ(restore_all(m, EA_PRIVACY_JSON, "\"\\u003cEMAIL_1\\u003e \\\\<EMAIL\\\\_2\\\\>\""),
                  "\"bob@example.com alice@example.org\"");
    ea_privacy_map_destroy(m);
    ea_privacy_detector_destroy(d);
}

/* Every split of a stream, and random multi-splits, give the one-shot
 * restoration; the restorer never holds more than max_hold bytes, and text
 * that cannot become a placeholder is never held. */
static void restore_streaming(void)
{
    ea_privacy_detector *d = det_default();
    ea_privacy_map *m = sample_map(d);
    static const char *const streams[] = {
        "Hi! I wrote to <EMAIL_1> and **<EMAIL_2>**; call `PHONE_1` or <phone_1>. Card \\<CREDIT\\_CARD\\_1\\>, "
        "&lt;EMAIL_1&gt; <EMAIL_3> <EMAIL_1 <<EMAIL_2>> *EMAIL_1* ***EMAIL_2*** <**URL_CREDENTIALS_1**>",
        "no placeholders at all, just <angle> brackets & ampersands `code` **bold**",
        "<EMAIL_1><EMAIL_2><PHONE_1>`EMAIL_1``EMAIL_2`",
    };
    struct ea_error err = {0};
    for (size_t s = 0; s < sizeof streams / sizeof streams[0]; s++) {
        const char *t = streams[s];
        size_t len = strlen(t);
        char whole[4096];
        snprintf(whole, sizeof whole, "%s", restore_all(m, EA_PRIVACY_PLAIN, t));
        uint64_t rng = 12345 + s;
        for (size_t trial = 0; trial < len + 300; trial++) {
            ea_privacy_restorer *r = NULL;
            ASSERT_OK(ea_privacy_restorer_create(m, EA_PRIVACY_PLAIN, &r, &err), &err);
            char got[4096];
            size_t g = 0, pos = 0;
            while (pos < len) {
                size_t k;
                if (trial < len) /* two pieces at every position */
                    k = pos == 0 && trial ? trial : len - pos;
                else { /* random pieces of 0..7 bytes */
                    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                    k = (size_t)(rng >> 33) % 8;
                }
                if (k > len - pos)
                    k = len - pos;
                const char *o;
                size_t on;
                ASSERT_OK(ea_privacy_restorer_feed(r, t + pos, k, &o, &on, &err), &err);
                memcpy(got + g, o, on);
                g += on;
                pos += k;
                if (!strchr(t, '<') && !strchr(t, '`') && !strchr(t, '*') && !strchr(t, '&') && !strchr(t, '\\'))
                    ASSERT_EQ(g, pos); /* nothing held back */
            }
            const char *o;
            size_t on;
            ASSERT_OK(ea_privacy_restorer_finish(r, &o, &on, &err), &err);
            memcpy(got + g, o, on);
            g += on;
            got[g] = '\0';
            if (strcmp(got, whole))
                FAIL("stream %zu trial %zu:\n  got  %s\n  want %s", s, trial, got, whole);
            ea_privacy_restorer_destroy(r);
        }
    }
    /* the held tail: only what can still become a placeholder */
    ea_privacy_restorer *r = NULL;
    ASSERT_OK(ea_privacy_restorer_create(m, EA_PRIVACY_PLAIN, &r, &err), &err);
    const char *o;
    size_t on;
    ASSERT_OK(ea_privacy_restorer_feed(r, "Hello", 5, &o, &on, &err), &err);
    ASSERT_EQ(on, 5); /* the first token is not delayed */
    ASSERT_OK(ea_privacy_restorer_feed(r, " <CREDIT_CA", 11, &o, &on, &err), &err);
    ASSERT_EQ(on, 1);
    ASSERT_OK(ea_privacy_restorer_feed(r, "RX", 2, &o, &on, &err), &err);
    ASSERT_EQ(on, 12); /* no type is named CREDIT_CAR X...: flushed */
    ASSERT_OK(ea_privacy_restorer_feed(r, " <URL_CREDENTIALS_", 18, &o, &on, &err), &err);
    ASSERT_EQ(on, 1);
    ASSERT(18 - 1 <= ea_privacy_restorer_max_hold(r));
    ASSERT_OK(ea_privacy_restorer_feed(r, "1>!", 3, &o, &on, &err), &err);
    ASSERT_EQ(on, 7);
    ASSERT(!memcmp(o, "u:pw12!", 7));
    /* a long run of text that is all placeholder-start bytes is still bounded */
    char many[600];
    memset(many, '<', sizeof many);
    ASSERT_OK(ea_privacy_restorer_feed(r, many, sizeof many, &o, &on, &err), &err);
    ASSERT(sizeof many - on <= ea_privacy_restorer_max_hold(r));
    ea_privacy_restorer_destroy(r);
    ea_privacy_map_destroy(m);
    ea_privacy_detector_destroy(d);
}

/* ---- configuration --------------------------------------------------- */

#ifdef EA_HAVE_NET
static ea_status detector_from(const char *yaml, ea_privacy_detector **d, struct ea_error *err)
{
    struct ea_router_config *cfg = NULL;
    ea_status s = ea_router_config_parse(yaml, strlen(yaml), "edgeagent.yaml", &cfg, err);
    if (!s)
        s = ea_privacy_detector_create(cfg->privacy, cfg->file, d, err);
    ea_router_config_destroy(cfg);
    return s;
}

static void config_schema(void)
{
    static const char yaml[] =
        "privacy:\n"
        "  types: [email, PHONE, PERSON, EMPLOYEE_ID, PROJECT]\n"
        "  threshold: 0.6\n"
        "  names: [Ada Lovelace, 'Grace Hopper']\n"
        "  allow: [support@example.com]\n"
        "  custom:\n"
        "    - name: EMPLOYEE_ID\n"
        "      pattern: 'EMP-[0-9]{6}'\n"
        "      score: 0.9\n"
        "    - name: PROJECT\n"
        "      deny: [Bluebird, Night Jar]\n";
    ea_privacy_detector *d = NULL;
    struct ea_error err = {0};
    ASSERT_OK(detector_from(yaml, &d, &err), &err);
    ASSERT_EQ(ea_privacy_type_count(d), EA_PII_BUILTIN_COUNT + 2);
    ASSERT_STR_EQ(ea_privacy_type_name(d, EA_PII_BUILTIN_COUNT), "EMPLOYEE_ID");
    ASSERT(ea_privacy_type_enabled(d, EA_PII_EMAIL) && !ea_privacy_type_enabled(d, EA_PII_IBAN));
    ASSERT_STR_EQ(found(d, "EMP-123456 met ada lovelace about project bluebird and the night  jar, "
                           "bob@example.com, support@example.com, 4111 1111 1111 1111, emp-123456"),
                  "EMPLOYEE_ID:EMP-123456;PERSON:ada lovelace;PROJECT:bluebird;PROJECT:night  jar;EMAIL:bob@example.com");
    /* a custom type gets placeholders like the others */
    ea_privacy_map *m = NULL;
    ASSERT_OK(ea_privacy_map_create(d, &m, &err), &err);
    char *out;
    size_t n;
    ASSERT_OK(ea_privacy_redact(d, m, "id EMP-000042", 13, EA_PRIVACY_PLAIN, &out, &n, NULL, &err), &err);
    ASSERT_STR_EQ(out, "id <EMPLOYEE_ID_1>");
    ea_free(out);
    ASSERT_STR_EQ(restore_all(m, EA_PRIVACY_PLAIN, "`employee_id_1`"), "`EMP-000042`");
    ea_privacy_map_destroy(m);
    ea_privacy_detector_destroy(d);
    /* an empty section is the defaults */
    ASSERT_OK(detector_from("privacy:\n", &d, &err), &err);
    ASSERT_EQ(ea_privacy_type_count(d), EA_PII_BUILTIN_COUNT);
    ea_privacy_detector_destroy(d);
}

static void config_errors(void)
{
    static const struct {
        const char *yaml, *msg;
    } cases[] = {
        {"privacy:\n  redact: [email]\n",
         "edgeagent.yaml:2:3: privacy.redact: unknown key (expected one of: types, threshold, names, allow, custom)"},
        {"privacy: [email]\n", "edgeagent.yaml:1:10: privacy: expected a mapping (types, threshold, names, allow, custom), got a list"},
        {"privacy:\n  types: [EMAIL, ZIP]\n", "edgeagent.yaml:2:18: privacy.types[1]: unknown type 'ZIP'"},
        {"privacy:\n  threshold: 1.5\n", "edgeagent.yaml:2:14: privacy.threshold: expected a number in (0, 1], got '1.5'"},
        {"privacy:\n  custom:\n    - name: X\n      pattern: 'a('\n",
         "edgeagent.yaml:4:16: privacy.custom[0].pattern: bad regular expression: missing closing parenthesis"},
        {"privacy:\n  custom:\n    - name: EMAIL\n      deny: [x]\n",
         "edgeagent.yaml:3:13: privacy.custom[0].name: 'EMAIL' is already a type (built-in)"},
        {"privacy:\n  custom:\n    - name: lower\n      deny: [x]\n",
         "edgeagent.yaml:3:13: privacy.custom[0].name: 'lower' is not a type name"},
        {"privacy:\n  custom:\n    - name: X\n", "edgeagent.yaml:3:7: privacy.custom[0]: needs exactly one of pattern and deny"},
        {"privacy:\n  custom:\n    - name: X\n      pattern: 'a*'\n",
         "edgeagent.yaml:4:16: privacy.custom[0].pattern: the pattern matches the empty text"},
        {"privacy:\n  names: []\n", "edgeagent.yaml:2:10: privacy.names: empty list"},
        {"privacy:\n  allow: [ok, {a: b}]\n", "edgeagent.yaml:2:15: privacy.allow[1]: expected a string, got a mapping"},
        {"privacy:\n  custom:\n    - name: X\n      deny: [x]\n      score: 0\n",
         "edgeagent.yaml:5:14: privacy.custom[0].score: expected a number in (0, 1], got '0'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ea_privacy_detector *d = NULL;
        struct ea_error err = {0};
        ea_status s = detector_from(cases[i].yaml, &d, &err);
        if (s != EA_EFORMAT || d || strncmp(err.msg, cases[i].msg, strlen(cases[i].msg)))
            FAIL("case %zu: status %s, message\n  %s\nwant\n  %s", i, ea_status_name(s), err.msg, cases[i].msg);
    }
}

/* The examples of docs/PRIVACY.md and docs/ROUTING.md load as written. */
static void docs_examples(void)
{
    const char *docs[] = {"docs/PRIVACY.md", "docs/ROUTING.md"};
    for (int k = 0; k < 2; k++) {
        const char *src = getenv("EA_SOURCE_DIR");
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", src ? src : ".", docs[k]);
        size_t n;
        char *md = ea_test_read_file(path, &n);
        if (!md)
            FAIL("%s: cannot read (run from the source tree or set EA_SOURCE_DIR)", path);
        char *start = strstr(md, "```yaml\n");
        ASSERT(start);
        start += 8;
        char *end = strstr(start, "\n```\n");
        ASSERT(end);
        end[1] = '\0';
        ea_privacy_detector *d = NULL;
        struct ea_error err = {0};
        ASSERT_OK(detector_from(start, &d, &err), &err);
        uint32_t t;
        ASSERT(ea_privacy_type_find(d, "EMPLOYEE_ID", &t));
        ASSERT_STR_EQ(found(d, "Ada Lovelace has EMP-123456"), "PERSON:Ada Lovelace;EMPLOYEE_ID:EMP-123456");
        ea_privacy_detector_destroy(d);
        free(md);
    }
}
#else
static void docs_examples(void) { SKIP("built without the YAML reader"); }
static void config_schema(void) { SKIP("built without the YAML reader"); }
static void config_errors(void) { SKIP("built without the YAML reader"); }
#endif

/* ---- failing closed -------------------------------------------------- */

#ifdef EA_HAVE_NET
/* A custom pattern that backtracks without end hits the match limit: the
 * detection fails (the caller keeps the request local), it does not hang. */
static void fail_closed(void)
{
    ea_privacy_detector *d = NULL;
    struct ea_error err = {0};
    ASSERT_OK(detector_from("privacy:\n  custom:\n    - name: SLOW\n      pattern: '(a|aa)+$'\n", &d, &err), &err);
    char text[200];
    memset(text, 'a', sizeof text - 2);
    text[sizeof text - 2] = 'b';
    text[sizeof text - 1] = '\0';
    struct ea_privacy_entities e = {0};
    ea_status s = ea_privacy_detect(d, text, strlen(text), &e, &err);
    ASSERT_EQ(s, EA_EINTERNAL);
    ASSERT(strstr(err.msg, "SLOW"));
    ASSERT_EQ(e.n, 0);
    ea_privacy_map *m = NULL;
    ASSERT_OK(ea_privacy_map_create(d, &m, &err), &err);
    char *out = (char *)1;
    size_t n;
    ASSERT_EQ(ea_privacy_redact(d, m, text, strlen(text), EA_PRIVACY_PLAIN, &out, &n, NULL, &err), EA_EINTERNAL);
    ASSERT(out == NULL);
    /* all or nothing over the texts of a request: the first one redacted
     * fine, the second failed, nothing is handed back */
    const char *texts[2] = {"mail bob@example.com", text};
    size_t lens[2] = {strlen(texts[0]), strlen(text)}, out_lens[2];
    char *outs[2];
    ASSERT_EQ(ea_privacy_redact_texts(d, m, 2, texts, lens, NULL, outs, out_lens, &err), EA_EINTERNAL);
    ASSERT(outs[0] == NULL && outs[1] == NULL);
    ea_privacy_entities_release(&e);
    ea_privacy_map_destroy(m);
    ea_privacy_detector_destroy(d);
}
#else
static void fail_closed(void) { SKIP("built without the YAML reader"); }
#endif

/* Every allocation of create, detect, redact and restore failing in turn:
 * an error, never a crash or a leak (the ASan build checks the latter). */
static void alloc_failures(void)
{
    const char *t = "Dear John Smith, mail bob@example.com or call +1 415 555 2671; card 4111 1111 1111 1111.";
    int ok_runs = 0;
    for (long k = 1; k < 4000 && ok_runs < 3; k++) {
        ea_privacy_detector *d = NULL;
        ea_privacy_map *m = NULL;
        char *out = NULL, *back = NULL;
        size_t n, bn;
        struct ea_error err = {0};
        ea_alloc_fail_after(k);
        ea_status s = ea_privacy_detector_create(NULL, NULL, &d, &err);
        if (!s)
            s = ea_privacy_map_create(d, &m, &err);
        if (!s)
            s = ea_privacy_redact(d, m, t, strlen(t), EA_PRIVACY_PLAIN, &out, &n, NULL, &err);
        if (!s)
            s = ea_privacy_restore(m, EA_PRIVACY_PLAIN, out, n, &back, &bn, &err);
        ea_alloc_fail_after(0);
        if (s)
            ASSERT(s == EA_ENOMEM || s == EA_EINTERNAL);
        else {
            ASSERT_STR_EQ(back, t);
            ok_runs++;
        }
        ea_free(back);
        ea_free(out);
        ea_privacy_map_destroy(m);
        ea_privacy_detector_destroy(d);
    }
    ASSERT(ok_runs == 3);
}

/* ---- threads ---------------------------------------------------------- */

#define N_THREADS 4
struct thread_job {
    const ea_privacy_detector *d;
    const char *const *texts;
    size_t n;
    uint64_t sum; /* a digest of every entity found */
    int failed;
};

static void *detect_all(void *p)
{
    struct thread_job *j = p;
    struct ea_privacy_entities e = {0};
    struct ea_error err = {0};
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < j->n; i++) {
            if (ea_privacy_detect(j->d, j->texts[i], strlen(j->texts[i]), &e, &err))
                j->failed++;
            for (size_t k = 0; k < e.n; k++)
                j->sum = j->sum * 31 + e.v[k].start * 7 + e.v[k].end * 13 + e.v[k].type;
        }
    ea_privacy_entities_release(&e);
    return NULL;
}

static void threads(void)
{
    static const char *const texts[] = {
        "Hi, my name is John Smith, mail john@example.com, call (415) 555-2671.",
        "IBAN DE89 3704 0044 0532 0130 00, card 4111-1111-1111-1111, SSN 123-45-6789",
        "ssh root@10.0.0.1; fe80::1; 00:1A:2B:3C:4D:5E; born on 1 May 1980",
        "postgres://a:b@c.example.com AKIAIOSFODNN7EXAMPLE password: hunter2!",
    };
    ea_privacy_detector *d = det_default();
    struct thread_job one = {d, texts, 4, 0, 0};
    detect_all(&one);
    pthread_t th[N_THREADS];
    struct thread_job jobs[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        jobs[i] = (struct thread_job){d, texts, 4, 0, 0};
        ASSERT_EQ(pthread_create(&th[i], NULL, detect_all, &jobs[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(th[i], NULL);
        ASSERT_EQ(jobs[i].failed, 0);
        ASSERT_U64_EQ(jobs[i].sum, one.sum);
    }
    ea_privacy_detector_destroy(d);
}

/* ---- the CLI ---------------------------------------------------------- */

static char *redact_cli(const char *args, int want_rc)
{
    char cmd[8192], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "'%s' redact %s", ea_test_binary(), args);
    int rc = ea_test_run(cmd, &out, &err);
    if (rc != want_rc)
        FAIL("redact %s: exit %d (want %d)\nstdout: %s\nstderr: %s", args, rc, want_rc, out ? out : "",
             err ? err : "");
    if (want_rc) {
        free(out);
        return err;
    }
    free(err);
    return out;
}

static void cli_redact(void)
{
    char *out = redact_cli("'Mail bob@example.com, call +1 415 555 2671, mail bob@example.com'", 0);
    ASSERT_STR_EQ(out, "Mail <EMAIL_1>, call <PHONE_1>, mail <EMAIL_1>\n");
    free(out);
    out = redact_cli("--json 'Hi, I am Anna Müller: anna@example.de'", 0);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    if (!j)
        FAIL("--json output does not parse (%s): %s", je.text, out);
    ASSERT_EQ(json_object_size(j), 2);
    ASSERT_STR_EQ(json_string_value(json_object_get(j, "text")), "Hi, I am <PERSON_1>: <EMAIL_1>");
    json_t *ents = json_object_get(j, "entities");
    ASSERT_EQ(json_array_size(ents), 2);
    json_t *e0 = json_array_get(ents, 0), *e1 = json_array_get(ents, 1);
    ASSERT_STR_EQ(json_string_value(json_object_get(e0, "type")), "PERSON");
    ASSERT_EQ(json_integer_value(json_object_get(e0, "start")), 9);
    ASSERT_EQ(json_integer_value(json_object_get(e0, "end")), 21); /* bytes: ü is two */
    ASSERT_STR_EQ(json_string_value(json_object_get(e0, "placeholder")), "<PERSON_1>");
    ASSERT_STR_EQ(json_string_value(json_object_get(e1, "type")), "EMAIL");
    ASSERT_EQ(json_integer_value(json_object_get(e1, "start")), 23);
    ASSERT_EQ(json_integer_value(json_object_get(e1, "end")), 38);
    json_decref(j);
    free(out);
    /* stdin and --file keep the text as it is (no newline added) */
    out = redact_cli("- < /dev/null", 0);
    ASSERT_STR_EQ(out, "");
    free(out);
    char path[4096];
    snprintf(path, sizeof path, "%s", ea_test_tmp_path("redact_in.txt"));
    FILE *f = fopen(path, "wb");
    ASSERT(f);
    fputs("SSN 123-45-6789\nIBAN GB82 WEST 1234 5698 7654 32\n", f);
    fclose(f);
    char args[4200];
    snprintf(args, sizeof args, "--file '%s'", path);
    out = redact_cli(args, 0);
    ASSERT_STR_EQ(out, "SSN <US_SSN_1>\nIBAN <IBAN_1>\n");
    free(out);
    snprintf(args, sizeof args, "- < '%s'", path);
    out = redact_cli(args, 0);
    ASSERT_STR_EQ(out, "SSN <US_SSN_1>\nIBAN <IBAN_1>\n");
    free(out);
#ifdef EA_HAVE_NET
    snprintf(path, sizeof path, "%s", ea_test_tmp_path("redact.yaml"));
    f = fopen(path, "wb");
    ASSERT(f);
    fputs("privacy:\n  custom:\n    - name: TICKET\n      pattern: 'TCK-[0-9]+'\n", f);
    fclose(f);
    snprintf(args, sizeof args, "--config '%s' 'see TCK-42 and TCK-42'", path);
    out = redact_cli(args, 0);
    ASSERT_STR_EQ(out, "see <TICKET_1> and <TICKET_1>\n");
    free(out);
    f = fopen(path, "wb");
    ASSERT(f);
    fputs("privacy:\n  thresold: 0.5\n", f);
    fclose(f);
    snprintf(args, sizeof args, "--config '%s' x", path);
    char *err = redact_cli(args, 1);
    ASSERT(strstr(err, "redact.yaml:2:3: privacy.thresold: unknown key"));
    free(err);
#endif
    char *err2 = redact_cli("", 2);
    ASSERT(strstr(err2, "exactly one"));
    free(err2);
    err2 = redact_cli("--bogus x", 2);
    ASSERT(strstr(err2, "unknown option"));
    free(err2);
}

EA_TESTS(EA_TEST(eval_file_current), EA_TEST(eval_set), EA_TEST(checksums), EA_TEST(context_words), EA_TEST(hard_negatives),
         EA_TEST(overlaps), EA_TEST(map_across_texts), EA_TEST(json_texts), EA_TEST(restore_forms),
         EA_TEST(restore_streaming), EA_TEST(config_schema), EA_TEST(config_errors), EA_TEST(docs_examples), EA_TEST(fail_closed),
         EA_TEST(alloc_failures), EA_TEST(threads), EA_TEST(cli_redact))
