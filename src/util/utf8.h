/* utf8.h - UTF-8 encode/decode helpers shared by tokenizers, templates and
 * JSON output. Decoding is strict (no overlongs, no surrogates, <= U+10FFFF).
 * Does not hold: normalisation or case mapping.
 */
#ifndef EDGEAGENT_UTIL_UTF8_H
#define EDGEAGENT_UTIL_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Writes cp as UTF-8 into out (>= 4 bytes); returns the length (1..4), or 0
 * for a value that is not a Unicode scalar. */
size_t ea__utf8_encode(uint32_t cp, char *out);
/* Decodes one code point from s[0..n); returns its length (1..4) and sets
 * *cp, or returns 0 for an invalid/truncated sequence (then *cp = 0xFFFD). */
size_t ea__utf8_decode(const char *s, size_t n, uint32_t *cp);
/* Length of the sequence a lead byte announces (1..4), 0 for a bad lead. */
size_t ea__utf8_seq_len(unsigned char lead);
/* Length of the longest prefix of s[0..n) that ends on a complete, valid
 * character boundary (trailing incomplete sequence excluded). */
size_t ea__utf8_complete_prefix(const char *s, size_t n);

#endif
