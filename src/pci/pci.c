/* pci: a generic ECAM host bridge with type 0 configuration spaces, capabilities and BARs. */
#include "pci/pci.h"

#include <errno.h>
#include <linux/pci_regs.h>
#include <string.h>

#include "array.h"
#include "le.h"
#include "log.h"
#include "machine.h"

#define CLASS_HOST_BRIDGE 0x060000

void pci_dev_init(struct pci_dev *d, const char *name, uint16_t vendor, uint16_t device,
		  uint32_t class, uint8_t revision, uint16_t subsys_vendor, uint16_t subsys,
		  uint8_t int_pin)
{
	memset(d, 0, sizeof(*d));
	d->name = name;
	le16_put(d->cfg + PCI_VENDOR_ID, vendor);
	le16_put(d->cfg + PCI_DEVICE_ID, device);
	d->cfg[PCI_REVISION_ID] = revision;
	d->cfg[PCI_CLASS_PROG] = class;
	le16_put(d->cfg + PCI_CLASS_DEVICE, class >> 8);
	d->cfg[PCI_HEADER_TYPE] = PCI_HEADER_TYPE_NORMAL;
	le16_put(d->cfg + PCI_SUBSYSTEM_VENDOR_ID, subsys_vendor);
	le16_put(d->cfg + PCI_SUBSYSTEM_ID, subsys);
	d->cfg[PCI_INTERRUPT_PIN] = int_pin;
	/* Writable: memory/IO decode, bus mastering, INTx disable; the interrupt line. */
	le16_put(d->wmask + PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
						 PCI_COMMAND_INTX_DISABLE);
	d->wmask[PCI_INTERRUPT_LINE] = 0xff;
	/* Error bits of the status register are write-one-to-clear. */
	le16_put(d->w1c + PCI_STATUS, 0xf900);
	d->last_cap = 0;
	d->cap_end = 0x40;
}

void pci_dev_set_bar(struct pci_dev *d, int i, uint64_t size, uint32_t flags)
{
	uint8_t *reg = d->cfg + PCI_BASE_ADDRESS_0 + 4 * i;
	uint8_t *mask = d->wmask + PCI_BASE_ADDRESS_0 + 4 * i;
	uint64_t m = ~(size - 1);

	BUG_ON(size & (size - 1) || i < 0 || i > 5);
	d->bar[i] = (struct pci_bar){.size = size, .flags = flags};
	le32_put(reg, flags);
	/* Address bits above the size are writable: sizing by all-ones falls out of this. */
	le32_put(mask, (uint32_t)m & ((flags & PCI_BASE_ADDRESS_SPACE_IO) ? ~3u : ~15u));
	if (flags & PCI_BASE_ADDRESS_MEM_TYPE_64) {
		BUG_ON(i == 5);
		le32_put(mask + 4, (uint32_t)(m >> 32));
	}
}

uint8_t pci_dev_add_cap(struct pci_dev *d, uint8_t id, uint8_t len)
{
	uint8_t off = d->cap_end;

	if (off + len > PCI_CFG_SIZE)
		return 0;
	d->cfg[off] = id;
	d->cfg[off + 1] = 0;
	if (d->last_cap)
		d->cfg[d->last_cap + 1] = off;
	else
		d->cfg[PCI_CAPABILITY_LIST] = off;
	le16_put(d->cfg + PCI_STATUS, le32_get(d->cfg + PCI_COMMAND) >> 16 | PCI_STATUS_CAP_LIST);
	d->last_cap = off;
	d->cap_end = (off + len + 3) & ~3;
	return off;
}

uint64_t pci_bar_addr(const struct pci_dev *d, int i)
{
	uint64_t a = le32_get(d->cfg + PCI_BASE_ADDRESS_0 + 4 * i);

	if (d->bar[i].flags & PCI_BASE_ADDRESS_SPACE_IO)
		return a & ~3ull;
	a &= ~15ull;
	if (d->bar[i].flags & PCI_BASE_ADDRESS_MEM_TYPE_64)
		a |= (uint64_t)le32_get(d->cfg + PCI_BASE_ADDRESS_0 + 4 * (i + 1)) << 32;
	return a;
}

/* Does [addr, addr+size) lie inside the bridge window this BAR decodes into? */
static bool in_window(const struct pci_host *h, const struct pci_bar *b, uint64_t addr)
{
	uint64_t last = addr + b->size - 1;

	if (!h || last < addr)
		return false;
	if (b->flags & PCI_BASE_ADDRESS_SPACE_IO)
		return h->io_size && addr >= h->io_base && last < h->io_base + h->io_size;
	if (h->mmio32_size && addr >= h->mmio32_base && last < h->mmio32_base + h->mmio32_size)
		return true;
	return h->mmio64_size && addr >= h->mmio64_base && last < h->mmio64_base + h->mmio64_size;
}

/* Follow the command register and BAR values: map, move or unmap each BAR. */
static void update_bars(struct pci_dev *d)
{
	uint16_t cmd = le16_get(d->cfg + PCI_COMMAND);

	for (int i = 0; i < 6; i++) {
		struct pci_bar *b = &d->bar[i];
		bool io = b->flags & PCI_BASE_ADDRESS_SPACE_IO;
		uint64_t addr = pci_bar_addr(d, i);
		bool want;

		if (!b->size)
			continue;
		want = (cmd & (io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY)) &&
		       in_window(d->host, b, addr);
		if (b->mapped && (!want || b->addr != addr)) {
			if (d->bar_map)
				d->bar_map(d, i, b->addr, false);
			b->mapped = false;
		}
		if (want && !b->mapped) {
			b->addr = addr;
			b->mapped = !d->bar_map || d->bar_map(d, i, addr, true) == 0;
		}
		if (b->flags & PCI_BASE_ADDRESS_MEM_TYPE_64)
			i++;
	}
}

void pci_cfg_access(struct pci_dev *d, uint32_t off, uint8_t *data, uint32_t len, bool is_write)
{
	/* Widths 1, 2 and 4, naturally aligned: none then reaches past the end of cfg. */
	bool bad = (len != 1 && len != 2 && len != 4) || off % len;

	if (bad || off >= PCI_CFG_SIZE || len > PCI_CFG_SIZE - off) {
		/* Other widths and misaligned accesses read all-ones; extended (PCIe) space
		 * has nothing there (zero, the end of its capability list). Writes go nowhere. */
		if (!is_write)
			memset(data, bad ? 0xff : 0, len);
		return;
	}
	if (!is_write) {
		memcpy(data, d->cfg + off, len);
		if (off <= PCI_STATUS && off + len > PCI_STATUS && atomic_load(&d->intx_status))
			data[PCI_STATUS - off] |= PCI_STATUS_INTERRUPT;
		return;
	}
	for (uint32_t i = 0; i < len; i++) {
		uint8_t *c = &d->cfg[off + i];

		*c = (*c & ~d->wmask[off + i]) | (data[i] & d->wmask[off + i]);
		*c &= ~(data[i] & d->w1c[off + i]);
	}
	if (off < PCI_BASE_ADDRESS_5 + 4 && off + len > PCI_COMMAND)
		update_bars(d);
	if (d->cfg_written)
		d->cfg_written(d, off, len);
}

uint32_t pci_swizzle(uint32_t intx_base, unsigned slot, unsigned pin)
{
	return intx_base + (slot + pin - 1) % 4;
}

void pci_host_init(struct pci_host *h, const struct machine *m)
{
	memset(h, 0, sizeof(*h));
	h->ecam_base = m->ecam.base;
	h->ecam_size = m->ecam.size;
	h->mmio32_base = m->mmio32.base;
	h->mmio32_size = m->mmio32.size;
	h->mmio64_base = m->mmio64.base;
	h->mmio64_size = m->mmio64.size;
	h->io_base = m->pio.base;
	h->io_size = m->pio.size;
	h->intx_irq = m->pci_intx_irq;
	/* 00.0: the host bridge itself (Red Hat's generic PCIe host bridge ID). */
	pci_dev_init(&h->bridge, "host-bridge", 0x1b36, 0x0008, CLASS_HOST_BRIDGE, 0, 0x1b36,
		     0x0008, 0);
	h->bridge.host = h;
	h->slots[0] = &h->bridge;
	pthread_mutex_init(&h->lock, NULL);
}

int pci_host_attach(struct pci_host *h, struct pci_dev *d)
{
	if (!d->slot || d->slot >= PCI_MAX_SLOTS || h->slots[d->slot])
		return -EBUSY;
	d->host = h;
	d->intx_irq = pci_swizzle(h->intx_irq, d->slot, d->cfg[PCI_INTERRUPT_PIN] ?: 1);
	h->slots[d->slot] = d;
	return 0;
}

void pci_ecam_access(struct pci_host *h, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	unsigned bus = off >> 20, dev = (off >> 15) & 31, fn = (off >> 12) & 7;
	struct pci_dev *d = bus == 0 && fn == 0 ? h->slots[dev] : NULL;

	if (!d) {
		/* No such function: reads are all-ones, writes go nowhere. */
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&h->lock);
	pci_cfg_access(d, off & 0xfff, data, len, is_write);
	pthread_mutex_unlock(&h->lock);
}
