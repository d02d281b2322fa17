/* virtio-net: an Ethernet NIC backed by a host TAP interface, on either transport. */
#ifndef MICROVM_VIRTIO_NET_H
#define MICROVM_VIRTIO_NET_H

#include "device.h"
#include "mem.h"

struct loop;
struct virtio_dev;

extern const struct device_ops virtio_net_ops;

/*
 * Build the virtio side of the configured NIC dev over guest memory mem, one backend fd per
 * queue pair (TAP queues: realize opens them) watched by loop, without a transport. *vd (if
 * vd) is the virtio device. -errno; net_stop undoes a partial start.
 */
int net_start(struct device *dev, const int *fds, const struct guest_mem *mem, struct loop *loop,
	      struct virtio_dev **vd);
/* Report the counters and free what net_start made (the fds stay open). */
void net_stop(struct device *dev);

#endif
