/* test_grammar.c - the grammar engine: per-keyword acceptance of JSON Schema
 * constructs byte by byte (with the token mask checked at every byte on a
 * byte vocabulary), regex / choice / prefix-suffix grammars, strict and
 * unenforced keywords, errors and allocation failures, matcher lifecycle,
 * masks against a brute-force check over real vocabularies (../shared/vocab),
 * and random generation under the mask for the schemas of
 * tests/data/grammar_schemas.json, every output validated by Ajv
 * (tests/node/validate_schema.mjs). Cases that need ../shared or node skip
 * without them.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edgeagent/gguf.h"
#include "edgeagent/grammar.h"
#include "harness.h"

/* ---- byte vocabulary: token i < 256 is byte i, token 256 is EOS ------------- */

#define BYTE_EOS 256

static ea_grammar_vocab *new_byte_vocab(void)
{
    static char bytes[256];
    ea_grammar_vocab *v = NULL;
    const char *pieces[257];
    uint32_t lens[257];
    for (int i = 0; i < 256; i++) {
        bytes[i] = (char)i;
        pieces[i] = &bytes[i];
        lens[i] = 1;
    }
    pieces[256] = "";
    lens[256] = 0;
    int32_t eos = BYTE_EOS;
    struct ea_error err = {0};
    ASSERT_OK(ea_grammar_vocab_create_raw(257, pieces, lens, &eos, 1, &v, &err), &err);
    return v;
}

/* The vocabulary most cases share (its shared mask caches fill as they go). */
static ea_grammar_vocab *byte_vocab(void)
{
    static ea_grammar_vocab *v;
    if (!v)
        v = new_byte_vocab();
    return v;
}

static bool bit(const uint32_t *m, uint32_t i) { return (m[i >> 5] >> (i & 31)) & 1u; }

enum { REJECT = 0, ACCEPT = 1, PARTIAL = 2 };

/* Feeds s byte by byte; at every byte the mask must allow exactly what
 * accepting the byte allows, and EOS exactly when the matcher accepts. */
static int feed(ea_grammar *g, const char *s, size_t n)
{
    struct ea_error err = {0};
    ea_grammar_matcher *m = NULL;
    ASSERT_OK(ea_grammar_matcher_create(g, &m, &err), &err);
    uint32_t mask[9];
    int res = -1;
    for (size_t i = 0; i <= n && res < 0; i++) {
        ASSERT_OK(ea_grammar_matcher_fill_mask(m, mask, 9, &err), &err);
        if (bit(mask, BYTE_EOS) != ea_grammar_matcher_is_accepting(m))
            FAIL("EOS bit %d but accepting %d after %zu bytes of %.*s", bit(mask, BYTE_EOS),
                 ea_grammar_matcher_is_accepting(m), i, (int)n, s);
        if (i == n) {
            res = ea_grammar_matcher_is_accepting(m) ? ACCEPT : PARTIAL;
            break;
        }
        uint8_t c = (uint8_t)s[i];
        ea_status st = ea_grammar_matcher_accept_token(m, c, &err);
        if ((st == EA_OK) != bit(mask, c))
            FAIL("mask bit %d for byte 0x%02x but accept %s at %zu of %.*s", bit(mask, c), c,
                 ea_status_name(st), i, (int)n, s);
        if (st != EA_OK)
            res = REJECT;
    }
    ea_grammar_matcher_destroy(m);
    return res;
}

static ea_grammar *schema(const char *text)
{
    struct ea_error err = {0};
    ea_grammar *g = NULL;
    ASSERT_OK(ea_grammar_compile_schema_text(byte_vocab(), text, strlen(text), NULL, &g, &err), &err);
    return g;
}

#define CHECK(g, input, want)                                                                      \
    do {                                                                                           \
        int ea__r = feed((g), (input), strlen(input));                                             \
        if (ea__r != (want))                                                                       \
            FAIL("%s: got %d want %d", (input), ea__r, (want));                                    \
    } while (0)

#define CHECK_SCHEMA(text, input, want)                                                            \
    do {                                                                                           \
        ea_grammar *ea__g = schema(text);                                                          \
        CHECK(ea__g, input, want);                                                                 \
        ea_grammar_destroy(ea__g);                                                                 \
    } while (0)

/* ---- keywords ------------------------------------------------------------------------------ */

static void type_string(void)
{
    ea_grammar *g = schema("{\"type\":\"string\"}");
    CHECK(g, "\"abc\"", ACCEPT);
    CHECK(g, "\"\"", ACCEPT);
    CHECK(g, "\"a\\\"b\\\\c\\n\\u00e9\\/\"", ACCEPT);
    CHECK(g, "\"caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80\"", ACCEPT);
    CHECK(g, "\"abc", PARTIAL);
    CHECK(g, "\"a\nb\"", REJECT);         /* raw control character */
    CHECK(g, "\"\\x\"", REJECT);          /* bad escape */
    CHECK(g, "\"\\ud800\"", REJECT);      /* lone surrogate escape */
    CHECK(g, "\"\xc0\xaf\"", REJECT);     /* overlong UTF-8 */
    CHECK(g, "\"\xed\xa0\x80\"", REJECT); /* UTF-8 surrogate */
    CHECK(g, "\"a\" ", REJECT);           /* nothing after the value */
    CHECK(g, "abc", REJECT);
    ea_grammar_destroy(g);
}

static void type_number_integer(void)
{
    ea_grammar *g = schema("{\"type\":\"number\"}");
    CHECK(g, "0", ACCEPT);
    CHECK(g, "-12.5e+3", ACCEPT);
    CHECK(g, "1E9", ACCEPT);
    CHECK(g, "01", REJECT);
    CHECK(g, ".5", REJECT);
    CHECK(g, "1.", PARTIAL);
    CHECK(g, "-", PARTIAL);
    ea_grammar_destroy(g);
    g = schema("{\"type\":\"integer\"}");
    CHECK(g, "-120", ACCEPT);
    CHECK(g, "0", ACCEPT);
    CHECK(g, "1.5", REJECT);
    CHECK(g, "00", REJECT);
    ea_grammar_destroy(g);
}

/* Every integer in a window is accepted exactly when it is in range. */
static void check_int_range(const char *text, long lo, long hi)
{
    ea_grammar *g = schema(text);
    for (long x = -1300; x <= 1300; x++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%ld", x);
        int want = (x >= lo && x <= hi) ? ACCEPT : -1;
        int got = feed(g, buf, strlen(buf));
        if (want == ACCEPT ? got != ACCEPT : got == ACCEPT)
            FAIL("%s: %ld got %d", text, x, got);
    }
    ea_grammar_destroy(g);
}

static void integer_bounds(void)
{
    check_int_range("{\"type\":\"integer\",\"minimum\":0,\"maximum\":100}", 0, 100);
    check_int_range("{\"type\":\"integer\",\"minimum\":-100,\"maximum\":-5}", -100, -5);
    check_int_range("{\"type\":\"integer\",\"minimum\":7}", 7, 1000000);
    check_int_range("{\"type\":\"integer\",\"maximum\":-13}", -1000000, -13);
    check_int_range("{\"type\":\"integer\",\"exclusiveMinimum\":9,\"exclusiveMaximum\":1000}", 10, 999);
    check_int_range("{\"type\":\"integer\",\"minimum\":-1000,\"maximum\":1234}", -1000, 1234);
    check_int_range("{\"type\":\"integer\",\"minimum\":1.5,\"maximum\":99.9}", 2, 99);
    check_int_range("{\"type\":\"integer\",\"minimum\":0,\"exclusiveMinimum\":true,\"maximum\":3}", 1, 3);
}

static void integer_multiple_of(void)
{
    ea_grammar *g = schema("{\"type\":\"integer\",\"minimum\":-50,\"maximum\":100,\"multipleOf\":7}");
    for (long x = -200; x <= 200; x++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%ld", x);
        bool want = x >= -50 && x <= 100 && x % 7 == 0;
        int got = feed(g, buf, strlen(buf));
        if ((got == ACCEPT) != want)
            FAIL("%ld: got %d", x, got);
    }
    ea_grammar_destroy(g);
    g = schema("{\"type\":\"integer\",\"multipleOf\":25}");
    CHECK(g, "1275", ACCEPT);
    CHECK(g, "-50", ACCEPT);
    CHECK(g, "1276", PARTIAL); /* more digits could still make a multiple */
    ea_grammar_destroy(g);
}

static void number_bounds(void)
{
    ea_grammar *g = schema("{\"type\":\"number\",\"minimum\":0,\"maximum\":1}");
    CHECK(g, "0", ACCEPT);
    CHECK(g, "0.5", ACCEPT);
    CHECK(g, "1", ACCEPT);
    CHECK(g, "1.000", ACCEPT);
    CHECK(g, "1.01", REJECT);
    CHECK(g, "-0.1", REJECT);
    CHECK(g, "2", REJECT);
    ea_grammar_destroy(g);
    g = schema("{\"type\":\"number\",\"exclusiveMinimum\":0,\"exclusiveMaximum\":2}");
    CHECK(g, "0.001", ACCEPT);
    CHECK(g, "1.999", ACCEPT);
    CHECK(g, "0", PARTIAL);
    CHECK(g, "0.000", PARTIAL);
    CHECK(g, "2", REJECT);
    ea_grammar_destroy(g);
    g = schema("{\"type\":\"number\",\"minimum\":-90,\"maximum\":90}");
    CHECK(g, "-90", ACCEPT);
    CHECK(g, "-89.99", ACCEPT);
    CHECK(g, "-90.5", REJECT);
    CHECK(g, "90.0", ACCEPT);
    CHECK(g, "90.1", REJECT);
    ea_grammar_destroy(g);
}

/* Decimal bounds: every value on a 0.001 grid in [-3, 3], written with 1 to 3
 * fraction digits and without, is accepted exactly when in range (the grid
 * is compared in integer thousandths, so no rounding is involved). */
static void check_decimal_range(const char *text, long lo, bool lo_open, long hi, bool hi_open)
{
    ea_grammar *g = schema(text);
    for (long x = -3000; x <= 3000; x++) {
        bool in = (lo_open ? x > lo : x >= lo) && (hi_open ? x < hi : x <= hi);
        char buf[4][32];
        long a = labs(x);
        int nb = 0;
        const char *sg = x < 0 ? "-" : "";
        snprintf(buf[nb++], 32, "%s%ld.%03ld", sg, a / 1000, a % 1000);
        if (a % 10 == 0)
            snprintf(buf[nb++], 32, "%s%ld.%02ld", sg, a / 1000, (a % 1000) / 10);
        if (a % 100 == 0)
            snprintf(buf[nb++], 32, "%s%ld.%ld", sg, a / 1000, (a % 1000) / 100);
        if (a % 1000 == 0)
            snprintf(buf[nb++], 32, "%s%ld", sg, a / 1000);
        for (int i = 0; i < nb; i++) {
            int got = feed(g, buf[i], strlen(buf[i]));
            if ((got == ACCEPT) != in)
                FAIL("%s: %s got %d, want %s", text, buf[i], got, in ? "accept" : "no");
        }
    }
    ea_grammar_destroy(g);
}

static void number_decimal_bounds(void)
{
    check_decimal_range("{\"type\":\"number\",\"minimum\":0.5,\"maximum\":2.25}", 500, false, 2250, false);
    check_decimal_range("{\"type\":\"number\",\"exclusiveMinimum\":-1.5,\"maximum\":0.75}", -1500, true, 750, false);
    check_decimal_range("{\"type\":\"number\",\"minimum\":-2.05,\"exclusiveMaximum\":-0.3}", -2050, false, -300, true);
    check_decimal_range("{\"type\":\"number\",\"minimum\":1.2,\"maximum\":1.75}", 1200, false, 1750, false);
    check_decimal_range("{\"type\":\"number\",\"exclusiveMinimum\":1.2,\"exclusiveMaximum\":1.25}", 1200, true, 1250, true);
    check_decimal_range("{\"type\":\"number\",\"minimum\":0.001}", 1, false, 1000000, false);
    check_decimal_range("{\"type\":\"number\",\"maximum\":-0.999}", -1000000, false, -999, false);
    check_decimal_range("{\"type\":\"number\",\"minimum\":-0.5,\"maximum\":2}", -500, false, 2000, false);
    /* next to an exclusive bound at most 15 significant digits: a reader of
     * doubles could round 0.0000000000000000001 onto 0 */
    ea_grammar *g = schema("{\"type\":\"number\",\"exclusiveMinimum\":0,\"exclusiveMaximum\":1.5}");
    CHECK(g, "0.00000000000001", ACCEPT);
    CHECK(g, "0.000000000000001", REJECT);
    CHECK(g, "1.49999999999999", ACCEPT);
    CHECK(g, "1.499999999999999", REJECT);
    ea_grammar_destroy(g);
    g = schema("{\"type\":\"number\",\"exclusiveMinimum\":0,\"exclusiveMaximum\":3.5}");
    CHECK(g, "1.2345678901234567", ACCEPT); /* integer part away from the bounds: any length */
    ea_grammar_destroy(g);
    g = schema("{\"type\":\"number\",\"minimum\":0.5,\"maximum\":2.25}");
    CHECK(g, "2.2500000", ACCEPT);
    CHECK(g, "2.2500001", REJECT);
    CHECK(g, "0.4999999", REJECT);
    ea_grammar_destroy(g);
}

static void literals_enum_const(void)
{
    CHECK_SCHEMA("{\"type\":\"boolean\"}", "true", ACCEPT);
    CHECK_SCHEMA("{\"type\":\"boolean\"}", "fals", PARTIAL);
    CHECK_SCHEMA("{\"type\":\"null\"}", "null", ACCEPT);
    ea_grammar *g = schema("{\"enum\":[\"red\",1,null,{\"a\":[true]}]}");
    CHECK(g, "\"red\"", ACCEPT);
    CHECK(g, "1", ACCEPT);
    CHECK(g, "null", ACCEPT);
    CHECK(g, "{\"a\":[true]}", ACCEPT);
    CHECK(g, "\"blue\"", REJECT);
    CHECK(g, "2", REJECT);
    ea_grammar_destroy(g);
    CHECK_SCHEMA("{\"const\":\"tcp\"}", "\"tcp\"", ACCEPT);
    CHECK_SCHEMA("{\"const\":\"tcp\"}", "\"udp\"", REJECT);
    /* enum values of another type than "type" are dropped */
    CHECK_SCHEMA("{\"type\":\"string\",\"enum\":[\"a\",1]}", "1", REJECT);
}

static void object_properties(void)
{
    ea_grammar *g = schema("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"},\"b\":{\"type\":"
                           "\"integer\"},\"c\":{\"type\":\"boolean\"}},\"required\":[\"b\"]}");
    CHECK(g, "{\"b\":1}", ACCEPT);
    CHECK(g, "{\"a\":\"x\",\"b\":1}", ACCEPT);
    CHECK(g, "{\"a\": \"x\", \"b\": 1, \"c\": true}", ACCEPT);
    CHECK(g, "{\"b\":1,\"c\":false}", ACCEPT);
    CHECK(g, "{\n  \"b\": 1\n}", ACCEPT);
    CHECK(g, "{\"a\":\"x\"}", REJECT);         /* b required */
    CHECK(g, "{}", REJECT);
    CHECK(g, "{\"b\":1,\"a\":\"x\"}", REJECT); /* declaration order */
    CHECK(g, "{\"b\":1,\"d\":2}", REJECT);     /* no extra keys unless allowed */
    CHECK(g, "{\"b\":1,}", REJECT);
    ea_grammar_destroy(g);
}

static void object_additional(void)
{
    ea_grammar *g = schema("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}},"
                           "\"additionalProperties\":{\"type\":\"integer\"}}");
    CHECK(g, "{\"a\":\"s\",\"zz\":1}", ACCEPT);
    CHECK(g, "{\"zz\":1,\"y\":2}", ACCEPT);
    CHECK(g, "{\"a\":\"s\",\"a\":1}", REJECT); /* an extra key may not repeat a declared one */
    CHECK(g, "{\"ab\":1}", ACCEPT);
    CHECK(g, "{\"zz\":\"s\"}", REJECT);
    ea_grammar_destroy(g);
    g = schema("{\"type\":\"object\",\"additionalProperties\":false}");
    CHECK(g, "{}", ACCEPT);
    CHECK(g, "{\"a\":1}", REJECT);
    ea_grammar_destroy(g);
    g = schema("{\"type\":\"object\"}");
    CHECK(g, "{\"any key\": [1, {\"x\": null}], \"k\": \"v\"}", ACCEPT);
    ea_grammar_destroy(g);
}

static void arrays(void)
{
    ea_grammar *g = schema("{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":2,\"maxItems\":3}");
    CHECK(g, "[1,2]", ACCEPT);
    CHECK(g, "[1, 2, 3]", ACCEPT);
    CHECK(g, "[1]", REJECT);
    CHECK(g, "[1,2,3,4]", REJECT);
    CHECK(g, "[1,\"a\"]", REJECT);
    ea_grammar_destroy(g);
    g = schema("{\"type\":\"array\",\"prefixItems\":[{\"type\":\"string\"},{\"type\":\"integer\"}],\"items\":false}");
    CHECK(g, "[\"a\",1]", ACCEPT);
    CHECK(g, "[\"a\"]", ACCEPT);
    CHECK(g, "[]", ACCEPT);
    CHECK(g, "[1]", REJECT);
    CHECK(g, "[\"a\",1,2]", REJECT);
    ea_grammar_destroy(g);
    g = schema("{\"type\":\"array\",\"prefixItems\":[{\"type\":\"string\"}],\"items\":{\"type\":\"boolean\"},\"minItems\":2}");
    CHECK(g, "[\"a\",true,false]", ACCEPT);
    CHECK(g, "[\"a\"]", REJECT);
    ea_grammar_destroy(g);
    g = schema("{\"type\":\"array\",\"items\":[{\"type\":\"null\"}],\"additionalItems\":false}"); /* draft-07 */
    CHECK(g, "[null]", ACCEPT);
    CHECK(g, "[null,null]", REJECT);
    ea_grammar_destroy(g);
    CHECK_SCHEMA("{\"type\":\"array\"}", "[1, \"x\", [], {}]", ACCEPT);
}

static void unique_enum_items(void)
{
    ea_grammar *g = schema("{\"type\":\"array\",\"items\":{\"enum\":[\"mon\",\"tue\",\"wed\"]},\"uniqueItems\":true,"
                           "\"minItems\":1}");
    CHECK(g, "[\"tue\"]", ACCEPT);
    CHECK(g, "[\"wed\", \"mon\", \"tue\"]", ACCEPT);
    CHECK(g, "[\"mon\",\"mon\"]", REJECT);
    CHECK(g, "[\"mon\",\"tue\",\"mon\"]", REJECT);
    CHECK(g, "[]", REJECT);
    ea_grammar_destroy(g);
    g = schema("{\"type\":\"array\",\"items\":{\"type\":\"integer\",\"enum\":[1,2,3,\"x\"]},\"uniqueItems\":true,"
               "\"maxItems\":2}");
    CHECK(g, "[3,1]", ACCEPT);
    CHECK(g, "[3,1,2]", REJECT);
    CHECK(g, "[\"x\"]", REJECT);
    ea_grammar_destroy(g);
}

static void string_lengths(void)
{
    ea_grammar *g = schema("{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}");
    CHECK(g, "\"ab\"", ACCEPT);
    CHECK(g, "\"\xc3\xa9\xc3\xa9\xc3\xa9\"", ACCEPT); /* code points, not bytes */
    CHECK(g, "\"a\\n\"", ACCEPT);                     /* an escape is one character */
    CHECK(g, "\"a\"", REJECT);
    CHECK(g, "\"abcd\"", REJECT);
    ea_grammar_destroy(g);
}

static void patterns(void)
{
    ea_grammar *g = schema("{\"type\":\"string\",\"pattern\":\"abc\"}"); /* unanchored: search */
    CHECK(g, "\"xxabcxx\"", ACCEPT);
    CHECK(g, "\"abx\"", REJECT);
    ea_grammar_destroy(g);
    g = schema("{\"type\":\"string\",\"pattern\":\"^[A-Z]{2,3}-\\\\d+(\\\\.\\\\d+)?$\"}");
    CHECK(g, "\"AB-12\"", ACCEPT);
    CHECK(g, "\"ABC-1.5\"", ACCEPT);
    CHECK(g, "\"A-1\"", REJECT);
    CHECK(g, "\"ABCD-1\"", REJECT);
    CHECK(g, "\"AB-\"", REJECT);
    ea_grammar_destroy(g);
    g = schema("{\"type\":\"string\",\"pattern\":\"^(cat|dog)s?$|^[^a-z\\\"]+$\"}");
    CHECK(g, "\"dogs\"", ACCEPT);
    CHECK(g, "\"cat\"", ACCEPT);
    CHECK(g, "\"XY Z\"", ACCEPT);
    CHECK(g, "\"cow\"", REJECT);
    CHECK(g, "\"X\\\"\"", REJECT); /* the class excludes the quote */
    ea_grammar_destroy(g);
    /* a quote and a newline in the pattern are matched in their escaped form */
    g = schema("{\"type\":\"string\",\"pattern\":\"^a\\\"b\\\\n$\"}");
    CHECK(g, "\"a\\\"b\\n\"", ACCEPT);
    ea_grammar_destroy(g);
    g = schema("{\"type\":\"string\",\"pattern\":\"^.{2}$\",\"maxLength\":5}");
    CHECK(g, "\"\xe4\xb8\xad!\"", ACCEPT);
    CHECK(g, "\"abc\"", REJECT);
    ea_grammar_destroy(g);
}

static void formats(void)
{
    ea_grammar *g = schema("{\"type\":\"string\",\"format\":\"date\"}");
    CHECK(g, "\"2024-02-29\"", ACCEPT);
    CHECK(g, "\"2000-02-29\"", ACCEPT);
    CHECK(g, "\"1900-02-29\"", REJECT);
    CHECK(g, "\"2023-02-29\"", REJECT);
    CHECK(g, "\"2023-04-31\"", REJECT);
    CHECK(g, "\"2023-12-31\"", ACCEPT);
    CHECK(g, "\"2023-13-01\"", REJECT);
    ea_grammar_destroy(g);
    g = schema("{\"type\":\"string\",\"format\":\"time\"}");
    CHECK(g, "\"23:59:59Z\"", ACCEPT);
    CHECK(g, "\"08:30:00.123+05:30\"", ACCEPT);
    CHECK(g, "\"08:30:00\"", REJECT); /* a time zone is required */
    CHECK(g, "\"24:00:00Z\"", REJECT);
    ea_grammar_destroy(g);
    CHECK_SCHEMA("{\"type\":\"string\",\"format\":\"date-time\"}", "\"2024-01-15T10:30:00-08:00\"", ACCEPT);
    CHECK_SCHEMA("{\"type\":\"string\",\"format\":\"date-time\"}", "\"2024-01-15 10:30:00Z\"", REJECT);
    g = schema("{\"type\":\"string\",\"format\":\"uuid\"}");
    CHECK(g, "\"123e4567-e89b-12d3-a456-426614174000\"", ACCEPT);
    CHECK(g, "\"123e4567e89b12d3a456426614174000\"", REJECT);
    ea_grammar_destroy(g);
    g = schema("{\"type\":\"string\",\"format\":\"email\"}");
    CHECK(g, "\"a.b+c@example.co.uk\"", ACCEPT);
    CHECK(g, "\"a@localhost\"", REJECT); /* a dotted domain is required */
    CHECK(g, "\"a@@b.c\"", REJECT);
    ea_grammar_destroy(g);
    g = schema("{\"type\":\"string\",\"format\":\"ipv4\"}");
    CHECK(g, "\"192.168.0.255\"", ACCEPT);
    CHECK(g, "\"256.1.1.1\"", REJECT);
    CHECK(g, "\"01.1.1.1\"", REJECT);
    ea_grammar_destroy(g);
}

static void refs_recursion(void)
{
    ea_grammar *g = schema("{\"$defs\":{\"n\":{\"type\":\"object\",\"properties\":{\"c\":{\"type\":\"array\",\"items\":"
                           "{\"$ref\":\"#/$defs/n\"}}},\"required\":[\"c\"]}},\"$ref\":\"#/$defs/n\"}");
    CHECK(g, "{\"c\":[{\"c\":[]},{\"c\":[{\"c\":[]}]}]}", ACCEPT);
    CHECK(g, "{\"c\":[{}]}", REJECT);
    ea_grammar_destroy(g);
    g = schema("{\"type\":\"object\",\"properties\":{\"next\":{\"$ref\":\"#\"}}}"); /* root recursion */
    CHECK(g, "{\"next\":{\"next\":{}}}", ACCEPT);
    ea_grammar_destroy(g);
    g = schema("{\"definitions\":{\"s\":{\"type\":\"string\"}},\"type\":\"array\",\"items\":{\"$ref\":\"#/definitions/s\"}}");
    CHECK(g, "[\"a\",\"b\"]", ACCEPT);
    CHECK(g, "[1]", REJECT);
    ea_grammar_destroy(g);
}

static void combinators(void)
{
    ea_grammar *g = schema("{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"object\",\"properties\":{\"k\":{\"const\":1}},"
                           "\"required\":[\"k\"]}]}");
    CHECK(g, "5", ACCEPT);
    CHECK(g, "{\"k\":1}", ACCEPT);
    CHECK(g, "\"5\"", REJECT);
    ea_grammar_destroy(g);
    CHECK_SCHEMA("{\"type\":[\"string\",\"null\"]}", "null", ACCEPT);
    CHECK_SCHEMA("{\"type\":[\"string\",\"null\"]}", "\"x\"", ACCEPT);
    CHECK_SCHEMA("{\"type\":[\"string\",\"null\"]}", "1", REJECT);
    CHECK_SCHEMA("{\"type\":\"integer\",\"nullable\":true}", "null", ACCEPT);
    /* allOf of objects merges properties and required */
    g = schema("{\"allOf\":[{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},\"required\":[\"a\"]},"
               "{\"properties\":{\"b\":{\"type\":\"string\"}},\"required\":[\"b\"]}]}");
    CHECK(g, "{\"a\":1,\"b\":\"x\"}", ACCEPT);
    CHECK(g, "{\"a\":1}", REJECT);
    ea_grammar_destroy(g);
    /* a member closed with additionalProperties false forbids the other's keys */
    g = schema("{\"allOf\":[{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},\"additionalProperties\":false},"
               "{\"properties\":{\"b\":{\"type\":\"string\"}}}]}");
    CHECK(g, "{\"a\":1}", ACCEPT);
    CHECK(g, "{\"a\":1,\"b\":\"x\"}", REJECT);
    ea_grammar_destroy(g);
    /* siblings of anyOf apply to every alternative */
    g = schema("{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"integer\"}},\"anyOf\":[{\"required\":[\"x\"]}]}");
    CHECK(g, "{\"x\":1}", ACCEPT);
    CHECK(g, "{}", REJECT);
    ea_grammar_destroy(g);
    /* 40 tool-call-like alternatives sharing a prefix are all alive at once */
    char big[16384] = "{\"anyOf\":[";
    for (int i = 0; i < 40; i++)
        snprintf(big + strlen(big), sizeof big - strlen(big),
                 "%s{\"type\":\"object\",\"properties\":{\"name\":{\"const\":\"tool_%d\"},\"arguments\":"
                 "{\"type\":\"object\",\"properties\":{\"a%d\":{\"type\":\"integer\"}},\"required\":[\"a%d\"],"
                 "\"additionalProperties\":false}},\"required\":[\"name\",\"arguments\"],\"additionalProperties\":false}",
                 i ? "," : "", i, i, i);
    strcat(big, "]}");
    g = schema(big);
    CHECK(g, "{\"name\": \"tool_39\", \"arguments\": {\"a39\": 7}}", ACCEPT);
    CHECK(g, "{\"name\":\"tool_0\",\"arguments\":{\"a0\":1}}", ACCEPT);
    CHECK(g, "{\"name\":\"tool_3\",\"arguments\":{\"a4\":1}}", REJECT);
    ea_grammar_destroy(g);
    /* description/title are ignored, $ref with an annotation sibling is a plain ref */
    CHECK_SCHEMA("{\"$defs\":{\"i\":{\"type\":\"integer\"}},\"$ref\":\"#/$defs/i\",\"description\":\"d\",\"title\":\"t\"}",
                 "42", ACCEPT);
}

static void whitespace_bounded(void)
{
    ea_grammar *g = schema("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"array\",\"items\":{\"type\":\"integer\"}}},"
                           "\"required\":[\"a\"]}");
    CHECK(g, "{ \"a\" : [ 1 , 2 ] }", ACCEPT);
    CHECK(g, "{\n\t\"a\":\n    [1,\n     2]\n}", ACCEPT);
    CHECK(g, "{  \"a\":[]}", REJECT); /* two spaces */
    CHECK(g, "{\"a\":[]}\n", REJECT); /* nothing after the value */
    char deep[64] = "{\n";
    memset(deep + 2, ' ', EA_GRAMMAR_WS_MAX_INDENT);
    strcpy(deep + 2 + EA_GRAMMAR_WS_MAX_INDENT, "\"a\":[]}");
    CHECK(g, deep, ACCEPT);
    memset(deep + 2, ' ', EA_GRAMMAR_WS_MAX_INDENT + 1);
    strcpy(deep + 2 + EA_GRAMMAR_WS_MAX_INDENT + 1, "\"a\":[]}");
    CHECK(g, deep, REJECT);
    ea_grammar_destroy(g);
}

static void any_json_object(void)
{
    struct ea_error err = {0};
    ea_grammar *g = NULL;
    ASSERT_OK(ea_grammar_compile_json_object(byte_vocab(), NULL, &g, &err), &err);
    CHECK(g, "{}", ACCEPT);
    CHECK(g, "{\"a\": [1, 2.5e3, true, null, \"s\", {\"b\": {}}]}", ACCEPT);
    CHECK(g, "[1]", REJECT);
    CHECK(g, "\"x\"", REJECT);
    ea_grammar_destroy(g);
}

static void regex_and_choice(void)
{
    struct ea_error err = {0};
    ea_grammar *g = NULL;
    const char *re = "(\\d{3}-)?\\d{4}|[a-c]+x";
    ASSERT_OK(ea_grammar_compile_regex(byte_vocab(), re, strlen(re), NULL, &g, &err), &err);
    CHECK(g, "555-1234", ACCEPT);
    CHECK(g, "1234", ACCEPT);
    CHECK(g, "abcabx", ACCEPT);
    CHECK(g, "12345", REJECT);
    CHECK(g, "x", REJECT);
    ea_grammar_destroy(g);
    const char *choices[] = {"yes", "no", "maybe not"};
    ASSERT_OK(ea_grammar_compile_choice(byte_vocab(), choices, 3, NULL, &g, &err), &err);
    CHECK(g, "yes", ACCEPT);
    CHECK(g, "maybe not", ACCEPT);
    CHECK(g, "maybe", PARTIAL);
    CHECK(g, "nope", REJECT);
    ea_grammar_destroy(g);
    struct ea_grammar_options o = {.prefix = "<tool_call>\n", .suffix = "\n</tool_call>"};
    const char *s = "{\"type\":\"integer\"}";
    ASSERT_OK(ea_grammar_compile_schema_text(byte_vocab(), s, strlen(s), &o, &g, &err), &err);
    CHECK(g, "<tool_call>\n42\n</tool_call>", ACCEPT);
    CHECK(g, "42", REJECT);
    ea_grammar_destroy(g);
}

static ea_grammar *regex(const char *re)
{
    struct ea_error err = {0};
    ea_grammar *g = NULL;
    ASSERT_OK(ea_grammar_compile_regex(byte_vocab(), re, strlen(re), NULL, &g, &err), &err);
    return g;
}

#define CHECK_RE(re, input, want)                                                                  \
    do {                                                                                           \
        ea_grammar *ea__g = regex(re);                                                             \
        CHECK(ea__g, input, want);                                                                 \
        ea_grammar_destroy(ea__g);                                                                 \
    } while (0)

static void regex_syntax(void)
{
    CHECK_RE("\\x41\\u0042\\u{1F600}", "AB\xf0\x9f\x98\x80", ACCEPT);
    CHECK_RE("\\uD83D\\uDE00", "\xf0\x9f\x98\x80", ACCEPT); /* surrogate pair escape */
    CHECK_RE("a.c", "a\xe4\xb8\xad" "c", ACCEPT);                 /* . is a code point */
    CHECK_RE("a.c", "a\nc", REJECT);                             /* not a line terminator */
    CHECK_RE("\\s+", " \t\xc2\xa0\xe3\x80\x80", ACCEPT);        /* unicode spaces */
    CHECK_RE("[\\d\\-_]+", "1-_2", ACCEPT);
    CHECK_RE("[^\\d]", "5", REJECT);
    CHECK_RE("[\\w.]{2,}@x", "a.b@x", ACCEPT);
    CHECK_RE("\\W", "_", REJECT);
    CHECK_RE("(?<year>\\d{4})-(?:0[1-9]|1[0-2])", "2024-12", ACCEPT);
    CHECK_RE("a{2}b{1,}c{0,2}", "aabbbcc", ACCEPT);
    CHECK_RE("a{2}b{1,}c{0,2}", "abbb", REJECT);
    CHECK_RE("x*?y+?", "xxyy", ACCEPT); /* lazy forms: same language */
    {
        struct ea_error err = {0};
        ea_grammar *g = NULL; /* ECMA: [] matches nothing, so does "[]a]" */
        ASSERT_EQ(ea_grammar_compile_regex(byte_vocab(), "[]a]", 4, NULL, &g, &err), EA_EINVAL);
        ASSERT(g == NULL);
    }
    CHECK_RE("[^]", "\n", ACCEPT); /* [^] is any code point */
    CHECK_RE("a{,2}", "a{,2}", ACCEPT); /* not a quantifier: literal braces */
    CHECK_RE("^ab$", "ab", ACCEPT);
    CHECK_RE("\\.\\*\\/\\(", ".*/(", ACCEPT);
    /* JSON mode: a pattern over the decoded string, matched on its encoding */
    CHECK_SCHEMA("{\"type\":\"string\",\"pattern\":\"^\\\\s$\"}", "\"\\n\"", ACCEPT);
    CHECK_SCHEMA("{\"type\":\"string\",\"pattern\":\"^\\\\\\\\$\"}", "\"\\\\\"", ACCEPT);
    CHECK_SCHEMA("{\"type\":\"string\",\"pattern\":\"^[\\\\u0000-\\\\u001f]$\"}", "\"\\u0001\"", ACCEPT);
}

static void tool_calls(void)
{
    const char *tools_text =
        "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\","
        "\"properties\":{\"city\":{\"type\":\"string\"},\"unit\":{\"enum\":[\"c\",\"f\"]}},\"required\":[\"city\"],"
        "\"additionalProperties\":false}}},"
        "{\"type\":\"function\",\"function\":{\"name\":\"now\"}},"
        "{\"type\":\"function\",\"function\":{\"name\":\"tree\",\"parameters\":{\"$defs\":{\"n\":{\"type\":\"object\","
        "\"properties\":{\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/n\"}}},\"required\":[\"kids\"],"
        "\"additionalProperties\":false}},\"type\":\"object\",\"properties\":{\"root\":{\"$ref\":\"#/$defs/n\"}},"
        "\"required\":[\"root\"],\"additionalProperties\":false}}}]";
    json_error_t je;
    json_t *tools = json_loads(tools_text, 0, &je);
    ASSERT(tools);
    struct ea_error err = {0};
    ea_grammar *g = NULL;
    struct ea_grammar_tools t = {.tools = tools};
    ASSERT_OK(ea_grammar_compile_tools(byte_vocab(), &t, NULL, &g, &err), &err);
    CHECK(g, "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"unit\": \"c\"}}", ACCEPT);
    CHECK(g, "{\"name\":\"now\",\"arguments\":{}}", ACCEPT);
    CHECK(g, "{\"name\":\"tree\",\"arguments\":{\"root\":{\"kids\":[{\"kids\":[]}]}}}", ACCEPT);
    CHECK(g, "{\"name\":\"now\",\"arguments\":{\"city\":\"x\"}}", REJECT);
    CHECK(g, "{\"name\":\"get_time\"", REJECT);
    ea_grammar_destroy(g);
    /* a named function, Llama's key, tagged and repeated (parallel calls) */
    t = (struct ea_grammar_tools){.tools = tools, .only = "get_weather", .args_key = "parameters"};
    struct ea_grammar_options o = {.prefix = "<tool_call>\n", .suffix = "\n</tool_call>", .max_repeat = 3,
                                   .separator = "\n"};
    ASSERT_OK(ea_grammar_compile_tools(byte_vocab(), &t, &o, &g, &err), &err);
    CHECK(g, "<tool_call>\n{\"name\":\"get_weather\",\"parameters\":{\"city\":\"A\"}}\n</tool_call>", ACCEPT);
    CHECK(g, "<tool_call>\n{\"name\":\"get_weather\",\"parameters\":{\"city\":\"A\"}}\n</tool_call>\n"
             "<tool_call>\n{\"name\":\"get_weather\",\"parameters\":{\"city\":\"B\"}}\n</tool_call>", ACCEPT);
    CHECK(g, "<tool_call>\n{\"name\":\"now\",\"parameters\":{}}\n</tool_call>", REJECT);
    ea_grammar_destroy(g);
    /* one JSON array of calls (Mistral) */
    t = (struct ea_grammar_tools){.tools = tools, .array = true};
    o = (struct ea_grammar_options){.prefix = "[TOOL_CALLS] "};
    ASSERT_OK(ea_grammar_compile_tools(byte_vocab(), &t, &o, &g, &err), &err);
    CHECK(g, "[TOOL_CALLS] [{\"name\":\"now\",\"arguments\":{}}, {\"name\":\"tree\",\"arguments\":{\"root\":{\"kids\":[]}}}]",
          ACCEPT);
    CHECK(g, "[TOOL_CALLS] []", REJECT);
    ea_grammar_destroy(g);
    /* ... of at most max_items calls (parallel_tool_calls false: one) */
    t = (struct ea_grammar_tools){.tools = tools, .array = true, .max_items = 1};
    ASSERT_OK(ea_grammar_compile_tools(byte_vocab(), &t, NULL, &g, &err), &err);
    CHECK(g, "[{\"name\":\"now\",\"arguments\":{}}]", ACCEPT);
    CHECK(g, "[{\"name\":\"now\",\"arguments\":{}},{\"name\":\"now\",\"arguments\":{}}]", REJECT);
    ea_grammar_destroy(g);
    t = (struct ea_grammar_tools){.tools = tools, .only = "missing"};
    ASSERT_EQ(ea_grammar_compile_tools(byte_vocab(), &t, NULL, &g, &err), EA_EINVAL);
    json_decref(tools);
}

/* ---- strict, unenforced, errors -------------------------------------------------------------- */

static ea_status try_compile(const char *text, bool strict, ea_grammar **g, struct ea_error *err)
{
    struct ea_grammar_options o = {.strict = strict};
    *g = NULL;
    return ea_grammar_compile_schema_text(byte_vocab(), text, strlen(text), &o, g, err);
}

static void strict_and_unenforced(void)
{
    struct ea_error err = {0};
    ea_grammar *g;
    const char *s = "{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"number\",\"multipleOf\":0.5},"
                    "\"t\":{\"type\":\"array\",\"uniqueItems\":true},\"u\":{\"type\":\"string\",\"format\":\"uri\"}}}";
    ASSERT_EQ(try_compile(s, true, &g, &err), EA_EUNSUPPORTED);
    ASSERT(g == NULL);
    ASSERT(strstr(err.msg, "\"multipleOf\"") != NULL);
    ASSERT(strstr(err.msg, "/properties/n") != NULL);
    ASSERT_OK(try_compile(s, false, &g, &err), &err);
    ASSERT_STR_EQ(ea_grammar_unenforced(g), "multipleOf,uniqueItems,format");
    ea_grammar_destroy(g);
    /* a bound without a short decimal form is reported, not silently dropped */
    ASSERT_EQ(try_compile("{\"type\":\"number\",\"minimum\":1e-30}", true, &g, &err), EA_EUNSUPPORTED);
    ASSERT(strstr(err.msg, "\"minimum\"") != NULL);
    /* an unknown keyword is named too; annotations are not */
    ASSERT_EQ(try_compile("{\"type\":\"string\",\"x-foo\":1}", true, &g, &err), EA_EUNSUPPORTED);
    ASSERT(strstr(err.msg, "x-foo") != NULL);
    ASSERT_OK(try_compile("{\"type\":\"string\",\"description\":\"d\",\"title\":\"t\",\"examples\":[\"a\"],"
                          "\"default\":\"a\",\"$schema\":\"https://json-schema.org/draft/2020-12/schema\"}",
                          true, &g, &err),
              &err);
    ASSERT_STR_EQ(ea_grammar_unenforced(g), "");
    ea_grammar_destroy(g);
    /* oneOf with overlapping alternatives cannot be exact */
    ASSERT_EQ(try_compile("{\"oneOf\":[{\"type\":\"string\"},{\"type\":\"string\",\"maxLength\":3}]}", true, &g, &err),
              EA_EUNSUPPORTED);
    ASSERT_OK(try_compile("{\"oneOf\":[{\"type\":\"string\"},{\"type\":\"integer\"}]}", true, &g, &err), &err);
    ea_grammar_destroy(g);
    /* a discriminated union of objects is exact */
    const char *du = "{\"oneOf\":[{\"type\":\"object\",\"properties\":{\"kind\":{\"const\":\"a\"},\"x\":{\"type\":"
                     "\"integer\"}},\"required\":[\"kind\"]},{\"type\":\"object\",\"properties\":{\"kind\":{\"enum\":[\"b\"]}},"
                     "\"required\":[\"kind\"]}]}";
    ASSERT_OK(try_compile(du, true, &g, &err), &err);
    CHECK(g, "{\"kind\":\"a\",\"x\":1}", ACCEPT);
    CHECK(g, "{\"kind\":\"b\"}", ACCEPT);
    CHECK(g, "{\"kind\":\"b\",\"x\":1}", REJECT);
    ea_grammar_destroy(g);
    /* without a required tag the alternatives overlap */
    const char *ov = "{\"oneOf\":[{\"type\":\"object\",\"properties\":{\"kind\":{\"const\":\"a\"}}},"
                     "{\"type\":\"object\",\"properties\":{\"kind\":{\"const\":\"b\"}}}]}";
    ASSERT_EQ(try_compile(ov, true, &g, &err), EA_EUNSUPPORTED);
}

static void compile_errors(void)
{
    struct ea_error err = {0};
    ea_grammar *g;
    static const struct {
        const char *schema;
        ea_status st;
    } cases[] = {
        {"{\"type\":", EA_EFORMAT},
        {"{\"type\":\"strin\"}", EA_EFORMAT},
        {"{\"$ref\":\"https://example.com/s.json\"}", EA_EUNSUPPORTED},
        {"{\"$ref\":\"#/$defs/missing\"}", EA_EFORMAT},
        {"{\"$defs\":{\"a\":{\"anyOf\":[{\"$ref\":\"#/$defs/a\"},{\"type\":\"null\"}]}},\"$ref\":\"#/$defs/a\"}", EA_EUNSUPPORTED},
        {"false", EA_EINVAL},
        {"{\"type\":\"integer\",\"minimum\":5,\"maximum\":4}", EA_EINVAL},
        {"{\"type\":\"string\",\"pattern\":\"(?=a)\"}", EA_EUNSUPPORTED},
        {"{\"type\":\"string\",\"pattern\":\"(a\"}", EA_EFORMAT},
        {"{\"type\":\"string\",\"pattern\":\"\\\\1\"}", EA_EUNSUPPORTED},
        {"{\"type\":\"string\",\"pattern\":\"a{2000}\"}", EA_ETOOBIG},
        {"{\"type\":\"string\",\"pattern\":\"*a\"}", EA_EFORMAT},
        {"[1]", EA_EFORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ea_status st = try_compile(cases[i].schema, false, &g, &err);
        if (st != cases[i].st)
            FAIL("%s: %s (%s), want %s", cases[i].schema, ea_status_name(st), err.msg, ea_status_name(cases[i].st));
        ASSERT(g == NULL);
        ASSERT(err.msg[0] != '\0');
    }
    const char *bad_re = "a(b";
    ASSERT_EQ(ea_grammar_compile_regex(byte_vocab(), bad_re, 3, NULL, &g, &err), EA_EFORMAT);
    ASSERT_EQ(ea_grammar_compile_choice(byte_vocab(), NULL, 0, NULL, &g, &err), EA_EINVAL);
}

/* Every allocation failing in turn: a clean error, never a crash or leak. */
static void alloc_failures(void)
{
    const char *s = "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"format\":\"date\"},"
                    "\"b\":{\"type\":\"array\",\"items\":{\"$ref\":\"#\"},\"maxItems\":2}},\"required\":[\"a\"]}";
    byte_vocab();
    int failures = 0;
    for (long n = 1; n < 20000; n++) {
        struct ea_error err = {0};
        ea_grammar *g = NULL;
        ea_alloc_fail_after(n);
        ea_status st = ea_grammar_compile_schema_text(byte_vocab(), s, strlen(s), NULL, &g, &err);
        ea_grammar_matcher *m = NULL;
        if (st == EA_OK)
            st = ea_grammar_matcher_create(g, &m, &err);
        uint32_t mask[9];
        if (st == EA_OK)
            st = ea_grammar_matcher_fill_mask(m, mask, 9, &err);
        ea_alloc_fail_after(0);
        ea_grammar_matcher_destroy(m);
        ea_grammar_destroy(g);
        if (st == EA_OK)
            break;
        ASSERT(err.msg[0] != '\0');
        failures++;
    }
    ASSERT(failures > 50);
}

static void matcher_lifecycle(void)
{
    ea_grammar *g = schema("{\"type\":\"array\",\"items\":{\"type\":\"integer\"}}");
    struct ea_error err = {0};
    ea_grammar_matcher *m, *c;
    ASSERT_OK(ea_grammar_matcher_create(g, &m, &err), &err);
    ASSERT_EQ(ea_grammar_matcher_accept_token(m, BYTE_EOS, &err), EA_EINVAL); /* not complete */
    ASSERT_OK(ea_grammar_matcher_accept_bytes(m, "[1", 2, &err), &err);
    ASSERT_EQ(ea_grammar_matcher_accept_bytes(m, "x", 1, &err), EA_EINVAL);
    ASSERT_OK(ea_grammar_matcher_clone(m, &c, &err), &err);
    ASSERT_OK(ea_grammar_matcher_accept_bytes(c, "]", 1, &err), &err);
    ASSERT(ea_grammar_matcher_is_accepting(c));
    ASSERT(ea_grammar_matcher_is_terminated(c));
    ASSERT(!ea_grammar_matcher_is_accepting(m)); /* the clone is independent */
    ASSERT_OK(ea_grammar_matcher_accept_bytes(m, "2", 1, &err), &err);
    ASSERT_OK(ea_grammar_matcher_copy(m, c, &err), &err);
    ASSERT(ea_grammar_matcher_is_accepting(m));
    ASSERT_OK(ea_grammar_matcher_accept_token(m, BYTE_EOS, &err), &err);
    uint32_t mask[9];
    ASSERT_OK(ea_grammar_matcher_fill_mask(m, mask, 9, &err), &err);
    for (int i = 0; i < 9; i++)
        ASSERT_EQ(mask[i], 0);
    ASSERT_EQ(ea_grammar_matcher_accept_bytes(m, "1", 1, &err), EA_EINVAL);
    ASSERT_EQ(ea_grammar_matcher_fill_mask(m, mask, 8, &err), EA_EINVAL); /* too short */
    ea_grammar_matcher_reset(m);
    ASSERT(!ea_grammar_matcher_is_accepting(m));
    ASSERT_OK(ea_grammar_matcher_accept_bytes(m, "[]", 2, &err), &err);
    ASSERT(ea_grammar_matcher_is_accepting(m));
    ea_grammar_matcher_destroy(m);
    ea_grammar_matcher_destroy(c);
    ea_grammar_destroy(g);
}

/* Two threads compile the same schemas on one vocabulary (shared caches)
 * and fill masks along the same text; every mask equals the reference. */
struct share_arg {
    const char *schema, *text;
    uint32_t (*ref)[9];
    int bad;
};

static void *share_thread(void *p)
{
    struct share_arg *a = p;
    struct ea_error err = {0};
    for (int rep = 0; rep < 20; rep++) {
        ea_grammar *g = NULL;
        ea_grammar_matcher *m = NULL;
        if (ea_grammar_compile_schema_text(byte_vocab(), a->schema, strlen(a->schema), NULL, &g, &err) != EA_OK ||
            ea_grammar_matcher_create(g, &m, &err) != EA_OK) {
            a->bad++;
            ea_grammar_destroy(g);
            continue;
        }
        for (size_t i = 0; a->text[i]; i++) {
            uint32_t mask[9];
            if (ea_grammar_matcher_fill_mask(m, mask, 9, &err) != EA_OK || memcmp(mask, a->ref[i], sizeof mask) ||
                ea_grammar_matcher_accept_bytes(m, a->text + i, 1, &err) != EA_OK) {
                a->bad++;
                break;
            }
        }
        ea_grammar_matcher_destroy(m);
        ea_grammar_destroy(g);
    }
    return NULL;
}

static void threads_share_vocab(void)
{
    const char *schema = "{\"type\":\"object\",\"properties\":{\"s\":{\"type\":\"string\",\"maxLength\":9},"
                         "\"d\":{\"type\":\"string\",\"format\":\"date\"},\"n\":{\"type\":\"number\"}},"
                         "\"required\":[\"s\",\"d\",\"n\"]}";
    const char *text = "{\"s\": \"h\u00e9llo\", \"d\": \"2024-02-29\", \"n\": -1.5e3}";
    size_t n = strlen(text);
    uint32_t(*ref)[9] = calloc(n, sizeof *ref);
    ASSERT(ref);
    struct ea_error err = {0};
    ea_grammar_vocab *fresh = new_byte_vocab(); /* reference: caches of its own */
    ea_grammar *g = NULL;
    ASSERT_OK(ea_grammar_compile_schema_text(fresh, schema, strlen(schema), NULL, &g, &err), &err);
    ea_grammar_matcher *m;
    ASSERT_OK(ea_grammar_matcher_create(g, &m, &err), &err);
    for (size_t i = 0; i < n; i++) {
        ASSERT_OK(ea_grammar_matcher_fill_mask(m, ref[i], 9, &err), &err);
        ASSERT_OK(ea_grammar_matcher_accept_bytes(m, text + i, 1, &err), &err);
    }
    ASSERT(ea_grammar_matcher_is_accepting(m));
    ea_grammar_matcher_destroy(m);
    ea_grammar_destroy(g);
    ea_grammar_vocab_destroy(fresh);
    struct share_arg a = {schema, text, ref, 0}, b = a;
    pthread_t ta, tb;
    ASSERT_EQ(pthread_create(&ta, NULL, share_thread, &a), 0);
    ASSERT_EQ(pthread_create(&tb, NULL, share_thread, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    ASSERT_EQ(a.bad, 0);
    ASSERT_EQ(b.bad, 0);
    free(ref);
}

/* ---- real vocabularies --------------------------------------------------------------------- */

struct real {
    ea_gguf *gg;
    ea_tokenizer *tok;
    ea_grammar_vocab *v;
    char *single; /* [n_vocab]: the byte of a one-byte token (non-zero), else 0 */
};

static void real_open(struct real *r, const char *name)
{
    struct ea_error err = {0};
    const char *path = ea_test_shared_path(name);
    ASSERT_OK(ea_gguf_open(path, &r->gg, &err), &err);
    ASSERT_OK(ea_tokenizer_create(r->gg, &r->tok, &err), &err);
    ASSERT_OK(ea_grammar_vocab_create(r->tok, &r->v, &err), &err);
    uint32_t nv = ea_grammar_vocab_n_vocab(r->v);
    r->single = calloc(nv, 1);
    ASSERT(r->single);
    for (uint32_t i = 0; i < nv; i++) {
        const char *p;
        size_t len;
        if (ea_token_piece(r->tok, (int32_t)i, false, &p, &len) == EA_OK && len == 1)
            r->single[i] = p[0] ? p[0] : 1;
    }
}

static void real_close(struct real *r)
{
    free(r->single);
    ea_grammar_vocab_destroy(r->v);
    ea_tokenizer_destroy(r->tok);
    ea_gguf_close(r->gg);
}

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Allowed ids of mask into ids; returns the count. */
static uint32_t mask_ids(const uint32_t *mask, uint32_t n_vocab, int32_t *ids)
{
    uint32_t n = 0;
    for (uint32_t w = 0; w < (n_vocab + 31) / 32; w++)
        for (uint32_t x = mask[w]; x; x &= x - 1) {
            uint32_t i = w * 32 + (uint32_t)__builtin_ctz(x);
            if (i < n_vocab)
                ids[n++] = (int32_t)i;
        }
    return n;
}

/* fill_mask equals trying every token on a copy of the matcher. */
static void brute_force_vocab(const char *name, int states_per_schema)
{
    struct real r = {0};
    real_open(&r, name);
    static const char *const schemas[] = {
        "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":12},\"age\":{\"type\":\"integer\","
        "\"minimum\":0,\"maximum\":150},\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"a b\",\"c\"]}}},\"required\":[\"name\"]}",
        "{\"type\":\"object\",\"properties\":{\"when\":{\"type\":\"string\",\"format\":\"date-time\"},\"x\":{\"type\":\"number\"},"
        "\"n\":{\"type\":[\"string\",\"null\"]}},\"required\":[\"when\",\"x\",\"n\"],\"additionalProperties\":false}",
        "{\"$defs\":{\"t\":{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\"},\"kids\":{\"type\":\"array\","
        "\"items\":{\"$ref\":\"#/$defs/t\"}}},\"required\":[\"v\"]}},\"$ref\":\"#/$defs/t\"}",
        "{\"type\":\"object\"}",
    };
    struct ea_error err = {0};
    uint32_t nv = ea_grammar_vocab_n_vocab(r.v);
    size_t nw = ea_grammar_mask_words(r.v);
    uint32_t *mask = calloc(nw, sizeof *mask);
    int32_t *ids = malloc(nv * sizeof *ids);
    ASSERT(mask && ids);
    size_t checked = 0;
    for (size_t si = 0; si < sizeof schemas / sizeof schemas[0]; si++) {
        ea_grammar *g = NULL;
        ASSERT_OK(ea_grammar_compile_schema_text(r.v, schemas[si], strlen(schemas[si]), NULL, &g, &err), &err);
        ea_grammar_matcher *m, *probe;
        ASSERT_OK(ea_grammar_matcher_create(g, &m, &err), &err);
        ASSERT_OK(ea_grammar_matcher_create(g, &probe, &err), &err);
        for (int step = 0; step < states_per_schema; step++) {
            ASSERT_OK(ea_grammar_matcher_fill_mask(m, mask, nw, &err), &err);
            for (uint32_t t = 0; t < nv; t++) {
                ASSERT_OK(ea_grammar_matcher_copy(probe, m, &err), &err);
                bool ok = ea_grammar_matcher_accept_token(probe, (int32_t)t, &err) == EA_OK;
                if (ok != bit(mask, t)) {
                    const char *p;
                    size_t len;
                    ea_token_piece(r.tok, (int32_t)t, false, &p, &len);
                    FAIL("%s schema %zu step %d token %u \"%.*s\": mask %d, accept %d", name, si, step, t,
                         (int)len, p, bit(mask, t), ok);
                }
            }
            checked++;
            uint32_t n = mask_ids(mask, nv, ids);
            ASSERT(n > 0);
            int32_t id = ids[rng() % n];
            if (ea_tokenizer_is_eog(r.tok, id))
                break;
            ASSERT_OK(ea_grammar_matcher_accept_token(m, id, &err), &err);
        }
        ea_grammar_matcher_destroy(m);
        ea_grammar_matcher_destroy(probe);
        ea_grammar_destroy(g);
    }
    ASSERT(checked >= 10);
    free(mask);
    free(ids);
    real_close(&r);
}

static void mask_brute_force_qwen2(void) { brute_force_vocab("vocab/ggml-vocab-qwen2.gguf", 6); }
static void mask_brute_force_starcoder(void) { brute_force_vocab("vocab/ggml-vocab-starcoder.gguf", 14); }
static void mask_brute_force_llama_spm(void) { brute_force_vocab("vocab/ggml-vocab-llama-spm.gguf", 14); }

/* ---- random generation under the mask, validated by Ajv -------------------------------------- */

#define GEN_PER_SCHEMA 17 /* 62 schemas: 1,054 generations */
#define GEN_SOFT_CAP 120   /* tokens before steering towards short closing tokens */
#define GEN_HARD_CAP 1500  /* tokens before a generation counts as unfinished */

/* One generation: random tokens from the mask; past the soft cap, single-byte
 * tokens and among them closers are preferred so that outputs end. */
static bool generate(const struct real *r, ea_grammar *g, ea_grammar_matcher *m, uint32_t *mask,
                     int32_t *ids, char *out, size_t cap, size_t *n_out)
{
    struct ea_error err = {0};
    uint32_t nv = ea_grammar_vocab_n_vocab(r->v);
    size_t nw = ea_grammar_mask_words(r->v);
    size_t n = 0;
    ea_grammar_matcher_reset(m);
    for (int step = 0; step < GEN_HARD_CAP; step++) {
        ASSERT_OK(ea_grammar_matcher_fill_mask(m, mask, nw, &err), &err);
        bool acc = ea_grammar_matcher_is_accepting(m);
        if (acc && (step >= GEN_SOFT_CAP || rng() % 3 == 0))
            break;
        uint32_t k = mask_ids(mask, nv, ids);
        ASSERT(k > 0); /* a matcher that is not complete always has a way on */
        int32_t id = ids[rng() % k];
        if (step >= GEN_SOFT_CAP) {
            uint32_t ns = 0, nc = 0;
            int32_t closers[8];
            for (uint32_t i = 0; i < k; i++) {
                char c = r->single[ids[i]];
                if (c) {
                    if ((c == '"' || c == '}' || c == ']') && nc < 8)
                        closers[nc++] = ids[i];
                    ids[ns++] = ids[i];
                }
            }
            if (nc && rng() % 4 != 0)
                id = closers[rng() % nc];
            else if (ns)
                id = ids[rng() % ns];
        }
        if (ea_tokenizer_is_eog(r->tok, id)) {
            if (!acc)
                FAIL("EOG allowed while not accepting");
            break;
        }
        ASSERT_OK(ea_grammar_matcher_accept_token(m, id, &err), &err);
        const char *p;
        size_t len;
        ASSERT_OK(ea_token_piece(r->tok, id, false, &p, &len), &err);
        ASSERT(n + len < cap);
        memcpy(out + n, p, len);
        n += len;
    }
    out[n] = '\0';
    *n_out = n;
    return ea_grammar_matcher_is_accepting(m);
}

/* The source tree: EA_SOURCE_DIR (ctest sets it), else the working directory
 * or its parent, whichever holds tests/data. */
static const char *source_dir(void)
{
    const char *src = getenv("EA_SOURCE_DIR");
    if (src && *src)
        return src;
    return access("tests/data/grammar_schemas.json", R_OK) == 0 ? "." : "..";
}

static void random_generation_ajv(void)
{
    struct real r = {0};
    real_open(&r, "vocab/ggml-vocab-qwen2.gguf");
    const char *src = source_dir();
    char spath[4096], npath[4096];
    snprintf(spath, sizeof spath, "%s/tests/data/grammar_schemas.json", src && *src ? src : "..");
    json_error_t je;
    json_t *all = json_load_file(spath, 0, &je);
    if (!all)
        FAIL("%s: %s", spath, je.text);
    ASSERT(json_array_size(all) >= 50);
    const char *opath = ea_test_tmp_path("grammar_outputs.jsonl");
    FILE *f = fopen(opath, "w");
    ASSERT(f);
    uint32_t nv = ea_grammar_vocab_n_vocab(r.v);
    uint32_t *mask = calloc(ea_grammar_mask_words(r.v), sizeof *mask);
    int32_t *ids = malloc(nv * sizeof *ids);
    size_t cap = 1 << 20;
    char *out = malloc(cap);
    ASSERT(mask && ids && out);
    size_t finished = 0, total = 0;
    struct ea_error err = {0};
    for (size_t si = 0; si < json_array_size(all); si++) {
        ea_grammar *g = NULL;
        ASSERT_OK(ea_grammar_compile_schema(r.v, json_array_get(all, si), NULL, &g, &err), &err);
        if (ea_grammar_unenforced(g)[0])
            FAIL("schema %zu: unenforced %s", si, ea_grammar_unenforced(g));
        ea_grammar_matcher *m;
        ASSERT_OK(ea_grammar_matcher_create(g, &m, &err), &err);
        for (int k = 0; k < GEN_PER_SCHEMA; k++) {
            size_t n;
            total++;
            if (!generate(&r, g, m, mask, ids, out, cap, &n))
                continue;
            finished++;
            json_t *parsed = json_loadb(out, n, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &je);
            if (!parsed)
                FAIL("schema %zu: output is not JSON (%s): %s", si, je.text, out);
            json_decref(parsed);
            json_t *line = json_pack("{s:i,s:s%}", "schema", (json_int_t)si, "text", out, n);
            ASSERT(line);
            char *txt = json_dumps(line, JSON_COMPACT);
            fprintf(f, "%s\n", txt);
            free(txt);
            json_decref(line);
        }
        ea_grammar_matcher_destroy(m);
        ea_grammar_destroy(g);
    }
    fclose(f);
    printf("  %zu of %zu generations finished within %d tokens\n", finished, total, GEN_HARD_CAP);
    ASSERT(finished * 10 >= total * 9);
    free(mask);
    free(ids);
    free(out);
    json_decref(all);
    real_close(&r);
    /* independent validation */
    snprintf(npath, sizeof npath, "%s/tests/node/node_modules/ajv-formats/package.json", src && *src ? src : "..");
    if (access(npath, R_OK) != 0)
        SKIP("outputs parse as JSON; %s missing (npm ci in tests/node), Ajv validation skipped", npath);
    char cmd[12288];
    snprintf(cmd, sizeof cmd, "node '%s/tests/node/validate_schema.mjs' '%s' '%s'", src && *src ? src : "..", spath,
             opath);
    char *o = NULL, *e = NULL;
    int rc = ea_test_run(cmd, &o, &e);
    printf("  %s", o ? o : "");
    if (rc != 0)
        FAIL("Ajv rejected outputs (rc %d): %s %s", rc, o ? o : "", e ? e : "");
    free(o);
    free(e);
}

EA_TESTS(EA_TEST(type_string), EA_TEST(type_number_integer), EA_TEST(integer_bounds), EA_TEST(integer_multiple_of), EA_TEST(number_bounds), EA_TEST(number_decimal_bounds),
         EA_TEST(literals_enum_const), EA_TEST(object_properties), EA_TEST(object_additional), EA_TEST(arrays), EA_TEST(unique_enum_items),
         EA_TEST(string_lengths), EA_TEST(patterns), EA_TEST(formats), EA_TEST(refs_recursion),
         EA_TEST(combinators), EA_TEST(whitespace_bounded), EA_TEST(any_json_object), EA_TEST(regex_and_choice), EA_TEST(regex_syntax), EA_TEST(tool_calls),
         EA_TEST(strict_and_unenforced), EA_TEST(compile_errors), EA_TEST(alloc_failures),
         EA_TEST(matcher_lifecycle), EA_TEST(threads_share_vocab), EA_TEST(mask_brute_force_qwen2), EA_TEST(mask_brute_force_starcoder),
         EA_TEST(mask_brute_force_llama_spm), EA_TEST(random_generation_ajv))
