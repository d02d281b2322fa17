/* Unit tests: ECAM decode, BAR sizing and mapping, capabilities, MSI-X table/PBA, INTx map. */
#include <errno.h>
#include <libfdt.h>
#include <linux/pci_regs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "arch/arm64/arm64.h"
#include "irq.h"
#include "le.h"
#include "machine.h"
#include "pci/pci.h"
#include "test.h"
#include "virtio/pci.h"
#include "virtio/virtio.h"

static uint32_t cfg_rd(struct pci_dev *d, uint32_t off, uint32_t len)
{
	uint32_t v = 0;

	pci_cfg_access(d, off, (uint8_t *)&v, len, false);
	return v;
}

static void cfg_wr(struct pci_dev *d, uint32_t off, uint32_t len, uint32_t v)
{
	pci_cfg_access(d, off, (uint8_t *)&v, len, true);
}

static uint32_t ecam_rd(struct pci_host *h, unsigned dev, unsigned fn, unsigned reg)
{
	uint32_t v = 0;

	pci_ecam_access(h, dev << 15 | fn << 12 | reg, (uint8_t *)&v, 4, false);
	return v;
}

static struct {
	int calls;
	uint64_t addr;
	bool mapped;
} maps[6];

static int fake_map(struct pci_dev *d, int bar, uint64_t addr, bool map)
{
	(void)d;
	maps[bar].calls++;
	maps[bar].addr = addr;
	maps[bar].mapped = map;
	return 0;
}

static void bars_and_header(struct pci_host *h)
{
	struct pci_dev d;

	pci_dev_init(&d, "fake", 0x1234, 0x5678, 0x020000, 3, 0x1234, 0x1, 1);
	pci_dev_set_bar(&d, 0, 0x8000, PCI_BASE_ADDRESS_SPACE_MEMORY);
	pci_dev_set_bar(&d, 2, 1 << 20,
			PCI_BASE_ADDRESS_MEM_TYPE_64 | PCI_BASE_ADDRESS_MEM_PREFETCH);
	d.slot = 3;
	d.bar_map = fake_map;
	CHECK(pci_host_attach(h, &d) == 0);
	CHECK(pci_host_attach(h, &d) == -EBUSY);
	CHECK_EQ(d.intx_irq, 48 + (3 + 1 - 1) % 4);

	/* Identity and read-only fields. */
	CHECK_EQ(ecam_rd(h, 3, 0, 0), 0x56781234);
	cfg_wr(&d, PCI_VENDOR_ID, 4, 0);
	CHECK_EQ(cfg_rd(&d, PCI_VENDOR_ID, 4), 0x56781234);
	CHECK_EQ(cfg_rd(&d, PCI_CLASS_REVISION, 4), 0x02000003);
	cfg_wr(&d, PCI_HEADER_TYPE, 1, 0x80);
	CHECK_EQ(cfg_rd(&d, PCI_HEADER_TYPE, 1), 0);
	CHECK_EQ(cfg_rd(&d, PCI_INTERRUPT_PIN, 1), 1);
	cfg_wr(&d, PCI_INTERRUPT_LINE, 1, 0x2a);
	CHECK_EQ(cfg_rd(&d, PCI_INTERRUPT_LINE, 1), 0x2a);

	/* Sizing: all-ones reads back the size mask with the type/prefetch flags kept. */
	cfg_wr(&d, PCI_BASE_ADDRESS_0, 4, 0xffffffff);
	CHECK_EQ(cfg_rd(&d, PCI_BASE_ADDRESS_0, 4), 0xffff8000);
	cfg_wr(&d, PCI_BASE_ADDRESS_2, 4, 0xffffffff);
	cfg_wr(&d, PCI_BASE_ADDRESS_3, 4, 0xffffffff);
	CHECK_EQ(cfg_rd(&d, PCI_BASE_ADDRESS_2, 4), 0xfff00000 | 0xc);
	CHECK_EQ(cfg_rd(&d, PCI_BASE_ADDRESS_3, 4), 0xffffffff);
	CHECK_EQ(cfg_rd(&d, PCI_BASE_ADDRESS_1, 4), 0); /* unimplemented BAR */
	CHECK_EQ(maps[0].calls + maps[2].calls, 0);	/* decode still off */

	/* Program addresses, then enable memory decode: both BARs map. */
	cfg_wr(&d, PCI_BASE_ADDRESS_0, 4, 0x10008000);
	cfg_wr(&d, PCI_BASE_ADDRESS_2, 4, 0x00100000);
	cfg_wr(&d, PCI_BASE_ADDRESS_3, 4, 0x80);
	CHECK_EQ(pci_bar_addr(&d, 2), 0x8000100000ull);
	cfg_wr(&d, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	CHECK(maps[0].mapped && maps[0].addr == 0x10008000);
	CHECK(maps[2].mapped && maps[2].addr == 0x8000100000ull);
	/* Moving a BAR with decode on unmaps the old place and maps the new one. */
	maps[0].calls = 0;
	cfg_wr(&d, PCI_BASE_ADDRESS_0, 4, 0x10010000);
	CHECK_EQ(maps[0].calls, 2);
	CHECK(maps[0].mapped && maps[0].addr == 0x10010000);
	/* An address outside every bridge window is not decoded. */
	cfg_wr(&d, PCI_BASE_ADDRESS_0, 4, 0x40000000);
	CHECK(!maps[0].mapped);
	cfg_wr(&d, PCI_BASE_ADDRESS_0, 4, 0x10000000);
	CHECK(maps[0].mapped);
	/* Turning decode off unmaps everything. */
	cfg_wr(&d, PCI_COMMAND, 2, 0);
	CHECK(!maps[0].mapped && !maps[2].mapped);

	/* Status error bits are write-one-to-clear, the capability bit is read-only. */
	d.cfg[PCI_STATUS + 1] = 0x80;
	cfg_wr(&d, PCI_STATUS, 2, 0x8000 | PCI_STATUS_CAP_LIST);
	CHECK_EQ(cfg_rd(&d, PCI_STATUS, 2) & 0x8000, 0);
	h->slots[3] = NULL;
}

static void ecam(struct pci_host *h)
{
	CHECK_EQ(ecam_rd(h, 0, 0, 0), 0x00081b36); /* host bridge at 00.0 */
	CHECK_EQ(ecam_rd(h, 0, 0, PCI_CLASS_REVISION) >> 8, 0x060000);
	CHECK_EQ(ecam_rd(h, 7, 0, 0), 0xffffffff); /* empty slot */
	CHECK_EQ(ecam_rd(h, 0, 1, 0), 0xffffffff); /* function 1 */
	CHECK_EQ(ecam_rd(h, 0, 0, 0x100), 0);	   /* no extended space */
	{
		uint32_t v = 0;

		pci_ecam_access(h, 1 << 20, (uint8_t *)&v, 4, false); /* bus 1 */
		CHECK_EQ(v, 0xffffffff);
	}
}

/*
 * Widths other than 1, 2 and 4 read all-ones and write nothing: a 3-byte access at 0xff
 * passed the alignment check (0xff % 3 == 0) and read past the 256 bytes of cfg.
 */
static void cfg_widths(void)
{
	struct pci_dev d, before;
	uint8_t buf[8];

	pci_dev_init(&d, "fake", 0x1234, 0x5678, 0x020000, 3, 0x1234, 0x1, 1);
	d.cfg[0xff] = 0x5a;
	CHECK_EQ(cfg_rd(&d, 0xff, 1), 0x5a);
	CHECK_EQ(cfg_rd(&d, 0xff, 3), 0xffffff);
	CHECK_EQ(cfg_rd(&d, 0xfc, 3), 0xffffff);
	CHECK_EQ(cfg_rd(&d, PCI_VENDOR_ID, 3), 0xffffff);
	CHECK_EQ(cfg_rd(&d, 0xfe, 4), 0xffffffff); /* misaligned */
	CHECK_EQ(cfg_rd(&d, 0xfc, 4), 0x5a000000);
	memset(buf, 0, sizeof(buf));
	pci_cfg_access(&d, PCI_VENDOR_ID, buf, 8, false);
	CHECK_EQ(le64_get(buf), UINT64_MAX);
	memcpy(&before, &d, sizeof(d));
	cfg_wr(&d, 0xff, 3, 0xffffff);
	cfg_wr(&d, PCI_INTERRUPT_LINE, 3, 0x2a); /* 0x3c % 3 == 0 */
	memset(buf, 0xff, sizeof(buf));
	pci_cfg_access(&d, PCI_COMMAND, buf, 8, true);
	CHECK(!memcmp(&d, &before, sizeof(d)));
	cfg_wr(&d, PCI_INTERRUPT_LINE, 1, 0x2a);
	CHECK_EQ(cfg_rd(&d, PCI_INTERRUPT_LINE, 1), 0x2a);
	pci_cfg_access(&d, PCI_VENDOR_ID, buf, 0, false); /* no width at all: not a fault */
}

static int nop_activate(struct virtio_dev *vd)
{
	(void)vd;
	return 0;
}

static void nop_notify(struct virtio_dev *vd, unsigned q)
{
	(void)vd;
	(void)q;
}

static const struct virtio_ops nop_ops = {.device_id = 2,
					  .activate = nop_activate,
					  .notify = nop_notify};

static uint32_t bar_rd(struct virtio_pci *t, uint32_t off, uint32_t len)
{
	uint32_t v = 0;

	virtio_pci_bar_access(t, off, (uint8_t *)&v, len, false);
	return v;
}

static void bar_wr(struct virtio_pci *t, uint32_t off, uint32_t len, uint32_t v)
{
	virtio_pci_bar_access(t, off, (uint8_t *)&v, len, true);
}

static void virtio_transport(void)
{
	static uint8_t cfgspace[8];
	struct guest_mem mem = {0};
	struct virtio_dev vd;
	struct virtio_pci t;
	struct pci_dev *d = &t.pdev;
	unsigned types = 0, n = 0;
	uint8_t cap, msix = 0;
	struct machine m;
	struct vm vm;
	uint64_t q;

	/* A VM with no KVM behind it: MSI routes cannot be made, so nothing is delivered. */
	memset(&vm, 0, sizeof(vm));
	vm.vm_fd = -1;
	vm.m = &m;
	irq_ctl_init(&vm.irq, &vm);
	CHECK(machine_load(&m, "machines/virt-gicv3.ini", NULL, 0, false) == 0);
	memset(&t, 0, sizeof(t));
	CHECK(virtio_init(&vd, "vblk", &nop_ops, NULL, 0, 2, 64, cfgspace, 8, &mem) == 0);
	CHECK(virtio_pci_init(&t, &vd, 1, true, 0x018000, "vblk") == 0);
	t.vm = &vm;
	CHECK_EQ(cfg_rd(d, PCI_VENDOR_ID, 4), 0x10421af4);
	CHECK(cfg_rd(d, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);

	/* Walk the capability chain: 4 virtio structures and MSI-X, then the end. */
	for (cap = cfg_rd(d, PCI_CAPABILITY_LIST, 1); cap && n < 16; n++) {
		uint8_t id = cfg_rd(d, cap, 1);

		CHECK(cap >= 0x40 && cap % 4 == 0);
		if (id == PCI_CAP_ID_VNDR) {
			types |= 1u << cfg_rd(d, cap + 3, 1);
			CHECK_EQ(cfg_rd(d, cap + 4, 1), 0); /* BAR 0 */
		} else if (id == PCI_CAP_ID_MSIX) {
			msix = cap;
		}
		cap = cfg_rd(d, cap + 1, 1);
	}
	CHECK_EQ(n, 5);
	CHECK_EQ(types, 1u << 1 | 1u << 2 | 1u << 3 | 1u << 4);
	CHECK(msix != 0);
	CHECK_EQ(cfg_rd(d, msix + 2, 2) & 0x7ff, 2); /* 3 vectors: config + 2 queues */
	CHECK_EQ(cfg_rd(d, msix + 4, 4), VPCI_MSIX_OFF);
	CHECK_EQ(cfg_rd(d, msix + 8, 4), VPCI_PBA_OFF);
	/* BAR 0 sizes as a power of two. */
	cfg_wr(d, PCI_BASE_ADDRESS_0, 4, 0xffffffff);
	CHECK_EQ(cfg_rd(d, PCI_BASE_ADDRESS_0, 4), (uint32_t) ~(VPCI_BAR_SIZE - 1));

	/* Common configuration: queue count, vector assignment (invalid -> NO_VECTOR). */
	CHECK_EQ(bar_rd(&t, 0x12, 2), 2);
	bar_wr(&t, 0x16, 2, 1);
	CHECK_EQ(bar_rd(&t, 0x18, 2), 64);
	CHECK_EQ(bar_rd(&t, 0x1e, 2), 1); /* queue_notify_off */
	bar_wr(&t, 0x1a, 2, 2);
	CHECK_EQ(bar_rd(&t, 0x1a, 2), 2);
	bar_wr(&t, 0x1a, 2, 9);
	CHECK_EQ(bar_rd(&t, 0x1a, 2), 0xffff);
	bar_wr(&t, 0x20, 4, 0x1000);
	bar_wr(&t, 0x24, 4, 0x1);
	CHECK_EQ(vd.vqs[1].desc_gpa, 0x100001000ull);

	/* MSI-X: entries start masked; a masked vector's interrupt is pending in the PBA. */
	CHECK_EQ(bar_rd(&t, VPCI_MSIX_OFF + 12, 4), 1);
	bar_wr(&t, VPCI_MSIX_OFF + 16, 4, 0xfee01000);
	CHECK_EQ(bar_rd(&t, VPCI_MSIX_OFF + 16, 4), 0xfee01000);
	bar_wr(&t, 0x16, 2, 0);
	bar_wr(&t, 0x1a, 2, 1);
	cfg_wr(d, msix + 2, 2, 0x8000); /* enable */
	CHECK(cfg_rd(d, msix + 2, 2) & 0x8000);
	cfg_wr(d, msix + 2, 2, 0x0002); /* table size is read-only */
	CHECK_EQ(cfg_rd(d, msix + 2, 2) & 0x7ff, 2);
	cfg_wr(d, msix + 2, 2, 0x8000);
	virtio_lock(&vd);
	vd.tops->interrupt(&vd, 0); /* queue 0 -> vector 1, still masked */
	virtio_unlock(&vd);
	CHECK_EQ(bar_rd(&t, VPCI_PBA_OFF, 4), 1u << 1);
	CHECK_EQ(bar_rd(&t, VPCI_PBA_OFF, 1), 1u << 1);

	/* The table takes QWORD accesses too (PCIe: DWORD and aligned QWORD). */
	q = 0x12345678fee02000ull;
	virtio_pci_bar_access(&t, VPCI_MSIX_OFF + 32, (uint8_t *)&q, 8, true);
	CHECK_EQ(bar_rd(&t, VPCI_MSIX_OFF + 32, 4), 0xfee02000);
	CHECK_EQ(bar_rd(&t, VPCI_MSIX_OFF + 36, 4), 0x12345678);
	q = 0;
	virtio_pci_bar_access(&t, VPCI_MSIX_OFF + 32, (uint8_t *)&q, 8, false);
	CHECK_EQ(q, 0x12345678fee02000ull);

	/* Unmasked, but without bus mastering no MSI may be sent: it stays pending. */
	CHECK(vd.dma_off);
	bar_wr(&t, VPCI_MSIX_OFF + 16 + 12, 4, 0);
	CHECK_EQ(bar_rd(&t, VPCI_PBA_OFF, 4), 1u << 1);
	cfg_wr(d, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	CHECK(!vd.dma_off);
	CHECK_EQ(bar_rd(&t, VPCI_PBA_OFF, 4), 0); /* sent once bus mastering is on */
	cfg_wr(d, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	CHECK(vd.dma_off && !virtio_live(&vd));
	virtio_lock(&vd);
	vd.tops->interrupt(&vd, 0);
	virtio_unlock(&vd);
	CHECK_EQ(bar_rd(&t, VPCI_PBA_OFF, 4), 1u << 1);
	/* A device reset drops what the old driver had pending. */
	bar_wr(&t, 0x14, 1, 0);
	CHECK_EQ(bar_rd(&t, VPCI_PBA_OFF, 4), 0);

	/* INTx (MSI-X off): Interrupt Status follows the ISR, the line only when enabled. */
	cfg_wr(d, msix + 2, 2, 0);
	t.intx_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	CHECK_EQ(cfg_rd(d, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, 0);
	cfg_wr(d, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_INTX_DISABLE);
	atomic_store(&vd.isr, 1);
	virtio_lock(&vd);
	vd.tops->interrupt(&vd, 0);
	virtio_unlock(&vd);
	CHECK(cfg_rd(d, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	CHECK_EQ(cfg_rd(d, PCI_STATUS, 1) & PCI_STATUS_INTERRUPT, PCI_STATUS_INTERRUPT);
	CHECK(read(t.intx_fd, &q, 8) < 0); /* disabled: not signalled */
	cfg_wr(d, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	CHECK(read(t.intx_fd, &q, 8) == 8); /* enabled while pending: asserted now */
	/* ISR is read-to-clear, and reading it deasserts INTx. */
	CHECK_EQ(bar_rd(&t, VPCI_ISR_OFF, 1), 1);
	CHECK_EQ(bar_rd(&t, VPCI_ISR_OFF, 1), 0);
	CHECK_EQ(cfg_rd(d, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, 0);
	/* Device reset clears the vector assignments and INTx. */
	atomic_store(&vd.isr, 1);
	virtio_lock(&vd);
	vd.tops->interrupt(&vd, 0);
	virtio_unlock(&vd);
	bar_wr(&t, 0x14, 1, 0);
	CHECK_EQ(bar_rd(&t, 0x10, 2), 0xffff);
	CHECK_EQ(cfg_rd(d, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, 0);
	/* A wider write of 0 to device_status is a reset too (the next byte is read-only). */
	bar_wr(&t, 0x10, 2, 1);
	bar_wr(&t, 0x14, 2, 0x0100);
	CHECK_EQ(bar_rd(&t, 0x10, 2), 0xffff);
	/* Turning MSI-X on ends an INTx the function had pending. */
	atomic_store(&vd.isr, 1);
	virtio_lock(&vd);
	vd.tops->interrupt(&vd, 0);
	virtio_unlock(&vd);
	CHECK(cfg_rd(d, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	cfg_wr(d, msix + 2, 2, 0x8000);
	CHECK_EQ(cfg_rd(d, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, 0);
	close(t.intx_fd);
	t.intx_fd = -1;
	t.vm = NULL;
	virtio_pci_detach(&t);
	virtio_free(&vd);
	irq_ctl_free(&vm.irq);
	machine_free(&m);
}

/*
 * MSI-X Table Size is the 11 low bits of Message Control (N - 1): a function with more than
 * 256 vectors (a NIC of 128 queue pairs has 258) reported its count modulo 256. The last
 * vector is in the table; 512 (what the PBA holds) is the most a function may have.
 */
static void msix_table_size(void)
{
	static const unsigned nvqs[] = {1, 255, 256, 300, 511, 512};

	for (size_t i = 0; i < sizeof(nvqs) / sizeof(nvqs[0]); i++) {
		struct virtio_dev vd;
		struct virtio_pci t;
		uint8_t cap, msix = 0;
		int err;

		memset(&t, 0, sizeof(t));
		CHECK(virtio_init(&vd, "vnet", &nop_ops, NULL, 0, nvqs[i], 64, NULL, 0, NULL) == 0);
		err = virtio_pci_init(&t, &vd, 1, true, 0x020000, "vnet");
		if (nvqs[i] + 1 > 512) {
			CHECK_EQ(err, -EINVAL);
		} else {
			CHECK_EQ(err, 0);
			for (cap = cfg_rd(&t.pdev, PCI_CAPABILITY_LIST, 1); cap && !msix;
			     cap = cfg_rd(&t.pdev, cap + 1, 1))
				if (cfg_rd(&t.pdev, cap, 1) == PCI_CAP_ID_MSIX)
					msix = cap;
			CHECK(msix != 0);
			CHECK_EQ(cfg_rd(&t.pdev, msix + PCI_MSIX_FLAGS, 2), nvqs[i]);
			/* The last vector's entry: masked, as every entry starts. */
			CHECK_EQ(bar_rd(&t, VPCI_MSIX_OFF + nvqs[i] * 16 + 12, 4), 1);
			/* Enable and Function Mask are writable, the size is not. */
			cfg_wr(&t.pdev, msix + PCI_MSIX_FLAGS, 2, 0xffff);
			CHECK_EQ(cfg_rd(&t.pdev, msix + PCI_MSIX_FLAGS, 2),
				 PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL | nvqs[i]);
		}
		virtio_pci_detach(&t);
		virtio_free(&vd);
	}
}

/*
 * BAR 0 takes widths 1, 2, 4 and 8, naturally aligned (what the capabilities' fields are;
 * a KVM exit may carry any of 1 to 8 bytes): another reads 0 and writes nothing, and no
 * access of any width at any offset writes past its own bytes.
 */
static void bar_widths(void)
{
	static uint8_t cfgspace[8];
	unsigned wrong = 0, spill = 0;
	struct virtio_dev vd;
	struct virtio_pci t;
	uint8_t buf[16];

	memset(&t, 0, sizeof(t));
	CHECK(virtio_init(&vd, "vblk", &nop_ops, NULL, 0, 2, 64, cfgspace, 8, NULL) == 0);
	CHECK(virtio_pci_init(&t, &vd, 1, true, 0x018000, "vblk") == 0);
	for (uint32_t off = 0; off < VPCI_BAR_SIZE; off++) {
		for (uint32_t len = 0; len <= 8; len++) {
			bool odd = (len != 1 && len != 2 && len != 4 && len != 8) || off % len;

			memset(buf, 0xa5, sizeof(buf));
			virtio_pci_bar_access(&t, off, buf, len, false);
			for (uint32_t i = 0; i < sizeof(buf); i++) {
				spill += i >= len && buf[i] != 0xa5;
				wrong += i < len && odd && buf[i] != 0;
			}
		}
	}
	CHECK_EQ(spill, 0);
	CHECK_EQ(wrong, 0);
	CHECK_EQ(bar_rd(&t, 0x18, 2), 64); /* queue_size, as a 2-byte read */
	CHECK_EQ(bar_rd(&t, 0x18, 3), 0);
	/* A 3-byte write over device_status sets nothing; a 5-byte one over an MSI-X entry. */
	bar_wr(&t, 0x14, 3, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	CHECK_EQ(vd.status, 0);
	memset(buf, 0xff, sizeof(buf));
	virtio_pci_bar_access(&t, VPCI_MSIX_OFF + 8, buf, 5, true);
	CHECK_EQ(bar_rd(&t, VPCI_MSIX_OFF + 8, 4), 0);
	CHECK_EQ(bar_rd(&t, VPCI_MSIX_OFF + 12, 4), 1); /* still masked */
	bar_wr(&t, 0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE);
	CHECK_EQ(vd.status, VIRTIO_STATUS_ACKNOWLEDGE);
	virtio_pci_detach(&t);
	virtio_free(&vd);
}

static void interrupt_map(void)
{
	struct machine m;
	void *fdt = NULL;
	size_t len;
	const fdt32_t *p;
	int n, node;

	if (!test_machine_load(&m, "machines/virt-gicv3.ini", NULL, 0))
		return;
	CHECK(arm64_fdt_build(&m, NULL, &fdt, &len) == 0);
	node = fdt ? fdt_path_offset(fdt, "/pcie@30000000") : -1;
	CHECK(node >= 0);
	if (node >= 0) {
		CHECK(fdt_node_check_compatible(fdt, node, "pci-host-ecam-generic") == 0);
		p = fdt_getprop(fdt, node, "interrupt-map", &n);
		CHECK(p && n == 16 * 10 * 4);
		/* slot 1 (0x800), INTB (pin 2): swizzled to line 48 + (1 + 2 - 1) % 4, level. */
		CHECK(p && fdt32_to_cpu(p[50]) == 0x800 && fdt32_to_cpu(p[53]) == 2);
		CHECK(p && fdt32_to_cpu(p[54]) == 1 && fdt32_to_cpu(p[58]) == 50 &&
		      fdt32_to_cpu(p[59]) == 4);
		p = fdt_getprop(fdt, node, "interrupt-map-mask", &n);
		CHECK(p && n == 16 && fdt32_to_cpu(p[0]) == 0x1800 && fdt32_to_cpu(p[3]) == 7);
		p = fdt_getprop(fdt, node, "msi-map", &n);
		CHECK(p && n == 16 && fdt32_to_cpu(p[1]) == 2);
		p = fdt_getprop(fdt, node, "bus-range", &n);
		CHECK(p && n == 8 && fdt32_to_cpu(p[1]) == 255);
		CHECK(fdt_node_offset_by_phandle(fdt, 2) >= 0);
	}
	free(fdt);
	machine_free(&m);
}

void test_pci(void)
{
	struct machine m;
	struct pci_host h;

	CHECK(machine_load(&m, "machines/rpi5.ini", NULL, 0, false) == 0);
	pci_host_init(&h, &m);
	machine_free(&m);
	ecam(&h);
	cfg_widths();
	bars_and_header(&h);
	virtio_transport();
	msix_table_size();
	bar_widths();
	interrupt_map();
}
