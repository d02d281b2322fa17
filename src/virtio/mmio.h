/* virtio-mmio: the version 2 register interface of a virtio device (virtio 1.x, section 4.2). */
#ifndef MICROVM_VIRTIO_MMIO_H
#define MICROVM_VIRTIO_MMIO_H

#include <stdbool.h>
#include <stdint.h>

struct snap_sec;
struct virtio_dev;
struct vm;

#define VIRTIO_MMIO_SIZE 0x200

struct virtio_mmio {
	struct virtio_dev *vd;
	struct vm *vm;
	uint64_t base;
	uint32_t irq;
	int irqfd;
	uint32_t dev_feat_sel, drv_feat_sel, queue_sel;
	bool assigned; /* the queue kick eventfds are registered with KVM as ioeventfds */
	unsigned warnings;
};

/* Decode one guest access to the register window (exported for tests). */
void virtio_mmio_access(struct virtio_mmio *t, uint64_t off, uint8_t *data, uint32_t len,
			bool is_write);
/* Put vd at base with interrupt line irq: registers, one ioeventfd per queue, an irqfd. -errno. */
int virtio_mmio_attach(struct virtio_mmio *t, struct vm *vm, struct virtio_dev *vd, uint64_t base,
		       uint32_t irq, const char *name);
/* Remove the ioeventfds and irqfd and close them. */
void virtio_mmio_detach(struct virtio_mmio *t);

/* Snapshot (device lock held): the selectors ("mmio.queue_sel"...). 0 or -errno. */
int virtio_mmio_save(struct virtio_mmio *t, struct snap_sec *sec);
/* Restore them (device lock held); on -EINVAL (said) nothing changed. */
int virtio_mmio_restore(struct virtio_mmio *t, const struct snap_sec *sec);
/* The selectors as attach left them (a restore refused after this one). */
void virtio_mmio_reset(struct virtio_mmio *t);
/* The restored device runs (device lock held): interrupt again while the ISR is set. */
void virtio_mmio_restored(struct virtio_mmio *t);

#endif
