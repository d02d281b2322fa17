/* virtio-blk: a block device backed by an image file (io_uring, sync, inline), any transport. */
#include "virtio/adapter.h"
#include "virtio/blk.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <unistd.h>

#include "backends/blkio.h"
#include "config.h"
#include "log.h"
#include "machine.h"
#include "virtio/virtio.h"
#include "vm.h"

#define SECTOR 512
/* One range per discard or write zeroes request, as QEMU offers: one fallocate each. */
#define MAX_DISCARD_SEG 1
#define MAX_SEG		126
/* Requests started per wake-up of a queue before it yields to the rest of the event loop. */
#define BLK_BUDGET 128
/*
 * Bytes of reads and writes started, while a queue is served, after which they go out (the
 * io_uring ring submitted) and what is done completes (used entries, the interrupt decision)
 * before the next request is taken. The driver then queues more while the rest are copied,
 * as it would with a device working beside it; smaller requests are batched to the end.
 * While at least BLK_FLUSH_AHEAD more requests wait in the ring, the device has work enough
 * until the driver answers a later interrupt: the ring is still submitted, but what is done
 * waits for up to BLK_FLUSH_MAX bytes, and the driver takes one interrupt for several.
 */
#define BLK_FLUSH_BYTES (256u << 10)
#define BLK_FLUSH_AHEAD 4
#define BLK_FLUSH_MAX	(2u << 20)

enum blk_cache { CACHE_WRITEBACK, CACHE_DIRECT };

struct blk;

struct blk_req {
	struct blk *b;
	unsigned q;
	uint32_t gen; /* the queue's generation when the request was taken */
	uint16_t head;
	uint8_t *status;
	uint32_t used_len;
	struct blkio_req io;
	struct iovec *iov;
	struct blk_req *next_free;
};

struct blk_queue {
	struct blk_req *reqs;
	struct blk_req *free;
	bool pushed;  /* used entries added since the last interrupt decision */
	bool starved; /* stopped taking requests with every slot in flight: resume on completion */
};

struct blk {
	struct virtio_adapter va; /* first: queues, queue_size, the core and the transport */
	char *name;
	char *path;
	bool ro;
	const char *serial_key; /* as written (configure_late checks its length) */
	char serial[VIRTIO_BLK_ID_BYTES + 1];
	int engine, cache;
	int fd;
	dev_t img_dev; /* the image's device and inode (open_image): one image, however named */
	ino_t img_ino; /* (a block device: its device number, inode 0) */
	uint64_t size;
	uint32_t block_size; /* logical block size offered (cache = direct: the host's) */
	size_t dio_align;    /* cache = direct: buffer alignment the host needs */
	struct virtio_blk_config cfg;
	struct blkio io;
	struct blk_queue *queues;
	unsigned iov_max;
	struct loop *loop; /* set between blk_start and blk_stop */
	bool io_ok, watched;
	pthread_cond_t drained; /* broadcast when nothing is in flight (a reset waits) */
	unsigned long requests; /* for --verbose */
	bool auto_engine;	/* engine = auto chose b->engine */
	bool uring_reads; /* inline engine: reads go through io_uring (auto, a block device) */
	bool defer_reap;  /* tests: completions only from the event loop */
	size_t unflushed; /* bytes started since the last flush_completions */
};
_Static_assert(offsetof(struct blk, va) == 0, "the adapter's part comes first");

int blk_parse(struct virtq_chain *c, struct blk_request *r)
{
	struct virtio_blk_outhdr hdr;
	struct iovec *last;

	if (c->out_len < sizeof(hdr) || c->in_len < 1)
		return -EINVAL;
	iov_to_buf(c->iov, c->nout, 0, &hdr, sizeof(hdr));
	r->type = le32toh(hdr.type);
	r->sector = le64toh(hdr.sector);
	last = &c->iov[c->nout + c->nin - 1];
	r->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	if (--last->iov_len == 0)
		c->nin--;
	if (r->type == VIRTIO_BLK_T_IN || r->type == VIRTIO_BLK_T_GET_ID) {
		/* Data is what the device writes: the writable segments before the status. */
		r->data = c->iov + c->nout;
		r->ndata = c->nin;
		r->data_len = c->in_len - 1;
		return 0;
	}
	/* Data is what the device reads: the readable segments after the header. */
	unsigned i = iov_advance(c->iov, c->nout, sizeof(hdr));

	r->data = c->iov + i;
	r->ndata = c->nout - i;
	r->data_len = c->out_len - sizeof(hdr);
	return 0;
}

static void req_free(struct blk *b, struct blk_req *req)
{
	struct blk_queue *bq = &b->queues[req->q];

	req->next_free = bq->free;
	bq->free = req;
}

/*
 * Finish a request: status byte and used entry, unless its queue has moved on since it was
 * taken (stopped, reset: another generation) or the device may not write to the guest.
 * Either way the slot is free again.
 */
static void complete(struct blk *b, struct blk_req *req, uint8_t status)
{
	struct virtq *vq = &b->va.vd.vqs[req->q];

	if (req->gen == vq->gen && vq->ready && virtio_live(&b->va.vd)) {
		*req->status = status;
		virtq_push(vq, req->head, req->used_len);
		b->queues[req->q].pushed = true;
	}
	req_free(b, req);
}

static void send_interrupts(struct blk *b)
{
	for (unsigned q = 0; q < b->va.queues; q++) {
		if (!b->queues[q].pushed)
			continue;
		b->queues[q].pushed = false;
		if (virtio_live(&b->va.vd))
			virtio_queue_interrupt(&b->va.vd, q);
	}
}

static void io_done(void *ctx, struct blkio_req *io, long res)
{
	struct blk_req *req = (struct blk_req *)((char *)io - offsetof(struct blk_req, io));

	(void)ctx;
	if (res < 0 && io->op == BLKIO_DISCARD)
		res = 0; /* a discard is a hint: the data may stay */
	if (res < 0) {
		req->used_len = 1; /* nothing but the status is valid */
		complete(req->b, req, VIRTIO_BLK_S_IOERR);
		return;
	}
	complete(req->b, req, VIRTIO_BLK_S_OK);
}

static bool in_range(const struct blk *b, uint64_t sector, uint64_t sectors)
{
	uint64_t cap = b->size / SECTOR;

	return sector <= cap && sectors <= cap - sector;
}

/*
 * Check a discard or write zeroes request and describe it in req->io. Returns the status to
 * complete it with at once, or -1 when it goes to the engine (a fallocate there: it may take
 * long on a large range, and never runs on the event loop).
 */
static int discard(struct blk *b, struct blk_req *req, const struct blk_request *r)
{
	struct virtio_blk_discard_write_zeroes seg;
	bool zeroes = r->type == VIRTIO_BLK_T_WRITE_ZEROES;
	uint32_t count, flags, known = zeroes ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0;
	uint64_t sector;

	if (b->ro)
		return VIRTIO_BLK_S_IOERR;
	if (r->data_len != sizeof(seg) * MAX_DISCARD_SEG)
		return VIRTIO_BLK_S_UNSUPP;
	iov_to_buf(r->data, r->ndata, 0, &seg, sizeof(seg));
	sector = le64toh(seg.sector);
	count = le32toh(seg.num_sectors);
	flags = le32toh(seg.flags);
	/* virtio 1.2 5.2.6.2: flags the device does not know are unsupported requests. */
	if (flags & ~known)
		return VIRTIO_BLK_S_UNSUPP;
	if (!in_range(b, sector, count) || (sector * SECTOR) % b->block_size ||
	    ((uint64_t)count * SECTOR) % b->block_size)
		return VIRTIO_BLK_S_IOERR;
	if (!count)
		return VIRTIO_BLK_S_OK;
	req->io = (struct blkio_req){
		.op = zeroes ? BLKIO_WRITE_ZEROES : BLKIO_DISCARD,
		.offset = sector * SECTOR,
		.len = (uint64_t)count * SECTOR,
		.unmap = flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
	};
	return -1;
}

/* Start one request; returns -1 when the driver broke the protocol. */
static int handle(struct blk *b, struct blk_req *req, struct virtq_chain *c)
{
	struct blk_request r;
	size_t n;

	if (blk_parse(c, &r) < 0) {
		req_free(b, req);
		virtio_needs_reset(&b->va.vd, "request without header or status byte");
		return -1;
	}
	req->status = r.status;
	req->used_len = 1;
	b->requests++;
	switch (r.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		if (r.data_len % b->block_size || !in_range(b, r.sector, r.data_len / SECTOR) ||
		    (r.sector * SECTOR) % b->block_size || (r.type == VIRTIO_BLK_T_OUT && b->ro)) {
			complete(b, req, VIRTIO_BLK_S_IOERR);
			return 0;
		}
		req->io = (struct blkio_req){
			.op = r.type == VIRTIO_BLK_T_IN ? BLKIO_READ : BLKIO_WRITE,
			.offset = r.sector * SECTOR,
			.iov = r.data,
			.niov = r.ndata,
			.len = r.data_len,
		};
		if (r.type == VIRTIO_BLK_T_IN)
			req->used_len += r.data_len;
		if (!r.data_len) {
			complete(b, req, VIRTIO_BLK_S_OK);
			return 0;
		}
		b->unflushed += r.data_len;
		blkio_submit(&b->io, &req->io);
		return 0;
	case VIRTIO_BLK_T_FLUSH:
		if (b->ro) {
			complete(b, req, VIRTIO_BLK_S_OK);
			return 0;
		}
		req->io = (struct blkio_req){.op = BLKIO_FLUSH};
		blkio_submit(&b->io, &req->io);
		return 0;
	case VIRTIO_BLK_T_GET_ID:
		n = r.data_len < VIRTIO_BLK_ID_BYTES ? r.data_len : VIRTIO_BLK_ID_BYTES;
		req->used_len += iov_from_buf(r.data, r.ndata, 0, b->serial, n);
		complete(b, req, VIRTIO_BLK_S_OK);
		return 0;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES: {
		int st = discard(b, req, &r);

		if (st >= 0)
			complete(b, req, st);
		else
			blkio_submit(&b->io, &req->io);
		return 0;
	}
	default:
		complete(b, req, VIRTIO_BLK_S_UNSUPP);
		return 0;
	}
}

/* Submit what was prepared, complete what is done by now, and send the interrupts due. */
static void flush_completions(struct blk *b)
{
	b->unflushed = 0;
	blkio_kick(&b->io);
	/* What the kernel served during submission completes now, not after a wake-up. */
	if (!b->defer_reap || b->engine == BLKIO_INLINE)
		blkio_poll(&b->io);
	send_interrupts(b);
}

/*
 * Take requests from queue q until it is empty, every request slot is in flight (flow
 * control: completions resume it) or the budget is spent (it is rescheduled). A driver may
 * legitimately keep as many requests in flight as the queue has entries.
 */
static void blk_notify(struct virtio_dev *vd, unsigned q)
{
	struct blk *b = vd->priv;
	struct blk_queue *bq = &b->queues[q];
	struct virtq *vq = &vd->vqs[q];
	unsigned budget = BLK_BUDGET;

	bq->starved = false;
	do {
		for (;;) {
			struct blk_req *req = bq->free;
			struct virtq_chain c;
			int r;

			if (!req) {
				bq->starved = true;
				goto out;
			}
			if (!budget--) {
				virtio_queue_reschedule(vd, q);
				goto out;
			}
			c = (struct virtq_chain){.iov = req->iov, .iov_max = b->iov_max};
			r = virtq_pop(vq, vd->mem, &c);
			if (r < 0) {
				virtio_needs_reset(vd, "queue %u: malformed descriptor chain", q);
				goto out;
			}
			if (r == 0)
				break;
			bq->free = req->next_free;
			req->head = c.head;
			req->gen = vq->gen;
			if (handle(b, req, &c) < 0)
				goto out;
			if (b->unflushed < BLK_FLUSH_BYTES)
				continue;
			if (b->unflushed >= BLK_FLUSH_MAX || virtq_waiting(vq) < BLK_FLUSH_AHEAD)
				flush_completions(b);
			else /* the ring's requests start; what is done waits */
				blkio_kick(&b->io);
		}
	} while (virtq_enable_notify(vq));
out:
	flush_completions(b);
	if (bq->starved && bq->free)
		virtio_queue_reschedule(vd, q); /* slots came back after it stopped */
}

/* Finished I/O: used entries, interrupts, and queues that waited for a free slot go on. */
static void blk_reap(struct blk *b)
{
	blkio_reap(&b->io);
	if (!b->io.inflight)
		pthread_cond_broadcast(&b->drained); /* a reset may be waiting for this */
	for (unsigned q = 0; q < b->va.queues; q++)
		if (b->queues[q].starved && b->queues[q].free && b->va.vd.vqs[q].ready &&
		    virtio_live(&b->va.vd) && !b->va.vd.paused)
			blk_notify(&b->va.vd, q);
	send_interrupts(b);
}

static void on_completion(void *opaque, uint32_t events)
{
	struct blk *b = opaque;

	(void)events;
	virtio_lock(&b->va.vd);
	blk_reap(b);
	virtio_unlock(&b->va.vd);
}

static void reset_queues(struct blk *b)
{
	for (unsigned q = 0; q < b->va.queues; q++) {
		struct blk_queue *bq = &b->queues[q];

		bq->free = NULL;
		bq->pushed = false;
		bq->starved = false;
		for (unsigned i = b->va.queue_size; i-- > 0;)
			req_free(b, &bq->reqs[i]);
	}
}

/*
 * In-flight I/O still points into guest memory: it finishes before the driver may reuse
 * that memory (the queues are stopped, so it pushes nothing). This runs on the vCPU that
 * wrote the reset, which waits with the device lock released: the event loop keeps serving
 * everything else (and reaps), and a large discard cannot freeze the monitor. It reaps too,
 * for when nothing else does; once the loop is stopping it simply drains.
 */
static void blk_reset(struct virtio_dev *vd)
{
	struct blk *b = vd->priv;

	blkio_kick(&b->io);
	while (b->io.inflight) {
		struct timespec until;

		blkio_reap(&b->io);
		if (!b->io.inflight)
			break;
		if (!b->loop || __atomic_load_n(&b->loop->stop, __ATOMIC_RELAXED)) {
			blkio_drain(&b->io);
			break;
		}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 10 * 1000 * 1000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&b->drained, &vd->lock, &until);
	}
	reset_queues(b);
}

/*
 * The VM pauses (lock held, kicks already dropped): every request in flight finishes now,
 * on the event loop's thread, its status and used entry written and its interrupt sent.
 * Nothing new is taken meanwhile (a starved queue waits for the resume, which serves every
 * queue), so afterwards nothing of this device writes guest memory.
 */
static int blk_pause(struct device *dev)
{
	struct blk *b = dev->priv;

	blkio_kick(&b->io);
	blkio_drain(&b->io);
	pthread_cond_broadcast(&b->drained);
	send_interrupts(b);
	return 0;
}

/*
 * A snapshot: the disk keeps nothing of its own beyond the core's state (its configuration
 * comes from the image, which a restore opens again), and nothing may be in flight.
 */
static int blk_save(struct device *dev, struct snap_sec *sec)
{
	struct blk *b = dev->priv;

	(void)sec;
	if (!b->io.inflight)
		return 0;
	log_error("%s: snapshot: %u requests still in flight", dev->name, b->io.inflight);
	return -EBUSY;
}

static const struct virtio_ops blk_virtio_ops = {
	.device_id = VIRTIO_ID_BLOCK,
	.notify = blk_notify,
	.reset = blk_reset,
};

/*
 * cache = direct: the host decides the alignment of O_DIRECT transfers. The guest is offered
 * that as its logical block size (so it never sends a misaligned offset or length), and
 * buffers it places at a misaligned address go through an aligned copy.
 */
static int direct_alignment(struct blk *b, struct cfg *c, struct cfg_entry *e, bool blockdev)
{
	struct statx stx;
	int lbs = 0;

	b->block_size = 4096; /* when the host cannot say: right for any disk and file system */
	b->dio_align = 4096;
	if (blockdev && ioctl(b->fd, BLKSSZGET, &lbs) == 0 && lbs > 0) {
		b->block_size = b->dio_align = lbs;
	} else if (statx(b->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
		   (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align) {
		b->block_size = stx.stx_dio_offset_align;
		b->dio_align = stx.stx_dio_mem_align ? stx.stx_dio_mem_align : 1;
	}
	if (b->block_size < SECTOR)
		b->block_size = SECTOR;
	if (b->block_size > 65536 || (b->block_size & (b->block_size - 1))) {
		cfg_error(c, e, NULL,
			  "'%s' needs %u-byte aligned direct I/O, which no guest block size "
			  "matches (use cache = writeback)",
			  b->path, b->block_size);
		return -1;
	}
	return 0;
}

/* The engine key's values, in enum blkio_engine order, then auto. */
static const char *const engine_names[] = {"io_uring", "sync", "inline", "auto", NULL};
#define ENGINE_AUTO 3

/* Open the image: read-write for a run of a writable disk, else read-only. */
static int open_image(struct blk *b, struct cfg *c, bool run)
{
	struct cfg_entry *e = cfg_get(c, b->name, "path");
	/* Non-blocking: a FIFO put there after the check is refused below, not waited on. */
	int flags = (b->ro || !run ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
	struct stat st;

	/* A FIFO, socket, directory or device other than a disk is never even opened. */
	if (cfg_need_file(c, e, b->path, true))
		return -1;
	if (b->cache == CACHE_DIRECT)
		flags |= O_DIRECT;
	b->fd = open(b->path, flags);
	if (b->fd < 0) {
		if (errno == EINVAL && b->cache == CACHE_DIRECT)
			cfg_error(c, e, NULL,
				  "'%s': the file system does not support O_DIRECT "
				  "(cache = direct)",
				  b->path);
		else if (errno == ENOENT)
			cfg_error(c, e, NULL, "'%s' does not exist", b->path);
		else if (!b->ro && run && (errno == EACCES || errno == EROFS || errno == EPERM))
			cfg_error(c, e, NULL,
				  "cannot open '%s' for writing: %s (readonly = on opens it "
				  "read-only)",
				  b->path, strerror(errno));
		else
			cfg_error(c, e, NULL, "cannot open '%s'%s: %s", b->path,
				  b->ro || !run ? "" : " for writing", strerror(errno));
		return -1;
	}
	/* Blocking again for the engines (io_uring would answer EAGAIN on a non-blocking file). */
	fcntl(b->fd, F_SETFL, fcntl(b->fd, F_GETFL) & ~O_NONBLOCK);
	b->block_size = SECTOR;
	b->dio_align = 0;
	if (fstat(b->fd, &st) < 0)
		st.st_mode = 0;
	/* A disk is the device a block device node names (any node), a file its inode. */
	b->img_dev = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev;
	b->img_ino = S_ISBLK(st.st_mode) ? 0 : st.st_ino;
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(b->fd, BLKGETSIZE64, &b->size) < 0)
			b->size = 0;
	} else if (S_ISREG(st.st_mode)) {
		b->size = st.st_size;
	} else {
		cfg_error(c, e, NULL, "'%s' is neither a regular file nor a block device", b->path);
		return -1;
	}
	if (!b->size || b->size % SECTOR) {
		cfg_error(c, e, NULL,
			  "'%s' is %llu bytes: a disk must be a non-zero multiple of 512", b->path,
			  (unsigned long long)b->size);
		return -1;
	}
	if (b->engine == ENGINE_AUTO) {
		/*
		 * Data that lives in memory (tmpfs, ramfs) is copied, never waited for: served
		 * where the queue is. io_uring cannot even try such a read without blocking
		 * (no FMODE_NOWAIT): every request would take a trip through its worker threads.
		 * A block device through the page cache: its reads can be tried (a page-cache hit
		 * completes during submission, a miss is waited for in the kernel), its writes
		 * cannot (Linux has no non-blocking buffered write to a block device), and a write
		 * is a copy into the page cache: done where the queue is, as a file's in memory.
		 */
		struct statfs sf;

		b->auto_engine = true;
		b->engine = S_ISREG(st.st_mode) && fstatfs(b->fd, &sf) == 0 &&
					    (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC)
				    ? BLKIO_INLINE
				    : BLKIO_URING;
		if (S_ISBLK(st.st_mode) && b->cache == CACHE_WRITEBACK) {
			b->engine = BLKIO_INLINE;
			b->uring_reads = true;
		}
	}
	return b->cache == CACHE_DIRECT ? direct_alignment(b, c, e, S_ISBLK(st.st_mode)) : 0;
}

static int blk_configure(struct device *dev, struct machine *m)
{
	static const char *const caches[] = {"writeback", "direct", NULL};
	struct cfg *c = &m->cfg;
	struct blk *b = dev->priv;
	int err = 0;

	b->fd = -1;
	b->name = dev->name;
	err |= cfg_path(c, dev->name, "path", &b->path, CFG_REQUIRED);
	err |= cfg_bool(c, dev->name, "readonly", &b->ro, false);
	err |= cfg_str(c, dev->name, "serial", &b->serial_key, dev->name, 0);
	err |= cfg_enum(c, dev->name, "engine", engine_names, &b->engine, ENGINE_AUTO);
	err |= cfg_enum(c, dev->name, "cache", caches, &b->cache, CACHE_WRITEBACK);
	return err ? -1 : 0;
}

/*
 * One image (the same file, by device and inode, whatever its path) on two disks: only when
 * both are read-only, else a run would stop at the second one's lock. -1 (said) if not.
 */
static int same_image(struct device *dev, struct machine *m)
{
	struct blk *b = dev->priv;
	struct cfg *c = &m->cfg;

	for (struct device *o = m->devices; o < dev; o++) {
		const struct blk *ob = o->priv;
		const struct cfg_entry *oe;
		char at[32];

		if (o->ops != dev->ops || o->bad || !ob || ob->fd < 0 ||
		    ob->img_dev != b->img_dev || ob->img_ino != b->img_ino || (ob->ro && b->ro))
			continue;
		oe = cfg_get(c, o->name, "path");
		if (oe && oe->line)
			snprintf(at, sizeof(at), "line %d", oe->line);
		else
			snprintf(at, sizeof(at), "%s", oe ? oe->origin : "?");
		cfg_error(c, cfg_get(c, dev->name, "path"), NULL,
			  "'%s' is also [%s]'s image (%s): one image on two disks needs "
			  "readonly = on on both",
			  b->path, o->name, at);
		return -1;
	}
	return 0;
}

static int blk_configure_late(struct device *dev, struct machine *m)
{
	struct cfg *c = &m->cfg;
	struct blk *b = dev->priv;
	const char *serial = b->serial_key;

	if (strlen(serial) > VIRTIO_BLK_ID_BYTES) {
		cfg_error(c, cfg_get(c, dev->name, "serial"), NULL, "longer than %d bytes",
			  VIRTIO_BLK_ID_BYTES);
		return -1;
	}
	snprintf(b->serial, sizeof(b->serial), "%s", serial);
	if (!m->run && !b->ro && access(b->path, W_OK) != 0 && errno != ENOENT)
		log_warn("%s: '%s' is not writable: a run needs readonly = on", dev->name, b->path);
	if (open_image(b, c, m->run) || same_image(dev, m))
		return -1;
	if (b->engine == BLKIO_INLINE)
		m->sandbox.inline_io = true; /* its I/O runs where the queue is served */
	/* Submitted where the queue is served: the inline engine's too, for what it does not
	 * do itself (requests over BLKIO_INLINE_MAX, flushes, discards). */
	if (b->engine == BLKIO_URING || b->engine == BLKIO_INLINE)
		m->sandbox.io_uring = true;
	return 0;
}

static void blk_describe(const struct device *dev, FILE *out)
{
	const struct blk *b = dev->priv;

	fprintf(out, "virtio-blk %s (%llu MiB%s), %u queue%s of %u, %s%s, %s", b->path,
		(unsigned long long)(b->size >> 20), b->ro ? ", read-only" : "", b->va.queues,
		b->va.queues > 1 ? "s" : "", b->va.queue_size, engine_names[b->engine],
		b->auto_engine
			? (b->uring_reads
				   ? " (auto: reads tried in the page cache first, then io_uring)"
				   : " (auto)")
			: "",
		b->cache == CACHE_DIRECT ? "direct" : "writeback");
	if (b->cache == CACHE_DIRECT)
		fprintf(out, " (%u-byte blocks)", b->block_size);
	fprintf(out, ", "); /* the transport's part follows */
}

static void fill_config(struct blk *b)
{
	struct virtio_blk_config *cfg = &b->cfg;

	memset(cfg, 0, sizeof(*cfg));
	cfg->capacity = htole64(b->size / SECTOR);
	cfg->seg_max = htole32(b->iov_max - 2);
	cfg->blk_size = htole32(b->block_size);
	cfg->min_io_size = htole16(1);
	cfg->num_queues = htole16(b->va.queues);
	cfg->max_discard_sectors = htole32(UINT32_MAX);
	cfg->max_discard_seg = htole32(MAX_DISCARD_SEG);
	cfg->discard_sector_alignment = htole32(b->block_size / SECTOR);
	cfg->max_write_zeroes_sectors = htole32(UINT32_MAX);
	cfg->max_write_zeroes_seg = htole32(MAX_DISCARD_SEG);
	cfg->write_zeroes_may_unmap = 1;
}

int blk_start(struct device *dev, const struct guest_mem *mem, struct loop *loop,
	      struct virtio_dev **vd)
{
	struct blk *b = dev->priv;
	uint64_t features = 1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_BLK_SIZE |
			    1ull << VIRTIO_BLK_F_FLUSH | 1ull << VIRTIO_BLK_F_TOPOLOGY;
	int err;

	b->loop = loop;
	pthread_cond_init(&b->drained, NULL);
	b->iov_max = (b->va.queue_size < MAX_SEG ? b->va.queue_size : MAX_SEG) + 2;
	b->queues = calloc(b->va.queues, sizeof(*b->queues));
	if (!b->queues)
		return -ENOMEM;
	for (unsigned q = 0; q < b->va.queues; q++) {
		struct blk_queue *bq = &b->queues[q];

		bq->reqs = calloc(b->va.queue_size, sizeof(*bq->reqs));
		if (!bq->reqs)
			return -ENOMEM;
		for (unsigned i = 0; i < b->va.queue_size; i++) {
			bq->reqs[i] = (struct blk_req){.b = b, .q = q};
			bq->reqs[i].iov = calloc(b->iov_max, sizeof(struct iovec));
			if (!bq->reqs[i].iov)
				return -ENOMEM;
		}
	}
	reset_queues(b);
	err = blkio_init(&b->io, b->engine, b->fd, b->va.queues * b->va.queue_size, b->dio_align,
			 io_done, b);
	b->io.inline_reads = !b->uring_reads;
	b->io_ok = true;
	if (err) {
		log_error("%s: %s engine: %s%s", dev->name, engine_names[b->engine], strerror(-err),
			  b->engine != BLKIO_SYNC ? "; use engine = sync" : "");
		return err;
	}
	err = loop_add(loop, b->io.efd, EPOLLIN, on_completion, b);
	if (err)
		return err;
	b->watched = true;
	if (b->ro)
		features |= 1ull << VIRTIO_BLK_F_RO;
	else
		features |= 1ull << VIRTIO_BLK_F_DISCARD | 1ull << VIRTIO_BLK_F_WRITE_ZEROES;
	if (b->va.queues > 1)
		features |= 1ull << VIRTIO_BLK_F_MQ;
	fill_config(b);
	err = virtio_init(&b->va.vd, dev->name, &blk_virtio_ops, b, features, b->va.queues,
			  b->va.queue_size, &b->cfg, sizeof(b->cfg), mem);
	if (vd)
		*vd = &b->va.vd;
	return err;
}

void blk_defer_completions(struct device *dev, bool defer)
{
	struct blk *b = dev->priv;

	virtio_lock(&b->va.vd);
	b->defer_reap = defer;
	virtio_unlock(&b->va.vd);
}

unsigned blk_inflight(struct device *dev)
{
	struct blk *b = dev->priv;
	unsigned n;

	virtio_lock(&b->va.vd);
	n = b->io.inflight;
	virtio_unlock(&b->va.vd);
	return n;
}

void blk_stop(struct device *dev)
{
	struct blk *b = dev->priv;

	if (!b->loop)
		return;
	/* The guest is gone: in-flight I/O finishes, its queues (stopped) see nothing. */
	for (unsigned q = 0; b->va.vd.vqs && q < b->va.queues; q++)
		virtq_stop(&b->va.vd.vqs[q]);
	if (b->watched)
		loop_del(b->loop, b->io.efd);
	b->watched = false;
	if (b->io_ok)
		blkio_exit(&b->io);
	b->io_ok = false;
	virtio_free(&b->va.vd);
	for (unsigned q = 0; b->queues && q < b->va.queues; q++) {
		for (unsigned i = 0; b->queues[q].reqs && i < b->va.queue_size; i++)
			free(b->queues[q].reqs[i].iov);
		free(b->queues[q].reqs);
	}
	free(b->queues);
	b->queues = NULL;
	pthread_cond_destroy(&b->drained);
	b->loop = NULL;
}

/* A run holds a lock on the image: two monitors never write one disk. */
static int blk_open(struct device *dev)
{
	struct blk *b = dev->priv;

	if (flock(b->fd, (b->ro ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
		log_error("%s: '%s' is in use by another process (it holds a lock on it)",
			  dev->name, b->path);
		return -EBUSY;
	}
	return 0;
}

static int blk_start_on(struct device *dev, const struct guest_mem *mem, struct loop *loop)
{
	return blk_start(dev, mem, loop, NULL);
}

static void blk_report(const struct device *dev)
{
	const struct blk *b = dev->priv;

	log_info("%s: %lu requests, %lu trapped register accesses, %lu kick wake-ups, %lu "
		 "completion wake-ups, %lu io_uring_enter, %lu interrupts",
		 dev->name, b->requests, b->va.vd.stats.trapped, b->va.vd.stats.kick_wakeups,
		 b->io.wakeups, b->io.enters, b->va.vd.stats.interrupts);
	if (b->uring_reads)
		log_info("%s: %lu reads served from the page cache when tried, %lu sent through "
			 "io_uring%s",
			 dev->name, b->io.read_hits, b->io.read_misses,
			 b->io.try_reads ? "" : " (the file cannot be tried without waiting)");
	if (b->va.vd.kick.adaptive || b->va.vd.kick.moves)
		log_info("%s: kicks served by the %s at exit; %lu trials of the other path, %lu "
			 "kept, %lu loop choices from the queue depth, %lu moves",
			 dev->name, b->va.vd.kick.trap ? "vCPUs" : "event loop",
			 b->va.vd.kick.ctl.trials, b->va.vd.kick.ctl.kept, b->va.vd.kick.ctl.deep,
			 b->va.vd.kick.moves);
}

static void blk_destroy(struct device *dev)
{
	struct blk *b = dev->priv;

	if (b->fd >= 0)
		close(b->fd);
	free(b->path);
}

static const struct virtio_device_ops blk_device_ops = {
	.size = sizeof(struct blk),
	.pci_class = 0x018000, /* mass storage */
	.kicks_auto = true,
	.configure = blk_configure,
	.configure_late = blk_configure_late,
	.describe = blk_describe,
	.open = blk_open,
	.start = blk_start_on,
	.report = blk_report,
	.stop = blk_stop,
	.destroy = blk_destroy,
	.pause = blk_pause,
	.save = blk_save,
};

/* A restore may open another image, or the same through another engine. */
static const char *const blk_restore_keys[] = {"path", "engine", NULL};

const struct device_ops virtio_blk_ops =
	VIRTIO_DEVICE("virtio-blk", blk_device_ops, blk_restore_keys);
