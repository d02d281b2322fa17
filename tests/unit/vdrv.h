/*
 * vdrv: a small virtio driver for device tests (no KVM): over the virtio-mmio registers, or
 * over a virtio-pci function (the same register offsets, mapped onto its common
 * configuration, notify and ISR structures).
 */
#ifndef MICROVM_TEST_VDRV_H
#define MICROVM_TEST_VDRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "test.h"
#include "mem.h"
#include "pci/pci.h"
#include "virtio/mmio.h"
#include "virtio/pci.h"
#include "vm.h"

#define VDRV_GPA      0x80000000ull
#define VDRV_QUEUES   8
#define VDRV_PCI_SLOT 1

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
	/* vdrv_attach_pci: the function, its host bridge and a VM without KVM around them */
	struct virtio_pci *pci;
	struct pci_host host;
	struct vm vm;
	bool intx; /* PCI: vdrv_start leaves MSI-X off (interrupts are INTx) */
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
 * Drive vd through virtio-pci function t of machine m (in slot VDRV_PCI_SLOT, MSI-X offered;
 * its INTx is an eventfd, vdrv_intx): vdrv_start maps BAR 0 and turns bus mastering and,
 * unless d->intx, MSI-X on (every vector masked: interrupts wait in the PBA).
 */
void vdrv_attach_pci(struct vdrv *d, struct virtio_dev *vd, struct virtio_pci *t,
		     struct machine *m);
/* PCI: configuration space access, as the guest makes it (ECAM). */
uint32_t vdrv_cfg_rd(struct vdrv *d, uint32_t off, uint32_t len);
void vdrv_cfg_wr(struct vdrv *d, uint32_t off, uint32_t len, uint32_t v);
/* PCI: BAR 0 access. */
uint64_t vdrv_bar_rd(struct vdrv *d, uint32_t off, uint32_t len);
void vdrv_bar_wr(struct vdrv *d, uint32_t off, uint32_t len, uint64_t v);
/* PCI: INTx assertions since the last call. */
unsigned vdrv_intx(struct vdrv *d);
/*
 * Undo vdrv_attach: the queues' kicks are no longer watched. Teardown goes as in the
 * product: detach, stop the device (its in-flight I/O finishes), then vdrv_free.
 */
void vdrv_detach(struct vdrv *d);
/* Undo vdrv_init: the event loop and guest RAM go (after the device has stopped). */
void vdrv_free(struct vdrv *d);
/* The guest of from goes on in to: RAM, the driver's queues and heap (same RAM size). */
void vdrv_copy_guest(struct vdrv *to, const struct vdrv *from);
/*
 * Register access at virtio-mmio offsets. On PCI: the common configuration's fields, QueueNotify
 * the queue's notify address, InterruptStatus the ISR (reading it acknowledges), config space
 * the device structure; other registers read 0 and ignore writes.
 */
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
