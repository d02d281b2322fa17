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
	uint64_t size;	    /* bytes it loads as (gzip: what its trailer says) */
	uint8_t head[BLOB_HEAD_MAX];
	size_t head_len; /* min(size, BLOB_HEAD_MAX) */
};

/*
 * Open path, check it is a regular file of at most max bytes (as loaded) and read its head;
 * with inflate, gzip data is recognised and its head and size are those of the plain data.
 * -errno: -EISDIR, -EINVAL (not a regular file, corrupt gzip), -EFBIG (over max), ...
 */
int blob_open(struct blob *b, const char *path, uint64_t max, bool inflate);
/*
 * Load the whole blob into dst (room bytes): exactly b->size bytes, read or inflated in
 * place with no intermediate copy. -EFBIG (more than room or than its size says), -EINVAL
 * (corrupt gzip), -EIO (the file shrank or holds less than its gzip trailer says).
 */
int blob_load(const struct blob *b, void *dst, uint64_t room);
/* Close the file (a blob that was never opened has fd -1). */
void blob_close(struct blob *b);

#endif
