/* privacy_int.h - the privacy module's internals: the compiled pattern
 * table the detector runs, the built-in definitions (builtin.c), the
 * configuration reader (config.c) and the map shared by redact.c and
 * restore.c.
 * Does not hold: anything public (include/edgeagent/privacy.h).
 */
#ifndef EDGEAGENT_PRIVACY_INT_H
#define EDGEAGENT_PRIVACY_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgeagent/privacy.h"
#include "util/buf.h"

/* Candidates of this "type" are hard negatives (UUIDs, ISBNs, versions,
 * timestamps, prices, commit hashes): they take part in overlap resolution
 * so that what they cover is not reported, and are never reported. */
#define EA__PII_NEGATIVE UINT32_MAX

/* How a pattern finds where to try a match. */
enum ea__scan {
    EA__SCAN_REGEX,  /* pcre2_match over the whole text (rare first bytes: digits, '+', capitals) */
    EA__SCAN_WORDS,  /* anchored at word starts that pass the pattern's start filters (below) */
    EA__SCAN_ANCHOR, /* at each anchor byte, back over a byte class, then anchored */
};

/* Start filters of a WORDS pattern (any one that passes starts an attempt):
 * its first words (the lowercased word at the position is one of them), its
 * two-byte prefixes (exact bytes), and these flags. */
enum ea__start {
    EA__START_DIGIT = 1u << 0,   /* a digit */
    EA__START_HEXWORD = 1u << 1, /* a word of 7..64 hex digits with a digit and a letter */
    EA__START_UPPER2 = 1u << 2,  /* two capital letters and two digits (an IBAN's start) */
};

/* What a validator sees and may change: the span (a validator may shrink
 * it, e.g. an IBAN cut to its country's length) and the score. */
struct ea__cand {
    size_t start, end;
    float score;
};
/* false: not an entity of this type (a failed checksum, a date that is no
 * date, ...). ov is the match's ovector (pairs), n_pairs its size. */
typedef bool (*ea__check_fn)(const char *text, size_t len, const PCRE2_SIZE *ov, uint32_t n_pairs,
                             struct ea__cand *c);

/* What a pre filter may remember between its calls on one text (each
 * pattern has its own, zeroed at the start of every ea_privacy_detect call
 * and kept on that call's stack): a filter that searches ahead keeps what it
 * found, so that its next call, further on, does not search the same bytes
 * again (builtin.c: stem_end_within). */
struct ea__pre_memo {
    bool set;
    size_t from, searched; /* the bytes searched so far ... */
    size_t at, end;        /* ... and what was found there (SIZE_MAX: nothing) */
};

/* A cheap test before a regex call: false skips the attempt. at: the
 * anchor byte (ANCHOR) or the word start (WORDS), increasing from one call
 * to the next with the same memo; start: where the match would begin. */
typedef bool (*ea__pre_fn)(const char *text, size_t len, size_t at, size_t start, struct ea__pre_memo *memo);

/* Context words: a weak match of a type gains `raise_by` when one of the
 * raise words stands in the window before it (on the same line), and loses
 * `lower_by` for one of the lower words in the (shorter) lower window:
 * lowering wins when both are there. Lowercase ASCII or UTF-8 phrases,
 * matched as whole words; a phrase ending in '*' is a prefix ("bestell*"). */
struct ea__context {
    const char *const *raise;
    const char *const *lower;
    float raise_by, lower_by;
    size_t window;       /* bytes before the span searched for raise words */
    size_t lower_window; /* the same for lower words: they must be close */
};

struct ea__pattern {
    uint32_t type;
    pcre2_code *re;
    bool jit;                /* compiled by the JIT: matched with pcre2_jit_match */
    enum ea__scan scan;
    uint8_t *prefix;         /* WORDS: 65536-bit table of (first byte, second byte), or NULL */
    uint64_t *wset;          /* WORDS: hashes of the first words (open addressing, 0 = empty) */
    size_t wset_slots;       /* a power of two, or 0 */
    unsigned starts;         /* WORDS: enum ea__start bits */
    uint32_t min_digits;     /* WORDS: digits the number at the start must have (0: any) */
    ea__pre_fn pre;          /* NULL: none */
    const char *anchors;     /* ANCHOR: the anchor bytes */
    size_t max_back;         /* ANCHOR: at most this many bytes back */
    size_t min_back;         /* ANCHOR: at least this many (fewer: no attempt) */
    uint32_t group;          /* the capture group giving the span (0: the whole match) */
    float score;
    ea__check_fn check;      /* NULL: none */
    const struct ea__context *ctx; /* NULL: none */
    /* the lower [0] and raise [1] words sorted by first byte, and where
     * each first byte's run starts in them (ctx_at[k][c] .. ctx_at[k][c+1]) */
    const char **ctx_words[2];
    uint16_t ctx_at[2][257];
    /* the tables last: the fields read at every attempt share cache lines */
    bool back[256];          /* ANCHOR: bytes to walk back over (from the definition's test) */
};

/* One built-in or configured pattern before compilation. */
struct ea__pattern_def {
    uint32_t type;
    const char *regex;        /* PCRE2 syntax, byte mode */
    enum ea__scan scan;
    const char *const *words; /* WORDS: phrases; their first words (letters, lowercased) start attempts */
    const char *anchors;
    bool (*back)(unsigned char);
    size_t max_back;
    uint32_t group;
    float score;
    ea__check_fn check;
    const struct ea__context *ctx;
    const char *const *prefixes; /* WORDS: exact two-byte starts ("AK", "gh", "--") */
    unsigned starts;             /* WORDS: enum ea__start bits */
    size_t min_back;             /* ANCHOR: bytes needed before the anchor */
    uint32_t min_digits;         /* WORDS: at a number, the digits it must have (a cheap filter) */
    ea__pre_fn pre;              /* a cheap test before each attempt; NULL: none */
};

/* The WORDS patterns' start filters merged (built once, after every
 * pattern is added): each entry is a bitmask over words[]. */
#define EA__MAX_WORD_PATTERNS 32
struct ea__word_entry {
    uint64_t hash; /* 0: empty */
    uint32_t mask;
};
struct ea__word_tables {
    const struct ea__pattern *pats[EA__MAX_WORD_PATTERNS];
    uint32_t n;
    uint8_t first[32];            /* bytes that start some prefix: a cheap test first */
    uint32_t *prefix;             /* 65536 entries: (first byte << 8 | second byte) -> mask */
    struct ea__word_entry *words; /* open addressing by first-word hash */
    size_t n_slots;               /* a power of two */
    uint32_t digit_mask, hex_mask, upper2_mask;
};

struct ea_privacy_detector {
    uint32_t n_types;
    char names[EA_PRIVACY_MAX_TYPES][EA_PRIVACY_MAX_TYPE_NAME + 1];
    bool enabled[EA_PRIVACY_MAX_TYPES];
    float threshold;
    struct ea__pattern *pats;
    size_t n_pats, cap_pats;
    struct ea__word_tables wt;
    char **allow; /* values never reported (compared case-insensitively) */
    size_t n_allow;
    uint32_t max_capture_pairs;
    pcre2_general_context *gc;
    pcre2_compile_context *cc;
    pcre2_match_context *mc;
};

/* builtin.c: compiles the built-in patterns (every type and the hard
 * negatives) into d. */
ea_status ea__privacy_add_builtins(ea_privacy_detector *d, struct ea_error *err);
extern const char *const ea__privacy_builtin_names[EA_PII_BUILTIN_COUNT];

/* detect.c: compiles one definition into d->pats (err: what failed,
 * prefixed by the caller with the configuration position). */
ea_status ea__privacy_add_pattern(ea_privacy_detector *d, const struct ea__pattern_def *def,
                                  uint32_t options, struct ea_error *err);
/* Builds the regex of a list of literal phrases: (?i) whole words,
 * escaped, spaces as [ \t]+; into b. */
ea_status ea__privacy_phrases_regex(struct ea_buf *b, const char *const *phrases, size_t n,
                                    bool caseless);

/* config.c: applies the `privacy:` tree to a detector whose built-in types
 * are set up; adds custom types and patterns. */
ea_status ea__privacy_config_apply(ea_privacy_detector *d, const struct ea_config_node *root,
                                   const char *file, struct ea_error *err);

/* The map (redact.c), read by restore.c. */
struct ea__map_entry {
    char *value;
    size_t len;
    uint32_t type, number;
    uint64_t hash;
};
struct ea_privacy_map {
    const ea_privacy_detector *det;
    struct ea__map_entry *v;   /* in order of creation */
    size_t n, cap;
    uint32_t *slots;           /* open addressing: index + 1, 0 = empty */
    size_t n_slots;
    uint32_t count[EA_PRIVACY_MAX_TYPES];
    /* per type: entry index of number k+1 */
    uint32_t *by_number[EA_PRIVACY_MAX_TYPES];
};

#endif
