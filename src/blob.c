/* blob: whole-file reads for boot images, with transparent gzip decompression (zlib). */
#include "blob.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

int blob_gunzip(const uint8_t *in, size_t inlen, size_t max, uint8_t **out, size_t *outlen)
{
	z_stream zs = {0};
	size_t cap = inlen * 4 < max ? inlen * 4 : max;
	uint8_t *buf = malloc(cap ? cap : 1);
	int zr;

	if (!buf)
		return -ENOMEM;
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
		free(buf);
		return -ENOMEM;
	}
	zs.next_in = (uint8_t *)in;
	zs.avail_in = (uInt)inlen;
	do {
		if (zs.total_out == cap) {
			uint8_t *nb;

			if (cap >= max) {
				zr = Z_BUF_ERROR;
				break;
			}
			cap = cap * 2 < max ? cap * 2 : max;
			nb = realloc(buf, cap);
			if (!nb) {
				zr = Z_MEM_ERROR;
				break;
			}
			buf = nb;
		}
		zs.next_out = buf + zs.total_out;
		zs.avail_out = (uInt)(cap - zs.total_out);
		zr = inflate(&zs, Z_NO_FLUSH);
	} while (zr == Z_OK);
	*outlen = zs.total_out;
	inflateEnd(&zs);
	if (zr != Z_STREAM_END) {
		free(buf);
		return zr == Z_BUF_ERROR && cap >= max ? -EFBIG
		       : zr == Z_MEM_ERROR	       ? -ENOMEM
						       : -EINVAL;
	}
	*out = buf;
	return 0;
}

int blob_read(const char *path, size_t max, uint8_t **buf, size_t *len)
{
	struct stat st;
	uint8_t *data;
	size_t got = 0;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		err = -errno;
	else if (!S_ISREG(st.st_mode))
		err = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	if (err) {
		close(fd);
		return err;
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return -EFBIG;
	}
	data = malloc(st.st_size ? st.st_size : 1);
	if (!data) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, data + got, st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : -EIO;
			break;
		}
		got += n;
	}
	close(fd);
	if (err) {
		free(data);
		return err;
	}
	if (got >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
		uint8_t *plain;

		err = blob_gunzip(data, got, max, &plain, &got);
		free(data);
		if (err)
			return err;
		data = plain;
	}
	*buf = data;
	*len = got;
	return 0;
}
