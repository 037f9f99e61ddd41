/* sha256.h - SHA-256 (FIPS 180-4) for verifying downloaded files (internal).
 *
 * Streaming: init, update any number of times, final. Written from the
 * specification; no third-party code. Uses the x86 SHA extensions when the
 * CPU has them (sha256_x86.c), the portable code otherwise. Does not hold: HMAC or other digests.
 */
#ifndef EDGEAGENT_UTIL_SHA256_H
#define EDGEAGENT_UTIL_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EA_SHA256_DIGEST 32
#define EA_SHA256_HEX (2 * EA_SHA256_DIGEST + 1) /* hex digits + NUL */

struct ea_sha256 {
    uint32_t h[8];
    uint64_t n_bytes;      /* message length so far */
    unsigned char block[64];
    size_t fill;           /* bytes waiting in block */
};

void ea__sha256_init(struct ea_sha256 *c);
void ea__sha256_update(struct ea_sha256 *c, const void *data, size_t n);
void ea__sha256_final(struct ea_sha256 *c, unsigned char out[EA_SHA256_DIGEST]);
/* Whether the x86 SHA extensions are used (the CPU has them and no test
 * turned them off). ea__sha256_use_accel(false) forces the portable code:
 * for tests comparing the two; not thread-safe. */
bool ea__sha256_accel(void);
void ea__sha256_use_accel(bool on);
/* Lower-case hex of the digest into out (EA_SHA256_HEX bytes). */
void ea__sha256_hex(const unsigned char digest[EA_SHA256_DIGEST], char out[EA_SHA256_HEX]);

#endif
