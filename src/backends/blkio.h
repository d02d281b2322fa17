/* blkio: block I/O on an image file through io_uring (liburing) or plain synchronous calls. */
#ifndef MICROVM_BLKIO_H
#define MICROVM_BLKIO_H

#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

enum blkio_engine { BLKIO_URING, BLKIO_SYNC };
enum blkio_op { BLKIO_READ, BLKIO_WRITE, BLKIO_FLUSH };

struct blkio_req {
	enum blkio_op op;
	uint64_t offset;
	struct iovec *iov;
	unsigned niov;
	size_t len; /* total bytes of iov */
};

/* Called once per request with the bytes transferred, or -errno. */
typedef void (*blkio_done_fn)(void *ctx, struct blkio_req *r, long res);

struct blkio {
	enum blkio_engine engine;
	int fd;
	blkio_done_fn done;
	void *ctx;
	struct io_uring ring;
	bool ring_ok;
	int efd;	   /* signalled on io_uring completions */
	unsigned queued;   /* SQEs prepared but not submitted */
	unsigned inflight; /* submitted, not completed */
};

/* Set up an engine on fd for up to depth requests in flight. -errno (ring set-up errors). */
int blkio_init(struct blkio *b, enum blkio_engine engine, int fd, unsigned depth,
	       blkio_done_fn done, void *ctx);
/* Start r; the sync engine completes it before returning. */
void blkio_submit(struct blkio *b, struct blkio_req *r);
/* Hand prepared requests to the kernel in one batch (io_uring_submit). */
void blkio_kick(struct blkio *b);
/* Complete every finished request (call when efd is readable). */
void blkio_reap(struct blkio *b);
/* Wait for everything in flight and complete it (device reset). */
void blkio_drain(struct blkio *b);
/* Wait for everything in flight, then release the engine. */
void blkio_exit(struct blkio *b);

#endif
