/* builtin.c - the built-in detectors: one or more PCRE2 patterns per type
 * (byte mode: any input, offsets in bytes), the validators behind them
 * (Luhn, IBAN mod-97 with each country's length, SSN ranges, phone number
 * shapes, calendar dates, IPv6 through inet_pton), the context words that
 * raise or lower weak matches, and the hard negatives (UUIDs, ISBNs,
 * versions, timestamps, prices, commit hashes, order numbers).
 *
 * Scores: a match with a validated structure starts near 0.9; shapes that
 * other numbers share (a bare 10-digit run, an undashed SSN) start below
 * the default threshold (0.5) and need a context word. Hard negatives score
 * below the positives so that, on a tie of length, the positive wins.
 * Does not hold: scanning and resolution (detect.c), the configuration
 * (config.c).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "privacy/privacy_int.h"

const char *const ea__privacy_builtin_names[EA_PII_BUILTIN_COUNT] = {
    "EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "US_SSN", "IP_ADDRESS", "MAC_ADDRESS",
    "DATE_OF_BIRTH", "URL_CREDENTIALS", "SECRET", "PERSON",
};

#define SCORE_SURE 0.95f    /* the structure alone identifies the type */
#define SCORE_STRONG 0.9f
#define SCORE_GOOD 0.8f
#define SCORE_FAIR 0.6f
#define SCORE_WEAK 0.35f    /* below the default threshold: needs a context word */
#define SCORE_NEGATIVE 0.4f /* hard negatives: lose ties against positives */
#define SCORE_NEGATIVE_SURE 0.97f
#define CONTEXT_WINDOW 40   /* bytes before a span searched for raising context words */
#define LOWER_WINDOW 20     /* lowering words must be close: "order no. 4155552671" */
#define MAX_DIGITS 32
#define MAX_GROUPS 16
#define IPV6_TEXT_MAX 64
#define FIRST_BIRTH_YEAR 1900
#define LAST_BIRTH_YEAR 2030

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_alnum(unsigned char c) { return is_digit(c) || is_alpha(c); }
static bool is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
static bool is_wordc(unsigned char c) { return is_alnum(c) || c == '_'; }

/* ---- context words --------------------------------------------------- */

static const char *const phone_raise[] = {
    "phone", "tel", "telephone", "call", "mobile", "cell", "fax", "whatsapp", "sms", "text me",
    "contact", "reach", "ring", "dial", "hotline", "number", "nummer", "telefon", "handy", "mobil",
    "rufnummer", "t\xc3\xa9l\xc3\xa9phone", "t\xc3\xa9l", "portable", "appel*", "num\xc3\xa9ro",
    "tel\xc3\xa9" "fono", "m\xc3\xb3vil", "movil", "llam*", "telefono", "cellulare", "chiama",
    "telefone", "celular", "\xe9\x9b\xbb\xe8\xa9\xb1", "\xe6\x90\xba\xe5\xb8\xaf", NULL};
static const char *const number_lower[] = {
    "order", "invoice", "tracking", "ref", "account", "acct", "ticket", "case no", "case #",
    "isbn", "serial", "sku", "build", "version", "transaction", "txn", "confirmation", "bestell*",
    "rechnung*", "auftrag*", "commande", "facture", "pedido", "factura", "routing", "imei", "ean",
    "gtin", "barcode", "part no", "model no", "batch", "lot", "zip", "no.", "nr.", NULL};
static const char *const card_lower[] = {"order", "invoice", "tracking", "ref", "ticket", "isbn",
                                         "serial", "sku", "transaction", "txn", "confirmation",
                                         "bestell*", "rechnung*", "commande", "facture", "pedido",
                                         "factura", "imei", "ean", "gtin", "barcode", NULL};
static const char *const ssn_raise[] = {"ssn", "social security", "soc. sec", "soc sec", "ss#",
                                        "ss #", "tax id", "taxpayer", "tin", NULL};
static const char *const ip_lower[] = {"version", "ver.", "release", "build", "firmware", "sdk",
                                       "oid", NULL};

static const struct ea__context phone_ctx = {phone_raise, number_lower, 0.35f, 0.5f, CONTEXT_WINDOW, LOWER_WINDOW};
static const struct ea__context ssn_ctx = {ssn_raise, number_lower, 0.5f, 0.5f, CONTEXT_WINDOW, LOWER_WINDOW};
static const struct ea__context card_ctx = {NULL, card_lower, 0.0f, 0.42f, CONTEXT_WINDOW, LOWER_WINDOW};
/* card_ctx.lower_by 0.42: a lowering word ("order 4111111111111111") drops a
 * run of digits (SCORE_STRONG 0.9 -> 0.48) but not a number grouped as cards
 * are (SCORE_SURE 0.95 -> 0.53): "my order. 5329 6085 5956 4284" is a card. */
static const struct ea__context ip_ctx = {NULL, ip_lower, 0.0f, 0.5f, CONTEXT_WINDOW, LOWER_WINDOW};

/* ---- digits and groups ----------------------------------------------- */

struct digits {
    char d[MAX_DIGITS + 1];
    size_t n;
    size_t group[MAX_GROUPS]; /* sizes of the runs of digits */
    size_t n_groups;
    char seps[8]; /* separator bytes seen between groups (distinct) */
    size_t n_seps;
    bool parens, plus, overflow;
};

static void add_sep(struct digits *g, char c)
{
    for (size_t i = 0; i < g->n_seps; i++)
        if (g->seps[i] == c)
            return;
    if (g->n_seps < sizeof g->seps)
        g->seps[g->n_seps++] = c;
}

static void digits_of(const char *s, size_t n, struct digits *g)
{
    memset(g, 0, sizeof *g);
    bool in = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_digit(c)) {
            if (!in) {
                if (g->n_groups == MAX_GROUPS) {
                    g->overflow = true;
                    return;
                }
                g->n_groups++;
            }
            in = true;
            if (g->n == MAX_DIGITS) {
                g->overflow = true;
                return;
            }
            g->d[g->n++] = (char)c;
            g->group[g->n_groups - 1]++;
        } else {
            in = false;
            if (c == '+')
                g->plus = true;
            else if (c == '(' || c == ')')
                g->parens = true;
            else if (g->n_groups)
                add_sep(g, (char)c);
        }
    }
}

static bool luhn(const char *d, size_t n)
{
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned v = (unsigned)(d[n - 1 - i] - '0');
        if (i & 1) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
    }
    return sum % 10 == 0;
}

static unsigned num(const char *d, size_t n)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (unsigned)(d[i] - '0');
    return v;
}

static bool valid_date(unsigned y, unsigned m, unsigned d)
{
    static const unsigned days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 100) /* two-digit years */
        y += y <= 30 ? 2000 : 1900;
    return y >= FIRST_BIRTH_YEAR && y <= LAST_BIRTH_YEAR && m >= 1 && m <= 12 && d >= 1 &&
           d <= days[m - 1];
}

/* Three numeric groups that read as a date in Y-M-D, D-M-Y or M-D-Y. */
static bool groups_are_date(const struct digits *g)
{
    if (g->n_groups != 3)
        return false;
    const char *p = g->d;
    unsigned a = num(p, g->group[0]), b = num(p + g->group[0], g->group[1]),
             c = num(p + g->group[0] + g->group[1], g->group[2]);
    if (g->group[0] == 4)
        return valid_date(a, b, c);
    if (g->group[2] == 4 || g->group[2] == 2)
        return valid_date(c, b, a) || valid_date(c, a, b);
    return false;
}

/* ---- EMAIL ----------------------------------------------------------- */

static bool email_back(unsigned char c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

static bool check_email(const char *t, size_t len, const PCRE2_SIZE *ov, uint32_t n, struct ea__cand *c)
{
    (void)len;
    (void)n;
    for (size_t i = c->start; i + 1 < c->end && t[i] != '@'; i++)
        if (t[i] == '.' && t[i + 1] == '.')
            return false;
    /* the user info of a URL (scheme://user:password@host) is no address:
     * URL_CREDENTIALS covers it */
    for (size_t i = c->start; i >= 3 && c->start - i < 300; i--) {
        unsigned char b = (unsigned char)t[i - 1];
        if (b == ' ' || b == '\n' || b == '\t' || b == '"' || b == '\'' || b == '<' || b == '(')
            break;
        if (b == '/' && t[i - 2] == '/' && t[i - 3] == ':')
            return false;
    }
    (void)ov;
    return true;
}

/* ---- URL_CREDENTIALS ------------------------------------------------- */

static bool scheme_back(unsigned char c) { return is_alnum(c) || c == '+' || c == '.' || c == '-'; }

/* ---- PHONE ----------------------------------------------------------- */

static bool nanp(const char *d) /* area and exchange start with 2..9 */
{
    return d[0] >= '2' && d[3] >= '2';
}

static bool phone_shape(const char *t, struct ea__cand *c)
{
    /* the extension (x123, ext. 123, #123) is part of the span, not of the number */
    size_t main_end = c->end;
    for (size_t i = c->start; i < c->end; i++)
        if (t[i] == 'x' || t[i] == 'e' || t[i] == 'E' || t[i] == 'X' || t[i] == '#') {
            main_end = i;
            break;
        }
    while (main_end > c->start && !is_digit((unsigned char)t[main_end - 1]) && t[main_end - 1] != ')')
        main_end--;
    struct digits g;
    digits_of(t + c->start, main_end - c->start, &g);
    if (g.overflow || g.n < 7 || g.n > 15)
        return false;
    bool only_dots = g.n_seps == 1 && g.seps[0] == '.';
    bool intl = g.plus || (g.d[0] == '0' && g.d[1] == '0' && g.group[0] >= 4 &&
                           (g.n_groups > 1 || g.n >= 11)); /* 0049 30 ...: 00 and a country code */
    for (size_t i = 0; i < g.n_groups; i++)
        if (g.n_groups > 1 && g.group[i] > (intl ? 10u : 8u))
            return false;
    if (!g.parens && !intl && groups_are_date(&g))
        return false;
    if (!g.parens && !intl && g.n_groups == 3 && g.group[0] == 3 && g.group[1] == 2 && g.group[2] == 4)
        return false; /* AAA-GG-SSSS is a social security number's shape */
    if (only_dots && g.n_groups == 4 && g.group[0] <= 3 && g.group[1] <= 3 && g.group[2] <= 3 &&
        g.group[3] <= 3)
        return false; /* an IPv4 address or a version */
    if (intl) {
        if (g.n < 8)
            return false;
        /* +CC and 8..15 digits is a phone number whatever word stands before
         * it: above 1 so that a lowering word leaves it above the threshold
         * (the reported score is capped at 1) */
        c->score = SCORE_STRONG + 0.5f;
        return true;
    }
    if (only_dots) { /* dotted numbers are versions unless the shape is a phone's */
        bool ok = (g.n_groups == 3 && g.group[0] == 3 && g.group[1] == 3 && g.group[2] == 4) ||
                  (g.n_groups == 5 && g.group[0] == 2 && g.group[1] == 2 && g.group[2] == 2 &&
                   g.group[3] == 2 && g.group[4] == 2) ||
                  (g.n_groups == 3 && g.d[0] == '0' && g.group[0] >= 2);
        if (!ok)
            return false;
    }
    if (g.d[0] == '0') { /* a national number with its trunk prefix (UK, DE, FR, JP, AU, IN) */
        if (g.n < 9 || g.n > 12)
            return false;
        if (g.n_groups == 1 && !g.parens) {
            c->score = SCORE_WEAK;
            return true;
        }
        for (size_t i = 0; i < g.n_groups; i++)
            if (g.group[i] < 2)
                return false;
        c->score = SCORE_GOOD;
        return true;
    }
    if (g.n == 10 && nanp(g.d)) {
        if (g.n_groups == 3 && g.group[0] == 3 && g.group[1] == 3)
            c->score = SCORE_GOOD;
        else if (g.n_groups == 1)
            c->score = SCORE_WEAK;
        else if (g.n_groups == 2 && g.group[0] == 3 && g.parens)
            c->score = SCORE_GOOD; /* (415)555-2671 */
        else if (g.n_groups == 2 && g.group[0] == 5 && g.d[0] >= '6')
            c->score = SCORE_FAIR; /* India: 98765 43210 */
        else
            return false;
        return true;
    }
    if (g.n == 10 && g.n_groups == 2 && g.group[0] == 5 && g.d[0] >= '6') {
        c->score = SCORE_FAIR;
        return true;
    }
    if (g.n == 11 && g.d[0] == '1' && nanp(g.d + 1)) {
        if (g.n_groups == 4 && g.group[0] == 1 && g.group[1] == 3 && g.group[2] == 3)
            c->score = SCORE_GOOD;
        else if (g.n_groups == 1)
            c->score = SCORE_WEAK;
        else
            return false;
        return true;
    }
    if (g.n == 7 && g.n_groups == 2 && g.group[0] == 3 && g.d[0] >= '2' && !only_dots) {
        c->score = SCORE_WEAK; /* 555-0199: a local number, with a context word */
        return true;
    }
    return false;
}

/* The candidate, else the candidate without its last groups (a number
 * written right after a phone number is not part of it). */
static bool check_phone(const char *t, size_t len, const PCRE2_SIZE *ov, uint32_t n, struct ea__cand *c)
{
    (void)len;
    (void)ov;
    (void)n;
    struct ea__cand k = *c;
    for (int trims = 0; trims < 4; trims++) {
        if (phone_shape(t, &k)) {
            *c = k;
            return true;
        }
        size_t e = k.end; /* drop what follows the last space */
        while (e > k.start && t[e - 1] != ' ')
            e--;
        while (e > k.start && (t[e - 1] == ' ' || t[e - 1] == '-' || t[e - 1] == '/'))
            e--;
        if (e <= k.start)
            return false;
        k.end = e;
        k.score = c->score;
    }
    return false;
}

/* ---- CREDIT_CARD ----------------------------------------------------- */

static bool card_brand(const char *d, size_t n)
{
    unsigned p2 = num(d, 2), p4 = num(d, 4);
    switch (d[0]) {
    case '4': return n == 13 || n == 16 || n == 19;                     /* Visa */
    case '5': return (p2 >= 51 && p2 <= 55 && n == 16) || (p2 >= 50 && n >= 12); /* MC, Maestro */
    case '2': return (p4 >= 2221 && p4 <= 2720 && n == 16) || (p4 >= 2200 && p4 <= 2204); /* MC, Mir */
    case '3':
        if (p2 == 34 || p2 == 37)
            return n == 15;                                           /* Amex */
        if (p2 == 36 || p2 == 38 || p2 == 39 || (p2 == 30 && num(d, 3) <= 305))
            return n >= 14 && n <= 16;                                /* Diners */
        return p4 >= 3528 && p4 <= 3589 && n >= 16;                   /* JCB */
    case '6': return n >= 16 || n >= 12;                              /* Discover, UnionPay, Maestro */
    default: return false;
    }
}

static bool check_card(const char *t, size_t len, const PCRE2_SIZE *ov, uint32_t n, struct ea__cand *c)
{
    (void)len;
    (void)ov;
    (void)n;
    struct digits g;
    digits_of(t + c->start, c->end - c->start, &g);
    if (g.overflow || g.n < 13 || g.n > 19 || g.n_seps > 1)
        return false;
    if (g.n_groups > 1) { /* 4-4-4-4(-3), 4-4-4-1, Amex 4-6-5, Diners 4-6-4 */
        bool fours = true;
        for (size_t i = 0; i + 1 < g.n_groups; i++)
            fours = fours && g.group[i] == 4;
        bool amex = g.n_groups == 3 && g.group[0] == 4 && g.group[1] == 6 &&
                    (g.group[2] == 5 || g.group[2] == 4);
        if (!(fours && g.group[g.n_groups - 1] >= 1 && g.group[g.n_groups - 1] <= 4) && !amex)
            return false;
    }
    if (!luhn(g.d, g.n) || !card_brand(g.d, g.n))
        return false;
    c->score = g.n_groups > 1 ? SCORE_SURE : SCORE_STRONG;
    return true;
}

/* ---- IBAN ------------------------------------------------------------ */

static const struct {
    char cc[3];
    unsigned char len;
} iban_lengths[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16}, {"BG", 22},
    {"BH", 22}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24}, {"DE", 22},
    {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18}, {"FO", 18}, {"FR", 27},
    {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28},
    {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20},
    {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21}, {"MC", 27}, {"MD", 24},
    {"ME", 22}, {"MK", 19}, {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NL", 18}, {"NO", 15}, {"PK", 24},
    {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"SA", 24}, {"SC", 31},
    {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"ST", 25}, {"SV", 28}, {"TL", 23}, {"TN", 24},
    {"TR", 26}, {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20},
};

static unsigned iban_length(const char *cc)
{
    for (size_t i = 0; i < COUNT(iban_lengths); i++)
        if (iban_lengths[i].cc[0] == cc[0] && iban_lengths[i].cc[1] == cc[1])
            return iban_lengths[i].len;
    return 0;
}

/* ISO 13616: the first four characters moved to the end, letters as
 * 10..35, the number mod 97 is 1. */
static bool iban_mod97(const char *s, size_t n)
{
    unsigned r = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[(k + 4) % n];
        if (is_digit(c))
            r = (r * 10 + (unsigned)(c - '0')) % 97;
        else
            r = (r * 100 + (unsigned)(c - 'A' + 10)) % 97;
    }
    return r == 1;
}

static bool check_iban(const char *t, size_t len, const PCRE2_SIZE *ov, uint32_t n, struct ea__cand *c)
{
    (void)ov;
    (void)n;
    unsigned want = iban_length(t + c->start);
    if (!want)
        return false;
    char s[40];
    size_t k = 0, i = c->start, run = 0;
    bool spaced = false;
    for (; i < len && k < want; i++) {
        unsigned char b = (unsigned char)t[i];
        if (b == ' ') {
            if (run != 4) /* spaces only between groups of four */
                return false;
            spaced = true;
            run = 0;
            continue;
        }
        if (!is_digit(b) && !(b >= 'A' && b <= 'Z'))
            return false;
        s[k++] = (char)b;
        run++;
    }
    if (k != want || (i < len && is_alnum((unsigned char)t[i])))
        return false;
    if (spaced && i + 1 < len && t[i] == ' ' && is_alnum((unsigned char)t[i + 1]) && run == 4 &&
        is_digit((unsigned char)t[i + 1]))
        return false; /* more groups follow: not this country's length */
    if (!iban_mod97(s, k))
        return false;
    c->end = i;
    c->score = SCORE_SURE;
    return true;
}

/* A hard negative: IBAN-shaped text that is no IBAN (a failed checksum
 * must not turn into a phone number from its digits). */
static bool check_not_iban(const char *t, size_t len, const PCRE2_SIZE *ov, uint32_t n, struct ea__cand *c)
{
    struct ea__cand k = *c;
    if (check_iban(t, len, ov, n, &k))
        return false;
    while (c->end > c->start && t[c->end - 1] == ' ')
        c->end--;
    return true;
}

/* ---- US_SSN ---------------------------------------------------------- */

static bool check_ssn(const char *t, size_t len, const PCRE2_SIZE *ov, uint32_t n, struct ea__cand *c)
{
    (void)len;
    (void)n;
    unsigned area = num(t + ov[2], 3), grp = num(t + ov[6], 2), serial = num(t + ov[8], 4);
    if (area == 0 || area == 666 || area >= 900 || grp == 0 || serial == 0)
        return false;
    size_t sep = ov[5] - ov[4];
    c->score = sep && t[ov[4]] == '-' ? 0.7f : sep ? 0.45f : 0.3f;
    return true;
}

/* ---- IP_ADDRESS (v6), MAC_ADDRESS ------------------------------------ */

static bool ipv6_back(unsigned char c) { return is_hex(c) || c == ':' || c == '.'; }
static bool hex_back(unsigned char c) { return is_hex(c); }

static bool check_ipv6(const char *t, size_t len, const PCRE2_SIZE *ov, uint32_t n, struct ea__cand *c)
{
    (void)ov;
    (void)n;
    if (c->start > 0 && (is_wordc((unsigned char)t[c->start - 1]) || t[c->start - 1] == ':'))
        return false;
    size_t e = c->end;
    while (e > c->start && (t[e - 1] == '.' || (t[e - 1] == ':' && !(e - c->start >= 2 && t[e - 2] == ':'))))
        e--;
    if (e < len && e == c->end && is_wordc((unsigned char)t[e]))
        return false;
    size_t core = e - c->start;
    if (core < 2 || core >= IPV6_TEXT_MAX)
        return false;
    char buf[IPV6_TEXT_MAX];
    memcpy(buf, t + c->start, core);
    buf[core] = '\0';
    unsigned colons = 0, hex = 0;
    for (size_t i = 0; i < core; i++) {
        colons += buf[i] == ':';
        hex += is_hex((unsigned char)buf[i]);
    }
    if (!hex || (!strstr(buf, "::") && colons != 7))
        return false;
    unsigned char addr[16];
    if (inet_pton(AF_INET6, buf, addr) != 1)
        return false;
    c->end = e;
    c->score = SCORE_STRONG;
    return true;
}

/* ---- DATE_OF_BIRTH --------------------------------------------------- */

/* The month a written-out date names (1..12), 0 when none: the first
 * letters of the month's name in English, German, French, Spanish or
 * Italian (longer stems first: "juil" before "jul"). */
static unsigned month_in(const char *s, size_t n)
{
    static const struct {
        const char *stem;
        unsigned char month;
    } stems[] = {
        {"juin", 6}, {"juil", 7}, {"janv", 1}, {"j\xc3\xa4n", 1}, {"f\xc3\xa9v", 2}, {"m\xc3\xa4r", 3},
        {"ao\xc3\xbb", 8}, {"d\xc3\xa9" "c", 12}, {"jan", 1}, {"feb", 2}, {"mar", 3}, {"apr", 4},
        {"avr", 4}, {"abr", 4}, {"may", 5}, {"mai", 5}, {"mag", 5}, {"jun", 6}, {"giu", 6}, {"jul", 7},
        {"lug", 7}, {"aug", 8}, {"ago", 8}, {"sep", 9}, {"set", 9}, {"oct", 10}, {"okt", 10},
        {"ott", 10}, {"nov", 11}, {"dec", 12}, {"dez", 12}, {"dic", 12}, {"ene", 1}, {"gen", 1},
    };
    for (size_t i = 0; i < n; i++) {
        if (!(is_alpha((unsigned char)s[i]) || (unsigned char)s[i] >= 0x80) || (i && is_alpha((unsigned char)s[i - 1])))
            continue;
        for (size_t k = 0; k < COUNT(stems); k++) {
            size_t l = strlen(stems[k].stem);
            if (i + l > n)
                continue;
            size_t j = 0;
            while (j < l && (s[i + j] | (is_alpha((unsigned char)s[i + j]) ? 0x20 : 0)) == stems[k].stem[j])
                j++;
            if (j == l)
                return stems[k].month;
        }
    }
    return 0;
}

static bool check_dob(const char *t, size_t len, const PCRE2_SIZE *ov, uint32_t n, struct ea__cand *c)
{
    (void)len;
    (void)ov;
    (void)n;
    struct digits g;
    digits_of(t + c->start, c->end - c->start, &g);
    if (g.overflow)
        return false;
    if (g.n_groups == 3) /* numeric: one reading must be a date */
        return groups_are_date(&g) || (g.group[0] == 4 && valid_date(num(g.d, 4),
                                                                     num(g.d + 4, g.group[1]),
                                                                     num(g.d + 4 + g.group[1], g.group[2])));
    if (g.n_groups == 2) { /* a day and a year around a month name */
        unsigned a = num(g.d, g.group[0]), y = num(g.d + g.group[0], g.group[1]);
        unsigned m = month_in(t + c->start, c->end - c->start);
        return m && valid_date(y, m, a);
    }
    return false;
}

/* ---- SECRET ---------------------------------------------------------- */

static bool keyword_back(unsigned char c)
{
    return is_alnum(c) || c == '_' || c == '.' || c == '-' || c == '"' || c == '\'' || c == ' ' ||
           c == '\\';
}

static bool placeholder_value(const char *v, size_t n)
{
    static const char *const words[] = {"true", "false", "null", "none", "nil", "undefined",
                                        "required", "optional", "string", "redacted", "hidden",
                                        "changeme", "example", "xxxxxx", "******", "password",
                                        "secret", "token", NULL};
    if (v[0] == '$' || v[0] == '<' || v[0] == '%' || v[0] == '{' || v[0] == '*' || v[0] == '[')
        return true;
    for (const char *const *w = words; *w; w++)
        if (strlen(*w) == n && !strncasecmp(*w, v, n))
            return true;
    bool same = true;
    for (size_t i = 1; i < n; i++)
        same = same && v[i] == v[0];
    return same;
}

static bool check_keyword_secret(const char *t, size_t len, const PCRE2_SIZE *ov, uint32_t n,
                                 struct ea__cand *c)
{
    (void)len;
    if (n < 3)
        return false;
    const char *kw = t + ov[2], *v = t + ov[4];
    size_t kn = ov[3] - ov[2], vn = ov[5] - ov[4];
    if (placeholder_value(v, vn))
        return false;
    bool digit = false, alpha = false, other = false, upper = false;
    for (size_t i = 0; i < vn; i++) {
        unsigned char b = (unsigned char)v[i];
        digit |= is_digit(b);
        alpha |= is_alpha(b);
        upper |= b >= 'A' && b <= 'Z';
        other |= !is_alnum(b);
    }
    bool pass = kn >= 3 && (!strncasecmp(kw, "pas", 3) || !strncasecmp(kw, "pwd", 3) ||
                            !strncasecmp(kw, "mot", 3) || !strncasecmp(kw, "con", 3));
    if (pass) {
        if (vn < 6 || !(digit || other || upper) || (!alpha && !other))
            return false;
        c->score = SCORE_GOOD;
        return true;
    }
    /* token / key / secret / credential: long and mixed, not a word or a count */
    if (vn < 12 || !digit || !alpha)
        return false;
    c->score = SCORE_GOOD;
    return true;
}

static bool check_password_is(const char *t, size_t len, const PCRE2_SIZE *ov, uint32_t n,
                              struct ea__cand *c)
{
    (void)len;
    (void)n;
    const char *v = t + ov[2];
    size_t vn = ov[3] - ov[2];
    while (vn && (v[vn - 1] == '.' || v[vn - 1] == ')' || v[vn - 1] == ':'))
        vn--; /* sentence punctuation; '!' and '?' stay: passwords end with them too */
    if (vn < 4 || placeholder_value(v, vn))
        return false;
    bool mixed = false;
    for (size_t i = 0; i < vn; i++)
        mixed |= !(v[i] >= 'a' && v[i] <= 'z'); /* "is required", "is too short": all lowercase words */
    if (!mixed)
        return false;
    c->end = c->start + vn;
    c->score = SCORE_GOOD;
    return true;
}

static bool check_bearer(const char *t, size_t len, const PCRE2_SIZE *ov, uint32_t n, struct ea__cand *c)
{
    (void)len;
    (void)ov;
    (void)n;
    bool digit = false;
    for (size_t i = c->start; i < c->end; i++)
        digit |= is_digit((unsigned char)t[i]);
    return digit;
}

/* ---- PERSON ---------------------------------------------------------- */

static const char *const person_stop[] = {
    "I", "The", "This", "That", "These", "Those", "There", "Here", "It", "We", "You", "They", "He",
    "She", "Team", "All", "Everyone", "Everybody", "Guys", "Folks", "Sir", "Madam", "Madame",
    "Customer", "Support", "Friends", "Friend", "Colleagues", "Thanks", "Thank", "Hello", "Hi",
    "Dear", "Happy", "Sorry", "Glad", "Good", "Great", "Fine", "Not", "Just", "Also", "So", "Very",
    "Really", "Still", "Going", "Looking", "Trying", "Working", "Interested", "Available", "Ready",
    "Sure", "Afraid", "Done", "New", "Back", "Home", "And", "Or", "But", "If", "When", "What", "Why",
    "How", "Who", "Where", "Yes", "No", "Ok", "Okay", "Please", "Regards", "Best", "Kind", "Warm",
    "Cheers", "Sincerely", "Morning", "Afternoon", "Evening", "Night", "Monday", "Tuesday",
    "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "January", "February", "March",
    "April", "May", "June", "July", "August", "September", "October", "November", "December",
    "Hope", "Today", "Tomorrow", "Yesterday", "Next", "Last", "Then", "Now", "Let", "Can", "Could",
    "Would", "Should", "Will", "Is", "Are", "Was", "My", "Your", "Our", "Their", "His", "Her", "Its",
    "One", "Any", "Some", "Note", "Attached", "Welcome", "Regarding", "Re", "Subject", "Liebe",
    "Hallo", "Bonjour", "Hola", "Ich", "Je", "Il", "Le", "La", "Les", "Der", "Die", "Das", "El",
    "Los", "Las", "Mr", "Mrs", "Ms", "Dr", "Prof", "Everything", "Nothing", "Someone", "Anyone",
    NULL};

static bool check_person(const char *t, size_t len, const PCRE2_SIZE *ov, uint32_t n, struct ea__cand *c)
{
    (void)len;
    (void)ov;
    (void)n;
    size_t w = c->start;
    while (w < c->end && t[w] != ' ' && t[w] != '-')
        w++;
    for (const char *const *s = person_stop; *s; s++)
        if ((*s)[0] == t[c->start] && strlen(*s) == w - c->start && !memcmp(*s, t + c->start, w - c->start))
            return false;
    return true;
}

/* Greetings, introductions, titles, roles, verbs and sign-offs after which
 * a capitalised name follows (English, German, French, Spanish, Italian,
 * Portuguese, Dutch). */
static const char *const person_context[] = {
    "my name is", "my name's", "name is", "i am", "i'm", "this is", "call me", "i'm called",
    "they call me", "dear", "hi", "hello", "hey", "greetings", "thanks", "thank you", "welcome",
    "attn", "attention", "regards", "best regards", "kind regards", "warm regards", "best wishes",
    "sincerely", "yours sincerely", "yours truly", "cheers", "best", "many thanks", "love",
    "signed", "from", "cc", "contact", "name", "full name", "first name", "last name", "surname",
    "patient", "client", "customer", "employee", "colleague", "manager", "boss", "friend", "wife",
    "husband", "son", "daughter", "mother", "father", "mom", "dad", "brother", "sister", "partner",
    "doctor", "nurse", "teacher", "student", "tenant", "landlord", "neighbor", "neighbour",
    "coworker", "assistant", "recipient", "sender", "applicant", "candidate", "spoke with",
    "spoke to", "talked to", "talked with", "met with", "meet with", "met", "ask", "asked", "tell",
    "told", "emailed", "called", "ping", "pinged", "contacted", "assigned to", "signed by",
    "written by", "approved by", "reported by", "requested by", "sent by", "according to", "named",
    "sir", "dame", "lady", "lord", "forward this to", "forward it to", "forwarded to", "send this to",
    "send it to", "pass this to", "pass it to", "hand this to", "give this to", "reply to", "on behalf of",
    /* German */
    "ich hei\xc3\x9f" "e", "ich heisse", "ich bin", "mein name ist", "hallo", "liebe", "lieber",
    "sehr geehrte frau", "sehr geehrter herr", "sehr geehrte", "herr", "frau", "viele gr\xc3\xbc\xc3\x9f" "e",
    "mit freundlichen gr\xc3\xbc\xc3\x9f" "en", "liebe gr\xc3\xbc\xc3\x9f" "e", "beste gr\xc3\xbc\xc3\x9f" "e",
    "gr\xc3\xbc\xc3\x9f" "e", "danke", "kollege", "kollegin", "ansprechpartner",
    /* French */
    "je m'appelle", "je suis", "mon nom est", "bonjour", "salut", "cher", "ch\xc3\xa8re", "madame",
    "monsieur", "cordialement", "bien \xc3\xa0 vous", "merci", "de la part de",
    /* Spanish */
    "me llamo", "mi nombre es", "soy", "hola", "estimado", "estimada", "querido", "querida",
    "se\xc3\xb1or", "se\xc3\xb1ora", "saludos", "atentamente", "un saludo",
    "gracias", "don", "do\xc3\xb1" "a",
    /* Italian */
    "mi chiamo", "il mio nome \xc3\xa8", "sono", "ciao", "caro", "cara", "gentile", "signor",
    "signora", "cordiali saluti", "saluti", "grazie",
    /* Portuguese, Dutch */
    "meu nome \xc3\xa9", "eu sou", "ol\xc3\xa1", "prezado", "prezada", "obrigado", "obrigada",
    "atenciosamente", "me chamo", "mijn naam is", "ik ben", "ik heet", "beste", "groeten",
    "met vriendelijke groet", "hoi", NULL};

/* A signature after the "-- " delimiter line (RFC 3676), also written with
 * \n inside JSON strings: the name on the next line. */
static const char *const sig_prefixes[] = {"--", NULL};
static const char *const no_words[] = {NULL};
#define SIG_REGEX "(?<!-)--(?!-)[ ]?(?:\\r?\\n|\\\\n)[ \\t]*(" NAME ")" NAME_END

static const char *const titles[] = {"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "herr",
                                     "frau", "mme", "mlle", "m", "sr", "sra", "srta", "sig",
                                     "dott", NULL};


#define UP "(?:[A-Z]|\\xc3[\\x80-\\x96\\x98-\\x9e]|[\\xc4\\xc5][\\x80-\\xbf])"
#define LO "(?:[a-z]|\\xc3[\\x9f-\\xb6\\xb8-\\xbf]|[\\xc4\\xc5][\\x80-\\xbf])"
#define NAME_WORD "(?:" UP "(?:'|\\xe2\\x80\\x99))?" UP LO "+(?:" UP LO "+)?(?:-" UP LO "+)?"
#define PARTICLES "(?:(?:van|von|de|der|den|da|del|della|di|du|la|le|bin|ibn|al|ten|ter|dos|das|y)[ ]+){0,2}"
#define NAME NAME_WORD "(?:[ ]+[A-Z]\\.)?(?:[ ]+" PARTICLES NAME_WORD "){0,2}"
#define NAME_END "(?![A-Za-z0-9]|[\\xc3-\\xc5])"
/* between the context and the name: spaces, one punctuation mark, up to two
 * line breaks (signatures; also written \n inside JSON strings) */
#define PERSON_SEP "(?=[ \\t,:;!\\r\\n\\\\-])[ \\t]*(?:[,:;!\\-][ \\t]*)?(?:(?:\\r?\\n|\\\\n)[ \\t]*){0,2}"

/* ---- DATE_OF_BIRTH context and dates ---------------------------------- */

static const char *const dob_context[] = {
    "born", "birth", "date of birth", "birthday", "birthdate", "dob", "d.o.b", "geboren",
    "geburtsdatum", "geburtstag", "geb.", "n\xc3\xa9", "n\xc3\xa9" "e", "date de naissance",
    "naissance", "nacido", "nacida", "fecha de nacimiento", "nacimiento", "cumplea\xc3\xb1os",
    "nato", "nata", "data di nascita", "nascido", "nascida", "data de nascimento", "geboortedatum",
    "\xe7\x94\x9f\xe5\xb9\xb4\xe6\x9c\x88\xe6\x97\xa5", "\xe8\xaa\x95\xe7\x94\x9f\xe6\x97\xa5", NULL};



/* the month names a written-out date can start with (dates in digits start
 * with a digit: EA__START_DIGIT), and the words after a date that make it a
 * birth date ("am 20. April 1965 geboren") */
static const char *const month_words[] = {
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sept",
    "sep", "oct", "nov", "dec", "januar", "j\xc3\xa4nner", "februar", "m\xc3\xa4rz", "mai", "juni",
    "juli", "oktober", "dezember", "janvier", "f\xc3\xa9vrier", "mars", "avril", "juin", "juillet",
    "ao\xc3\xbbt", "septembre", "octobre", "novembre", "d\xc3\xa9" "cembre", "enero", "febrero",
    "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "setiembre", "octubre",
    "noviembre", "diciembre", "gennaio", "febbraio", "aprile", "maggio", "giugno", "luglio",
    "settembre", "ottobre", "dicembre", NULL};
/* the DATE_OF_BIRTH context words written in CJK start with these bytes */
static const char *const dob_prefixes[] = {"\xe7\x94", "\xe8\xaa", NULL};
static const char *const dob_after[] = {"geboren", "born", "n\xc3\xa9", "n\xc3\xa9" "e", "nacido",
                                        "nacida", "nato", "nata", NULL};

/* ---- cheap filters before a regex call (ea__pre_fn) -------------------- */

/* The length of the shortest of the lowercase stems standing at t[i]
 * and ending by `to` (ASCII letters of the text compared lowercased); 0
 * when none does. firsts: the stems' first bytes, both cases (most bytes
 * are refused by that test alone). */
static size_t stem_at(const char *t, size_t i, size_t to, const char *const *stems, const bool *firsts)
{
    unsigned char c = (unsigned char)t[i];
    if (!firsts[c])
        return 0;
    if (c >= 'A' && c <= 'Z')
        c = (unsigned char)(c + 32);
    size_t best = 0;
    for (const char *const *s = stems; *s; s++) {
        if ((unsigned char)(*s)[0] != c)
            continue;
        size_t k = 1;
        while ((*s)[k] && i + k < to) {
            unsigned char b = (unsigned char)t[i + k];
            if ((b >= 'A' && b <= 'Z' ? b + 32 : b) != (unsigned char)(*s)[k])
                break;
            k++;
        }
        if (!(*s)[k] && (!best || k < best))
            best = k;
    }
    return best;
}

/* Does one of the stems stand in t[from, to)? */
static bool has_stem(const char *t, size_t from, size_t to, const char *const *stems, const bool *firsts)
{
    for (size_t i = from; i < to; i++)
        if (firsts[(unsigned char)t[i]] && stem_at(t, i, to, stems, firsts))
            return true;
    return false;
}

/* Where the stem ending first among those standing at or after t[from]
 * ends, when that is at or before `horizon`; SIZE_MAX otherwise. For calls
 * whose `from` only grows (the word starts of one text, in order), memo
 * keeps what the searches found, so that a byte is searched about once:
 * every stem starting in [memo->from, memo->searched) was looked at, and
 * the one of them ending first is memo->at..memo->end (SIZE_MAX: none).
 * Once one is found the search goes on up to its end (a later, shorter
 * stem may end first; none starting after its end can). */
static size_t stem_end_within(const char *t, size_t len, size_t from, size_t horizon,
                              const char *const *stems, const bool *firsts, struct ea__pre_memo *memo)
{
    bool found = memo->set && memo->at != SIZE_MAX;
    if (!memo->set || from < memo->from || (found && from > memo->at) ||
        (!found && from > memo->searched))
        *memo = (struct ea__pre_memo){true, from, from, SIZE_MAX, SIZE_MAX}; /* a new search */
    else if (found)
        return memo->end <= horizon ? memo->end : SIZE_MAX;
    size_t i = memo->searched, at = memo->at, end = memo->end;
    for (; i < len && (at == SIZE_MAX ? i < horizon : i < end); i++) {
        size_t n = firsts[(unsigned char)t[i]] ? stem_at(t, i, len, stems, firsts) : 0;
        if (n && i + n < end) {
            at = i;
            end = i + n;
        }
    }
    memo->searched = i;
    memo->at = at;
    memo->end = end;
    return end <= horizon ? end : SIZE_MAX;
}

/* IPv6: the run of hex digits, colons and dots holds "::" or seven colons */
static bool pre_ipv6(const char *t, size_t len, size_t at, size_t start, struct ea__pre_memo *memo)
{
    (void)memo;
    (void)at;
    unsigned colons = 0;
    for (size_t i = start; i < len && i - start < 46 && ipv6_back((unsigned char)t[i]); i++) {
        if (t[i] == ':' && i + 1 < len && t[i + 1] == ':')
            return true;
        colons += t[i] == ':';
    }
    return colons >= 7;
}

/* MAC: a run of 14 (Cisco) or 17 bytes of hex digits and separators */
static bool pre_mac(const char *t, size_t len, size_t at, size_t start, struct ea__pre_memo *memo)
{
    (void)memo;
    (void)at;
    size_t i = start;
    while (i < len && i - start < 17 && (is_hex((unsigned char)t[i]) || t[i] == ':' || t[i] == '-' || t[i] == '.'))
        i++;
    return i - start >= 14;
}

/* URL credentials: the scheme ends at the anchor, so "://" starts there
 * (the bytes walked back over hold no ':') */
static bool pre_scheme(const char *t, size_t len, size_t at, size_t start, struct ea__pre_memo *memo)
{
    (void)start;
    (void)memo;
    return at + 2 < len && t[at + 1] == '/' && t[at + 2] == '/';
}

/* key: value secrets: a credential word before the anchor */
static const char *const secret_stems[] = {"pass", "pwd", "secret", "token", "key", "credential",
                                           "mot de passe", "contrase", NULL};
static bool pre_keyword(const char *t, size_t len, size_t at, size_t start, struct ea__pre_memo *memo)
{
    (void)memo;
    (void)len;
    static const bool firsts[256] = {['p'] = 1, ['s'] = 1, ['t'] = 1, ['k'] = 1, ['c'] = 1, ['m'] = 1,
                                     ['P'] = 1, ['S'] = 1, ['T'] = 1, ['K'] = 1, ['C'] = 1, ['M'] = 1};
    /* the key is the last name before the anchor (quotes, a backslash and
     * spaces may stand between): "db_password =", "\"api_key\":" */
    size_t e = at;
    while (e > start && (t[e - 1] == ' ' || t[e - 1] == '"' || t[e - 1] == '\'' || t[e - 1] == '\\'))
        e--;
    size_t b = e;
    while (b > start && (is_alnum((unsigned char)t[b - 1]) || t[b - 1] == '_' || t[b - 1] == '.' || t[b - 1] == '-'))
        b--;
    if (b == e)
        return false;
    /* "mot de passe": the words before the last one count too */
    if (b > start + 3 && t[b - 1] == ' ')
        b = start;
    return has_stem(t, b, e, secret_stems, firsts);
}

/* a date followed by "geboren" / "born" / ...: a date's first number (1..4
 * digits and a separator, or a month name), then one of the words ending
 * within the next DOB_AFTER_SPAN bytes, on the same line */
#define DOB_AFTER_SPAN 48
static const char *const dob_after_stems[] = {"geboren", "born", "n\xc3\xa9", "nacid", "nat", NULL};
static bool pre_dob_after(const char *t, size_t len, size_t at, size_t start, struct ea__pre_memo *memo)
{
    (void)start;
    size_t k = at;
    while (k < len && k - at < 5 && is_digit((unsigned char)t[k]))
        k++;
    /* what may follow a date's first number: a separator (0xe5 starts 年), or NUL (left to the regex) */
    static const bool date_sep[256] = {['.'] = 1, ['/'] = 1, ['-'] = 1, [' '] = 1, [0xe5] = 1, [0] = 1};
    if (k > at && (k - at > 4 || k >= len || !date_sep[(unsigned char)t[k]]))
        return false;
    static const bool firsts[256] = {['g'] = 1, ['b'] = 1, ['n'] = 1, ['G'] = 1, ['B'] = 1, ['N'] = 1};
    size_t end = stem_end_within(t, len, at, at + DOB_AFTER_SPAN, dob_after_stems, firsts, memo);
    return end != SIZE_MAX && !memchr(t + at, '\n', end - at);
}

/* the first group of digits at t[at]: its length */
static size_t digit_run(const char *t, size_t len, size_t at)
{
    size_t k = at;
    while (k < len && k - at < 20 && is_digit((unsigned char)t[k]))
        k++;
    return k - at;
}

/* IPv4: 1..3 digits then a dot */
static bool pre_ipv4(const char *t, size_t len, size_t at, size_t start, struct ea__pre_memo *memo)
{
    (void)memo;
    (void)start;
    size_t r = digit_run(t, len, at);
    return r >= 1 && r <= 3 && at + r < len && t[at + r] == '.';
}

/* a version: [vV] or digits, then a dot and a digit */
static bool pre_version(const char *t, size_t len, size_t at, size_t start, struct ea__pre_memo *memo)
{
    (void)memo;
    (void)start;
    if (t[at] == 'v' || t[at] == 'V')
        at++;
    size_t r = digit_run(t, len, at);
    return r >= 1 && r <= 4 && at + r + 1 < len && t[at + r] == '.' && is_digit((unsigned char)t[at + r + 1]);
}

/* an SSN: three digits then a dash or a space, or nine digits */
static bool pre_ssn(const char *t, size_t len, size_t at, size_t start, struct ea__pre_memo *memo)
{
    (void)memo;
    (void)start;
    size_t r = digit_run(t, len, at);
    return (r == 3 && at + 3 < len && (t[at + 3] == '-' || t[at + 3] == ' ')) || r == 9;
}

/* a price written after its number: a currency after the digits */
static bool pre_price(const char *t, size_t len, size_t at, size_t start, struct ea__pre_memo *memo)
{
    (void)memo;
    (void)start;
    size_t i = at;
    while (i < len && i - at < 40 && (is_digit((unsigned char)t[i]) || t[i] == ',' || t[i] == '.' || t[i] == '\''))
        i++;
    if (i < len && t[i] == ' ')
        i++;
    if (i >= len)
        return false;
    unsigned char c = (unsigned char)t[i];
    return c == '$' || c == 0xE2 || c == 0xC2 || c == 'U' || c == 'E' || c == 'G' || c == 'C' || c == 'J' ||
           c == 'e' || c == 'd'; /* at a currency ("$5", "USD 5"), or one after the digits */
}

/* ---- the patterns ---------------------------------------------------- */

static const char *const secret_prefixes[] = {"AK", "AS", "AG", "AI", "AR", "AN", "gh", "gi",
                                              "gl", "sk", "pk", "rk", "xo", "hf", "np", "SG",
                                              "ey", "--", NULL};
static const char *const phone_prefixes[] = {"+0", "+1", "+2", "+3", "+4", "+5", "+6", "+7", "+8",
                                             "+9", "+ ", "(0", "(1", "(2", "(3", "(4", "(5", "(6",
                                             "(7", "(8", "(9", NULL};
static const char *const version_prefixes[] = {"v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8",
                                               "v9", "V0", "V1", "V2", "V3", "V4", "V5", "V6", "V7",
                                               "V8", "V9", NULL};
static const char *const price_prefixes[] = {"$0", "$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8",
                                             "$9", "$ ", "\xe2\x82", "\xc2\xa3", "\xc2\xa5", "US",
                                             "EU", "GB", "CH", "JP", NULL};
static const char *const bearer_words[] = {"bearer", "authorization", NULL};
static const char *const password_words[] = {"password", "passcode", "passwort", "passwd",
                                             "mot de passe", "contrase\xc3\xb1" "a", "my", NULL};
static const char *const negative_words[] = {"isbn", "order", "bestellung", "commande", "pedido",
                                             "invoice", "rechnung", "facture", "factura", "ticket",
                                             "ref", "tracking", NULL};

#define D8 "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)"

/* A date: numeric (Y-M-D, D.M.Y, M/D/Y), with a month name (English,
 * German, French, Spanish, Italian; the names as a trie, see detect.c), or
 * Japanese (1990年5月17日). The reading is checked by check_dob. */
static ea_status put_date(struct ea_buf *b)
{
    size_t n = 0;
    while (month_words[n])
        n++;
    ea_status s = ea__buf_puts(b, "(?:\\d{4}[-/.]\\d{1,2}[-/.]\\d{1,2}|\\d{1,2}[-/.]\\d{1,2}[-/.]\\d{2,4}"
                                  "|\\d{1,2}(?:st|nd|rd|th|er|\\.)?[ ]+(?:of[ ]+|de[ ]+)?");
    if (!s)
        s = ea__privacy_phrases_regex(b, month_words, n, true);
    if (!s)
        s = ea__buf_puts(b, "\\.?,?[ ]+(?:de[ ]+)?\\d{4}|");
    if (!s)
        s = ea__privacy_phrases_regex(b, month_words, n, true);
    if (!s)
        s = ea__buf_puts(b, "\\.?[ ]+\\d{1,2}(?:st|nd|rd|th)?,?[ ]+\\d{4}"
                            "|\\d{4}\\xe5\\xb9\\xb4\\d{1,2}\\xe6\\x9c\\x88\\d{1,2}\\xe6\\x97\\xa5)");
    return s;
}

static const struct ea__pattern_def fixed[] = {
    /* EMAIL: at each '@', back over the local part */
    {EA_PII_EMAIL,
     "[._%+\\-]*+([A-Za-z0-9_%+\\-](?:[A-Za-z0-9._%+\\-]{0,63}[A-Za-z0-9_%+\\-])?@"
     "(?:[A-Za-z0-9](?:[A-Za-z0-9\\-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z]{2,24})"
     "(?![A-Za-z0-9_\\-]|\\.[A-Za-z0-9])",
     EA__SCAN_ANCHOR, NULL, "@", email_back, 64, 1, SCORE_SURE, check_email, NULL, NULL, 0, 1, 0, NULL},
    /* URL_CREDENTIALS: scheme://user:password@host; the span is user:password */
    {EA_PII_URL_CREDENTIALS,
     "[A-Za-z][A-Za-z0-9+.\\-]{0,31}://([^\\s/?#@:\"'<>\\\\]{0,128}:[^\\s/?\"'<>\\\\]{1,128})@"
     "[A-Za-z0-9.\\-\\[]",
     EA__SCAN_ANCHOR, NULL, ":", scheme_back, 32, 1, SCORE_SURE, NULL, NULL, NULL, 0, 2, 0, pre_scheme},
    /* PHONE: digit groups with separators, + or 00 and a country code,
     * (area), an extension; the shape is checked in C */
    {EA_PII_PHONE,
     "(?<![\\w+\\-./#$@%,:=])((?:\\+[ ]?|00[ ]?)?(?:\\(\\d{1,5}\\)|\\d{1,8})"
     "(?:(?:[ .\\-/]|[ ]?-[ ]?|[ ]?/[ ]?)?(?:\\(\\d{1,5}\\)|\\d{1,8})){0,6}"
     "(?:[ ]?(?:x|ext\\.?|extension|#)[ ]?\\d{1,6})?)(?![\\w]|[.,\\-/:]\\d)",
     EA__SCAN_WORDS, NULL, NULL, NULL, 0, 1, SCORE_FAIR, check_phone, &phone_ctx, phone_prefixes,
     EA__START_DIGIT, 0, 7, NULL},
    /* CREDIT_CARD: 13..19 digits, spaces or dashes; grouping, Luhn and brand checked */
    {EA_PII_CREDIT_CARD, "(?<![\\w\\-.,/#$@])\\d(?:[ \\-]?\\d){12,18}(?![\\w]|[\\-.,/:]\\d)",
     EA__SCAN_WORDS, NULL, NULL, NULL, 0, 0, SCORE_STRONG, check_card, &card_ctx, NULL, EA__START_DIGIT, 0, 13, NULL},
    /* IBAN: country, check digits, then the country's length (checked) */
    {EA_PII_IBAN, "(?<![A-Za-z0-9])[A-Z]{2}\\d{2}(?:[ ]?[A-Z0-9]){10,30}", EA__SCAN_WORDS, NULL,
     NULL, NULL, 0, 0, SCORE_SURE, check_iban, NULL, NULL, EA__START_UPPER2, 0, 0, NULL},
    /* US_SSN: AAA-GG-SSSS (dashes, spaces or none: the last two need context) */
    {EA_PII_US_SSN, "(?<![\\w\\-./#$@])(\\d{3})([ \\-]?)(\\d{2})\\2(\\d{4})(?![\\w]|[\\-.,/:]\\d)",
     EA__SCAN_WORDS, NULL, NULL, NULL, 0, 0, 0.7f, check_ssn, &ssn_ctx, NULL, EA__START_DIGIT, 0, 9, pre_ssn},
    /* IP_ADDRESS v4 (the span leaves a /prefix out) */
    {EA_PII_IP_ADDRESS,
     "(?<![\\w.\\-])(" D8 "\\." D8 "\\." D8 "\\." D8 ")(?:/\\d{1,2})?(?![\\w]|\\.\\d)",
     EA__SCAN_WORDS, NULL, NULL, NULL, 0, 1, 0.85f, NULL, &ip_ctx, NULL, EA__START_DIGIT, 0, 4, pre_ipv4},
    /* IP_ADDRESS v6: at each ':', back over hex digits; inet_pton decides */
    {EA_PII_IP_ADDRESS, "[0-9A-Fa-f:.]{2,45}", EA__SCAN_ANCHOR, NULL, ":", ipv6_back, 45, 0,
     SCORE_STRONG, check_ipv6, NULL, NULL, 0, 0, 0, pre_ipv6},
    /* MAC_ADDRESS: six pairs (':' or '-') or Cisco's three dotted quads */
    {EA_PII_MAC_ADDRESS,
     "(?<![\\w:\\-.])(?:[0-9A-Fa-f]{2}([:\\-])[0-9A-Fa-f]{2}(?:\\1[0-9A-Fa-f]{2}){4}"
     "|[0-9A-Fa-f]{4}\\.[0-9A-Fa-f]{4}\\.[0-9A-Fa-f]{4})(?![\\w]|[:\\-.][0-9A-Fa-f])",
     EA__SCAN_ANCHOR, NULL, ":-.", hex_back, 4, 0, SCORE_STRONG, NULL, NULL, NULL, 0, 2, 0, pre_mac},
    /* SECRET: providers' key shapes, JWTs, private-key blocks */
    {EA_PII_SECRET,
     "(?:(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}"
     "|gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{40,255}|glpat-[A-Za-z0-9_\\-]{20,}"
     "|sk-(?:proj-|ant-(?:api\\d\\d-)?|live-|svcacct-)?[A-Za-z0-9_\\-]{20,}"
     "|(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|xox[abposr]-[A-Za-z0-9\\-]{10,}"
     "|AIza[0-9A-Za-z_\\-]{35}|hf_[A-Za-z0-9]{30,}|npm_[A-Za-z0-9]{36}"
     "|SG\\.[A-Za-z0-9_\\-]{16,}\\.[A-Za-z0-9_\\-]{16,}"
     "|eyJ[A-Za-z0-9_\\-]{8,}\\.eyJ[A-Za-z0-9_\\-]{8,}\\.[A-Za-z0-9_\\-]{8,}"
     "|-----BEGIN[A-Z ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
     "(?:[\\s\\S]{0,16384}?-----END[A-Z ]{0,40}PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\\s\\\\]*))"
     "(?![A-Za-z0-9])",
     EA__SCAN_WORDS, NULL, NULL, NULL, 0, 0, SCORE_SURE, NULL, NULL, secret_prefixes, 0, 0, 0, NULL},
    /* SECRET: Authorization / Bearer tokens (the span is the token) */
    {EA_PII_SECRET,
     "(?i:authorization[\"']?[ ]*[:=][ ]*[\"']?(?:basic|bearer|token)[ ]+|bearer[ ]+)"
     "([A-Za-z0-9._~+/\\-]{16,}=*)",
     EA__SCAN_WORDS, bearer_words, NULL, NULL, 0, 1, SCORE_STRONG, check_bearer, NULL, NULL, 0, 0, 0, NULL},
    /* SECRET: key: value / key=value where the key names a credential */
    {EA_PII_SECRET,
     "[A-Za-z0-9_.\\-\"' \\\\]*?((?i:password|passwd|passwort|passphrase|pwd|secret|token|"
     "api[_\\-]?key|apikey|access[_\\-]?key|private[_\\-]?key|auth[_\\-]?key|credentials?|"
     "mot de passe|contrase\\xc3\\xb1" "a))"
     "[A-Za-z0-9_.\\-]*\\\\?[\"']?[ \\t]*(?:=>|:=|[:=])[ \\t]*\\\\?[\"']?([^\\s\"',;{}<>\\\\]{4,256})",
     EA__SCAN_ANCHOR, NULL, ":=", keyword_back, 40, 2, SCORE_GOOD, check_keyword_secret, NULL, NULL, 0, 3, 0,
     pre_keyword},
    /* SECRET: "my password is X" */
    {EA_PII_SECRET,
     "(?i:(?:my[ ]+)?(?:password|passcode|passwort|passwd|mot de passe|contrase\\xc3\\xb1" "a)"
     "[ ]+(?:is|was|ist|est|es|=)[ ]+)[\"'`]?([^\\s\"'`,;]{4,128})",
     EA__SCAN_WORDS, password_words, NULL, NULL, 0, 1, SCORE_GOOD, check_password_is, NULL, NULL, 0, 0, 0, NULL},

    /* hard negatives */
    {EA__PII_NEGATIVE, /* IBAN-shaped, failing its checksum or length */
     "(?<![A-Za-z0-9])[A-Z]{2}\\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?(?![A-Za-z0-9])",
     EA__SCAN_WORDS, NULL, NULL, NULL, 0, 0, SCORE_NEGATIVE_SURE, check_not_iban, NULL, NULL,
     EA__START_UPPER2, 0, 0, NULL},
    {EA__PII_NEGATIVE, /* UUID */
     "(?<![\\w\\-])[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}(?![\\w\\-])",
     EA__SCAN_REGEX, NULL, NULL, NULL, 0, 0, SCORE_NEGATIVE_SURE, NULL, NULL, NULL, 0, 0, 0, NULL},
    {EA__PII_NEGATIVE, /* commit hashes and other hex digests (a letter and a digit: the start filter) */
     "(?<![\\w\\-])[0-9a-f]{7,64}(?![\\w\\-])", EA__SCAN_WORDS, NULL, NULL, NULL, 0, 0, SCORE_NEGATIVE,
     NULL, NULL, NULL, EA__START_HEXWORD, 0, 0, NULL},
    {EA__PII_NEGATIVE, /* versions: 1.2.3, v2.14, 10.0.19041.1, 1.2.3-rc1 */
     "(?<![\\w.\\-])[vV]?\\d{1,4}(?:\\.\\d{1,6}){1,3}(?:-[0-9A-Za-z.]+)?(?![\\w.]|\\.\\d)",
     EA__SCAN_WORDS, NULL, NULL, NULL, 0, 0, SCORE_NEGATIVE, NULL, NULL, version_prefixes, EA__START_DIGIT, 0,
     2, pre_version},
    {EA__PII_NEGATIVE, /* ISO 8601 timestamps */
     "\\d{4}-\\d{2}-\\d{2}[T ]\\d{2}:\\d{2}(?::\\d{2}(?:[.,]\\d{1,9})?)?(?:Z|[+\\-]\\d{2}:?\\d{2})?",
     EA__SCAN_REGEX, NULL, NULL, NULL, 0, 0, SCORE_NEGATIVE_SURE, NULL, NULL, NULL, 0, 0, 0, NULL},
    {EA__PII_NEGATIVE, /* prices */
     "(?:\\$|\\xe2\\x82\\xac|\\xc2[\\xa3\\xa5]|(?:USD|EUR|GBP|CHF|JPY)[ ]?)[ ]?\\d[\\d,.' ]*\\d"
     "|\\d[\\d,.']*(?:[ ]?(?:\\xe2\\x82\\xac|\\$|USD|EUR|GBP|CHF|euros?|dollars?))",
     EA__SCAN_WORDS, NULL, NULL, NULL, 0, 0, SCORE_NEGATIVE_SURE, NULL, NULL, price_prefixes, EA__START_DIGIT, 0, 0,
     pre_price},
    {EA__PII_NEGATIVE, /* ISBNs and order, invoice, ticket numbers: the label says what they are */
     "(?i:isbn(?:-1[03])?|order|bestellung|commande|pedido|invoice|rechnung|facture|factura|ticket|"
     "ref|tracking)(?:[ ]?(?i:no\\.?|nr\\.?|number|n\\xc2\\xb0|id|#))?[ :#.]*"
     "((?=[A-Za-z0-9\\-]*\\d)[A-Za-z0-9][A-Za-z0-9\\-]{4,30})",
     EA__SCAN_WORDS, negative_words, NULL, NULL, 0, 1, SCORE_NEGATIVE_SURE, NULL, NULL, NULL, 0, 0, 0, NULL},
};

static ea_status add_built(ea_privacy_detector *d, uint32_t type, const char *regex, const char *const *words,
                           const char *const *prefixes, unsigned starts, uint32_t group, float score,
                           ea__check_fn check, ea__pre_fn pre, struct ea_error *err)
{
    struct ea__pattern_def def = {type, regex, EA__SCAN_WORDS, words, NULL, NULL, 0, group,
                                  score, check, NULL, prefixes, starts, 0, 0, pre};
    ea_status s = ea__privacy_add_pattern(d, &def, 0, err);
    if (s)
        ea_error_prefix(err, "privacy: built-in %s pattern", ea__privacy_builtin_names[type]);
    return s;
}

/* A WORDS pattern whose start table comes from two phrase lists. */
static ea_status add_built_words2(ea_privacy_detector *d, uint32_t type, const char *regex,
                                  const char *const *a, const char *const *b, uint32_t group,
                                  float score, ea__check_fn check, struct ea_error *err)
{
    size_t na = 0, nb = 0;
    while (a[na])
        na++;
    while (b[nb])
        nb++;
    const char **both = ea_calloc(na + nb + 1, sizeof *both);
    if (!both)
        return ea_error_set(err, EA_ENOMEM, "privacy: out of memory");
    memcpy(both, a, na * sizeof *both);
    memcpy(both + na, b, nb * sizeof *both);
    ea_status s = add_built(d, type, regex, both, NULL, 0, group, score, check, NULL, err);
    ea_free(both);
    return s;
}

ea_status ea__privacy_add_builtins(ea_privacy_detector *d, struct ea_error *err)
{
    ea_status s = EA_OK;
    for (size_t i = 0; i < COUNT(fixed) && !s; i++)
        if ((s = ea__privacy_add_pattern(d, &fixed[i], 0, err)))
            ea_error_prefix(err, "privacy: built-in pattern %zu", i);
    if (s)
        return s;
    struct ea_buf b;
    ea__buf_init(&b, (size_t)1 << 16);
    size_t n_ctx = 0, n_titles = 0, n_dob = 0;
    while (person_context[n_ctx])
        n_ctx++;
    while (titles[n_titles])
        n_titles++;
    while (dob_context[n_dob])
        n_dob++;
    /* PERSON: a context, a separator, an optional title, the name; or a
     * title alone ("Mr. Smith", "Dr Jane Doe") */
    if (!(s = ea__buf_puts(&b, "(?:")) &&
        !(s = ea__privacy_phrases_regex(&b, person_context, n_ctx, true)) &&
        !(s = ea__buf_puts(&b, PERSON_SEP "(?:")) &&
        !(s = ea__privacy_phrases_regex(&b, titles, n_titles, true)) &&
        !(s = ea__buf_puts(&b, "\\.?[ ]+)?|")) &&
        !(s = ea__privacy_phrases_regex(&b, titles, n_titles, true)) &&
        !(s = ea__buf_puts(&b, "\\.?[ ]+)(" NAME ")" NAME_END)))
        s = add_built_words2(d, EA_PII_PERSON, b.data, person_context, titles, 1, 0.85f, check_person,
                             err);
    if (!s)
        s = add_built(d, EA_PII_PERSON, SIG_REGEX, no_words, sig_prefixes, 0, 1, 0.85f, check_person, NULL, err);
    /* DATE_OF_BIRTH: a context word, then a date within 40 bytes on the line */
    ea__buf_reset(&b);
    if (!s && !(s = ea__privacy_phrases_regex(&b, dob_context, n_dob, true)) &&
        !(s = ea__buf_puts(&b, "[^\\n\\d]{0,40}?(")) && !(s = put_date(&b)) &&
        !(s = ea__buf_puts(&b, ")(?!\\d)")))
        s = add_built(d, EA_PII_DATE_OF_BIRTH, b.data, dob_context, dob_prefixes, 0, 1, SCORE_STRONG,
                      check_dob, NULL, err);
    /* DATE_OF_BIRTH: a date, then within a few words "geboren", "born" */
    ea__buf_reset(&b);
    size_t n_after = 0;
    while (dob_after[n_after])
        n_after++;
    if (!s && !(s = ea__buf_puts(&b, "(")) && !(s = put_date(&b)) &&
        !(s = ea__buf_puts(&b, ")(?!\\d)[^\\n\\d.;]{0,16}?")) &&
        !(s = ea__privacy_phrases_regex(&b, dob_after, n_after, true)) &&
        !(s = ea__buf_puts(&b, "(?![A-Za-z])")))
        s = add_built(d, EA_PII_DATE_OF_BIRTH, b.data, month_words, NULL, EA__START_DIGIT, 1,
                      SCORE_STRONG, check_dob, pre_dob_after, err);
    if (s == EA_ETOOBIG || (s == EA_ENOMEM && !err->msg[0]))
        ea_error_set(err, s, "privacy: building the built-in patterns");
    ea__buf_release(&b);
    return s;
}
