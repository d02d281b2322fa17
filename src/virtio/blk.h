/* virtio-blk: a block device backed by an image file, on any virtio transport. */
#ifndef MICROVM_VIRTIO_BLK_H
#define MICROVM_VIRTIO_BLK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "device.h"
#include "mem.h"
#include "virtio/virtq.h"

struct loop;
struct virtio_dev;

extern const struct device_ops virtio_blk_ops;

/*
 * Build the virtio side of the configured disk dev over guest memory mem, its completions
 * watched by loop, without a transport (realize then places it on one; tests drive it
 * directly). *vd (if vd) is the virtio device. -errno; blk_stop undoes a partial start.
 */
int blk_start(struct device *dev, const struct guest_mem *mem, struct loop *loop,
	      struct virtio_dev **vd);
/* Finish in-flight I/O (pushing nothing) and free what blk_start made. */
void blk_stop(struct device *dev);
/* Tests: reap completions only from the event loop (requests stay in flight past a kick). */
void blk_defer_completions(struct device *dev, bool defer);
/* Tests: requests handed to the engine and not yet completed. */
unsigned blk_inflight(struct device *dev);

/* A request as laid out in its descriptor chain (virtio 1.x, 5.2.6). */
struct blk_request {
	uint32_t type;
	uint64_t sector;
	uint8_t *status;    /* the last writable byte */
	struct iovec *data; /* the data segments, inside the chain's iov array */
	unsigned ndata;
	size_t data_len;
};

/*
 * Split chain into header, data and status, adjusting c->iov in place. Returns 0, or -EINVAL
 * when the chain cannot hold a request (no 16-byte readable header or no writable status byte).
 */
int blk_parse(struct virtq_chain *c, struct blk_request *r);

#endif
