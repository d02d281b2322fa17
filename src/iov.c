/* iov: copying to, from and along lists of host buffers (struct iovec). */
#include "iov.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Copy between buf and the bytes of an iovec list from offset off on, in either direction. */
static size_t iov_copy(const struct iovec *iov, unsigned n, size_t off, uint8_t *buf, size_t len,
		       bool into_iov)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		uint8_t *p = iov[i].iov_base;
		size_t chunk;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		chunk = iov[i].iov_len - off;
		if (chunk > len - done)
			chunk = len - done;
		if (into_iov)
			memcpy(p + off, buf + done, chunk);
		else
			memcpy(buf + done, p + off, chunk);
		done += chunk;
		off = 0;
	}
	return done;
}

unsigned iov_advance(struct iovec *iov, unsigned n, size_t skip)
{
	unsigned i = 0;

	while (skip && i < n) {
		size_t k = iov[i].iov_len < skip ? iov[i].iov_len : skip;

		iov[i].iov_base = (uint8_t *)iov[i].iov_base + k;
		iov[i].iov_len -= k;
		skip -= k;
		if (iov[i].iov_len == 0)
			i++;
	}
	return i;
}

size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len)
{
	return iov_copy(iov, n, off, buf, len, false);
}

size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t off, const void *buf, size_t len)
{
	return iov_copy(iov, n, off, (uint8_t *)buf, len, true);
}
