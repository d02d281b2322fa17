/* tap: Linux TAP interfaces with virtio-net headers, one file descriptor per queue pair. */
#ifndef MICROVM_TAP_H
#define MICROVM_TAP_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tap {
	char name[IFNAMSIZ]; /* the interface's actual name (a "tap%d" pattern resolved) */
	int *fds;	     /* one per queue, non-blocking */
	unsigned nfds;
	bool created; /* the interface did not exist before: it goes away with the fds */
};

/*
 * Why name cannot be used as a TAP interface: NULL when it is an interface name (1 to
 * IFNAMSIZ - 1 characters, no '/' or spaces, at most one "%d") that is a pattern, free, or
 * an existing TAP device (sysfs, no side effects); else a message, kept until the next call.
 */
const char *tap_check_name(const char *name);
/*
 * Open name (or the first free name matching a "%d" pattern) as a TAP interface with
 * virtio-net headers of hdr_len bytes and nqueues queues (IFF_MULTI_QUEUE when above 1).
 * A created interface gets the MTU and is brought up. -errno; the reason is logged against
 * owner (the NIC's section name).
 */
int tap_open(struct tap *t, const char *owner, const char *name, unsigned nqueues, int hdr_len,
	     uint32_t mtu);
/* Tell the kernel which offloads (TUN_F_*) the reader accepts on fd. -errno. */
int tap_set_offload(int fd, unsigned flags);
/* Attach (true) or detach (false) one queue of a multi-queue interface. -errno. */
int tap_set_queue_enabled(int fd, bool enabled);
/* Was the interface of queue fd deleted on the host (the queue is of no use any more)? */
bool tap_deleted(int fd);
/* Close every queue (a created, non-persistent interface disappears). */
void tap_close(struct tap *t);

#endif
