/* vdrv: a small virtio driver over the virtio-mmio registers, for device tests (no KVM). */
#ifndef MICROVM_TEST_VDRV_H
#define MICROVM_TEST_VDRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "test.h"
#include "mem.h"
#include "virtio/mmio.h"

#define VDRV_GPA    0x80000000ull
#define VDRV_QUEUES 8

struct vdrv_buf {
	uint64_t gpa;
	uint32_t len;
	bool writable;
};

struct vdrv_queue {
	uint16_t num;
	uint64_t desc, avail, used;
	uint16_t next_avail; /* driver's avail->idx */
	uint16_t next_desc;  /* next descriptor to hand out (round robin) */
};

struct vdrv {
	struct virtio_mmio t;
	struct virtio_dev *vd;
	struct loop loop;
	uint8_t *ram;
	struct guest_mem mem;
	uint64_t heap;	  /* next free guest-physical address for buffers */
	bool indirect;	  /* every chain through an indirect table */
	uint64_t used_at; /* if set: queue 0's used ring goes here (vdrv_start) */
	unsigned interrupts;
	struct vdrv_queue q[VDRV_QUEUES];
};

/* Guest RAM of size bytes at VDRV_GPA and an event loop. */
void vdrv_init(struct vdrv *d, size_t size);
/* Drive vd through its virtio-mmio registers; its queue kicks are watched by d->loop. */
void vdrv_attach(struct vdrv *d, struct virtio_dev *vd);
/*
 * Undo vdrv_attach: the queues' kicks are no longer watched. Teardown goes as in the
 * product: detach, stop the device (its in-flight I/O finishes), then vdrv_free.
 */
void vdrv_detach(struct vdrv *d);
/* Undo vdrv_init: the event loop and guest RAM go (after the device has stopped). */
void vdrv_free(struct vdrv *d);
/* Register access. */
uint32_t vdrv_rd(struct vdrv *d, uint64_t off);
void vdrv_wr(struct vdrv *d, uint64_t off, uint32_t v);
/*
 * Reset, negotiate features (VERSION_1 added), set up nq queues of num entries with
 * rings from the heap, DRIVER_OK. Returns the status register after it.
 */
uint32_t vdrv_start(struct vdrv *d, uint64_t features, unsigned nq, uint16_t num);
/* Carve len bytes aligned to align out of guest RAM (zeroed). */
uint64_t vdrv_alloc(struct vdrv *d, size_t len, size_t align);
/* Host pointer of a guest address inside RAM. */
void *vdrv_ptr(struct vdrv *d, uint64_t gpa);
/* Write a chain of n buffers to queue q's descriptors (or an indirect table); its head. */
uint16_t vdrv_chain(struct vdrv *d, unsigned q, const struct vdrv_buf *b, unsigned n);
/* Make head available on q (no kick). */
void vdrv_post(struct vdrv *d, unsigned q, uint16_t head);
/* Notify queue q through the QueueNotify register. */
void vdrv_kick(struct vdrv *d, unsigned q);
/* The device's used->idx of queue q. */
uint16_t vdrv_used(struct vdrv *d, unsigned q);
/*
 * Run the event loop until cond holds (each pass waits for events, 100 ms at most); false,
 * with a HANG line, if TEST_HANG_SECONDS pass first.
 */
#define VDRV_WAIT(d, cond) TEST_WAIT(cond, loop_poll(&(d)->loop, 100))
/* VDRV_WAIT until used->idx of q reaches want. True if it did. */
bool vdrv_wait_used(struct vdrv *d, unsigned q, uint16_t want);

#endif
