/* virtio-rng: an entropy source for the guest, served from getrandom(), optionally rate-limited. */
#ifndef MICROVM_VIRTIO_RNG_H
#define MICROVM_VIRTIO_RNG_H

#include <stdint.h>

#include "device.h"
#include "mem.h"

struct loop;
struct virtio_dev;

extern const struct device_ops virtio_rng_ops;

/*
 * Build the virtio side of the configured entropy device dev over guest memory mem, its
 * rate limiter's timer watched by loop, without a transport (tests drive it directly). *vd
 * (if vd) is the virtio device. -errno; rng_stop undoes a partial start.
 */
int rng_start(struct device *dev, const struct guest_mem *mem, struct loop *loop,
	      struct virtio_dev **vd);
/* Free what rng_start made. */
void rng_stop(struct device *dev);
/* Bytes given to the guest so far. */
uint64_t rng_bytes(struct device *dev);

#endif
