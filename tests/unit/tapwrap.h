/* tapwrap: the TAP and vhost calls of virtio-net taken by tests (tests/unit/tapwrap.c). */
#ifndef MICROVM_TEST_TAPWRAP_H
#define MICROVM_TEST_TAPWRAP_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#define VHOSTWRAP_MAX 8
#define VHOSTWRAP_FD0 1000 /* instance i's fd number (never a real descriptor) */

struct vhostwrap_ring {
	bool on;
	int kick, call, err;
	uint16_t base;
};

/* One /dev/vhost-net instance as the model sees it. */
struct vhostwrap {
	bool open;
	uint64_t features;
	unsigned starts;
	struct vhostwrap_ring ring[2];
};

extern unsigned tapwrap_offload_calls, tapwrap_queue_calls;
extern struct vhostwrap vhostwrap[VHOSTWRAP_MAX];

/* The kernel signals ring idx of instance i: its call eventfd, or its err one. */
bool vhostwrap_signal(unsigned i, unsigned idx, bool err);

/*
 * Set: called once (then cleared) when a device's code outside virtio.c next asks for a
 * device lock, before it waits for it: what another thread (a vCPU's register writes) did
 * while that caller waited. virtio_lock is wrapped too (TAPWRAP in the Makefile).
 */
extern void (*lockwrap_before)(void *arg);
extern void *lockwrap_arg;

#endif
