/* iov: copying to, from and along lists of host buffers (struct iovec). */
#ifndef MICROVM_IOV_H
#define MICROVM_IOV_H

#include <stddef.h>
#include <sys/uio.h>

/* Drop skip bytes from the front of iov; returns the index of the first entry left. */
unsigned iov_advance(struct iovec *iov, unsigned n, size_t skip);
/* Copy up to len bytes out of (from_iov) or into (to_iov) an iovec list, from byte offset off. */
size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len);
size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t off, const void *buf, size_t len);

#endif
