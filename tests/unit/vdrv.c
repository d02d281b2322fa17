/* vdrv: a small virtio driver over virtio-mmio or virtio-pci, for device tests (no KVM). */
#include "vdrv.h"

#include <linux/pci_regs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "le.h"
#include "machine.h"
#include "virtio/virtio.h"

static void count_interrupt(struct virtio_dev *vd, int vq)
{
	struct vdrv *d = (struct vdrv *)((char *)vd->transport - offsetof(struct vdrv, t));

	(void)vq;
	d->interrupts++;
}

static const struct virtio_transport_ops vdrv_tops = {.interrupt = count_interrupt};

void vdrv_init(struct vdrv *d, size_t size)
{
	memset(d, 0, sizeof(*d));
	d->ram = aligned_alloc(4096, size);
	memset(d->ram, 0, size);
	d->mem = (struct guest_mem){.hva = d->ram, .gpa = VDRV_GPA, .size = size};
	d->heap = VDRV_GPA;
	d->t.irqfd = -1;
	loop_init(&d->loop);
}

void vdrv_attach(struct vdrv *d, struct virtio_dev *vd)
{
	d->vd = vd;
	d->t.vd = vd;
	vd->transport = &d->t;
	vd->tops = &vdrv_tops;
	virtio_kicks_open(vd, &d->loop);
}

void vdrv_attach_pci(struct vdrv *d, struct virtio_dev *vd, struct virtio_pci *t, struct machine *m)
{
	d->vd = vd;
	d->pci = t;
	d->vm.vm_fd = -1;
	d->vm.m = m;
	bus_init(&d->vm.bus);
	irq_ctl_init(&d->vm.irq, &d->vm);
	pci_host_init(&d->host, m);
	d->vm.pci = &d->host;
	if (virtio_pci_init(t, vd, VDRV_PCI_SLOT, true, 0x088000, vd->name) ||
	    pci_host_attach(&d->host, &t->pdev))
		abort();
	t->vm = &d->vm;
	t->intx_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	virtio_kicks_open(vd, &d->loop);
}

void vdrv_detach(struct vdrv *d)
{
	if (d->pci) {
		/* No KVM behind it: nothing to take out of it, only the host side to free. */
		d->pci->vm = NULL;
		virtio_pci_detach(d->pci);
		bus_free(&d->vm.bus);
		irq_ctl_free(&d->vm.irq);
		pthread_mutex_destroy(&d->host.lock);
		d->pci = NULL;
	}
	if (d->vd)
		virtio_kicks_close(d->vd, &d->loop);
	d->vd = NULL;
}

void vdrv_free(struct vdrv *d)
{
	if (d->vd)
		abort(); /* the device may still write into RAM: detach and stop it first */
	loop_free(&d->loop);
	free(d->ram);
	d->ram = NULL;
}

/* virtio-mmio registers that are fields of virtio-pci's common configuration. */
static const struct {
	uint16_t mmio, off, len;
} common[] = {
	{0x010, 0x04, 4}, {0x014, 0x00, 4}, {0x020, 0x0c, 4}, {0x024, 0x08, 4}, {0x030, 0x16, 2},
	{0x038, 0x18, 2}, {0x044, 0x1c, 2}, {0x070, 0x14, 1}, {0x080, 0x20, 4}, {0x084, 0x24, 4},
	{0x090, 0x28, 4}, {0x094, 0x2c, 4}, {0x0a0, 0x30, 4}, {0x0a4, 0x34, 4}, {0x0fc, 0x15, 1},
};

/* A virtio-mmio register access made on the PCI function instead. */
static uint32_t pci_reg(struct vdrv *d, uint64_t off, uint32_t v, bool is_write)
{
	uint32_t at = UINT32_MAX, len = 4;

	for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
		if (common[i].mmio == off) {
			at = common[i].off;
			len = common[i].len;
		}
	if (off == 0x050) {
		at = VPCI_NOTIFY_OFF + VPCI_NOTIFY_MUL * v;
		len = 2;
	} else if (off == 0x060) {
		at = VPCI_ISR_OFF;
		len = 1;
	} else if (off >= 0x100) {
		at = VPCI_DEVICE_OFF + (off - 0x100);
	}
	if (at == UINT32_MAX)
		return 0;
	if (is_write)
		vdrv_bar_wr(d, at, len, v);
	return is_write ? 0 : (uint32_t)vdrv_bar_rd(d, at, len);
}

uint32_t vdrv_rd(struct vdrv *d, uint64_t off)
{
	uint32_t v = 0;

	if (d->pci)
		return pci_reg(d, off, 0, false);
	virtio_mmio_access(&d->t, off, (uint8_t *)&v, 4, false);
	return v;
}

void vdrv_wr(struct vdrv *d, uint64_t off, uint32_t v)
{
	if (d->pci)
		pci_reg(d, off, v, true);
	else
		virtio_mmio_access(&d->t, off, (uint8_t *)&v, 4, true);
}

uint32_t vdrv_cfg_rd(struct vdrv *d, uint32_t off, uint32_t len)
{
	uint8_t v[4] = {0};

	pci_ecam_access(&d->host, VDRV_PCI_SLOT << 15 | off, v, len, false);
	return le32_get(v);
}

void vdrv_cfg_wr(struct vdrv *d, uint32_t off, uint32_t len, uint32_t v)
{
	uint8_t b[4];

	le32_put(b, v);
	pci_ecam_access(&d->host, VDRV_PCI_SLOT << 15 | off, b, len, true);
}

uint64_t vdrv_bar_rd(struct vdrv *d, uint32_t off, uint32_t len)
{
	uint8_t v[8] = {0};

	virtio_pci_bar_access(d->pci, off, v, len, false);
	return le64_get(v);
}

void vdrv_bar_wr(struct vdrv *d, uint32_t off, uint32_t len, uint64_t v)
{
	uint8_t b[8];

	le64_put(b, v);
	virtio_pci_bar_access(d->pci, off, b, len, true);
}

unsigned vdrv_intx(struct vdrv *d)
{
	uint64_t n = 0;

	return read(d->pci->intx_fd, &n, sizeof(n)) == sizeof(n) ? (unsigned)n : 0;
}

void vdrv_copy_guest(struct vdrv *to, const struct vdrv *from)
{
	if (to->mem.size != from->mem.size)
		abort();
	memcpy(to->ram, from->ram, from->mem.size);
	to->heap = from->heap;
	to->indirect = from->indirect;
	to->used_at = from->used_at;
	memcpy(to->q, from->q, sizeof(to->q));
}

/* PCI: BAR 0 in the bridge's window, memory decode and bus mastering, MSI-X unless intx. */
static void pci_start(struct vdrv *d)
{
	vdrv_cfg_wr(d, PCI_BASE_ADDRESS_0, 4, (uint32_t)d->host.mmio32_base);
	vdrv_cfg_wr(d, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	if (!d->intx)
		vdrv_cfg_wr(d, d->pci->msix_cap + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE);
}

uint64_t vdrv_alloc(struct vdrv *d, size_t len, size_t align)
{
	uint64_t a = (d->heap + align - 1) & ~(uint64_t)(align - 1);

	d->heap = a + len;
	if (d->heap > d->mem.gpa + d->mem.size)
		abort(); /* the test asked for more RAM than it set up */
	memset(vdrv_ptr(d, a), 0, len);
	return a;
}

void *vdrv_ptr(struct vdrv *d, uint64_t gpa)
{
	return d->ram + (gpa - d->mem.gpa);
}

uint32_t vdrv_start(struct vdrv *d, uint64_t features, unsigned nq, uint16_t num)
{
	features |= 1ull << VIRTIO_F_VERSION_1;
	if (d->pci)
		pci_start(d);
	vdrv_wr(d, 0x070, 0);
	vdrv_wr(d, 0x070, VIRTIO_STATUS_ACKNOWLEDGE);
	vdrv_wr(d, 0x070, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	for (unsigned sel = 0; sel < 2; sel++) {
		vdrv_wr(d, 0x024, sel);
		vdrv_wr(d, 0x020, (uint32_t)(features >> (32 * sel)));
	}
	vdrv_wr(d, 0x070, 1 | 2 | VIRTIO_STATUS_FEATURES_OK);
	d->indirect = features & (1ull << VIRTIO_F_INDIRECT_DESC);
	for (unsigned q = 0; q < nq && q < VDRV_QUEUES; q++) {
		struct vdrv_queue *vq = &d->q[q];

		*vq = (struct vdrv_queue){.num = num};
		vq->desc = vdrv_alloc(d, 16u * num, 4096);
		vq->avail = vdrv_alloc(d, 6 + 2u * num, 4096);
		vq->used = q == 0 && d->used_at ? d->used_at : vdrv_alloc(d, 6 + 8u * num, 4096);
		vdrv_wr(d, 0x030, q);
		vdrv_wr(d, 0x038, num);
		vdrv_wr(d, 0x080, (uint32_t)vq->desc);
		vdrv_wr(d, 0x084, (uint32_t)(vq->desc >> 32));
		vdrv_wr(d, 0x090, (uint32_t)vq->avail);
		vdrv_wr(d, 0x094, (uint32_t)(vq->avail >> 32));
		vdrv_wr(d, 0x0a0, (uint32_t)vq->used);
		vdrv_wr(d, 0x0a4, (uint32_t)(vq->used >> 32));
		if (d->pci && !d->intx)
			vdrv_bar_wr(d, 0x1a, 2, q + 1); /* its MSI-X vector (0: configuration) */
		vdrv_wr(d, 0x044, 1);
	}
	if (d->pci && !d->intx)
		vdrv_bar_wr(d, 0x10, 2, 0);
	vdrv_wr(d, 0x070, 1 | 2 | 8 | VIRTIO_STATUS_DRIVER_OK);
	return vdrv_rd(d, 0x070);
}

static void put_desc(uint8_t *at, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	memcpy(at, &addr, 8);
	memcpy(at + 8, &len, 4);
	memcpy(at + 12, &flags, 2);
	memcpy(at + 14, &next, 2);
}

uint16_t vdrv_chain(struct vdrv *d, unsigned q, const struct vdrv_buf *b, unsigned n)
{
	struct vdrv_queue *vq = &d->q[q];
	uint16_t head = vq->next_desc;

	if (d->indirect) {
		uint64_t table = vdrv_alloc(d, 16u * n, 16);

		for (unsigned i = 0; i < n; i++)
			put_desc(vdrv_ptr(d, table + 16 * i), b[i].gpa, b[i].len,
				 (i + 1 < n ? 1 : 0) | (b[i].writable ? 2 : 0), i + 1);
		put_desc(vdrv_ptr(d, vq->desc + 16u * head), table, 16 * n, 4, 0);
		vq->next_desc = (head + 1) % vq->num;
		return head;
	}
	for (unsigned i = 0; i < n; i++) {
		uint16_t at = (head + i) % vq->num;

		put_desc(vdrv_ptr(d, vq->desc + 16u * at), b[i].gpa, b[i].len,
			 (i + 1 < n ? 1 : 0) | (b[i].writable ? 2 : 0), (at + 1) % vq->num);
	}
	vq->next_desc = (head + n) % vq->num;
	return head;
}

void vdrv_post(struct vdrv *d, unsigned q, uint16_t head)
{
	struct vdrv_queue *vq = &d->q[q];
	uint16_t *avail = vdrv_ptr(d, vq->avail);

	avail[2 + vq->next_avail % vq->num] = head;
	__atomic_store_n(&avail[1], ++vq->next_avail, __ATOMIC_RELEASE);
}

void vdrv_kick(struct vdrv *d, unsigned q)
{
	vdrv_wr(d, 0x050, q);
}

uint16_t vdrv_used(struct vdrv *d, unsigned q)
{
	uint16_t *used = vdrv_ptr(d, d->q[q].used);

	return __atomic_load_n(&used[1], __ATOMIC_ACQUIRE);
}

bool vdrv_wait_used(struct vdrv *d, unsigned q, uint16_t want)
{
	return VDRV_WAIT(d, vdrv_used(d, q) == want);
}
