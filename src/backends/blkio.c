/* blkio: block I/O on an image file through io_uring (liburing) or plain synchronous calls. */
#include "backends/blkio.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Finish a transfer synchronously from byte done on (short io_uring results, the sync engine). */
static long finish_sync(int fd, struct blkio_req *r, size_t done)
{
	struct iovec iov[64];

	while (done < r->len) {
		size_t skip = done;
		unsigned n = 0;
		ssize_t got;

		for (unsigned i = 0; i < r->niov && n < 64; i++) {
			if (skip >= r->iov[i].iov_len) {
				skip -= r->iov[i].iov_len;
				continue;
			}
			iov[n].iov_base = (uint8_t *)r->iov[i].iov_base + skip;
			iov[n++].iov_len = r->iov[i].iov_len - skip;
			skip = 0;
		}
		if (r->op == BLKIO_READ)
			got = preadv(fd, iov, n, r->offset + done);
		else
			got = pwritev(fd, iov, n, r->offset + done);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0)
			return -EIO; /* end of file inside the disk: the image shrank */
		done += got;
	}
	return done;
}

static long do_sync(int fd, struct blkio_req *r)
{
	if (r->op == BLKIO_FLUSH)
		return fdatasync(fd) < 0 ? -errno : 0;
	return finish_sync(fd, r, 0);
}

int blkio_init(struct blkio *b, enum blkio_engine engine, int fd, unsigned depth,
	       blkio_done_fn done, void *ctx)
{
	int err;

	memset(b, 0, sizeof(*b));
	b->engine = engine;
	b->fd = fd;
	b->done = done;
	b->ctx = ctx;
	b->efd = -1;
	if (engine == BLKIO_SYNC)
		return 0;
	err = io_uring_queue_init(depth, &b->ring, 0);
	if (err < 0)
		return err;
	b->ring_ok = true;
	b->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->efd < 0)
		return -errno;
	err = io_uring_register_eventfd(&b->ring, b->efd);
	return err < 0 ? err : 0;
}

void blkio_submit(struct blkio *b, struct blkio_req *r)
{
	struct io_uring_sqe *sqe;

	if (b->engine == BLKIO_SYNC) {
		b->done(b->ctx, r, do_sync(b->fd, r));
		return;
	}
	sqe = io_uring_get_sqe(&b->ring);
	if (!sqe) {
		blkio_kick(b);
		sqe = io_uring_get_sqe(&b->ring);
	}
	if (!sqe) {
		/* The ring is sized for every request in flight; never expected. */
		b->done(b->ctx, r, do_sync(b->fd, r));
		return;
	}
	switch (r->op) {
	case BLKIO_READ:
		io_uring_prep_readv(sqe, b->fd, r->iov, r->niov, r->offset);
		break;
	case BLKIO_WRITE:
		io_uring_prep_writev(sqe, b->fd, r->iov, r->niov, r->offset);
		break;
	case BLKIO_FLUSH:
		io_uring_prep_fsync(sqe, b->fd, IORING_FSYNC_DATASYNC);
		break;
	}
	io_uring_sqe_set_data(sqe, r);
	b->queued++;
}

void blkio_kick(struct blkio *b)
{
	int n;

	if (b->engine == BLKIO_SYNC || !b->queued)
		return;
	n = io_uring_submit(&b->ring);
	if (n > 0) {
		b->inflight += n;
		b->queued -= n;
	}
}

void blkio_reap(struct blkio *b)
{
	struct io_uring_cqe *cqe;
	uint64_t v;

	if (b->engine == BLKIO_SYNC)
		return;
	if (read(b->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	while (io_uring_peek_cqe(&b->ring, &cqe) == 0) {
		struct blkio_req *r = io_uring_cqe_get_data(cqe);
		long res = cqe->res;

		io_uring_cqe_seen(&b->ring, cqe);
		b->inflight--;
		if (res >= 0 && r->op != BLKIO_FLUSH && (size_t)res < r->len)
			res = finish_sync(b->fd, r, res);
		b->done(b->ctx, r, res);
	}
}

void blkio_drain(struct blkio *b)
{
	if (!b->ring_ok)
		return;
	blkio_kick(b);
	while (b->inflight) {
		struct io_uring_cqe *cqe;
		struct blkio_req *r;
		long res;

		if (io_uring_wait_cqe(&b->ring, &cqe) < 0)
			break;
		r = io_uring_cqe_get_data(cqe);
		res = cqe->res;
		io_uring_cqe_seen(&b->ring, cqe);
		b->inflight--;
		b->done(b->ctx, r, res);
	}
}

void blkio_exit(struct blkio *b)
{
	if (b->ring_ok) {
		blkio_drain(b);
		io_uring_queue_exit(&b->ring);
		b->ring_ok = false;
	}
	if (b->efd >= 0)
		close(b->efd);
	b->efd = -1;
}
