/* blkio: block I/O on an image file: io_uring, a synchronous worker, or done inline. */
#ifndef MICROVM_BLKIO_H
#define MICROVM_BLKIO_H

#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

enum blkio_engine { BLKIO_URING, BLKIO_SYNC, BLKIO_INLINE };
enum blkio_op { BLKIO_READ, BLKIO_WRITE, BLKIO_FLUSH, BLKIO_DISCARD, BLKIO_WRITE_ZEROES };

/* Largest misaligned O_DIRECT transfer that is copied through an aligned buffer. */
#define BLKIO_BOUNCE_MAX (4u << 20)
/* Bounce buffers one engine holds at most; requests beyond it wait for them. */
#define BLKIO_BOUNCE_TOTAL (16u << 20)
/*
 * Largest read or write the inline engine does itself (a copy from memory: 4 MiB is more than
 * a Linux guest puts in one request, 126 segments); larger ones, flushes, discards and write
 * zeroes go through its io_uring ring. Through io_uring, a tmpfs read is a trip through one of
 * its worker threads and a second wake-up: 1 MiB reads at QD4 ran at half the speed.
 */
#define BLKIO_INLINE_MAX (4u << 20)

struct blkio_req {
	enum blkio_op op;
	uint64_t offset;
	struct iovec *iov; /* read/write: the buffers (advanced in place on short transfers) */
	unsigned niov;
	size_t len; /* bytes of iov, or of the range for discard and write zeroes */
	bool unmap; /* write zeroes: the range may be deallocated */
	/* Engine state. */
	bool retried;	    /* write zeroes: the other fallocate mode was tried */
	void *bounce;	    /* O_DIRECT: aligned copy of misaligned buffers */
	struct iovec biov;  /* the one buffer iov points to while bounced */
	struct iovec *orig; /* the caller's buffers while bounced */
	unsigned orig_n;
	size_t orig_len;
	long res;
	struct blkio_req *next; /* sync worker's queues */
};

/* Called once per request on the thread that reaps, with 0 / bytes done, or -errno. */
typedef void (*blkio_done_fn)(void *ctx, struct blkio_req *r, long res);

/*
 * io_uring and the sync engine complete asynchronously: efd becomes readable, and blkio_reap
 * (from the event loop, under the owner's lock) calls done; blkio_poll reaps what io_uring
 * finished while it was submitted. io_uring does the work in the kernel; the sync engine in
 * a worker thread that takes requests in order (kvmtool's model), one at a time. The inline
 * engine does each read and write of up to BLKIO_INLINE_MAX bytes with plain system calls in
 * blkio_submit itself, on the caller's thread, and completes it at the next blkio_poll: no
 * thread is woken, but the caller waits for the copy (for images whose data is in memory);
 * everything else goes through an io_uring ring as with the io_uring engine.
 */
struct blkio {
	enum blkio_engine engine;
	bool inline_reads; /* inline engine: reads too (blkio_init's choice); else writes only */
	/*
	 * Inline engine without inline reads: each read is first tried without waiting
	 * (preadv2 RWF_NOWAIT, a page-cache hit), and goes through the ring only for what
	 * would wait. Cleared for good when the file cannot be read that way.
	 */
	bool try_reads;
	int fd;
	size_t align; /* O_DIRECT memory alignment; misaligned buffers are bounced (0: none) */
	blkio_done_fn done;
	void *ctx;
	int efd;	   /* signalled when requests complete */
	unsigned inflight; /* submitted, not yet reaped (waiting ones included) */
	/* Requests that could not start yet (bounce memory, ring room), in order. */
	struct blkio_req *waiting, **waiting_tail;
	size_t bounce_bytes;
	/* io_uring */
	struct io_uring ring;
	bool ring_ok;
	unsigned queued; /* SQEs prepared but not submitted */
	unsigned submit_errors;
	/* sync worker: todo (FIFO) -> worker -> done (LIFO, reversed when reaped) */
	pthread_t worker;
	bool worker_ok, stop;
	pthread_mutex_t lock;
	pthread_cond_t work, idle;
	struct blkio_req *todo, **todo_tail, *finished;
	unsigned busy; /* taken by the worker or waiting in todo */
	/*
	 * Counters (owner's lock): io_uring_enter calls, efd reads that found it signalled,
	 * reads the try served whole, reads it sent (whole or the rest) through the ring.
	 */
	unsigned long enters, wakeups, read_hits, read_misses;
};

/*
 * The fallocate mode of a discard or write zeroes request: write zeroes tries what it was
 * asked for (a hole with unmap, ZERO_RANGE without), then, once retried, the other.
 */
int blkio_falloc_mode(const struct blkio_req *r);
/* Set up an engine on fd for up to depth requests in flight. -errno (ring set-up errors). */
int blkio_init(struct blkio *b, enum blkio_engine engine, int fd, unsigned depth, size_t align,
	       blkio_done_fn done, void *ctx);
/* Start r; it completes through blkio_reap. */
void blkio_submit(struct blkio *b, struct blkio_req *r);
/* Hand prepared requests to the kernel in one batch (io_uring_submit). */
void blkio_kick(struct blkio *b);
/* Complete every finished request (call when efd is readable). */
void blkio_reap(struct blkio *b);
/*
 * Complete what has finished by now without reading efd (e.g. requests io_uring served
 * while they were submitted; efd stays signalled for them, a wake-up that finds nothing).
 */
void blkio_poll(struct blkio *b);
/* Wait for everything in flight and complete it (device reset). */
void blkio_drain(struct blkio *b);
/* Wait for everything in flight, then release the engine. */
void blkio_exit(struct blkio *b);

#endif
