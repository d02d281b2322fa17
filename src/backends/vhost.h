/* vhost: the kernel's virtio-net data path (/dev/vhost-net), one instance per queue pair. */
#ifndef MICROVM_VHOST_H
#define MICROVM_VHOST_H

#include <stdint.h>

#include "mem.h"

/* A split virtqueue as the kernel's data path takes it over. */
struct vhost_vring {
	unsigned num;				  /* entries */
	uint16_t next_avail;			  /* the first available entry the kernel takes */
	const volatile void *desc, *avail, *used; /* the rings in guest RAM, as mapped here */
};

struct vhost_net {
	int fd;		   /* /dev/vhost-net, -1 when closed */
	uint64_t features; /* what the kernel's data path supports (VHOST_GET_FEATURES) */
};

/*
 * Open /dev/vhost-net, become its owner (the kernel starts its worker) and give it guest
 * RAM as its only memory region. -errno (the instance is closed again).
 */
int vhost_net_open(struct vhost_net *v, const struct guest_mem *mem);
/* Stop both rings and close (safe on a closed instance). */
void vhost_net_close(struct vhost_net *v);
/* The ring and header features the driver negotiated (a subset of v->features). -errno. */
int vhost_net_set_features(struct vhost_net *v, uint64_t features);
/*
 * Hand ring idx (0 receive, 1 transmit) to the kernel from entry ring->next_avail on: kick is
 * the driver's notify eventfd, call is signalled for an interrupt, err when the kernel cannot
 * use the ring; tap is the TAP queue the frames go through. -errno.
 */
int vhost_net_start(struct vhost_net *v, unsigned idx, const struct vhost_vring *ring, int kick,
		    int call, int err, int tap);
/* Signal call instead for ring idx's interrupts from now on. -errno. */
int vhost_net_set_call(struct vhost_net *v, unsigned idx, int call);
/*
 * Take ring idx back from the kernel: no more frames, no more writes to guest RAM. Returns
 * the next available entry the kernel would have taken, or -errno.
 */
int vhost_net_stop(struct vhost_net *v, unsigned idx);

#endif
