// A small self-contained SHA-256 (FIPS 180-4) for the pre-exec step, which
// checks the compiled seccomp program against the digest in its record
// before loading it, and can link no library to do so.
#ifndef NUCLEUS_PX_SHA256_H
#define NUCLEUS_PX_SHA256_H

#include <stddef.h>
#include <stdint.h>

void px_sha256(const void *data, size_t len, unsigned char out[32]);

#endif
