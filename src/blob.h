/* blob: boot files loaded straight into guest memory, gzip inflated on the way (zlib). */
#ifndef MICROVM_BLOB_H
#define MICROVM_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of a blob's start that blob_open reads (decompressed): its format's header. */
#define BLOB_HEAD_MAX 4096

struct blob {
	int fd;
	bool gzip;	    /* inflated while it is loaded */
	uint64_t file_size; /* bytes in the file */
	uint64_t size;	    /* bytes it loads as: the file's, 0 (not known before) for gzip */
	uint8_t head[BLOB_HEAD_MAX];
	uint64_t head_len; /* its first bytes, as loaded (fewer when it is shorter) */
};

/*
 * Open path, check it is a regular file (of at most max bytes unless gzip) and read its
 * head; with inflate, gzip data is recognised and its head is that of the plain data.
 * -errno: -EISDIR, -EINVAL (not a regular file, corrupt gzip), -EFBIG (over max), ...
 */
int blob_open(struct blob *b, const char *path, uint64_t max, bool inflate);
/*
 * Load the whole blob into dst (room bytes), read or inflated in place with no intermediate
 * copy (gzip: its first stream; what follows it is ignored); the bytes loaded go to *len.
 * -EFBIG (more than room), -EINVAL (corrupt gzip, zlib's own checks included), -EIO (the
 * file shrank since it was opened).
 */
int blob_load(const struct blob *b, void *dst, uint64_t room, uint64_t *len);
/* Close the file (a blob that was never opened has fd -1). */
void blob_close(struct blob *b);

#endif
