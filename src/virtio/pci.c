/* virtio-pci: the modern (virtio 1.x) PCI transport with MSI-X or INTx interrupts. */
#include "virtio/pci.h"

#include <endian.h>
#include <errno.h>
#include <linux/pci_regs.h>
#include <linux/virtio_pci.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "irq.h"
#include "le.h"
#include "log.h"
#include "snapshot/devstate.h"
#include "virtio/virtio.h"

#define MSIX_ENTRY     16
#define MSIX_CTRL_MASK 0x4000
#define MSIX_CTRL_EN   0x8000

static bool msix_on(const struct virtio_pci *t)
{
	return t->msix && (t->msix_ctrl & MSIX_CTRL_EN);
}

/* Held back: masked (function or vector), or no bus mastering (an MSI is a memory write). */
static bool vector_masked(const struct virtio_pci *t, unsigned v)
{
	return (t->msix_ctrl & MSIX_CTRL_MASK) || !(t->cmd & PCI_COMMAND_MASTER) ||
	       (le32_get(t->table + v * MSIX_ENTRY + PCI_MSIX_ENTRY_VECTOR_CTRL) & 1);
}

/* Point vector v's irqfd at the message in its table entry (when that changed). -errno. */
static int route(struct virtio_pci *t, unsigned v)
{
	struct msi_route *r = &t->routes[v];
	const uint8_t *e = t->table + v * MSIX_ENTRY;
	uint64_t addr = le64_get(e);
	uint32_t data = le32_get(e + 8);
	int err = 0;

	if (r->gsi < 0 || r->addr != addr || r->data != data) {
		err = irq_msi_route(&t->vm->irq, r, addr, data, t->pdev.slot << 3);
		if (err && t->warnings++ < 5)
			log_warn("%s: MSI-X vector %u: message 0x%llx/0x%x not deliverable: %s",
				 t->pdev.name, v, (unsigned long long)addr, data, strerror(-err));
	}
	return err;
}

/* Deliver vector v now. */
static void fire(struct virtio_pci *t, unsigned v)
{
	uint64_t one = 1;

	if (route(t, v) == 0 && write(t->routes[v].fd, &one, sizeof(one)) < 0 && t->warnings++ < 5)
		log_warn("%s: irqfd: %s", t->pdev.name, strerror(errno));
}

/* vd->queue_irqfd: queue q's vector's irqfd while MSI-X delivers it unmasked. */
static int queue_irqfd(struct virtio_dev *vd, unsigned q)
{
	struct virtio_pci *t = vd->transport;
	unsigned v;

	if (!msix_on(t) || q >= vd->nvqs)
		return -1;
	v = t->queue_vector[q];
	if (v >= t->nvec || vector_masked(t, v) || route(t, v))
		return -1;
	return t->routes[v].fd;
}

/* Raise INTx: Interrupt Status follows the ISR; the line only while INTx is enabled. */
static void intx_assert(struct virtio_pci *t)
{
	uint64_t one = 1;

	atomic_store(&t->pdev.intx_status, true);
	if (t->cmd & PCI_COMMAND_INTX_DISABLE)
		return;
	if (t->intx_level) {
		irq_line(&t->vm->irq, t->pdev.intx_irq, 1);
		return;
	}
	if (write(t->intx_fd, &one, sizeof(one)) < 0 && t->warnings++ < 5)
		log_warn("%s: INTx irqfd: %s", t->pdev.name, strerror(errno));
}

/* The device core's interrupt hook (device lock held). */
static void interrupt(struct virtio_dev *vd, int vq)
{
	struct virtio_pci *t = vd->transport;
	unsigned v;

	if (!msix_on(t)) {
		intx_assert(t);
		return;
	}
	v = vq < 0 ? t->msix_config : t->queue_vector[vq];
	if (v >= t->nvec)
		return; /* VIRTIO_MSI_NO_VECTOR */
	if (vector_masked(t, v)) {
		t->pending[v / 64] |= 1ull << (v % 64);
		return;
	}
	fire(t, v);
}

/* After a change of masks or enable: send what was held back while masked. */
static void flush_pending(struct virtio_pci *t)
{
	if (!msix_on(t))
		return;
	for (unsigned v = 0; v < t->nvec; v++) {
		if (!(t->pending[v / 64] & (1ull << (v % 64))) || vector_masked(t, v))
			continue;
		t->pending[v / 64] &= ~(1ull << (v % 64));
		fire(t, v);
	}
}

/* The ISR was read or the device reset: INTx is no longer asserted. */
static void intx_deassert(struct virtio_pci *t)
{
	atomic_store(&t->pdev.intx_status, false);
	if (t->intx_level)
		irq_line(&t->vm->irq, t->pdev.intx_irq, 0);
}

/* INTx is a level: while the ISR is set (and MSI-X off) the line is asserted again. */
static void intx_reassert(struct virtio_pci *t)
{
	if (!msix_on(t) && atomic_load(&t->vd->isr))
		intx_assert(t);
}

static void reset_transport(struct virtio_pci *t)
{
	t->msix_config = VIRTIO_MSI_NO_VECTOR;
	for (unsigned q = 0; q < t->vd->nvqs; q++)
		t->queue_vector[q] = VIRTIO_MSI_NO_VECTOR;
	t->queue_sel = 0;
	t->dev_feat_sel = t->drv_feat_sel = 0;
	/* Nothing the old driver was due survives a reset: no pending vector, no INTx. */
	memset(t->pending, 0, sizeof(t->pending));
	if (atomic_load(&t->pdev.intx_status))
		intx_deassert(t);
}

/* The MSI-X table at power-on: every entry zero and masked. */
static void table_reset(struct virtio_pci *t)
{
	memset(t->table, 0, t->nvec * MSIX_ENTRY);
	for (unsigned v = 0; v < t->nvec; v++)
		le32_put(t->table + v * MSIX_ENTRY + PCI_MSIX_ENTRY_VECTOR_CTRL, 1);
}

static uint16_t checked_vector(const struct virtio_pci *t, uint32_t v)
{
	return t->msix && v < t->nvec ? v : VIRTIO_MSI_NO_VECTOR;
}

/* struct virtio_pci_common_cfg, field by field (device lock held). */
static void common_read(struct virtio_pci *t, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_dev *vd = t->vd;
	struct virtq *q = t->queue_sel < vd->nvqs ? &vd->vqs[t->queue_sel] : NULL;
	uint8_t c[0x38] = {0};

	le32_put(c + 0x00, t->dev_feat_sel);
	le32_put(c + 0x04, virtio_host_features(vd, t->dev_feat_sel));
	le32_put(c + 0x08, t->drv_feat_sel);
	le32_put(c + 0x0c, (uint32_t)(vd->guest_features >> (t->drv_feat_sel == 1 ? 32 : 0)));
	le16_put(c + 0x10, t->msix_config);
	le16_put(c + 0x12, vd->nvqs);
	c[0x14] = vd->status;
	c[0x15] = vd->config_gen;
	le16_put(c + 0x16, t->queue_sel);
	if (q) {
		uint16_t vec = t->queue_vector[t->queue_sel];

		le16_put(c + 0x18, q->num);
		le16_put(c + 0x1a, vec);
		c[0x1c] = q->ready;
		le16_put(c + 0x1e, t->queue_sel); /* queue_notify_off */
		le64_put(c + 0x20, q->desc_gpa);
		le64_put(c + 0x28, q->avail_gpa);
		le64_put(c + 0x30, q->used_gpa);
	}
	if (off + len <= sizeof(c))
		memcpy(data, c + off, len);
	else
		memset(data, 0, len);
}

static void set_part(uint64_t *field, uint32_t off, uint32_t len, uint64_t v)
{
	unsigned shift = 8 * (off & 7);
	uint64_t mask = (len == 8 ? ~0ull : ((1ull << (8 * len)) - 1)) << shift;

	*field = (*field & ~mask) | ((v << shift) & mask);
}

static void common_write(struct virtio_pci *t, uint32_t off, const uint8_t *data, uint32_t len)
{
	struct virtio_dev *vd = t->vd;
	struct virtq *q = t->queue_sel < vd->nvqs ? &vd->vqs[t->queue_sel] : NULL;
	struct virtq *setup = virtio_queue_layout(vd, t->queue_sel);
	uint64_t v = 0;

	memcpy(&v, data, len);
	v = le64toh(v);
	switch (off) {
	case 0x00:
		t->dev_feat_sel = v;
		break;
	case 0x08:
		t->drv_feat_sel = v;
		break;
	case 0x0c:
		virtio_set_guest_features(vd, t->drv_feat_sel, v);
		break;
	case 0x10:
		t->msix_config = checked_vector(t, v);
		break;
	case 0x14:
		/* device_status is one byte; a wider write also covers read-only fields. */
		virtio_set_status(vd, (uint8_t)v);
		if ((uint8_t)v == 0)
			reset_transport(t);
		break;
	case 0x16:
		t->queue_sel = v;
		break;
	case 0x18:
		if (setup)
			setup->num = v;
		break;
	case 0x1a:
		if (q) {
			t->queue_vector[t->queue_sel] = checked_vector(t, v);
			virtio_changed(t->vd);
		}
		break;
	case 0x1c:
		if (v == 1)
			virtio_queue_enable(vd, t->queue_sel);
		break; /* writing 0 is reserved (virtio 1.2 4.1.4.3.2): ignored */
	default:
		if (!setup || off < 0x20 || off >= 0x38)
			break; /* read-only, reserved, or a live queue */
		if (off < 0x28)
			set_part(&setup->desc_gpa, off - 0x20, len, v);
		else if (off < 0x30)
			set_part(&setup->avail_gpa, off - 0x28, len, v);
		else
			set_part(&setup->used_gpa, off - 0x30, len, v);
	}
}

void virtio_pci_bar_access(struct virtio_pci *t, uint64_t off, uint8_t *data, uint32_t len,
			   bool is_write)
{
	struct virtio_dev *vd = t->vd;
	int notify = -1;

	/* Widths 1, 2, 4 and 8, naturally aligned; any other reads 0 and writes nothing. */
	if ((len != 1 && len != 2 && len != 4 && len != 8) || off % len) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	virtio_lock(vd);
	vd->stats.trapped++;
	if (off < VPCI_COMMON_OFF + 0x38) {
		if (is_write)
			common_write(t, off, data, len);
		else
			common_read(t, off, data, len);
	} else if (off >= VPCI_ISR_OFF && off < VPCI_ISR_OFF + 4) {
		if (!is_write) {
			/* Reading the ISR acknowledges it (and drops a level INTx). */
			memset(data, 0, len);
			data[0] = off == VPCI_ISR_OFF ? atomic_exchange(&vd->isr, 0) : 0;
			if (off == VPCI_ISR_OFF && atomic_load(&t->pdev.intx_status))
				intx_deassert(t);
		}
	} else if (off >= VPCI_DEVICE_OFF && off < VPCI_NOTIFY_OFF) {
		virtio_config_access(vd, off - VPCI_DEVICE_OFF, data, len, is_write);
	} else if (off >= VPCI_NOTIFY_OFF && off < VPCI_NOTIFY_OFF + VPCI_NOTIFY_MUL * vd->nvqs) {
		if (is_write)
			notify = (off - VPCI_NOTIFY_OFF) / VPCI_NOTIFY_MUL;
		else
			memset(data, 0, len);
	} else if (t->msix && off >= VPCI_MSIX_OFF && off < VPCI_MSIX_OFF + t->nvec * MSIX_ENTRY &&
		   len >= 4) {
		/* DWORD or aligned QWORD accesses (PCIe 6.0 7.7.2: both must work). */
		uint8_t *e = t->table + (off - VPCI_MSIX_OFF);

		if (is_write) {
			memcpy(e, data, len);
			flush_pending(t);
			virtio_changed(t->vd);
		} else {
			memcpy(data, e, len);
		}
	} else if (t->msix && off >= VPCI_PBA_OFF && off < VPCI_PBA_OFF + sizeof(t->pending) &&
		   !is_write) {
		/* Pending bits are little-endian in memory, like the host's own. */
		uint64_t w = htole64(t->pending[(off - VPCI_PBA_OFF) / 8]);

		memcpy(data, (uint8_t *)&w + (off - VPCI_PBA_OFF) % 8, len);
	} else if (!is_write) {
		memset(data, 0, len);
	}
	virtio_unlock(vd);
	if (notify >= 0)
		virtio_queue_notify(vd, notify); /* a kick that bypassed the ioeventfd */
}

static void bar_access(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	virtio_pci_bar_access(opaque, off, data, len, is_write);
}

/* Register (assign) or remove the queues' ioeventfds on BAR 0 at addr. -errno (undone). */
static int notify_eventfds(struct virtio_pci *t, uint64_t addr, bool assign)
{
	for (unsigned q = 0; q < t->vd->nvqs; q++) {
		int err = irq_ioeventfd(&t->vm->irq, addr + VPCI_NOTIFY_OFF + VPCI_NOTIFY_MUL * q,
					2, false, 0, t->vd->kicks[q].fd, assign);

		if (err && assign) {
			while (q--)
				irq_ioeventfd(&t->vm->irq,
					      addr + VPCI_NOTIFY_OFF + VPCI_NOTIFY_MUL * q, 2,
					      false, 0, t->vd->kicks[q].fd, false);
			return err;
		}
	}
	return 0;
}

/* vd->set_trap_kicks: the ioeventfds follow BAR 0 while it is mapped. */
static int set_trap_kicks(struct virtio_dev *vd, bool trap)
{
	struct virtio_pci *t = vd->transport;

	return t->bar_mapped ? notify_eventfds(t, t->bar_base, !trap) : 0;
}

/*
 * BAR 0 moved: the bus region and one ioeventfd per queue follow it. The device lock keeps
 * set_trap_kicks (ioeventfd = auto) from changing them meanwhile.
 */
static int bar_map(struct pci_dev *d, int bar, uint64_t addr, bool map)
{
	struct virtio_pci *t = d->opaque;
	int err;

	if (bar != 0 || !t->vm || !t->vd->kicks)
		return -EINVAL;
	virtio_lock(t->vd);
	if (!map) {
		if (!t->vd->kick.trap)
			notify_eventfds(t, addr, false);
		bus_unregister(&t->vm->bus, addr);
		t->bar_mapped = false;
		virtio_unlock(t->vd);
		return 0;
	}
	err = bus_register(&t->vm->bus, addr, VPCI_BAR_SIZE, bar_access, t, d->name);
	if (err) {
		if (t->warnings++ < 5)
			log_warn("%s: BAR 0 at 0x%llx overlaps another region; not decoded",
				 d->name, (unsigned long long)addr);
		virtio_unlock(t->vd);
		return err;
	}
	if (!t->vd->kick.trap)
		notify_eventfds(t, addr, true);
	t->bar_base = addr;
	t->bar_mapped = true;
	virtio_unlock(t->vd);
	return 0;
}

/*
 * Called with the host bridge's configuration lock held: the device lock is taken inside it,
 * never the other way round. The command register and MSI-X control are copied here, so
 * the device side (device lock only) never reads configuration space.
 */
static void cfg_written(struct pci_dev *d, uint32_t off, uint32_t len)
{
	struct virtio_pci *t = d->opaque;
	uint16_t old;

	(void)off;
	(void)len;
	virtio_lock(t->vd);
	old = t->cmd;
	t->cmd = le16_get(t->pdev.cfg + PCI_COMMAND);
	if (t->msix)
		t->msix_ctrl = le16_get(t->pdev.cfg + t->msix_cap + PCI_MSIX_FLAGS);
	if ((old ^ t->cmd) & PCI_COMMAND_MASTER)
		virtio_set_dma(t->vd, t->cmd & PCI_COMMAND_MASTER);
	if (msix_on(t) && atomic_load(&t->pdev.intx_status)) {
		intx_deassert(t); /* a function using MSI-X does not use INTx */
	} else if (t->cmd & ~old & PCI_COMMAND_INTX_DISABLE) {
		if (t->intx_level)
			irq_line(&t->vm->irq, t->pdev.intx_irq, 0); /* the line, not the status */
	} else if ((old & ~t->cmd & PCI_COMMAND_INTX_DISABLE) &&
		   atomic_load(&t->pdev.intx_status) && !msix_on(t)) {
		intx_assert(t); /* enabled again with one pending: it asserts now */
	}
	flush_pending(t);
	virtio_changed(t->vd);
	virtio_unlock(t->vd);
}

static uint8_t add_vcap(struct pci_dev *d, uint8_t type, uint32_t off, uint32_t len, uint8_t caplen)
{
	uint8_t at = pci_dev_add_cap(d, PCI_CAP_ID_VNDR, caplen);

	d->cfg[at + 2] = caplen;
	d->cfg[at + 3] = type;
	d->cfg[at + 4] = 0; /* BAR 0 */
	le32_put(d->cfg + at + 8, off);
	le32_put(d->cfg + at + 12, len);
	return at;
}

static const struct virtio_transport_ops pci_ops = {
	.interrupt = interrupt,
	.queue_irqfd = queue_irqfd,
	.set_trap_kicks = set_trap_kicks,
};

int virtio_pci_init(struct virtio_pci *t, struct virtio_dev *vd, uint8_t slot, bool msix,
		    uint32_t class, const char *name)
{
	struct pci_dev *d = &t->pdev;
	uint8_t at;

	t->vd = vd;
	t->msix = msix;
	t->nvec = vd->nvqs + 1;
	t->intx_fd = t->resample_fd = -1;
	vd->transport = t;
	vd->tops = &pci_ops;
	vd->dma_off = true; /* until the driver sets Bus Master Enable */
	pci_dev_init(d, name, VIRTIO_VENDOR_ID, 0x1040 + vd->ops->device_id, class, 1,
		     VIRTIO_VENDOR_ID, 0x1040 + vd->ops->device_id, 1);
	d->slot = slot;
	d->opaque = t;
	d->bar_map = bar_map;
	d->cfg_written = cfg_written;
	pci_dev_set_bar(d, 0, VPCI_BAR_SIZE, PCI_BASE_ADDRESS_SPACE_MEMORY);
	add_vcap(d, VIRTIO_PCI_CAP_COMMON_CFG, VPCI_COMMON_OFF, 0x38, 16);
	at = add_vcap(d, VIRTIO_PCI_CAP_NOTIFY_CFG, VPCI_NOTIFY_OFF, VPCI_NOTIFY_MUL * vd->nvqs,
		      20);
	le32_put(d->cfg + at + 16, VPCI_NOTIFY_MUL);
	add_vcap(d, VIRTIO_PCI_CAP_ISR_CFG, VPCI_ISR_OFF, 4, 16);
	/* Only a device with a configuration space has one (Linux refuses a 0-byte one). */
	if (vd->config_len)
		add_vcap(d, VIRTIO_PCI_CAP_DEVICE_CFG, VPCI_DEVICE_OFF, vd->config_len, 16);
	if (msix) {
		if (t->nvec > 64 * 8)
			return -EINVAL;
		at = pci_dev_add_cap(d, PCI_CAP_ID_MSIX, 12);
		t->msix_cap = at;
		/* Message Control: Table Size (N - 1) is its low 11 bits, not a byte. */
		le16_put(d->cfg + at + PCI_MSIX_FLAGS, (t->nvec - 1) & PCI_MSIX_FLAGS_QSIZE);
		d->wmask[at + 3] = (MSIX_CTRL_EN | MSIX_CTRL_MASK) >> 8;
		le32_put(d->cfg + at + PCI_MSIX_TABLE, VPCI_MSIX_OFF);
		le32_put(d->cfg + at + PCI_MSIX_PBA, VPCI_PBA_OFF);
	}
	t->queue_vector = calloc(vd->nvqs, sizeof(*t->queue_vector));
	t->table = calloc(t->nvec, MSIX_ENTRY);
	t->routes = calloc(t->nvec, sizeof(*t->routes));
	/* Before anything can fail: detach closes only the descriptors a route holds. */
	for (unsigned v = 0; t->routes && v < t->nvec; v++)
		t->routes[v] = (struct msi_route){.gsi = -1, .msi_gsi = -1, .fd = -1};
	if (!t->queue_vector || !t->table || !t->routes)
		return -ENOMEM;
	table_reset(t);
	reset_transport(t);
	return 0;
}

static void on_resample(void *opaque, uint32_t events)
{
	struct virtio_pci *t = opaque;
	uint64_t v;

	(void)events;
	if (read(t->resample_fd, &v, sizeof(v)) < 0)
		return;
	/* The guest EOI'd the level interrupt: raise it again while the ISR is still set. */
	virtio_lock(t->vd);
	intx_reassert(t);
	virtio_unlock(t->vd);
}

int virtio_pci_attach(struct virtio_pci *t, struct vm *vm)
{
	int err;

	t->vm = vm;
	if (!vm->pci)
		return -ENODEV;
	err = pci_host_attach(vm->pci, &t->pdev);
	if (err)
		return err;
	for (unsigned v = 0; v < t->nvec && t->msix; v++) {
		t->routes[v].fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (t->routes[v].fd < 0)
			return -errno;
	}
	err = virtio_kicks_open(t->vd, &vm->loop);
	if (err)
		return err;
	/* INTx: a level interrupt through an irqfd with resampling, or KVM_IRQ_LINE. */
	t->intx_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	t->resample_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->intx_fd < 0 || t->resample_fd < 0)
		return -errno;
	if (vm_has_cap(vm, KVM_CAP_IRQFD_RESAMPLE) &&
	    irq_fd_resample(&vm->irq, t->pdev.intx_irq, t->intx_fd, t->resample_fd, true) == 0)
		return loop_add(&vm->loop, t->resample_fd, EPOLLIN, on_resample, t);
	t->intx_level = true;
	log_info("%s: INTx through KVM_IRQ_LINE (no irqfd resampling on this host)", t->pdev.name);
	return 0;
}

void virtio_pci_detach(struct virtio_pci *t)
{
	struct vm *vm = t->vm;

	if (vm && t->bar_mapped)
		bar_map(&t->pdev, 0, t->bar_base, false);
	if (vm)
		virtio_kicks_close(t->vd, &vm->loop);
	for (unsigned v = 0; t->routes && v < t->nvec; v++) {
		if (t->routes[v].fd < 0)
			continue;
		if (vm)
			irq_msi_unroute(&vm->irq, &t->routes[v]);
		close(t->routes[v].fd);
	}
	if (t->resample_fd >= 0) {
		if (vm && !t->intx_level) {
			loop_del(&vm->loop, t->resample_fd);
			irq_fd_resample(&vm->irq, t->pdev.intx_irq, t->intx_fd, t->resample_fd,
					false);
		}
		close(t->resample_fd);
	}
	if (t->intx_fd >= 0)
		close(t->intx_fd);
	free(t->queue_vector);
	free(t->table);
	free(t->routes);
	t->queue_vector = NULL;
	t->table = NULL;
	t->routes = NULL;
	t->intx_fd = t->resample_fd = -1;
	t->vm = NULL;
}

/* --- snapshots ---------------------------------------------------------------------------- */

/*
 * The PBA's bytes in a snapshot: 64-bit words, little-endian, as many as nvec needs, at most
 * what t->pending holds (more vectors than that only without MSI-X, where none is pending).
 */
static size_t pba_len(const struct virtio_pci *t)
{
	size_t n = 8 * ((t->nvec + 63) / 64);

	return n < sizeof(t->pending) ? n : sizeof(t->pending);
}

int virtio_pci_save(struct virtio_pci *t, struct snap_sec *sec)
{
	uint8_t pba[sizeof(t->pending)];
	int err = 0;

	/* Configuration space without its lock: the vCPUs, its only writers, are parked. */
	err = err ?: snap_put_bytes(sec, "pci.config", t->pdev.cfg, PCI_CFG_SIZE);
	err = err ?: snap_put_u64(sec, "pci.dev_feat_sel", t->dev_feat_sel);
	err = err ?: snap_put_u64(sec, "pci.drv_feat_sel", t->drv_feat_sel);
	err = err ?: snap_put_u64(sec, "pci.queue_sel", t->queue_sel);
	err = err ?: snap_put_u64(sec, "pci.msix_config", t->msix_config);
	for (unsigned q = 0; !err && q < t->vd->nvqs; q++)
		err = devstate_put_at(sec, "pci.q%u.vector", q, t->queue_vector[q]);
	for (unsigned w = 0; w < 8; w++)
		le64_put(pba + 8 * w, t->pending[w]);
	err = err ?: snap_put_bytes(sec, "msix.table", t->table, t->nvec * MSIX_ENTRY);
	return err ?: snap_put_bytes(sec, "msix.pba", pba, pba_len(t));
}

/*
 * The saved configuration space, if what the guest cannot write in it is this function's
 * (the same device, capabilities and BAR types): the guest's part is written back later.
 */
static int saved_config(const struct virtio_pci *t, const struct snap_sec *sec, const uint8_t **cfg)
{
	const struct pci_dev *d = &t->pdev;
	int err = devstate_need_blob(sec, "pci.config", PCI_CFG_SIZE, (const void **)cfg);

	for (unsigned i = 0; !err && i < PCI_CFG_SIZE; i++)
		if (((*cfg)[i] ^ d->cfg[i]) & ~d->wmask[i])
			return devstate_bad(
				sec, "pci.config",
				"read-only byte 0x%02x is 0x%02x, this function's 0x%02x "
				"(another device?)",
				i, (*cfg)[i], d->cfg[i]);
	return err;
}

/* A vector register's value: NO_VECTOR, or an entry of the table (as checked_vector keeps). */
static int saved_vector(const struct virtio_pci *t, const struct snap_sec *sec, const char *field,
			uint16_t *vec)
{
	uint64_t v;
	int err = snap_need_u64(sec, field, 0xffff, &v);

	if (err)
		return err;
	if (checked_vector(t, v) != v)
		return devstate_bad(sec, field,
				    "vector %llu is beyond the MSI-X table (%u entries)",
				    (unsigned long long)v, t->msix ? t->nvec : 0);
	*vec = v;
	return 0;
}

/* The saved PBA: pending bits of vectors the table has. */
static int saved_pba(const struct virtio_pci *t, const struct snap_sec *sec, uint64_t *pending)
{
	uint8_t pba[sizeof(t->pending)] = {0};
	int err = snap_need_bytes(sec, "msix.pba", pba, pba_len(t));

	for (unsigned w = 0; w < 8; w++)
		pending[w] = le64_get(pba + 8 * w);
	for (unsigned v = t->nvec; !err && v < 64 * 8; v++)
		if (pending[v / 64] & (1ull << (v % 64)))
			return devstate_bad(sec, "msix.pba",
					    "vector %u is pending, the table has %u", v, t->nvec);
	return err;
}

int virtio_pci_restore(struct virtio_pci *t, const struct snap_sec *sec)
{
	unsigned nvqs = t->vd->nvqs;
	uint16_t *vec = calloc(nvqs + 1, sizeof(*vec));
	uint64_t sel[3], pending[8];
	const uint8_t *cfg;
	const void *table;
	int err = vec ? 0 : -ENOMEM;

	err = err ?: saved_config(t, sec, &cfg);
	err = err ?: snap_need_u64(sec, "pci.dev_feat_sel", UINT32_MAX, &sel[0]);
	err = err ?: snap_need_u64(sec, "pci.drv_feat_sel", UINT32_MAX, &sel[1]);
	err = err ?: snap_need_u64(sec, "pci.queue_sel", 0xffff, &sel[2]);
	err = err ?: saved_vector(t, sec, "pci.msix_config", &vec[nvqs]);
	for (unsigned q = 0; !err && q < nvqs; q++) {
		char field[DEVSTATE_NAME_LEN];

		err = saved_vector(t, sec, devstate_name(field, "pci.q%u.vector", q), &vec[q]);
	}
	err = err ?: devstate_need_blob(sec, "msix.table", t->nvec * MSIX_ENTRY, &table);
	err = err ?: saved_pba(t, sec, pending);
	if (!err) {
		t->dev_feat_sel = sel[0];
		t->drv_feat_sel = sel[1];
		t->queue_sel = sel[2];
		t->msix_config = vec[nvqs];
		memcpy(t->queue_vector, vec, nvqs * sizeof(*vec));
		memcpy(t->table, table, t->nvec * MSIX_ENTRY);
		memcpy(t->pending, pending, sizeof(pending));
	}
	free(vec);
	return err;
}

void virtio_pci_reset(struct virtio_pci *t)
{
	table_reset(t);
	reset_transport(t);
}

/* Dword off of saved configuration space cfg, written as the guest writes it (masks apply). */
static void write_back(struct pci_dev *d, const uint8_t *cfg, unsigned off)
{
	uint8_t v[4];

	if (!le32_get(d->wmask + off))
		return;
	memcpy(v, cfg + off, sizeof(v));
	if (d->host)
		pthread_mutex_lock(&d->host->lock);
	pci_cfg_access(d, off, v, sizeof(v), true);
	if (d->host)
		pthread_mutex_unlock(&d->host->lock);
}

void virtio_pci_restore_config(struct virtio_pci *t, const struct snap_sec *sec)
{
	const uint8_t *cfg;

	if (saved_config(t, sec, &cfg))
		return; /* virtio_pci_restore refused it already */
	/*
	 * As the guest programs a function, the command register last (BARs decode once they
	 * have their addresses): BAR mapping, cfg_written's copies, bus mastering, MSI-X enable
	 * and the messages pending in the PBA follow as for the guest's own writes.
	 */
	for (unsigned off = 0; off < PCI_CFG_SIZE; off += 4)
		if (off != PCI_COMMAND)
			write_back(&t->pdev, cfg, off);
	write_back(&t->pdev, cfg, PCI_COMMAND);
}

void virtio_pci_restored(struct virtio_pci *t)
{
	intx_reassert(t);
}
