/* virtio-blk: a block device backed by an image file, on any virtio transport. */
#ifndef MICROVM_VIRTIO_BLK_H
#define MICROVM_VIRTIO_BLK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "device.h"
#include "virtio/virtq.h"

extern const struct device_ops virtio_blk_ops;

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
