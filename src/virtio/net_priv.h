/* virtio-net internals: the device's structs and the vhost calls, for net.c and net_vhost.c. */
#ifndef MICROVM_VIRTIO_NET_PRIV_H
#define MICROVM_VIRTIO_NET_PRIV_H

#include <linux/virtio_net.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "backends/tap.h"
#include "backends/vhost.h"
#include "virtio/adapter.h"

#define MAX_DROP_KINDS 16

#define F(bit) (1ull << VIRTIO_NET_F_##bit)

struct loop;
struct net;
struct net_queue;

/* A ring of a pair served by the kernel (vhost): the eventfds it signals. */
struct vhost_ring {
	struct net_queue *nq;
	unsigned idx;	/* 0 receive, 1 transmit */
	int call;	/* interrupt requests, relayed by the event loop */
	int err;	/* the kernel could not use the ring */
	int call_given; /* the fd the kernel signals now (call, or the transport's irqfd), or
			 * -1 while the ring is not the kernel's */
	bool watched;	/* call and err are on the event loop */
};

/* One queue pair: its TAP queue, RX staging and TX scratch. */
struct net_queue {
	struct net *n;
	unsigned idx;
	int fd;
	bool attached;	 /* the TAP queue delivers frames to this fd */
	bool watched;	 /* fd is on the event loop */
	uint32_t events; /* what the loop watches on fd */
	/* RX: one frame read from the TAP waits here until the guest has room for it. */
	uint8_t *rxbuf;
	size_t rxlen;
	bool rx_waiting; /* no guest buffers: EPOLLIN off until the driver adds some */
	struct virtq_chain *chains;
	struct iovec *rxiov;
	uint32_t *used;
	unsigned rxiov_max; /* rxiov holds one more: the staging buffer after the guest's */
	size_t rx_hint;	    /* bytes of the last frame: the buffers to read the next into */
	/* TX: the TAP refused a frame (EAGAIN); wait for EPOLLOUT before taking more. */
	bool tx_blocked;
	struct iovec *txiov;
	unsigned long rx_frames, rx_bytes, rx_dropped, tx_frames, tx_bytes, tx_dropped;
	/* vhost = on: the kernel moves this pair's frames while vh_on. */
	struct vhost_net vh;
	struct vhost_ring ring[2];
	bool vh_on;
	bool vh_lost; /* the kernel did not say where a ring stopped: not again until a reset */
	unsigned long relayed, call_switches;
};

struct net {
	struct virtio_adapter va; /* first: queue pairs, queue_size, the core and the transport */
	const char *name;
	const char *ifname;
	const char *mac_key; /* [DEV] mac as written, NULL if absent */
	uint8_t mac[6];
	uint32_t mtu;
	bool offload;
	bool vhost; /* the data queues are served by the kernel (/dev/vhost-net) */
	struct tap tap;
	struct net_queue *qs;
	uint32_t active; /* queue pairs the driver uses */
	bool running;	 /* between activate and reset */
	/*
	 * The TAP reported EPOLLERR or EPOLLHUP (deleted on the host): its queues are not
	 * watched any more, microvm serves the data queues (also with vhost), drops what the
	 * guest sends and receives nothing. Until the process ends.
	 */
	bool tap_gone;
	struct virtio_net_config cfg;
	struct loop *loop; /* set between net_start and net_stop */
	/* Dropped frames by reason: the first of each kind is reported, all are counted. */
	struct {
		const char *what, *why;
		unsigned long count;
	} drops[MAX_DROP_KINDS];
	unsigned ndrops;
	unsigned long other_drops;
};
_Static_assert(offsetof(struct net, va) == 0, "the adapter's part comes first");

/*
 * Make the kernel's rings follow the device: handed over while the device runs (and may use
 * DMA, and the VM is not paused) with both queues of a pair ready, taken back otherwise; interrupts
 * straight to the transport's irqfd while it has one, else relayed through the event loop. Lock
 * held.
 */
int net_vhost_sync(struct net *n);
/*
 * net_vhost_sync, and when it fails the device needs a reset: a data path nobody serves is no
 * use, the driver must start over. Lock held.
 */
void net_vhost_sync_or_reset(struct net *n);
/*
 * The TAP is gone (deleted on the host), as why says: stop watching it, say so once, serve
 * the data queues in microvm (what the guest sends is dropped and counted). Lock held, on
 * the event loop's thread.
 */
void net_tap_gone(struct net *n, const char *why);
/*
 * Open the kernel's data path for every pair and offer only what it supports. -errno;
 * net_stop undoes a partial open.
 */
int net_vhost_open(struct net *n, const struct guest_mem *mem);

#endif
