/* blob: whole-file reads for boot images, with transparent gzip decompression (zlib). */
#ifndef MICROVM_BLOB_H
#define MICROVM_BLOB_H

#include <stddef.h>
#include <stdint.h>

/* Read path into a new buffer, inflating it if it is gzip data; fail past max bytes. -errno. */
int blob_read(const char *path, size_t max, uint8_t **buf, size_t *len);
/* Inflate gzip data in into a new buffer of at most max bytes. 0, -EINVAL or -EFBIG. */
int blob_gunzip(const uint8_t *in, size_t inlen, size_t max, uint8_t **out, size_t *outlen);

#endif
