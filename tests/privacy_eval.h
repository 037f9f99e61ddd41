/* privacy_eval.h - the privacy evaluation set, generated from a seed (the
 * same seed, the same texts, on every machine): texts with labelled spans of
 * every type, in many formats, positions and containers (plain sentences in
 * six languages, JSON documents, code and configuration files, e-mails with
 * signatures, logs), and hard negatives (order numbers, versions,
 * timestamps, ISBNs, prices, commit hashes, UUIDs, numbers that fail their
 * type's checksum) that must not be reported.
 *
 * The formats are those people write (phones with parentheses, dots,
 * spaces, +CC and extensions; cards with spaces or dashes; compressed IPv6;
 * e-mail plus tags and subdomains; dates in several languages), not the
 * detector's patterns: when a format is missed, the detector is fixed, the
 * format stays.
 *
 * The set lives in tests/data/privacy_eval.jsonl (written by
 * tools/gen_privacy_eval.c: `make privacy-eval-data`); the tests, the
 * zero-leak test and the benchmark read that file (pe_load), and
 * test_privacy checks that it is what this generator makes. Header-only.
 * Does not hold: scoring.
 */
#ifndef EA_PRIVACY_EVAL_H
#define EA_PRIVACY_EVAL_H

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeagent/privacy.h"

#define PE_TEXT_MAX 4096
#define PE_MAX_SPANS 16
#define PE_N_POSITIVE 3200
#define PE_N_NEGATIVE 1200
#define PE_SEED 20261207u

struct pe_span {
    uint32_t start, end;
    uint32_t type; /* enum ea_pii_type */
};

struct pe_text {
    char buf[PE_TEXT_MAX];
    size_t len;
    struct pe_span spans[PE_MAX_SPANS];
    int n;
    bool json;     /* writes are escaped as JSON string content */
    bool overflow; /* a bug of the generator: the test fails on it */
};

/* ---- random numbers (splitmix64) ------------------------------------- */

static uint64_t pe_state;
static uint64_t pe_next(void)
{
    uint64_t z = (pe_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static unsigned pe_rand(unsigned n) { return (unsigned)(pe_next() % n); }
static bool pe_chance(unsigned pct) { return pe_rand(100) < pct; }
#define PE_PICK(arr) ((arr)[pe_rand((unsigned)(sizeof(arr) / sizeof((arr)[0])))])

/* ---- writing --------------------------------------------------------- */

static void pe_raw(struct pe_text *t, const char *s, size_t n)
{
    if (t->len + n >= PE_TEXT_MAX) {
        t->overflow = true;
        return;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static void pe_put(struct pe_text *t, const char *s)
{
    if (!t->json) {
        pe_raw(t, s, strlen(s));
        return;
    }
    for (; *s; s++) {
        switch (*s) {
        case '"': pe_raw(t, "\\\"", 2); break;
        case '\\': pe_raw(t, "\\\\", 2); break;
        case '\n': pe_raw(t, "\\n", 2); break;
        case '\t': pe_raw(t, "\\t", 2); break;
        default: pe_raw(t, s, 1);
        }
    }
}

static void pe_putf(struct pe_text *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void pe_putf(struct pe_text *t, const char *fmt, ...)
{
    char b[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    pe_put(t, b);
}

/* An entity: written (escaped in JSON) and labelled. */
static void pe_ent(struct pe_text *t, uint32_t type, const char *value)
{
    size_t start = t->len;
    pe_put(t, value);
    if (t->n == PE_MAX_SPANS) {
        t->overflow = true;
        return;
    }
    t->spans[t->n++] = (struct pe_span){(uint32_t)start, (uint32_t)t->len, type};
}

/* ---- values ---------------------------------------------------------- */

static const char *const pe_first[] = {
    "John", "Mary", "Anna", "James", "Olivia", "Liam", "Emma", "Noah", "Sophia", "Lucas", "Mia",
    "Ethan", "Chloe", "Daniel", "Grace", "Thomas", "Laura", "Michael", "Sarah", "David", "Julia",
    "Jürgen", "Jörg", "Björn", "Lukas", "Felix", "Lena", "Katharina", "Maximilian", "François",
    "Amélie", "Céline", "Jean-Luc", "Hélène", "Benoît", "José", "María", "Lucía", "Javier", "Sofía",
    "Álvaro", "Giulia", "Marco", "Francesca", "Lorenzo", "Chiara", "Priya", "Rahul", "Ananya",
    "Arjun", "Kenji", "Yuki", "Hiroshi", "Sakura", "Seán", "Siobhán", "Aoife", "Wei", "Mei", "Jin",
    "Olga", "Dmitri", "Agnieszka", "Łukasz", "Zoë", "Noémie", "Oskar", "Ingrid", "Lars", "Astrid",
    "Fatima", "Omar", "Aisha", "Yusuf", "Kwame", "Amara", "Tomás", "Inês", "João", "Mateo"};
static const char *const pe_last[] = {
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson",
    "Taylor", "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White", "Harris", "Clark",
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Schäfer", "Köhler", "Groß", "Dubois",
    "Lefèvre", "Moreau", "Laurent", "Girard", "Bonnet", "García", "Martínez", "Rodríguez",
    "López", "Núñez", "Fernández", "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano",
    "Sharma", "Patel", "Gupta", "Iyer", "Reddy", "Tanaka", "Suzuki", "Takahashi", "Watanabe",
    "O'Brien", "O'Connor", "McDonald", "MacLeod", "Kowalski", "Nowak", "Wiśniewski", "Ivanov",
    "Petrov", "Andersson", "Johansson", "Nielsen", "Hansen", "Okafor", "Mensah", "Haddad",
    "Silva", "Santos", "Costa", "Oliveira", "Smith-Jones", "Lee", "Chen", "Wang", "Kim", "Park"};

static void pe_name(char *out, size_t size, bool full)
{
    const char *f = PE_PICK(pe_first), *l = PE_PICK(pe_last);
    unsigned k = pe_rand(10);
    if (!full)
        snprintf(out, size, "%s", pe_chance(70) ? f : l);
    else if (k == 0)
        snprintf(out, size, "%s %c. %s", f, 'A' + pe_rand(26), l);
    else if (k == 1)
        snprintf(out, size, "%s %s", f, pe_chance(50) ? "van der Berg" : "de la Cruz");
    else
        snprintf(out, size, "%s %s", f, l);
}

/* ASCII only: for e-mail local parts */
static void pe_ascii_lower(char *s)
{
    char *o = s;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 'A' && *p <= 'Z')
            *o++ = (char)(*p + 32);
        else if ((*p >= 'a' && *p <= 'z') || *p == '.' || *p == '-')
            *o++ = (char)*p;
        else if (*p >= 0xC0)
            *o++ = "aeiou"[*p % 5];
    }
    *o = '\0';
}

static void pe_digits(char *out, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        out[i] = (char)('0' + pe_rand(10));
    out[n] = '\0';
}

static void pe_email(char *out, size_t size)
{
    static const char *const domains[] = {
        "gmail.com", "example.org", "mail.example.co.uk", "corp.example.de", "uni-heidelberg.de",
        "company.io", "outlook.com", "yahoo.fr", "web.de", "posteo.net", "startup.ai",
        "eng.bigcorp.com", "hospital.example.org", "mx.example.com.br", "t-online.de", "icloud.com",
        "Example.COM", "research.kyoto-u.ac.jp", "my-company.travel"};
    char f[64], l[64];
    snprintf(f, sizeof f, "%s", PE_PICK(pe_first));
    snprintf(l, sizeof l, "%s", PE_PICK(pe_last));
    pe_ascii_lower(f);
    pe_ascii_lower(l);
    const char *d = PE_PICK(domains);
    switch (pe_rand(8)) {
    case 0: snprintf(out, size, "%s.%s@%s", f, l, d); break;
    case 1: snprintf(out, size, "%s_%s%u@%s", f, l, pe_rand(100), d); break;
    case 2: snprintf(out, size, "%c%s@%s", f[0], l, d); break;
    case 3: snprintf(out, size, "%s+%s@%s", f, pe_chance(50) ? "news" : "shop2024", d); break;
    case 4: snprintf(out, size, "%s.%s+work@%s", f, l, d); break;
    case 5: snprintf(out, size, "%s%u@%s", f, 1950 + pe_rand(60), d); break;
    case 6: /* capitals, as people type them */
        snprintf(out, size, "%c%s.%c%s@%s", f[0] - 32, f + 1, l[0] >= 'a' ? l[0] - 32 : l[0], l + 1, d);
        break;
    default: snprintf(out, size, "%s-%s@%s", l, f, d); break;
    }
}

static void pe_phone(char *out, size_t size)
{
    char a[16], b[16], c[16], d[16];
    unsigned area = 201 + pe_rand(780), exch = 200 + pe_rand(800);
    if (area % 100 == 11)
        area++;
    pe_digits(d, 4);
    switch (pe_rand(44)) {
    /* more ways people write them */
    case 34: snprintf(out, size, "+1 %u.%u.%s", area, exch, d); break;
    case 35: snprintf(out, size, "%u %u %s", area, exch, d); break;
    case 36: pe_digits(a, 8); snprintf(out, size, "+49-30-%s", a); break;
    case 37: pe_digits(a, 2); pe_digits(b, 2); snprintf(out, size, "+33 (0)1 %s %s %s 89", a, b, a); break;
    case 38: pe_digits(a, 4); snprintf(out, size, "0044 20 7946 %s", a); break;
    case 39: pe_digits(a, 4); snprintf(out, size, "+81-90-%s-%s", a, d); break;
    case 40: pe_digits(a, 4); snprintf(out, size, "+61 (0)2 %s %s", a, d); break;
    case 41: snprintf(out, size, "1 (800) %u-%s", exch, d); break;
    case 42: pe_digits(a, 3); snprintf(out, size, "+44 161 %s %s", a, d); break;
    case 43: pe_digits(a, 6); snprintf(out, size, "+49 (171) %s", a); break;
    /* United States / Canada */
    case 0: snprintf(out, size, "(%u) %u-%s", area, exch, d); break;
    case 1: snprintf(out, size, "%u-%u-%s", area, exch, d); break;
    case 2: snprintf(out, size, "%u.%u.%s", area, exch, d); break;
    case 3: snprintf(out, size, "+1 %u %u %s", area, exch, d); break;
    case 4: snprintf(out, size, "+1-%u-%u-%s", area, exch, d); break;
    case 5: snprintf(out, size, "1-800-%u-%s", exch, d); break;
    case 6: snprintf(out, size, "+1%u%u%s", area, exch, d); break;
    case 7: snprintf(out, size, "(%u)%u-%s", area, exch, d); break;
    case 8: snprintf(out, size, "%u-%u-%s ext. %u", area, exch, d, 10 + pe_rand(900)); break;
    case 9: snprintf(out, size, "+1 (%u) %u-%s x%u", area, exch, d, 100 + pe_rand(900)); break;
    /* United Kingdom */
    case 10: pe_digits(a, 4); snprintf(out, size, "+44 20 7946 %s", a); break;
    case 11: pe_digits(a, 4); snprintf(out, size, "020 7946 %s", a); break;
    case 12: pe_digits(a, 6); snprintf(out, size, "07700 %s", a); break;
    case 13: pe_digits(a, 6); snprintf(out, size, "+44 7700 %s", a); break;
    case 14: pe_digits(a, 4); snprintf(out, size, "+44 (0)20 7946 %s", a); break;
    case 15: pe_digits(a, 6); snprintf(out, size, "01632 %s", a); break;
    /* Germany */
    case 16: pe_digits(a, 8); snprintf(out, size, "+49 30 %s", a); break;
    case 17: pe_digits(a, 8); snprintf(out, size, "030 %s", a); break;
    case 18: pe_digits(a, 7); snprintf(out, size, "030/%s", a); break;
    case 19: pe_digits(a, 7); snprintf(out, size, "0171 %s", a); break;
    case 20: pe_digits(a, 7); snprintf(out, size, "+49 171 %s", a); break;
    case 21: pe_digits(a, 7); snprintf(out, size, "+49 (0)89 %s", a); break;
    /* France */
    case 22: pe_digits(a, 2); pe_digits(b, 2); pe_digits(c, 2);
        snprintf(out, size, "+33 1 %s %s %s %02u", a, b, c, pe_rand(100)); break;
    case 23: pe_digits(a, 2); pe_digits(b, 2); pe_digits(c, 2);
        snprintf(out, size, "06 %s %s %s %02u", a, b, c, pe_rand(100)); break;
    case 24: pe_digits(a, 2); pe_digits(b, 2); pe_digits(c, 2);
        snprintf(out, size, "01.%s.%s.%s.%02u", a, b, c, pe_rand(100)); break;
    /* India */
    case 25: pe_digits(a, 4); pe_digits(b, 5); snprintf(out, size, "+91 9%s %s", a, b); break;
    case 26: pe_digits(a, 4); pe_digits(b, 5); snprintf(out, size, "09%s %s", a, b); break;
    case 27: pe_digits(a, 9); snprintf(out, size, "+91-8%s", a); break;
    /* Japan */
    case 28: pe_digits(a, 4); snprintf(out, size, "03-%s-%s", a, d); break;
    case 29: pe_digits(a, 4); snprintf(out, size, "+81 3-%s-%s", a, d); break;
    case 30: pe_digits(a, 4); snprintf(out, size, "090-%s-%s", a, d); break;
    /* Australia */
    case 31: pe_digits(a, 4); snprintf(out, size, "(02) %s %s", a, d); break;
    case 32: pe_digits(a, 3); pe_digits(b, 3); snprintf(out, size, "0412 %s %s", a, b); break;
    default: pe_digits(a, 3); pe_digits(b, 3); snprintf(out, size, "+61 412 %s %s", a, b); break;
    }
}

static void pe_luhn_fill(char *d, unsigned n) /* d[0..n-1) set; writes the check digit */
{
    unsigned sum = 0;
    for (unsigned i = 0; i + 1 < n; i++) {
        unsigned v = (unsigned)(d[n - 2 - i] - '0');
        if (i % 2 == 0) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
    }
    d[n - 1] = (char)('0' + (10 - sum % 10) % 10);
    d[n] = '\0';
}

/* A card number (digits only) of a real brand's prefix and length. */
static unsigned pe_card_digits(char *d)
{
    static const char *const prefixes[] = {"4", "4", "51", "53", "55", "2221", "2720", "34", "37",
                                           "6011", "65", "3530", "36", "4"};
    static const unsigned lengths[] = {16, 16, 16, 16, 16, 16, 16, 15, 15, 16, 16, 16, 14, 13};
    unsigned k = pe_rand((unsigned)(sizeof lengths / sizeof lengths[0]));
    size_t pl = strlen(prefixes[k]);
    memcpy(d, prefixes[k], pl);
    for (size_t i = pl; i + 1 < lengths[k]; i++)
        d[i] = (char)('0' + pe_rand(10));
    pe_luhn_fill(d, lengths[k]);
    return lengths[k];
}

static void pe_card(char *out, size_t size)
{
    char d[24];
    unsigned n = pe_card_digits(d);
    unsigned style = pe_rand(3); /* plain, spaces, dashes */
    char sep = style == 1 ? ' ' : '-';
    if (style == 0) {
        snprintf(out, size, "%s", d);
        return;
    }
    size_t o = 0;
    if (n == 15 || n == 14) { /* Amex 4-6-5, Diners 4-6-4 */
        for (unsigned i = 0; i < n; i++) {
            if (i == 4 || i == 10)
                out[o++] = sep;
            out[o++] = d[i];
        }
    } else {
        for (unsigned i = 0; i < n; i++) {
            if (i && i % 4 == 0)
                out[o++] = sep;
            out[o++] = d[i];
        }
    }
    out[o] = '\0';
}

/* IBAN: a country's BBAN shape, the check digits computed (ISO 13616). */
static void pe_iban(char *out, size_t size, bool valid)
{
    static const struct {
        const char *cc, *shape; /* n: digit, a: capital letter, c: either */
    } countries[] = {
        {"DE", "nnnnnnnnnnnnnnnnnn"}, {"GB", "aaaannnnnnnnnnnnnn"}, {"FR", "nnnnnnnnnncccccccccccnn"},
        {"ES", "nnnnnnnnnnnnnnnnnnnn"}, {"IT", "annnnnnnnnncccccccccccc"}, {"NL", "aaaannnnnnnnnn"},
        {"CH", "nnnnncccccccccccc"}, {"AT", "nnnnnnnnnnnnnnnn"}, {"BE", "nnnnnnnnnnnn"},
        {"PL", "nnnnnnnnnnnnnnnnnnnnnnnn"}, {"SE", "nnnnnnnnnnnnnnnnnnnn"}, {"IE", "aaaannnnnnnnnnnnnn"},
        {"PT", "nnnnnnnnnnnnnnnnnnnnn"}, {"NO", "nnnnnnnnnnn"}, {"DK", "nnnnnnnnnnnnnn"}};
    unsigned k = pe_rand((unsigned)(sizeof countries / sizeof countries[0]));
    char bban[40];
    size_t n = strlen(countries[k].shape);
    for (size_t i = 0; i < n; i++) {
        char s = countries[k].shape[i];
        bban[i] = s == 'n' || (s == 'c' && pe_chance(70)) ? (char)('0' + pe_rand(10)) : (char)('A' + pe_rand(26));
    }
    bban[n] = '\0';
    /* check digits: BBAN + CC + "00" as a number mod 97, then 98 - r */
    char tmp[48];
    snprintf(tmp, sizeof tmp, "%s%s00", bban, countries[k].cc);
    unsigned r = 0;
    for (const char *p = tmp; *p; p++)
        r = *p >= '0' && *p <= '9' ? (r * 10 + (unsigned)(*p - '0')) % 97
                                   : (r * 100 + (unsigned)(*p - 'A' + 10)) % 97;
    unsigned check = 98 - r;
    if (!valid)
        check = (check + 1 + pe_rand(90)) % 100;
    char full[48];
    snprintf(full, sizeof full, "%s%02u%s", countries[k].cc, check, bban);
    if (pe_chance(50)) { /* printed in groups of four */
        size_t o = 0, fl = strlen(full);
        for (size_t i = 0; i < fl && o + 2 < size; i++) {
            if (i && i % 4 == 0)
                out[o++] = ' ';
            out[o++] = full[i];
        }
        out[o] = '\0';
    } else {
        snprintf(out, size, "%s", full);
    }
}

static void pe_ssn(char *out, size_t size, unsigned style)
{
    unsigned area = 1 + pe_rand(898);
    if (area == 666)
        area = 667;
    unsigned grp = 1 + pe_rand(99), ser = 1 + pe_rand(9999);
    const char *sep = style == 0 ? "-" : style == 1 ? " " : "";
    snprintf(out, size, "%03u%s%02u%s%04u", area, sep, grp, sep, ser);
}

static void pe_ipv4(char *out, size_t size)
{
    switch (pe_rand(4)) {
    case 0: snprintf(out, size, "192.168.%u.%u", pe_rand(256), 1 + pe_rand(254)); break;
    case 1: snprintf(out, size, "10.%u.%u.%u", pe_rand(256), pe_rand(256), 1 + pe_rand(254)); break;
    case 2: snprintf(out, size, "172.%u.%u.%u", 16 + pe_rand(16), pe_rand(256), 1 + pe_rand(254)); break;
    default: snprintf(out, size, "%u.%u.%u.%u", 11 + pe_rand(212), pe_rand(256), pe_rand(256), 1 + pe_rand(254)); break;
    }
}

static void pe_ipv6(char *out, size_t size)
{
    unsigned g[8];
    for (int i = 0; i < 8; i++)
        g[i] = pe_rand(65536);
    switch (pe_rand(7)) {
    case 0: snprintf(out, size, "2001:0db8:%04x:%04x:%04x:%04x:%04x:%04x", g[2], g[3], g[4], g[5], g[6], g[7]); break;
    case 1: snprintf(out, size, "2001:db8::%x:%x", g[6], g[7]); break;
    case 2: snprintf(out, size, "fe80::%x:%x:%x:%x", g[4], g[5], g[6], g[7]); break;
    case 3: snprintf(out, size, "::ffff:192.0.2.%u", 1 + pe_rand(254)); break;
    case 4: snprintf(out, size, "2A02:%X:%X::%X", g[1], g[2], g[7]); break;
    case 5: snprintf(out, size, "2001:db8:%x::1", g[2]); break;
    default: snprintf(out, size, "%x:%x:%x:%x:%x:%x:%x:%x", 0x2000 + g[0] % 0x1000, g[1], g[2], g[3], g[4], g[5], g[6], g[7]); break;
    }
}

static void pe_mac(char *out, size_t size)
{
    unsigned b[6];
    for (int i = 0; i < 6; i++)
        b[i] = pe_rand(256);
    switch (pe_rand(4)) {
    case 0: snprintf(out, size, "%02X:%02X:%02X:%02X:%02X:%02X", b[0], b[1], b[2], b[3], b[4], b[5]); break;
    case 1: snprintf(out, size, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5]); break;
    case 2: snprintf(out, size, "%02X-%02X-%02X-%02X-%02X-%02X", b[0], b[1], b[2], b[3], b[4], b[5]); break;
    default: snprintf(out, size, "%02x%02x.%02x%02x.%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5]); break;
    }
}

static const char *const pe_months_en[] = {"January", "February", "March", "April", "May", "June", "July",
                                           "August", "September", "October", "November", "December"};
static const char *const pe_months_de[] = {"Januar", "Februar", "März", "April", "Mai", "Juni", "Juli",
                                           "August", "September", "Oktober", "November", "Dezember"};
static const char *const pe_months_fr[] = {"janvier", "février", "mars", "avril", "mai", "juin", "juillet",
                                           "août", "septembre", "octobre", "novembre", "décembre"};
static const char *const pe_months_es[] = {"enero", "febrero", "marzo", "abril", "mayo", "junio", "julio",
                                           "agosto", "septiembre", "octubre", "noviembre", "diciembre"};

static void pe_secret(char *out, size_t size)
{
    static const char b62[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    static const char up36[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    char r[128];
    for (int i = 0; i < 100; i++)
        r[i] = b62[pe_rand(62)];
    r[100] = '\0';
    switch (pe_rand(9)) {
    case 0: {
        char k[17];
        for (int i = 0; i < 16; i++)
            k[i] = up36[pe_rand(32)];
        k[16] = '\0';
        snprintf(out, size, "AKIA%s", k);
        break;
    }
    case 1: snprintf(out, size, "ghp_%.36s", r); break;
    case 2: snprintf(out, size, "sk-proj-%.48s", r); break;
    case 3: snprintf(out, size, "xoxb-%u-%u-%.24s", 100000000 + pe_rand(800000000), 100000000 + pe_rand(800000000), r); break;
    case 4: snprintf(out, size, "sk_live_%.24s", r); break;
    case 5: snprintf(out, size, "AIza%.35s", r); break;
    case 6: snprintf(out, size, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIx%.20s.%.43s", r, r + 30); break;
    case 7: snprintf(out, size, "sk-ant-api03-%.40s", r); break;
    default: snprintf(out, size, "glpat-%.20s", r); break;
    }
}

static void pe_password(char *out, size_t size)
{
    static const char *const words[] = {"Summer", "hunter", "Dragon", "correct", "Tr0ub4dor", "Welcome",
                                        "Passw0rd", "letmein", "Autumn", "Berlin", "qwerty"};
    static const char *const tails[] = {"2024!", "#42", "99", "&3", "_x7", "!", "2", "$$1", "@home7"};
    snprintf(out, size, "%s%s", PE_PICK(words), PE_PICK(tails));
}

/* ---- sentences: one entity each, in context -------------------------- */

static void pe_s_email(struct pe_text *t)
{
    char v[128];
    pe_email(v, sizeof v);
    switch (pe_rand(9)) {
    case 0: pe_put(t, "Please send the report to "); pe_ent(t, EA_PII_EMAIL, v); pe_put(t, " by Friday."); break;
    case 1: pe_put(t, "You can reach me at "); pe_ent(t, EA_PII_EMAIL, v); pe_put(t, "."); break;
    case 2: pe_put(t, "Schreiben Sie bitte an "); pe_ent(t, EA_PII_EMAIL, v); pe_put(t, ", danke."); break;
    case 3: pe_put(t, "Mon adresse : "); pe_ent(t, EA_PII_EMAIL, v); break;
    case 4: pe_put(t, "Contacto: <"); pe_ent(t, EA_PII_EMAIL, v); pe_put(t, ">"); break;
    case 5: pe_put(t, "メールは"); pe_ent(t, EA_PII_EMAIL, v); pe_put(t, "までお願いします。"); break;
    case 6: pe_put(t, "cc: "); pe_ent(t, EA_PII_EMAIL, v); pe_put(t, "; "); pe_email(v, sizeof v); pe_ent(t, EA_PII_EMAIL, v); break;
    case 7: pe_put(t, "[mail me](mailto:"); pe_ent(t, EA_PII_EMAIL, v); pe_put(t, ")"); break;
    default: pe_ent(t, EA_PII_EMAIL, v); pe_put(t, " wrote: the build is green again"); break;
    }
}

static void pe_s_phone(struct pe_text *t)
{
    char v[64];
    pe_phone(v, sizeof v);
    switch (pe_rand(10)) {
    case 0: pe_put(t, "Call me at "); pe_ent(t, EA_PII_PHONE, v); pe_put(t, " after 6pm."); break;
    case 1: pe_put(t, "Tel.: "); pe_ent(t, EA_PII_PHONE, v); break;
    case 2: pe_put(t, "My number is "); pe_ent(t, EA_PII_PHONE, v); pe_put(t, ", text first please."); break;
    case 3: pe_put(t, "Sie erreichen mich unter "); pe_ent(t, EA_PII_PHONE, v); pe_put(t, "."); break;
    case 4: pe_put(t, "Appelez-moi au "); pe_ent(t, EA_PII_PHONE, v); pe_put(t, " demain."); break;
    case 5: pe_put(t, "Mi teléfono es "); pe_ent(t, EA_PII_PHONE, v); break;
    case 6: pe_put(t, "電話番号は "); pe_ent(t, EA_PII_PHONE, v); pe_put(t, " です。"); break;
    case 7: pe_put(t, "mobile: "); pe_ent(t, EA_PII_PHONE, v); pe_put(t, " | office: "); pe_phone(v, sizeof v); pe_ent(t, EA_PII_PHONE, v); break;
    case 8: pe_ent(t, EA_PII_PHONE, v); pe_put(t, " is the best way to reach the front desk."); break;
    default: pe_put(t, "If anything breaks, ring "); pe_ent(t, EA_PII_PHONE, v); pe_put(t, " (24/7)."); break;
    }
}

static void pe_s_card(struct pe_text *t)
{
    char v[32];
    pe_card(v, sizeof v);
    switch (pe_rand(7)) {
    case 0: pe_put(t, "Charge it to my card "); pe_ent(t, EA_PII_CREDIT_CARD, v); pe_put(t, ", exp 09/27."); break;
    case 1: pe_put(t, "Card number: "); pe_ent(t, EA_PII_CREDIT_CARD, v); break;
    case 2: pe_put(t, "Meine Kreditkarte: "); pe_ent(t, EA_PII_CREDIT_CARD, v); pe_put(t, " (Visa)."); break;
    case 3: pe_put(t, "Payez avec la carte "); pe_ent(t, EA_PII_CREDIT_CARD, v); pe_put(t, " svp"); break;
    case 4: pe_put(t, "I used "); pe_ent(t, EA_PII_CREDIT_CARD, v); pe_put(t, " for the hotel, CVV is on the back."); break;
    case 5: pe_ent(t, EA_PII_CREDIT_CARD, v); pe_put(t, " was declined twice today"); break;
    default: pe_put(t, "Tarjeta "); pe_ent(t, EA_PII_CREDIT_CARD, v); pe_put(t, " caduca en 2027."); break;
    }
}

static void pe_s_iban(struct pe_text *t)
{
    char v[64];
    pe_iban(v, sizeof v, true);
    switch (pe_rand(6)) {
    case 0: pe_put(t, "Please wire the deposit to IBAN "); pe_ent(t, EA_PII_IBAN, v); pe_put(t, "."); break;
    case 1: pe_put(t, "Bankverbindung: "); pe_ent(t, EA_PII_IBAN, v); pe_put(t, ", BIC COBADEFFXXX"); break;
    case 2: pe_put(t, "Mon RIB / IBAN : "); pe_ent(t, EA_PII_IBAN, v); break;
    case 3: pe_put(t, "Transfer to "); pe_ent(t, EA_PII_IBAN, v); pe_put(t, " (account holder: the landlord)"); break;
    case 4: pe_ent(t, EA_PII_IBAN, v); pe_put(t, " is my salary account"); break;
    default: pe_put(t, "Cuenta "); pe_ent(t, EA_PII_IBAN, v); pe_put(t, " a nombre de la empresa."); break;
    }
}

static void pe_s_ssn(struct pe_text *t)
{
    char v[16];
    unsigned style = pe_rand(10) < 6 ? 0 : pe_rand(2) + 1;
    pe_ssn(v, sizeof v, style);
    switch (style ? 2 + pe_rand(3) : pe_rand(5)) {
    case 0: pe_put(t, "His number "); pe_ent(t, EA_PII_US_SSN, v); pe_put(t, " is on the W-2."); break;
    case 1: pe_ent(t, EA_PII_US_SSN, v); pe_put(t, " appears on the form twice"); break;
    case 2: pe_put(t, "SSN: "); pe_ent(t, EA_PII_US_SSN, v); break;
    case 3: pe_put(t, "My social security number is "); pe_ent(t, EA_PII_US_SSN, v); pe_put(t, "."); break;
    default: pe_put(t, "Taxpayer ID (SSN) "); pe_ent(t, EA_PII_US_SSN, v); pe_put(t, " on file"); break;
    }
}

static void pe_s_ip(struct pe_text *t)
{
    char v[64];
    bool v6 = pe_chance(45);
    if (v6)
        pe_ipv6(v, sizeof v);
    else
        pe_ipv4(v, sizeof v);
    switch (pe_rand(8)) {
    case 0: pe_put(t, "The server at "); pe_ent(t, EA_PII_IP_ADDRESS, v); pe_put(t, " keeps timing out."); break;
    case 1: pe_put(t, "ssh admin@"); pe_ent(t, EA_PII_IP_ADDRESS, v); break;
    case 2: pe_put(t, "Failed login from "); pe_ent(t, EA_PII_IP_ADDRESS, v); pe_put(t, " at 03:12"); break;
    case 3: if (v6) { pe_put(t, "curl http://["); pe_ent(t, EA_PII_IP_ADDRESS, v); pe_put(t, "]:8080/health"); }
            else { pe_put(t, "curl http://"); pe_ent(t, EA_PII_IP_ADDRESS, v); pe_put(t, ":8080/health"); } break;
    case 4: pe_put(t, "Die IP-Adresse "); pe_ent(t, EA_PII_IP_ADDRESS, v); pe_put(t, " ist gesperrt."); break;
    case 5: pe_put(t, "client="); pe_ent(t, EA_PII_IP_ADDRESS, v); pe_put(t, " status=403"); break;
    case 6: pe_ent(t, EA_PII_IP_ADDRESS, v); pe_put(t, v6 ? "/64 is our subnet" : "/24 is our subnet"); break;
    default: pe_put(t, "mi IP es "); pe_ent(t, EA_PII_IP_ADDRESS, v); break;
    }
}

static void pe_s_mac(struct pe_text *t)
{
    char v[32];
    pe_mac(v, sizeof v);
    switch (pe_rand(5)) {
    case 0: pe_put(t, "My laptop's MAC address is "); pe_ent(t, EA_PII_MAC_ADDRESS, v); pe_put(t, "."); break;
    case 1: pe_put(t, "ether "); pe_ent(t, EA_PII_MAC_ADDRESS, v); pe_put(t, " txqueuelen 1000"); break;
    case 2: pe_put(t, "Whitelist device "); pe_ent(t, EA_PII_MAC_ADDRESS, v); pe_put(t, " on the guest network"); break;
    case 3: pe_ent(t, EA_PII_MAC_ADDRESS, v); pe_put(t, " keeps dropping off the Wi-Fi"); break;
    default: pe_put(t, "Adresse MAC : "); pe_ent(t, EA_PII_MAC_ADDRESS, v); break;
    }
}

static void pe_s_dob(struct pe_text *t)
{
    unsigned y = 1935 + pe_rand(75), m = 1 + pe_rand(12), d = 1 + pe_rand(28);
    char v[64];
    switch (pe_rand(15)) {
    case 12: snprintf(v, sizeof v, "%02u-%02u-%04u", m, d, y);
        pe_put(t, "DOB "); pe_ent(t, EA_PII_DATE_OF_BIRTH, v); break;
    case 13: snprintf(v, sizeof v, "%u%s of %s %u", d, d == 1 ? "st" : d == 2 ? "nd" : d == 3 ? "rd" : "th", pe_months_en[m - 1], y);
        pe_put(t, "Born: "); pe_ent(t, EA_PII_DATE_OF_BIRTH, v); break;
    case 14: snprintf(v, sizeof v, "%u/%u/%u", d, m, y);
        pe_put(t, "fecha de nacimiento "); pe_ent(t, EA_PII_DATE_OF_BIRTH, v); break;
    case 0: snprintf(v, sizeof v, "%u %s %u", d, pe_months_en[m - 1], y);
        pe_put(t, "I was born on "); pe_ent(t, EA_PII_DATE_OF_BIRTH, v); pe_put(t, " in Leeds."); break;
    case 1: snprintf(v, sizeof v, "%04u-%02u-%02u", y, m, d);
        pe_put(t, "DOB: "); pe_ent(t, EA_PII_DATE_OF_BIRTH, v); break;
    case 2: snprintf(v, sizeof v, "%02u/%02u/%04u", m, d, y);
        pe_put(t, "Date of birth: "); pe_ent(t, EA_PII_DATE_OF_BIRTH, v); break;
    case 3: snprintf(v, sizeof v, "%02u.%02u.%04u", d, m, y);
        pe_put(t, "Geburtsdatum: "); pe_ent(t, EA_PII_DATE_OF_BIRTH, v); break;
    case 4: snprintf(v, sizeof v, "%u. %s %u", d, pe_months_de[m - 1], y);
        pe_put(t, "Ich bin am "); pe_ent(t, EA_PII_DATE_OF_BIRTH, v); pe_put(t, " geboren."); break;
    case 5: snprintf(v, sizeof v, "%02u/%02u/%04u", d, m, y);
        pe_put(t, "Née le "); pe_ent(t, EA_PII_DATE_OF_BIRTH, v); pe_put(t, " à Lyon."); break;
    case 6: snprintf(v, sizeof v, "%u %s %u", d, pe_months_fr[m - 1], y);
        pe_put(t, "Date de naissance : "); pe_ent(t, EA_PII_DATE_OF_BIRTH, v); break;
    case 7: snprintf(v, sizeof v, "%u de %s de %u", d, pe_months_es[m - 1], y);
        pe_put(t, "Fecha de nacimiento: "); pe_ent(t, EA_PII_DATE_OF_BIRTH, v); break;
    case 8: snprintf(v, sizeof v, "%s %u%s, %u", pe_months_en[m - 1], d, d == 1 ? "st" : d == 2 ? "nd" : d == 3 ? "rd" : "th", y);
        pe_put(t, "My birthday is "); pe_ent(t, EA_PII_DATE_OF_BIRTH, v); pe_put(t, ", don't forget!"); break;
    case 9: snprintf(v, sizeof v, "%u年%u月%u日", y, m, d);
        pe_put(t, "生年月日："); pe_ent(t, EA_PII_DATE_OF_BIRTH, v); break;
    case 10: snprintf(v, sizeof v, "%.3s %u, %u", pe_months_en[m - 1], d, y);
        pe_put(t, "Patient (born "); pe_ent(t, EA_PII_DATE_OF_BIRTH, v); pe_put(t, ") reports mild symptoms."); break;
    default: snprintf(v, sizeof v, "%u/%u/%02u", m, d, y % 100);
        pe_put(t, "d.o.b. "); pe_ent(t, EA_PII_DATE_OF_BIRTH, v); break;
    }
}

static void pe_s_url(struct pe_text *t)
{
    static const char *const users[] = {"admin", "app", "deploy", "postgres", "bob", "svc_backup", "root", ""};
    static const char *const schemes[] = {"https", "postgres", "mysql", "ftp", "mongodb+srv", "redis", "amqp", "http"};
    static const char *const hosts[] = {"db.internal", "example.com", "pg.prod.example.net", "cluster0.ab1cd.mongodb.net",
                                        "ftp.example.org", "cache.local:6379", "rabbit.svc:5672", "git.corp.example.de"};
    char pw[64], v[160];
    pe_password(pw, sizeof pw);
    if (pe_chance(30)) /* URL-encoded special characters */
        snprintf(pw + strlen(pw), sizeof pw - strlen(pw), "%%40x");
    unsigned k = pe_rand(8);
    const char *u = users[pe_rand(8)];
    snprintf(v, sizeof v, "%s:%s", u, pw);
    switch (pe_rand(4)) {
    case 0: pe_put(t, "Use "); pe_putf(t, "%s://", schemes[k]); pe_ent(t, EA_PII_URL_CREDENTIALS, v);
            pe_putf(t, "@%s/app for the migration.", hosts[k]); break;
    case 1: pe_putf(t, "DATABASE_URL=%s://", schemes[k]); pe_ent(t, EA_PII_URL_CREDENTIALS, v); pe_putf(t, "@%s/prod", hosts[k]); break;
    case 2: pe_put(t, "git clone https://"); pe_ent(t, EA_PII_URL_CREDENTIALS, v); pe_put(t, "@git.corp.example.de/team/repo.git"); break;
    default: pe_putf(t, "%s://", schemes[k]); pe_ent(t, EA_PII_URL_CREDENTIALS, v); pe_putf(t, "@%s", hosts[k]); pe_put(t, " is the connection string"); break;
    }
}

static void pe_s_secret(struct pe_text *t)
{
    char v[160], pw[64];
    switch (pe_rand(10)) {
    case 0: pe_secret(v, sizeof v); pe_put(t, "export OPENAI_API_KEY="); pe_ent(t, EA_PII_SECRET, v); break;
    case 1: pe_secret(v, sizeof v); pe_put(t, "Here is my key: "); pe_ent(t, EA_PII_SECRET, v); pe_put(t, " (please keep it safe)"); break;
    case 2: pe_secret(v, sizeof v); pe_put(t, "Authorization: Bearer "); pe_ent(t, EA_PII_SECRET, v); break;
    case 3: pe_password(pw, sizeof pw); pe_put(t, "password: "); pe_ent(t, EA_PII_SECRET, pw); break;
    case 4: pe_password(pw, sizeof pw); pe_put(t, "DB_PASSWORD="); pe_ent(t, EA_PII_SECRET, pw); break;
    case 5: pe_password(pw, sizeof pw); pe_put(t, "My password is "); pe_ent(t, EA_PII_SECRET, pw); pe_put(t, " but I forgot the PIN"); break;
    case 6: pe_password(pw, sizeof pw); pe_put(t, "Das Passwort ist "); pe_ent(t, EA_PII_SECRET, pw); break;
    case 7: pe_secret(v, sizeof v); pe_ent(t, EA_PII_SECRET, v); pe_put(t, " leaked in the CI logs yesterday"); break;
    case 8: {
        char key[1200];
        static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t o = (size_t)snprintf(key, sizeof key, "-----BEGIN %sPRIVATE KEY-----\n", pe_chance(50) ? "RSA " : pe_chance(50) ? "OPENSSH " : "");
        for (int line = 0; line < 6; line++) {
            for (int i = 0; i < 64; i++)
                key[o++] = b64[pe_rand(64)];
            key[o++] = '\n';
        }
        snprintf(key + o, sizeof key - o, "-----END PRIVATE KEY-----");
        pe_put(t, "Server key:\n");
        pe_ent(t, EA_PII_SECRET, key);
        break;
    }
    default: pe_secret(v, sizeof v); pe_put(t, "api_key = \""); pe_ent(t, EA_PII_SECRET, v); pe_put(t, "\""); break;
    }
}

static void pe_s_person(struct pe_text *t)
{
    char v[96];
    pe_name(v, sizeof v, pe_chance(75));
    switch (pe_rand(28)) {
    case 22: pe_put(t, "-- \n"); pe_ent(t, EA_PII_PERSON, v); pe_put(t, "\nSenior Engineer"); break;
    case 23: pe_put(t, "NAME: "); pe_ent(t, EA_PII_PERSON, v); break;
    case 24: pe_put(t, "Please forward this to "); pe_ent(t, EA_PII_PERSON, v); pe_put(t, "."); break;
    case 25: pe_put(t, "Hello "); pe_ent(t, EA_PII_PERSON, v); pe_put(t, " — welcome aboard!"); break;
    case 26: pe_put(t, "Cheers,\n\n"); pe_ent(t, EA_PII_PERSON, v); break;
    case 27: pe_put(t, "Ms "); pe_ent(t, EA_PII_PERSON, v); pe_put(t, " called about the refund."); break;
    case 0: pe_put(t, "Hi, my name is "); pe_ent(t, EA_PII_PERSON, v); pe_put(t, " and I need help with my order."); break;
    case 1: pe_put(t, "Dear "); pe_ent(t, EA_PII_PERSON, v); pe_put(t, ",\nthank you for your message."); break;
    case 2: pe_put(t, "Hi "); pe_ent(t, EA_PII_PERSON, v); pe_put(t, "! Quick question about the invoice."); break;
    case 3: pe_put(t, "Best regards,\n"); pe_ent(t, EA_PII_PERSON, v); break;
    case 4: pe_put(t, "Kind regards, "); pe_ent(t, EA_PII_PERSON, v); break;
    case 5: pe_put(t, "I talked to Mr. "); pe_ent(t, EA_PII_PERSON, v); pe_put(t, " yesterday about the lease."); break;
    case 6: pe_put(t, "Please ask Dr. "); pe_ent(t, EA_PII_PERSON, v); pe_put(t, " to sign the form."); break;
    case 7: pe_put(t, "Ich heiße "); pe_ent(t, EA_PII_PERSON, v); pe_put(t, " und wohne in Köln."); break;
    case 8: pe_put(t, "Je m'appelle "); pe_ent(t, EA_PII_PERSON, v); pe_put(t, " et j'ai une question."); break;
    case 9: pe_put(t, "Hola, me llamo "); pe_ent(t, EA_PII_PERSON, v); pe_put(t, "."); break;
    case 10: pe_put(t, "Ciao, mi chiamo "); pe_ent(t, EA_PII_PERSON, v); break;
    case 11: pe_put(t, "Patient: "); pe_ent(t, EA_PII_PERSON, v); pe_put(t, ", 54, hypertension."); break;
    case 12: pe_put(t, "Sehr geehrte Frau "); pe_ent(t, EA_PII_PERSON, v); pe_put(t, ","); break;
    case 13: pe_put(t, "Thanks,\n"); pe_ent(t, EA_PII_PERSON, v); pe_put(t, "\nSent from my phone"); break;
    case 14: pe_put(t, "This is "); pe_ent(t, EA_PII_PERSON, v); pe_put(t, " from accounting."); break;
    case 15: pe_put(t, "My colleague "); pe_ent(t, EA_PII_PERSON, v); pe_put(t, " will join the call."); break;
    case 16: pe_put(t, "I'm "); pe_ent(t, EA_PII_PERSON, v); pe_put(t, ", the new tenant in 4B."); break;
    case 17: pe_put(t, "Bonjour "); pe_ent(t, EA_PII_PERSON, v); pe_put(t, ", merci pour votre retour."); break;
    case 18: pe_put(t, "Cordialement,\n"); pe_ent(t, EA_PII_PERSON, v); break;
    case 19: pe_put(t, "Name: "); pe_ent(t, EA_PII_PERSON, v); break;
    case 20: pe_put(t, "Assigned to "); pe_ent(t, EA_PII_PERSON, v); pe_put(t, " (QA)."); break;
    default: pe_put(t, "Mit freundlichen Grüßen\n"); pe_ent(t, EA_PII_PERSON, v); break;
    }
}

static void pe_sentence(struct pe_text *t, uint32_t type)
{
    switch (type) {
    case EA_PII_EMAIL: pe_s_email(t); break;
    case EA_PII_PHONE: pe_s_phone(t); break;
    case EA_PII_CREDIT_CARD: pe_s_card(t); break;
    case EA_PII_IBAN: pe_s_iban(t); break;
    case EA_PII_US_SSN: pe_s_ssn(t); break;
    case EA_PII_IP_ADDRESS: pe_s_ip(t); break;
    case EA_PII_MAC_ADDRESS: pe_s_mac(t); break;
    case EA_PII_DATE_OF_BIRTH: pe_s_dob(t); break;
    case EA_PII_URL_CREDENTIALS: pe_s_url(t); break;
    case EA_PII_SECRET: pe_s_secret(t); break;
    default: pe_s_person(t); break;
    }
}

/* ---- hard negatives: nothing here is personal data -------------------- */

static void pe_negative(struct pe_text *t)
{
    char v[96], h[48];
    static const char hex[] = "0123456789abcdef";
    switch (pe_rand(24)) {
    case 0: pe_putf(t, "Order #%03u-%07u-%07u shipped today.", pe_rand(1000), pe_rand(10000000), pe_rand(10000000)); break;
    case 1: pe_digits(v, 10); pe_putf(t, "Your order number %s is confirmed.", v); break;
    case 2: pe_putf(t, "Bestellnummer: %u%06u", 1 + pe_rand(9), pe_rand(1000000)); break;
    case 3: pe_putf(t, "Upgrade to v%u.%u.%u before the release.", pe_rand(10), pe_rand(30), pe_rand(20)); break;
    case 4: pe_putf(t, "Windows build 10.0.%u.%u is affected.", 19000 + pe_rand(4000), pe_rand(3000)); break;
    case 5: pe_putf(t, "Running version %u.%u.%u.%u of the firmware.", pe_rand(5), pe_rand(10), pe_rand(10), pe_rand(100)); break;
    case 6: pe_putf(t, "[2024-%02u-%02uT%02u:%02u:%02uZ] worker started", 1 + pe_rand(12), 1 + pe_rand(28), pe_rand(24), pe_rand(60), pe_rand(60)); break;
    case 7: pe_putf(t, "ts=%u event=login", 1600000000u + pe_rand(200000000)); break;
    case 8: pe_putf(t, "Meeting moved to 2025-%02u-%02u %02u:%02u.", 1 + pe_rand(12), 1 + pe_rand(28), 8 + pe_rand(10), pe_rand(60)); break;
    case 9: pe_putf(t, "ISBN 978-%u-%02u-%06u-%u", pe_rand(10), pe_rand(100), pe_rand(1000000), pe_rand(10)); break;
    case 10: pe_putf(t, "See ISBN-10: 0-%03u-%05u-%u, chapter 4.", pe_rand(1000), pe_rand(100000), pe_rand(10)); break;
    case 11: pe_putf(t, "Total: $%u,%03u.%02u including tax.", 1 + pe_rand(99), pe_rand(1000), pe_rand(100)); break;
    case 12: pe_putf(t, "Preis: %u.%03u,%02u € inkl. MwSt.", 1 + pe_rand(99), pe_rand(1000), pe_rand(100)); break;
    case 13: pe_putf(t, "It costs EUR %u.%02u or £%u.%02u.", pe_rand(1000), pe_rand(100), pe_rand(1000), pe_rand(100)); break;
    case 14:
        for (int i = 0; i < 40; i++)
            h[i] = hex[pe_rand(16)];
        h[40] = '\0';
        pe_putf(t, "commit %s\nAuthor: CI bot", h);
        break;
    case 15:
        for (int i = 0; i < 7; i++)
            h[i] = hex[pe_rand(16)];
        h[7] = '\0';
        pe_putf(t, "Fixed in %s (see the changelog).", h);
        break;
    case 16:
        pe_putf(t, "request_id=%08x-%04x-%04x-%04x-%04x%08x", (unsigned)pe_next(), pe_rand(65536),
                0x4000 + pe_rand(4096), 0x8000 + pe_rand(16384), pe_rand(65536), (unsigned)pe_next());
        break;
    case 17: { /* a card-shaped number that fails Luhn */
        char d[24];
        unsigned n = pe_card_digits(d);
        d[n - 1] = (char)('0' + (d[n - 1] - '0' + 1 + pe_rand(9)) % 10);
        pe_putf(t, "Reference %s was rejected.", d);
        break;
    }
    case 18: pe_iban(v, sizeof v, false); pe_putf(t, "The code %s failed validation.", v); break;
    case 19: pe_putf(t, "Invalid ID %03u-%02u-%04u in row 7.", pe_chance(50) ? 0 : 900 + pe_rand(100), 1 + pe_rand(99), 1 + pe_rand(9999)); break;
    case 20: pe_putf(t, "The meeting is on %02u/%02u/2024 in room %u.", 1 + pe_rand(12), 1 + pe_rand(28), 100 + pe_rand(400)); break;
    case 21: pe_putf(t, "Tracking: 1Z%03X%03X%010u", pe_rand(4096), pe_rand(4096), pe_rand(1000000000)); break;
    case 22: pe_putf(t, "Temperature was %u.%u°C at %02u:%02u:%02u.", pe_rand(40), pe_rand(10), pe_rand(24), pe_rand(60), pe_rand(60)); break;
    default: pe_putf(t, "We shipped %u,%03u units in Q%u; growth %u.%u%%.", 1 + pe_rand(99), pe_rand(1000), 1 + pe_rand(4), pe_rand(50), pe_rand(10)); break;
    }
}

static const char *const pe_filler[] = {
    "Thanks for the quick reply.", "The deployment finished without errors.",
    "Can you check this before the weekend?", "Das Meeting ist verschoben.",
    "Merci d'avance pour votre aide.", "La reunión empieza a las diez.", "よろしくお願いします。",
    "Let me know if anything else is needed.", "The tests are flaky on ARM again.",
    "Il pacco arriverà domani.", "See the attached notes for details."};

/* ---- whole texts ----------------------------------------------------- */

/* Text i of the positive set: 1..4 entities of mixed types (type `lead`
 * always among them, so every type gets its share), in one container. */
static void pe_positive(struct pe_text *t, unsigned i)
{
    uint32_t lead = i % EA_PII_BUILTIN_COUNT;
    unsigned n = 1 + pe_rand(4);
    uint32_t types[4];
    types[0] = lead;
    for (unsigned k = 1; k < n; k++)
        types[k] = pe_rand(EA_PII_BUILTIN_COUNT);
    /* the lead entity at the start, the end or in between */
    unsigned at = pe_rand(n);
    uint32_t tmp = types[0];
    types[0] = types[at];
    types[at] = tmp;
    unsigned container = pe_rand(8);
    switch (container) {
    case 0: /* JSON document: each sentence a string value */
        pe_put(t, "{\"ticket\": {\"id\": 4471, \"fields\": [");
        for (unsigned k = 0; k < n; k++) {
            pe_put(t, k ? ", \"" : "\"");
            t->json = true;
            pe_sentence(t, types[k]);
            t->json = false;
            pe_put(t, "\"");
        }
        pe_put(t, "]}}");
        break;
    case 1: /* Python code */
        pe_put(t, "def notify():\n    # TODO: move to config\n");
        for (unsigned k = 0; k < n; k++) {
            pe_putf(t, "    msg%u = \"", k);
            t->json = true;
            pe_sentence(t, types[k]);
            t->json = false;
            pe_put(t, "\"\n");
        }
        pe_put(t, "    send(msg0)\n");
        break;
    case 2: /* a log */
        for (unsigned k = 0; k < n; k++) {
            pe_putf(t, "2024-06-%02u 12:%02u:%02u INFO handler: ", 1 + pe_rand(28), pe_rand(60), pe_rand(60));
            pe_sentence(t, types[k]);
            pe_put(t, "\n");
        }
        break;
    case 3: /* an e-mail */
        pe_put(t, "Subject: follow-up\n\n");
        for (unsigned k = 0; k < n; k++) {
            pe_sentence(t, types[k]);
            pe_put(t, k + 1 < n ? "\n\n" : "");
        }
        break;
    default: /* chat: sentences with fillers and, sometimes, a hard negative */
        for (unsigned k = 0; k < n; k++) {
            if (k)
                pe_put(t, pe_chance(50) ? " " : "\n");
            if (pe_chance(25)) {
                pe_put(t, PE_PICK(pe_filler));
                pe_put(t, " ");
            }
            pe_sentence(t, types[k]);
            if (pe_chance(15)) {
                pe_put(t, " ");
                pe_negative(t);
            }
        }
        break;
    }
}

/* Calls fn for every text of the set (PE_N_POSITIVE positives, then
 * PE_N_NEGATIVE hard negatives with no span). */
typedef void (*pe_text_fn)(const struct pe_text *t, bool negative, void *ud);
static inline void pe_generate(uint64_t seed, pe_text_fn fn, void *ud)
{
    static struct pe_text t;
    pe_state = seed;
    for (unsigned i = 0; i < PE_N_POSITIVE + PE_N_NEGATIVE; i++) {
        memset(&t, 0, sizeof t);
        t.buf[0] = '\0';
        if (i < PE_N_POSITIVE) {
            pe_positive(&t, i);
        } else {
            unsigned n = 1 + pe_rand(3);
            for (unsigned k = 0; k < n; k++) {
                if (k)
                    pe_put(&t, " ");
                if (pe_chance(30)) {
                    pe_put(&t, PE_PICK(pe_filler));
                    pe_put(&t, " ");
                }
                pe_negative(&t);
            }
        }
        fn(&t, i >= PE_N_POSITIVE, ud);
    }
}

/* ---- the set as a file: tests/data/privacy_eval.jsonl ------------------ */

/* The type names of the file (ea_privacy_type_name's for the built-ins). */
static const char *const pe_type_names[EA_PII_BUILTIN_COUNT] = {
    "EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "US_SSN", "IP_ADDRESS", "MAC_ADDRESS",
    "DATE_OF_BIRTH", "URL_CREDENTIALS", "SECRET", "PERSON"};

/* One text as a JSON line: {"text", "negative", "json", "spans": [{"type",
 * "start", "end"}]} (byte offsets). Returns false on a write error. */
static inline bool pe_write_line(FILE *f, const struct pe_text *t, bool negative)
{
    json_t *spans = json_array();
    for (int k = 0; k < t->n; k++)
        json_array_append_new(spans, json_pack("{s:s,s:I,s:I}", "type", pe_type_names[t->spans[k].type], "start",
                                               (json_int_t)t->spans[k].start, "end", (json_int_t)t->spans[k].end));
    json_t *o = json_pack("{s:s%,s:b,s:b,s:o}", "text", t->buf, t->len, "negative", negative, "json", t->json,
                          "spans", spans);
    char *line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    bool ok = line && fprintf(f, "%s\n", line) > 0;
    free(line);
    json_decref(o);
    return ok;
}

/* Reads the set from path (pe_write_line's lines) and calls fn for every
 * text. Returns the number of texts, or -1 with a message on stderr. */
static inline int pe_load(const char *path, pe_text_fn fn, void *ud)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "privacy evaluation set %s: cannot open it\n", path);
        return -1;
    }
    static struct pe_text t;
    static char line[4 * PE_TEXT_MAX + 4096];
    int n = 0, bad = 0;
    while (!bad && fgets(line, sizeof line, f)) {
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        const json_t *text = json_object_get(o, "text"), *spans = json_object_get(o, "spans");
        memset(&t, 0, sizeof t);
        bad = !json_is_string(text) || json_string_length(text) >= PE_TEXT_MAX || !json_is_array(spans) ||
              json_array_size(spans) > PE_MAX_SPANS;
        if (!bad) {
            t.len = json_string_length(text);
            memcpy(t.buf, json_string_value(text), t.len);
            t.json = json_is_true(json_object_get(o, "json"));
            size_t k;
            const json_t *sp;
            json_array_foreach(spans, k, sp) {
                const char *type = json_string_value(json_object_get(sp, "type"));
                json_int_t a = json_integer_value(json_object_get(sp, "start")),
                           b = json_integer_value(json_object_get(sp, "end"));
                uint32_t ty = 0;
                while (ty < EA_PII_BUILTIN_COUNT && (!type || strcmp(type, pe_type_names[ty])))
                    ty++;
                if (ty == EA_PII_BUILTIN_COUNT || a < 0 || b <= a || (size_t)b > t.len) {
                    bad = 1;
                    break;
                }
                t.spans[t.n++] = (struct pe_span){(uint32_t)a, (uint32_t)b, ty};
            }
        }
        if (!bad)
            fn(&t, json_is_true(json_object_get(o, "negative")), ud);
        json_decref(o);
        n++;
    }
    fclose(f);
    if (bad) {
        fprintf(stderr, "privacy evaluation set %s: line %d is not a labelled text\n", path, n);
        return -1;
    }
    return n;
}

/* tests/data/privacy_eval.jsonl under the source directory (EA_SOURCE_DIR,
 * else the current directory). */
static inline const char *pe_default_path(void)
{
    static char path[4200];
    const char *src = getenv("EA_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/tests/data/privacy_eval.jsonl", src && *src ? src : ".");
    return path;
}

#endif
