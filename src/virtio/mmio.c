/* virtio-mmio: the version 2 register interface, ioeventfd queue kicks and irqfd interrupts. */
#include "virtio/mmio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "arch.h"
#include "irq.h"
#include "le.h"
#include "log.h"
#include "snapshot/devstate.h"
#include "virtio/virtio.h"
#include "vm.h"

enum {
	MAGIC = 0x000,
	VERSION = 0x004,
	DEVICE_ID = 0x008,
	VENDOR_ID = 0x00c,
	DEVICE_FEATURES = 0x010,
	DEVICE_FEATURES_SEL = 0x014,
	DRIVER_FEATURES = 0x020,
	DRIVER_FEATURES_SEL = 0x024,
	QUEUE_SEL = 0x030,
	QUEUE_NUM_MAX = 0x034,
	QUEUE_NUM = 0x038,
	QUEUE_READY = 0x044,
	QUEUE_NOTIFY = 0x050,
	INTERRUPT_STATUS = 0x060,
	INTERRUPT_ACK = 0x064,
	STATUS = 0x070,
	QUEUE_DESC_LOW = 0x080,
	QUEUE_DESC_HIGH = 0x084,
	QUEUE_DRIVER_LOW = 0x090,
	QUEUE_DRIVER_HIGH = 0x094,
	QUEUE_DEVICE_LOW = 0x0a0,
	QUEUE_DEVICE_HIGH = 0x0a4,
	CONFIG_GENERATION = 0x0fc,
	CONFIG = 0x100,
};

#define MAGIC_VALUE 0x74726976 /* "virt" */

static void set_half(uint64_t *v, bool high, uint32_t val)
{
	if (high)
		*v = (*v & 0xffffffffull) | (uint64_t)val << 32;
	else
		*v = (*v & ~0xffffffffull) | val;
}

static uint32_t reg_read(struct virtio_mmio *t, uint64_t off)
{
	struct virtio_dev *vd = t->vd;
	struct virtq *q = t->queue_sel < vd->nvqs ? &vd->vqs[t->queue_sel] : NULL;

	switch (off) {
	case MAGIC:
		return MAGIC_VALUE;
	case VERSION:
		return 2;
	case DEVICE_ID:
		return vd->ops->device_id;
	case VENDOR_ID:
		return VIRTIO_VENDOR_ID;
	case DEVICE_FEATURES:
		return virtio_host_features(vd, t->dev_feat_sel);
	case QUEUE_NUM_MAX:
		return q ? q->num_max : 0;
	case QUEUE_NUM:
		return q ? q->num : 0;
	case QUEUE_READY:
		return q ? q->ready : 0;
	case STATUS:
		return vd->status;
	case CONFIG_GENERATION:
		return vd->config_gen;
	case QUEUE_DESC_LOW:
	case QUEUE_DESC_HIGH:
		return q ? (uint32_t)(q->desc_gpa >> (off == QUEUE_DESC_HIGH ? 32 : 0)) : 0;
	case QUEUE_DRIVER_LOW:
	case QUEUE_DRIVER_HIGH:
		return q ? (uint32_t)(q->avail_gpa >> (off == QUEUE_DRIVER_HIGH ? 32 : 0)) : 0;
	case QUEUE_DEVICE_LOW:
	case QUEUE_DEVICE_HIGH:
		return q ? (uint32_t)(q->used_gpa >> (off == QUEUE_DEVICE_HIGH ? 32 : 0)) : 0;
	default:
		return 0; /* write-only or reserved */
	}
}

/* Returns the queue to notify, or -1. */
static int reg_write(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	struct virtio_dev *vd = t->vd;
	struct virtq *setup = virtio_queue_layout(vd, t->queue_sel);

	switch (off) {
	case DEVICE_FEATURES_SEL:
		t->dev_feat_sel = v;
		break;
	case DRIVER_FEATURES:
		virtio_set_guest_features(vd, t->drv_feat_sel, v);
		break;
	case DRIVER_FEATURES_SEL:
		t->drv_feat_sel = v;
		break;
	case QUEUE_SEL:
		t->queue_sel = v;
		break;
	case QUEUE_NUM:
		if (setup)
			setup->num = v > 0xffff ? 0 : (uint16_t)v; /* checked when enabled */
		break;
	case QUEUE_READY:
		if (v == 1)
			virtio_queue_enable(vd, t->queue_sel);
		else if (v == 0)
			virtio_queue_disable(vd, t->queue_sel);
		break;
	case QUEUE_NOTIFY:
		return v < vd->nvqs ? (int)v : -1;
	case STATUS:
		virtio_set_status(vd, (uint8_t)v);
		break;
	case QUEUE_DESC_LOW:
	case QUEUE_DESC_HIGH:
		if (setup)
			set_half(&setup->desc_gpa, off == QUEUE_DESC_HIGH, v);
		break;
	case QUEUE_DRIVER_LOW:
	case QUEUE_DRIVER_HIGH:
		if (setup)
			set_half(&setup->avail_gpa, off == QUEUE_DRIVER_HIGH, v);
		break;
	case QUEUE_DEVICE_LOW:
	case QUEUE_DEVICE_HIGH:
		if (setup)
			set_half(&setup->used_gpa, off == QUEUE_DEVICE_HIGH, v);
		break;
	default:
		break; /* read-only or reserved: ignored */
	}
	return -1;
}

void virtio_mmio_access(struct virtio_mmio *t, uint64_t off, uint8_t *data, uint32_t len,
			bool is_write)
{
	struct virtio_dev *vd = t->vd;
	int notify = -1;

	vd->stats.trapped++;
	if (len == 4 && (off == INTERRUPT_STATUS || off == INTERRUPT_ACK)) {
		/*
		 * The interrupt handler's two accesses need only the atomic ISR: taken without the
		 * lock, they do not wait for a request the event loop is serving under it.
		 */
		if (is_write && off == INTERRUPT_ACK)
			atomic_fetch_and(&vd->isr, ~le32_get(data));
		else if (!is_write)
			le32_put(data, off == INTERRUPT_STATUS ? atomic_load(&vd->isr) : 0);
		return;
	}
	virtio_lock(vd);
	if (off >= CONFIG) {
		virtio_config_access(vd, off - CONFIG, data, len, is_write);
	} else if (len != 4 || off % 4) {
		/* Registers are 32-bit only. */
		if (!is_write)
			memset(data, 0, len);
		if (t->warnings++ < 5)
			log_warn("%s: %u-byte guest access at register 0x%llx ignored", vd->name,
				 len, (unsigned long long)off);
	} else if (is_write) {
		notify = reg_write(t, off, le32_get(data));
	} else {
		le32_put(data, reg_read(t, off));
	}
	virtio_unlock(vd);
	if (notify >= 0)
		virtio_queue_notify(vd, notify); /* a kick that bypassed the ioeventfd */
}

static void mmio_bus_access(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	virtio_mmio_access(opaque, off, data, len, is_write);
}

static void interrupt(struct virtio_dev *vd, int vq)
{
	struct virtio_mmio *t = vd->transport;
	uint64_t one = 1;

	(void)vq;
	if (write(t->irqfd, &one, sizeof(one)) < 0 && t->warnings++ < 5)
		log_warn("%s: irqfd: %s", vd->name, strerror(errno));
}

/*
 * Register every queue's kick eventfd on QueueNotify (matching its index), or remove them;
 * a registration that fails undoes the ones before it.
 */
static int notify_eventfds(struct virtio_mmio *t, bool assign)
{
	for (unsigned q = 0; q < t->vd->nvqs; q++) {
		int err = irq_ioeventfd(&t->vm->irq, t->base + QUEUE_NOTIFY, 4, true, q,
					t->vd->kicks[q].fd, assign);

		if (err && assign) {
			while (q--)
				irq_ioeventfd(&t->vm->irq, t->base + QUEUE_NOTIFY, 4, true, q,
					      t->vd->kicks[q].fd, false);
			return err;
		}
	}
	t->assigned = assign;
	return 0;
}

/* vd->set_trap_kicks: every queue's ioeventfd on QueueNotify, or none. */
static int set_trap_kicks(struct virtio_dev *vd, bool trap)
{
	return notify_eventfds(vd->transport, !trap);
}

static const struct virtio_transport_ops mmio_ops = {
	.interrupt = interrupt,
	.set_trap_kicks = set_trap_kicks,
};

int virtio_mmio_attach(struct virtio_mmio *t, struct vm *vm, struct virtio_dev *vd, uint64_t base,
		       uint32_t irq, const char *name)
{
	int err;

	t->vd = vd;
	t->vm = vm;
	t->base = base;
	t->irq = irq;
	vd->transport = t;
	vd->tops = &mmio_ops;
	t->irqfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->irqfd < 0)
		return -errno;
	err = irq_fd(&vm->irq, irq, t->irqfd, true);
	if (err) {
		log_error("%s: KVM_IRQFD for interrupt line %u: %s", name, irq, strerror(-err));
		return err;
	}
	err = virtio_kicks_open(vd, &vm->loop);
	if (err)
		return err;
	err = vd->kick.trap ? 0 : notify_eventfds(t, true);
	if (err) {
		log_error("%s: KVM_IOEVENTFD for the queue notifications: %s", name,
			  strerror(-err));
		return err;
	}
	return bus_register(&vm->bus, base, VIRTIO_MMIO_SIZE, mmio_bus_access, t, name);
}

void virtio_mmio_detach(struct virtio_mmio *t)
{
	if (!t->vm)
		return;
	if (t->assigned)
		notify_eventfds(t, false);
	virtio_kicks_close(t->vd, &t->vm->loop);
	if (t->irqfd >= 0) {
		irq_fd(&t->vm->irq, t->irq, t->irqfd, false);
		close(t->irqfd);
	}
	t->irqfd = -1;
	t->vm = NULL;
}

/* The registers a snapshot keeps besides the core's: the driver's selectors. */
static const char *const sel_fields[] = {"mmio.queue_sel", "mmio.dev_feat_sel",
					 "mmio.drv_feat_sel"};

static uint32_t *sel_reg(struct virtio_mmio *t, unsigned i)
{
	uint32_t *regs[] = {&t->queue_sel, &t->dev_feat_sel, &t->drv_feat_sel};

	return regs[i];
}

int virtio_mmio_save(struct virtio_mmio *t, struct snap_sec *sec)
{
	int err = 0;

	for (unsigned i = 0; !err && i < 3; i++)
		err = snap_put_u64(sec, sel_fields[i], *sel_reg(t, i));
	return err;
}

int virtio_mmio_restore(struct virtio_mmio *t, const struct snap_sec *sec)
{
	uint64_t v[3];
	int err = 0;

	/* The driver may write any value: out of range ones select nothing, as they did. */
	for (unsigned i = 0; !err && i < 3; i++)
		err = snap_need_u64(sec, sel_fields[i], UINT32_MAX, &v[i]);
	for (unsigned i = 0; !err && i < 3; i++)
		*sel_reg(t, i) = v[i];
	return err;
}

void virtio_mmio_reset(struct virtio_mmio *t)
{
	for (unsigned i = 0; i < 3; i++)
		*sel_reg(t, i) = 0;
}

void virtio_mmio_restored(struct virtio_mmio *t)
{
	/* An interrupt the driver has not acknowledged: sent again (a spare one is harmless). */
	if (atomic_load(&t->vd->isr))
		t->vd->tops->interrupt(t->vd, -1);
}
