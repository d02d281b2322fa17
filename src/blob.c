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
	uint8_t magic[2];
	struct stat st;
	int err = 0;

	memset(b, 0, sizeof(*b));
	/* Non-blocking, so that a FIFO is refused (below), not waited on; reads are pread. */
	b->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
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
		/*
		 * Its size is known once it is inflated: its first gzip stream, whatever follows
		 * (an appended DTB, padding), so the last four bytes of the file do not tell.
		 */
		b->size = 0;
		err = inflate_fd(b->fd, b->file_size, b->head, BLOB_HEAD_MAX, true, &b->head_len);
	} else if (b->size > max) {
		err = -EFBIG;
	} else {
		b->head_len = b->size < BLOB_HEAD_MAX ? b->size : BLOB_HEAD_MAX;
		err = pread_all(b->fd, b->head, b->head_len, 0);
	}
	if (!err)
		return 0;
fail:
	blob_close(b);
	return err;
}

int blob_load(const struct blob *b, void *dst, uint64_t room, uint64_t *len)
{
	int err;

	*len = 0;
	if (!b->gzip) {
		if (b->size > room)
			return -EFBIG;
		err = pread_all(b->fd, dst, b->size, 0);
		if (!err)
			*len = b->size;
		return err;
	}
	return inflate_fd(b->fd, b->file_size, dst, room, false, len);
}

void blob_close(struct blob *b)
{
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
}
