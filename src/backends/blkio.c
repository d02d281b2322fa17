/* blkio: block I/O on an image file: io_uring, a synchronous worker, or done inline. */
#include "backends/blkio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "iov.h"
#include "log.h"
#include "sandbox.h"

int blkio_falloc_mode(const struct blkio_req *r)
{
	/* Write zeroes tries what it was asked for first, then the other way to get zeroes. */
	bool punch = r->op == BLKIO_DISCARD || r->unmap != r->retried;

	return FALLOC_FL_KEEP_SIZE | (punch ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE);
}

/* A transfer moved done bytes of r: step past them. */
static void advance(struct blkio_req *r, size_t done)
{
	unsigned first = iov_advance(r->iov, r->niov, done);

	r->iov += first;
	r->niov -= first;
	r->offset += done;
	r->len -= done;
}

/* Do r with plain system calls (the sync worker, the inline engine). 0 or -errno. */
static long do_sync(int fd, struct blkio_req *r)
{
	ssize_t got;

	switch (r->op) {
	case BLKIO_FLUSH:
		return fdatasync(fd) < 0 ? -errno : 0;
	case BLKIO_DISCARD:
	case BLKIO_WRITE_ZEROES:
		while (fallocate(fd, blkio_falloc_mode(r), r->offset, r->len) < 0) {
			if (errno == EINTR)
				continue;
			if (r->op == BLKIO_DISCARD || r->retried)
				return -errno;
			r->retried = true;
		}
		return 0;
	case BLKIO_READ:
	case BLKIO_WRITE:
		while (r->len) {
			if (r->op == BLKIO_READ)
				got = preadv(fd, r->iov, r->niov, r->offset);
			else
				got = pwritev(fd, r->iov, r->niov, r->offset);
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0)
				return -errno;
			if (got == 0)
				return -EIO; /* end of file inside the disk: the image shrank */
			advance(r, got);
		}
		return 0;
	}
	return -EINVAL;
}

static void signal_efd(struct blkio *b)
{
	uint64_t one = 1;

	if (write(b->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("block I/O completion eventfd: %s", strerror(errno));
}

/* Complete r from the reaping thread later, with res (no I/O was started for it). */
/* Put r, done with res, on the list that blkio_reap and blkio_poll complete. */
static void add_finished(struct blkio *b, struct blkio_req *r, long res)
{
	r->res = res;
	pthread_mutex_lock(&b->lock);
	r->next = b->finished;
	b->finished = r;
	pthread_mutex_unlock(&b->lock);
}

static void finish_later(struct blkio *b, struct blkio_req *r, long res)
{
	add_finished(b, r, res);
	signal_efd(b);
}

static void *worker_main(void *opaque)
{
	struct blkio *b = opaque;

	if (!sandbox_thread_enter(SANDBOX_BLK_WORKER))
		return NULL; /* set-up failed: no request will come */
	pthread_mutex_lock(&b->lock);
	for (;;) {
		struct blkio_req *r = b->todo;

		if (!r) {
			if (b->stop)
				break;
			pthread_cond_wait(&b->work, &b->lock);
			continue;
		}
		b->todo = r->next;
		if (!b->todo)
			b->todo_tail = &b->todo;
		pthread_mutex_unlock(&b->lock);
		r->res = do_sync(b->fd, r);
		pthread_mutex_lock(&b->lock);
		r->next = b->finished;
		b->finished = r;
		b->busy--;
		pthread_cond_broadcast(&b->idle);
		signal_efd(b);
	}
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

/*
 * The ring takes only what blkio submits, with no SQE flags: the sandbox's seccomp filters
 * cannot see io_uring operations, so a ring that allowed them would be a way around them
 * (IORING_OP_OPENAT, SOCKET, ...). Registered while the ring is disabled, then enabled; from
 * then on no register call may change it (and none is allowed after set-up anyway).
 */
static int restrict_ring(struct io_uring *ring)
{
	static const uint8_t ops[] = {IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_FSYNC,
				      IORING_OP_FALLOCATE, IORING_OP_TIMEOUT};
	struct io_uring_restriction res[sizeof(ops) + 1];

	memset(res, 0, sizeof(res));
	for (size_t i = 0; i < sizeof(ops); i++) {
		res[i].opcode = IORING_RESTRICTION_SQE_OP;
		res[i].sqe_op = ops[i];
	}
	res[sizeof(ops)].opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED;
	res[sizeof(ops)].sqe_flags = 0;
	/* io_uring_register() itself: Debian 12's liburing.so (2.3) does not export
	 * io_uring_register_restrictions() and io_uring_enable_rings(). */
	if (syscall(__NR_io_uring_register, ring->ring_fd, IORING_REGISTER_RESTRICTIONS, res,
		    sizeof(ops) + 1) < 0 ||
	    syscall(__NR_io_uring_register, ring->ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) <
		    0)
		return -errno;
	return 0;
}

int blkio_init(struct blkio *b, enum blkio_engine engine, int fd, unsigned depth, size_t align,
	       blkio_done_fn done, void *ctx)
{
	int err;

	memset(b, 0, sizeof(*b));
	b->engine = engine;
	b->inline_reads = true;
	b->try_reads = true;
	b->fd = fd;
	b->align = align;
	b->done = done;
	b->ctx = ctx;
	b->todo_tail = &b->todo;
	b->waiting_tail = &b->waiting;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->work, NULL);
	pthread_cond_init(&b->idle, NULL);
	b->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->efd < 0)
		return -errno;
	if (engine == BLKIO_SYNC) {
		err = pthread_create(&b->worker, NULL, worker_main, b);
		if (err)
			return -err;
		b->worker_ok = true;
		pthread_setname_np(b->worker, "blk-sync");
		return 0;
	}
	err = io_uring_queue_init(depth, &b->ring, IORING_SETUP_R_DISABLED);
	if (err < 0)
		return err;
	b->ring_ok = true;
	err = io_uring_register_eventfd(&b->ring, b->efd);
	err = err < 0 ? err : restrict_ring(&b->ring);
	return err < 0 ? err : 0;
}

/* Prepare an SQE for r. False when the submission ring is full. */
static bool queue_sqe(struct blkio *b, struct blkio_req *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);

	if (!sqe) {
		blkio_kick(b);
		sqe = io_uring_get_sqe(&b->ring);
	}
	if (!sqe)
		return false;
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
	case BLKIO_DISCARD:
	case BLKIO_WRITE_ZEROES:
		io_uring_prep_fallocate(sqe, b->fd, blkio_falloc_mode(r), r->offset, r->len);
		break;
	}
	io_uring_sqe_set_data(sqe, r);
	b->queued++;
	return true;
}

static bool misaligned(const struct blkio *b, const struct blkio_req *r)
{
	for (unsigned i = 0; b->align && i < r->niov; i++)
		if ((uintptr_t)r->iov[i].iov_base % b->align || r->iov[i].iov_len % b->align)
			return true;
	return false;
}

/* O_DIRECT with buffers the host cannot use as they are: go through an aligned copy. */
static int bounce(struct blkio *b, struct blkio_req *r)
{
	size_t align = b->align < sizeof(void *) ? sizeof(void *) : b->align;

	if (posix_memalign(&r->bounce, align, r->len ? r->len : align))
		return -ENOMEM;
	b->bounce_bytes += r->len;
	if (r->op == BLKIO_WRITE)
		iov_to_buf(r->iov, r->niov, 0, r->bounce, r->len);
	r->orig = r->iov;
	r->orig_n = r->niov;
	r->orig_len = r->len;
	r->biov = (struct iovec){r->bounce, r->len};
	r->iov = &r->biov;
	r->niov = 1;
	return 0;
}

/*
 * A read tried without waiting: 0 when it is all done, 1 when (the rest of) it must go
 * through the ring, -errno when it failed. A miss starts the kernel's readahead, which the
 * ring's read then waits for.
 */
static long try_read(struct blkio *b, struct blkio_req *r)
{
	while (r->len) {
		ssize_t got = preadv2(b->fd, r->iov, (int)r->niov, (off_t)r->offset, RWF_NOWAIT);

		if (got < 0 && errno == EINTR)
			continue;
		/* The file or kernel cannot: the ring alone from now. */
		if (got < 0 && (errno == EOPNOTSUPP || errno == EINVAL))
			b->try_reads = false;
		if (got < 0 && (errno == EAGAIN || !b->try_reads)) {
			b->read_misses++;
			return 1;
		}
		if (got < 0)
			return -errno;
		if (got == 0)
			return -EIO; /* end of file inside the disk: the image shrank */
		advance(r, got);
	}
	b->read_hits++;
	return 0;
}

/*
 * Start r if the engine has room for it now: true when it is on its way (or failed, and
 * will complete with the error), false when it must wait. Waiting is back-pressure: the
 * bounce buffers in use are bounded, and a full submission ring (only failed submissions
 * fill it) empties as requests complete.
 */
static bool start(struct blkio *b, struct blkio_req *r)
{
	if ((r->op == BLKIO_READ || r->op == BLKIO_WRITE) && misaligned(b, r)) {
		int err;

		if (r->len > BLKIO_BOUNCE_MAX) {
			finish_later(b, r, -EINVAL);
			return true;
		}
		if (b->bounce_bytes && b->bounce_bytes + r->len > BLKIO_BOUNCE_TOTAL)
			return false;
		err = bounce(b, r);
		if (err == -ENOMEM && b->bounce_bytes)
			return false; /* memory comes back with the other bounced requests */
		if (err) {
			finish_later(b, r, err);
			return true;
		}
	}
	if (b->engine == BLKIO_INLINE &&
	    (r->op == BLKIO_WRITE || (r->op == BLKIO_READ && b->inline_reads)) &&
	    r->len <= BLKIO_INLINE_MAX) {
		/* Done now; completed by the caller's next blkio_poll (no efd wake-up). */
		add_finished(b, r, do_sync(b->fd, r));
		return true;
	}
	if (b->engine == BLKIO_INLINE && r->op == BLKIO_READ && b->try_reads && !r->bounce) {
		long res = try_read(b, r);

		if (res <= 0) {
			add_finished(b, r, res); /* completed by the caller's next blkio_poll */
			return true;
		}
	}
	if (b->engine == BLKIO_SYNC) {
		pthread_mutex_lock(&b->lock);
		r->next = NULL;
		*b->todo_tail = r;
		b->todo_tail = &r->next;
		b->busy++;
		pthread_cond_signal(&b->work);
		pthread_mutex_unlock(&b->lock);
		return true;
	}
	return queue_sqe(b, r);
}

/* Start what waited, in order, while there is room. */
static void start_waiting(struct blkio *b)
{
	while (b->waiting) {
		struct blkio_req *r = b->waiting, *next = r->next; /* start() reuses r->next */

		if (!start(b, r)) {
			r->next = next;
			break;
		}
		b->waiting = next;
		if (!next)
			b->waiting_tail = &b->waiting;
	}
}

void blkio_submit(struct blkio *b, struct blkio_req *r)
{
	r->retried = false;
	r->bounce = NULL;
	b->inflight++;
	if (!b->waiting && start(b, r))
		return;
	r->next = NULL;
	*b->waiting_tail = r;
	b->waiting_tail = &r->next;
}

void blkio_kick(struct blkio *b)
{
	int n;

	if (!b->ring_ok || !b->queued)
		return;
	n = io_uring_submit(&b->ring);
	b->enters++;
	if (n > 0) {
		b->queued -= (unsigned)n < b->queued ? (unsigned)n : b->queued;
		return;
	}
	/* Not submitted: the SQEs stay in the ring and go with the next kick or reap. */
	if (n < 0 && n != -EAGAIN && n != -EBUSY && n != -EINTR && b->submit_errors++ < 5)
		log_warn("io_uring_submit: %s (retried)", strerror(-n));
}

/* Hand r back to its owner. */
static void complete(struct blkio *b, struct blkio_req *r, long res)
{
	if (r->bounce) {
		if (res == 0 && r->op == BLKIO_READ)
			iov_from_buf(r->orig, r->orig_n, 0, r->bounce, r->orig_len);
		b->bounce_bytes -= r->orig_len;
		free(r->bounce);
		r->iov = r->orig;
		r->niov = r->orig_n;
		r->bounce = NULL;
	}
	b->inflight--;
	b->done(b->ctx, r, res);
}

/* One io_uring completion: finish r, or send it again for what is left. */
static void uring_done(struct blkio *b, struct blkio_req *r, long res)
{
	bool rw = r->op == BLKIO_READ || r->op == BLKIO_WRITE;

	if (res == -EINTR || res == -EAGAIN) {
		res = 1;
	} else if (rw && res == 0 && r->len) {
		res = -EIO; /* end of file inside the disk */
	} else if (rw && res > 0 && (size_t)res < r->len) {
		advance(r, res);
		res = 1;
	} else if (r->op == BLKIO_WRITE_ZEROES && res < 0 && !r->retried) {
		r->retried = true;
		res = 1;
	} else if (res > 0) {
		res = 0;
	}
	if (res <= 0) {
		complete(b, r, res);
	} else if (!queue_sqe(b, r)) {
		/* Sent again for what is left, now or once the ring has room. */
		r->next = NULL;
		*b->waiting_tail = r;
		b->waiting_tail = &r->next;
	}
}

/* Complete what the io_uring completion ring holds now. */
static void reap_cqes(struct blkio *b)
{
	struct io_uring_cqe *cqe;

	while (b->ring_ok && io_uring_peek_cqe(&b->ring, &cqe) == 0) {
		struct blkio_req *r = io_uring_cqe_get_data(cqe);
		long res = cqe->res;

		io_uring_cqe_seen(&b->ring, cqe);
		uring_done(b, r, res);
	}
}

/* Complete what the worker (or an early failure) finished, in the order they finished. */
static void reap_finished(struct blkio *b)
{
	struct blkio_req *list, *fifo = NULL;

	pthread_mutex_lock(&b->lock);
	list = b->finished;
	b->finished = NULL;
	pthread_mutex_unlock(&b->lock);
	while (list) {
		struct blkio_req *next = list->next;

		list->next = fifo;
		fifo = list;
		list = next;
	}
	while (fifo) {
		struct blkio_req *next = fifo->next;

		complete(b, fifo, fifo->res);
		fifo = next;
	}
}

/*
 * Complete what has finished (CQEs, the worker's or the inline engine's requests), then start
 * what waited for room; the inline engine's waiting requests run now and complete too.
 */
static void complete_ready(struct blkio *b)
{
	do {
		reap_cqes(b);
		reap_finished(b);
		start_waiting(b);
		blkio_kick(b); /* what was sent again, or could not be submitted before */
	} while (b->engine == BLKIO_INLINE && b->finished);
}

void blkio_reap(struct blkio *b)
{
	uint64_t v;

	if (read(b->efd, &v, sizeof(v)) < 0) {
		if (errno != EAGAIN)
			return;
	} else {
		b->wakeups++;
	}
	complete_ready(b);
}

void blkio_poll(struct blkio *b)
{
	if (b->ring_ok) /* the sync worker always signals efd */
		complete_ready(b);
}

void blkio_drain(struct blkio *b)
{
	while (b->inflight) {
		reap_finished(b);
		reap_cqes(b);
		start_waiting(b);
		if (!b->inflight)
			break;
		if (b->ring_ok) {
			struct __kernel_timespec ts = {.tv_nsec = 100 * 1000 * 1000};
			struct io_uring_cqe *cqe;
			int err;

			blkio_kick(b);
			/* A timeout, not a hang, when a submission failed: kick again. */
			err = io_uring_wait_cqe_timeout(&b->ring, &cqe, &ts);
			if (err < 0 && err != -ETIME && err != -EINTR && err != -EAGAIN) {
				log_error("io_uring: waiting for %u requests: %s", b->inflight,
					  strerror(-err));
				abort(); /* their buffers cannot be handed back while in flight */
			}
		} else {
			pthread_mutex_lock(&b->lock);
			while (!b->finished && b->busy)
				pthread_cond_wait(&b->idle, &b->lock);
			pthread_mutex_unlock(&b->lock);
		}
	}
}

void blkio_exit(struct blkio *b)
{
	blkio_drain(b);
	if (b->ring_ok) {
		io_uring_queue_exit(&b->ring);
		b->ring_ok = false;
	}
	if (b->worker_ok) {
		pthread_mutex_lock(&b->lock);
		b->stop = true;
		pthread_cond_signal(&b->work);
		pthread_mutex_unlock(&b->lock);
		pthread_join(b->worker, NULL);
		b->worker_ok = false;
	}
	if (b->efd >= 0)
		close(b->efd);
	b->efd = -1;
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->work);
	pthread_cond_destroy(&b->idle);
}
