/*
 * fdt: the arm64 guest's flattened device tree (libfdt): root, /chosen, /aliases, a node per
 * device description, the PCI host bridge, the GIC and its MSI controller, timer, PSCI, cpus
 * and memory.
 */
#include <errno.h>
#include <libfdt.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "array.h"
#include "arm64.h"
#include "boot.h"
#include "device.h"
#include "log.h"
#include "machine.h"
#include "pci/pci.h"

#define FDT_BUF_SIZE (1 << 20)

/* GIC_SPI / GIC_PPI and IRQ_TYPE_* as in the kernel's dt-bindings. */
#define FDT_GIC_SPI	     0
#define FDT_GIC_PPI	     1
#define IRQ_TYPE_EDGE_RISING 1
#define IRQ_TYPE_LEVEL_HIGH  4

/* Add "NAME@BASE" under the root with reg = <BASE SIZE>; its offset or a libfdt error. */
static int add_mmio_node(void *fdt, const char *name, uint64_t base, uint64_t size)
{
	char full[64];
	int node, err;

	snprintf(full, sizeof(full), "%s@%llx", name, (unsigned long long)base);
	node = fdt_add_subnode(fdt, 0, full);
	if (node < 0)
		return node;
	err = fdt_setprop_u64(fdt, node, "reg", base);
	err = err ?: fdt_appendprop_u64(fdt, node, "reg", size);
	return err ?: node;
}

/* Make node the console: /aliases serial0 and /chosen stdout-path. */
static int set_console(void *fdt, int node)
{
	char path[128];
	int err = fdt_get_path(fdt, node, path, sizeof(path));

	/* Offsets move when properties are added: look each node up just before use. */
	err = err ?: fdt_setprop_string(fdt, fdt_path_offset(fdt, "/aliases"), "serial0", path);
	return err
		       ?: fdt_setprop_string(fdt, fdt_path_offset(fdt, "/chosen"), "stdout-path",
					     "serial0");
}

/* Set "interrupts" on node for device interrupt line irq (level- or edge-triggered). */
static int fdt_irq(void *fdt, int node, uint32_t irq, bool level)
{
	int err = fdt_setprop_u32(fdt, node, "interrupts", FDT_GIC_SPI);

	err = err ?: fdt_appendprop_u32(fdt, node, "interrupts", irq);
	return err
		       ?: fdt_appendprop_u32(fdt, node, "interrupts",
					     level ? IRQ_TYPE_LEVEL_HIGH : IRQ_TYPE_EDGE_RISING);
}

/* The node of one device, from its description. */
static int device_node(void *fdt, const struct hw_desc *d)
{
	int node, err;

	switch (d->kind) {
	case HW_SERIAL:
		node = add_mmio_node(fdt, "serial", d->base, d->size);
		if (node < 0)
			return node;
		err = fdt_setprop_string(fdt, node, "compatible", "ns16550a");
		err = err ?: fdt_setprop_u32(fdt, node, "clock-frequency", d->clock);
		err = err ?: fdt_setprop_u32(fdt, node, "reg-io-width", 1);
		err = err ?: fdt_irq(fdt, node, d->irq, d->level);
		return err ?: d->console ? set_console(fdt, node) : 0;
	case HW_VIRTIO_MMIO:
		node = add_mmio_node(fdt, "virtio_mmio", d->base, d->size);
		if (node < 0)
			return node;
		err = fdt_setprop_string(fdt, node, "compatible", "virtio,mmio");
		err = err ?: fdt_setprop_empty(fdt, node, "dma-coherent");
		return err ?: fdt_irq(fdt, node, d->irq, d->level);
	case HW_BOOT_TIMER:
		node = add_mmio_node(fdt, "boot-timer", d->base, d->size);
		return node < 0 ? node
				: fdt_setprop_string(fdt, node, "compatible", "microvm,boot-timer");
	case HW_VMGENID:
		node = add_mmio_node(fdt, "vmgenid", d->base, d->size);
		if (node < 0)
			return node;
		err = fdt_setprop_string(fdt, node, "compatible", "microsoft,vmgenid");
		return err ?: fdt_irq(fdt, node, d->irq, d->level);
	case HW_NONE:
		break;
	}
	return 0;
}

/*
 * The ECAM host bridge: its windows, INTx lines swizzled over 4 slots x 4 pins onto the GIC
 * (gic_phandle), and its MSI controller (msi_phandle, 0 if none; an ITS takes msi-map).
 */
static int pci_node(const struct machine *m, void *fdt, uint32_t gic_phandle, uint32_t msi_phandle,
		    bool msi_map)
{
	char name[48];
	int node, err;
	uint32_t buses = m->ecam.size >> 20;

	snprintf(name, sizeof(name), "pcie@%llx", (unsigned long long)m->ecam.base);
	node = fdt_add_subnode(fdt, 0, name);
	if (node < 0)
		return node;
	err = fdt_setprop_string(fdt, node, "compatible", "pci-host-ecam-generic");
	err = err ?: fdt_setprop_string(fdt, node, "device_type", "pci");
	err = err ?: fdt_setprop_u32(fdt, node, "#address-cells", 3);
	err = err ?: fdt_setprop_u32(fdt, node, "#size-cells", 2);
	err = err ?: fdt_setprop_u32(fdt, node, "#interrupt-cells", 1);
	err = err ?: fdt_setprop_u64(fdt, node, "reg", m->ecam.base);
	err = err ?: fdt_appendprop_u64(fdt, node, "reg", m->ecam.size);
	err = err ?: fdt_setprop_u32(fdt, node, "bus-range", 0);
	err = err ?: fdt_appendprop_u32(fdt, node, "bus-range", buses - 1);
	err = err ?: fdt_setprop_u32(fdt, node, "linux,pci-domain", 0);
	err = err ?: fdt_setprop_empty(fdt, node, "dma-coherent");
	/* ranges: <pci space, pci address (2 cells), cpu address (2), size (2)> */
	err = err ?: fdt_setprop_empty(fdt, node, "ranges");
	if (!err && m->pio.size) {
		err = fdt_appendprop_u32(fdt, node, "ranges", 0x01000000);
		err = err ?: fdt_appendprop_u64(fdt, node, "ranges", 0);
		err = err ?: fdt_appendprop_u64(fdt, node, "ranges", m->pio.base);
		err = err ?: fdt_appendprop_u64(fdt, node, "ranges", m->pio.size);
	}
	if (!err) {
		err = fdt_appendprop_u32(fdt, node, "ranges", 0x02000000);
		err = err ?: fdt_appendprop_u64(fdt, node, "ranges", m->mmio32.base);
		err = err ?: fdt_appendprop_u64(fdt, node, "ranges", m->mmio32.base);
		err = err ?: fdt_appendprop_u64(fdt, node, "ranges", m->mmio32.size);
	}
	if (!err && m->mmio64.size) {
		err = fdt_appendprop_u32(fdt, node, "ranges", 0x43000000);
		err = err ?: fdt_appendprop_u64(fdt, node, "ranges", m->mmio64.base);
		err = err ?: fdt_appendprop_u64(fdt, node, "ranges", m->mmio64.base);
		err = err ?: fdt_appendprop_u64(fdt, node, "ranges", m->mmio64.size);
	}
	/* INTx: level-triggered SPIs, swizzled over 4 slots x 4 pins. */
	err = err ?: fdt_setprop_u32(fdt, node, "interrupt-map-mask", 0x1800);
	err = err ?: fdt_appendprop_u32(fdt, node, "interrupt-map-mask", 0);
	err = err ?: fdt_appendprop_u32(fdt, node, "interrupt-map-mask", 0);
	err = err ?: fdt_appendprop_u32(fdt, node, "interrupt-map-mask", 7);
	err = err ?: fdt_setprop_empty(fdt, node, "interrupt-map");
	for (unsigned slot = 0; slot < 4 && !err; slot++) {
		for (unsigned pin = 1; pin <= 4 && !err; pin++) {
			uint32_t cells[] = {
				slot << 11,
				0,
				0,
				pin,
				gic_phandle,
				0,
				0,
				0 /* GIC_SPI */,
				pci_swizzle(m->pci_intx_irq, slot, pin),
				4 /* level-high */,
			};

			for (unsigned i = 0; i < ARRAY_SIZE(cells) && !err; i++)
				err = fdt_appendprop_u32(fdt, node, "interrupt-map", cells[i]);
		}
	}
	if (!err && msi_phandle) {
		if (msi_map) {
			/* All requester IDs map 1:1 to ITS device IDs. */
			err = fdt_setprop_u32(fdt, node, "msi-map", 0);
			err = err ?: fdt_appendprop_u32(fdt, node, "msi-map", msi_phandle);
			err = err ?: fdt_appendprop_u32(fdt, node, "msi-map", 0);
			err = err ?: fdt_appendprop_u32(fdt, node, "msi-map", 0x10000);
		} else {
			err = fdt_setprop_u32(fdt, node, "msi-parent", msi_phandle);
		}
	}
	return err;
}

/* phandle of the PCI MSI controller (0 if none); *msi_map says whether it takes msi-map. */
static uint32_t msi_phandle(const struct machine *m, bool *msi_map)
{
	*msi_map = arm64_msi_kind(m) == ARM64_MSI_ITS;
	return arm64_pci_msi(m) ? ARM64_MSI_PHANDLE : 0;
}

static int fdt_cpus(const struct machine *m, void *fdt)
{
	int cpus = fdt_add_subnode(fdt, 0, "cpus");
	int err;

	if (cpus < 0)
		return cpus;
	err = fdt_setprop_u32(fdt, cpus, "#address-cells", 1);
	err = err ?: fdt_setprop_u32(fdt, cpus, "#size-cells", 0);
	/* Add in reverse so that libfdt's prepend order leaves cpu@0 first. */
	for (unsigned i = m->vcpus; !err && i-- > 0;) {
		char name[32];
		uint64_t mpidr = arm64_mpidr(i);
		int cpu;

		snprintf(name, sizeof(name), "cpu@%llx", (unsigned long long)mpidr);
		cpu = fdt_add_subnode(fdt, cpus, name);
		if (cpu < 0)
			return cpu;
		err = fdt_setprop_string(fdt, cpu, "device_type", "cpu");
		err = err ?: fdt_setprop_string(fdt, cpu, "compatible", "arm,arm-v8");
		err = err ?: fdt_setprop_string(fdt, cpu, "enable-method", "psci");
		err = err ?: fdt_setprop_u32(fdt, cpu, "reg", (uint32_t)mpidr);
	}
	return err;
}

/* The GIC's MSI controller for PCI, under the GIC node gic (an ITS takes #msi-cells). */
static int msi_node(void *fdt, int gic, const char *name, const char *compat, uint64_t base,
		    uint64_t size, bool msi_cells)
{
	char full[48];
	int node, err;

	snprintf(full, sizeof(full), "%s@%llx", name, (unsigned long long)base);
	node = fdt_add_subnode(fdt, gic, full);
	if (node < 0)
		return node;
	err = fdt_setprop_string(fdt, node, "compatible", compat);
	err = err ?: fdt_setprop_empty(fdt, node, "msi-controller");
	if (msi_cells)
		err = err ?: fdt_setprop_u32(fdt, node, "#msi-cells", 1);
	err = err ?: fdt_setprop_u64(fdt, node, "reg", base);
	err = err ?: fdt_appendprop_u64(fdt, node, "reg", size);
	return err ?: fdt_setprop_u32(fdt, node, "phandle", ARM64_MSI_PHANDLE);
}

static int fdt_gic(const struct machine *m, void *fdt)
{
	const struct gic_config *g = arm64_gic(m);
	char name[48];
	int node, err;

	snprintf(name, sizeof(name), "intc@%llx", (unsigned long long)g->dist);
	node = fdt_add_subnode(fdt, 0, name);
	if (node < 0)
		return node;
	if (g->version == 2) {
		static const char compat[] = "arm,gic-400\0arm,cortex-a15-gic";

		err = fdt_setprop(fdt, node, "compatible", compat, sizeof(compat));
		err = err ?: fdt_setprop_u64(fdt, node, "reg", g->dist);
		err = err ?: fdt_appendprop_u64(fdt, node, "reg", GICV2_DIST_SIZE);
		err = err ?: fdt_appendprop_u64(fdt, node, "reg", g->cpuif);
		err = err ?: fdt_appendprop_u64(fdt, node, "reg", GICV2_CPU_SIZE);
	} else {
		err = fdt_setprop_string(fdt, node, "compatible", "arm,gic-v3");
		err = err ?: fdt_setprop_u64(fdt, node, "reg", g->dist);
		err = err ?: fdt_appendprop_u64(fdt, node, "reg", GICV3_DIST_SIZE);
		err = err ?: fdt_appendprop_u64(fdt, node, "reg", g->redist);
		err = err ?: fdt_appendprop_u64(fdt, node, "reg", g->redist_size);
		err = err ?: fdt_setprop_u32(fdt, node, "#redistributor-regions", 1);
	}
	err = err ?: fdt_setprop_u32(fdt, node, "#interrupt-cells", 3);
	err = err ?: fdt_setprop_empty(fdt, node, "interrupt-controller");
	err = err ?: fdt_setprop_u32(fdt, node, "#address-cells", 2);
	err = err ?: fdt_setprop_u32(fdt, node, "#size-cells", 2);
	err = err ?: fdt_setprop_empty(fdt, node, "ranges");
	err = err ?: fdt_setprop_u32(fdt, node, "phandle", ARM64_GIC_PHANDLE);
	err = err ?: fdt_setprop_u32(fdt, 0, "interrupt-parent", ARM64_GIC_PHANDLE);
	if (err)
		return err;
	/* The root's new property moved every node: find the GIC again. */
	node = fdt_node_offset_by_phandle(fdt, ARM64_GIC_PHANDLE);
	switch (arm64_msi_kind(m)) {
	case ARM64_MSI_ITS:
		return msi_node(fdt, node, "msi-controller", "arm,gic-v3-its", g->its,
				GICV3_ITS_SIZE, true);
	case ARM64_MSI_V2M:
		return msi_node(fdt, node, "v2m", "arm,gic-v2m-frame", g->v2m, GICV2M_SIZE, false);
	}
	return err;
}

/* The trigger cell of a per-CPU interrupt: level-high, and the CPU mask on GICv2. */
static uint32_t ppi_flags(const struct machine *m)
{
	uint32_t flags = IRQ_TYPE_LEVEL_HIGH;

	if (arm64_gic(m)->version == 2)
		flags |= ((1u << m->vcpus) - 1) << 8; /* GICv2 PPI CPU mask */
	return flags;
}

/* [machine] pmu = on: the PMUv3 every vCPU has, with its overflow interrupt. */
static int fdt_pmu(const struct machine *m, void *fdt)
{
	const struct arm64_machine *am = m->arch_priv;
	int node, err;

	if (!am->pmu)
		return 0;
	node = fdt_add_subnode(fdt, 0, "pmu");
	if (node < 0)
		return node;
	err = fdt_setprop_string(fdt, node, "compatible", "arm,armv8-pmuv3");
	err = err ?: fdt_setprop_u32(fdt, node, "interrupts", FDT_GIC_PPI);
	err = err ?: fdt_appendprop_u32(fdt, node, "interrupts", ARM64_PMU_PPI);
	return err ?: fdt_appendprop_u32(fdt, node, "interrupts", ppi_flags(m));
}

static int fdt_timer_psci(const struct machine *m, void *fdt)
{
	/* Secure, non-secure physical, virtual and hypervisor timer PPIs. */
	static const uint32_t ppis[] = {13, 14, 11, 10};
	uint32_t flags = ppi_flags(m);
	static const char psci[] = "arm,psci-1.0\0arm,psci-0.2";
	int node, err = 0;

	node = fdt_add_subnode(fdt, 0, "timer");
	if (node < 0)
		return node;
	err = fdt_setprop_string(fdt, node, "compatible", "arm,armv8-timer");
	for (int i = 0; i < 4 && !err; i++) {
		err = fdt_appendprop_u32(fdt, node, "interrupts", FDT_GIC_PPI);
		err = err ?: fdt_appendprop_u32(fdt, node, "interrupts", ppis[i]);
		err = err ?: fdt_appendprop_u32(fdt, node, "interrupts", flags);
	}
	err = err ?: fdt_setprop_empty(fdt, node, "always-on");
	if (err)
		return err;
	node = fdt_add_subnode(fdt, 0, "psci");
	if (node < 0)
		return node;
	err = fdt_setprop(fdt, node, "compatible", psci, sizeof(psci));
	return err ?: fdt_setprop_string(fdt, node, "method", "hvc");
}

static int build(const struct machine *m, const struct boot_layout *bl, void *fdt)
{
	static const char compat[] = "microvm,arm64\0linux,dummy-virt";
	char name[64];
	int err, node, chosen;

	err = fdt_create_empty_tree(fdt, FDT_BUF_SIZE);
	err = err ?: fdt_setprop_string(fdt, 0, "model", m->name);
	err = err ?: fdt_setprop(fdt, 0, "compatible", compat, sizeof(compat));
	err = err ?: fdt_setprop_u32(fdt, 0, "#address-cells", 2);
	err = err ?: fdt_setprop_u32(fdt, 0, "#size-cells", 2);
	if (err)
		return err;

	/* libfdt prepends subnodes: add in reverse of the order they should print in. */
	chosen = fdt_add_subnode(fdt, 0, "chosen");
	if (chosen < 0)
		return chosen;
	err = fdt_setprop_string(fdt, chosen, "bootargs", m->cmdline ? m->cmdline : "");
	if (!err && bl && bl->initrd_size) {
		err = fdt_setprop_u64(fdt, chosen, "linux,initrd-start", bl->initrd_addr);
		err = err
			      ?: fdt_setprop_u64(fdt, chosen, "linux,initrd-end",
						 bl->initrd_addr + bl->initrd_size);
	}
	node = fdt_add_subnode(fdt, 0, "aliases");
	if (err || node < 0)
		return err ?: node;

	/* Each device adds its own node; the console one also fills stdout-path. */
	for (size_t i = m->ndevices; i-- > 0;) {
		struct hw_desc d;

		arch_device_hw(&m->devices[i], &d);
		if ((err = device_node(fdt, &d)))
			return err;
	}
	if (m->has_pci) {
		bool msi_map;
		uint32_t msi = msi_phandle(m, &msi_map);

		err = pci_node(m, fdt, ARM64_GIC_PHANDLE, msi, msi_map);
		if (err)
			return err;
	}
	err = fdt_gic(m, fdt);
	err = err ?: fdt_pmu(m, fdt);
	err = err ?: fdt_timer_psci(m, fdt);
	err = err ?: fdt_cpus(m, fdt);
	if (err)
		return err;

	snprintf(name, sizeof(name), "memory@%llx", (unsigned long long)m->ram_base);
	node = fdt_add_subnode(fdt, 0, name);
	if (node < 0)
		return node;
	err = fdt_setprop_string(fdt, node, "device_type", "memory");
	err = err ?: fdt_setprop_u64(fdt, node, "reg", m->ram_base);
	return err ?: fdt_appendprop_u64(fdt, node, "reg", m->ram_size);
}

int arm64_fdt_build(const struct machine *m, const struct boot_layout *bl, void **blob, size_t *len)
{
	void *fdt = calloc(1, FDT_BUF_SIZE);
	int err;

	if (!fdt)
		return -ENOMEM;
	err = build(m, bl, fdt);
	err = err ?: fdt_pack(fdt);
	if (err) {
		log_error("device tree: %s", fdt_strerror(err));
		free(fdt);
		return -EINVAL;
	}
	*blob = fdt;
	*len = fdt_totalsize(fdt);
	return 0;
}
