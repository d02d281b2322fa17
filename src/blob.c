/* blob: boot files loaded straight into guest memory, gzip inflated on the way (zlib). */
#include "blob.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define CHUNK (256u << 10) /* compressed bytes read at a time */

/* pread all of len bytes at off, or fail: 0, -errno, or -EIO at end of file. */
static int pread_all(int fd, void *dst, size_t len, uint64_t off)
{
	uint8_t *p = dst;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

/*
 * Inflate the gzip stream of fd into dst (room bytes); when partial, stop once room is full
 * (the head). The bytes produced go to *outlen. 0, -EFBIG, -EINVAL, -EIO, -ENOMEM.
 */
static int inflate_fd(int fd, uint64_t file_size, uint8_t *dst, uint64_t room, bool partial,
		      uint64_t *outlen)
{
	uint8_t *in = malloc(CHUNK), spare;
	uint64_t off = 0;
	z_stream zs = {0};
	int zr, err = 0;

	*outlen = 0;
	if (!in)
		return -ENOMEM;
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
		free(in);
		return -ENOMEM;
	}
	for (;;) {
		bool over = *outlen == room; /* any byte produced now is one too many */
		uInt give;

		if (over && partial)
			break;
		if (!zs.avail_in) {
			size_t n = file_size - off < CHUNK ? file_size - off : CHUNK;

			if (!n) {
				err = -EINVAL; /* the stream stops before its end */
				break;
			}
			err = pread_all(fd, in, n, off);
			if (err)
				break;
			off += n;
			zs.next_in = in;
			zs.avail_in = (uInt)n;
		}
		give = over ? 1 : room - *outlen > (1u << 30) ? (1u << 30) : (uInt)(room - *outlen);
		zs.next_out = over ? &spare : dst + *outlen;
		zs.avail_out = give;
		zr = inflate(&zs, Z_NO_FLUSH);
		if (over && zs.avail_out != give) {
			err = -EFBIG;
			break;
		}
		*outlen += give - zs.avail_out;
		if (zr == Z_STREAM_END)
			break;
		if (zr != Z_OK) {
			err = zr == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
			break;
		}
	}
	inflateEnd(&zs);
	free(in);
	return err;
}

int blob_open(struct blob *b, const char *path, uint64_t max, bool inflate)
{
	uint8_t magic[2], trailer[4];
	struct stat st;
	int err = 0;

	memset(b, 0, sizeof(*b));
	b->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (b->fd < 0)
		return -errno;
	if (fstat(b->fd, &st) < 0)
		err = -errno;
	else if (!S_ISREG(st.st_mode))
		err = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	if (err)
		goto fail;
	b->file_size = b->size = st.st_size;
	b->gzip = inflate && b->file_size >= 18 && !pread_all(b->fd, magic, 2, 0) &&
		  magic[0] == 0x1f && magic[1] == 0x8b;
	if (b->gzip) {
		/* ISIZE: the plain size modulo 2^32, checked against what inflates. */
		err = pread_all(b->fd, trailer, 4, b->file_size - 4);
		if (err)
			goto fail;
		b->size = (uint32_t)trailer[0] | trailer[1] << 8 | trailer[2] << 16 |
			  (uint32_t)trailer[3] << 24;
	}
	if (b->size > max) {
		err = -EFBIG;
		goto fail;
	}
	b->head_len = b->size < BLOB_HEAD_MAX ? b->size : BLOB_HEAD_MAX;
	if (b->gzip) {
		uint64_t got;

		err = inflate_fd(b->fd, b->file_size, b->head, b->head_len, true, &got);
		if (!err && got != b->head_len)
			err = -EINVAL; /* shorter than its trailer says */
	} else {
		err = pread_all(b->fd, b->head, b->head_len, 0);
	}
	if (!err)
		return 0;
fail:
	blob_close(b);
	return err;
}

int blob_load(const struct blob *b, void *dst, uint64_t room)
{
	uint64_t got;
	int err;

	if (b->size > room)
		return -EFBIG;
	if (!b->gzip)
		return pread_all(b->fd, dst, b->size, 0);
	err = inflate_fd(b->fd, b->file_size, dst, b->size, false, &got);
	if (!err && got != b->size)
		err = -EIO;
	return err;
}

void blob_close(struct blob *b)
{
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
}
