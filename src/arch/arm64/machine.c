/* arm64 machine model: GIC configuration, cpus/psci/timer/GIC device-tree nodes. */
#include "arch.h"

#include <errno.h>
#include <stdlib.h>

#include <libfdt.h>
#include <string.h>

#include "alloc.h"
#include "boot.h"
#include "arm64.h"
#include "config.h"
#include "devtree.h"
#include "log.h"
#include "machine.h"

static const char *const sections[] = {"gic", NULL};

/* GIC_SPI / GIC_PPI and IRQ_TYPE_* as in the kernel's dt-bindings. */
#define FDT_GIC_SPI	     0
#define FDT_GIC_PPI	     1
#define IRQ_TYPE_EDGE_RISING 1
#define IRQ_TYPE_LEVEL_HIGH  4

static int configure(struct machine *m)
{
	static const char *const versions[] = {"auto", "2", "3", NULL};
	struct cfg *c = &m->cfg;
	struct gic_config *g = &m->gic;
	int version, err = 0;
	bool need_v2, need_v3;

	err |= cfg_enum(c, "gic", "version", versions, &version, 0);
	g->version = version == 0 ? 0 : version + 1;
	err |= cfg_u32(c, "gic", "spis", &g->spis, 96, 32, 988, 0);
	if (err)
		return -1;
	if (g->spis % 32) {
		cfg_error(c, cfg_get(c, "gic", "spis"), "gic", "spis must be a multiple of 32");
		return -1;
	}
	m->alloc.nr_irqs = g->spis;
	need_v2 = g->version != 3;
	need_v3 = g->version != 2;
	if (g->version == 2 && m->vcpus > GICV2_MAX_CPUS) {
		cfg_error(c, cfg_get(c, "machine", "vcpus"), "machine",
			  "%u vCPUs, but GICv2 supports at most %d", m->vcpus, GICV2_MAX_CPUS);
		return -1;
	}
	/* A file may describe both layouts (for version = auto or a --set switch); only the
	 * regions the chosen version needs are required and claimed. */
	err |= cfg_u64(c, "gic", "distributor", &g->dist, 0, CFG_REQUIRED);
	err |= cfg_u64(c, "gic", "cpu_interface", &g->cpuif, 0, need_v2 ? CFG_REQUIRED : 0);
	err |= cfg_u64(c, "gic", "redistributor", &g->redist, 0, need_v3 ? CFG_REQUIRED : 0);
	err |= cfg_u64(c, "gic", "redistributor_size", &g->redist_size,
		       (uint64_t)m->vcpus * GICV3_REDIST_SIZE, 0);
	/* MSI controllers for PCI: an ITS (GICv3) and/or a v2m frame (GICv2). */
	err |= cfg_u64(c, "gic", "its", &g->its, 0, 0);
	err |= cfg_u64(c, "gic", "v2m", &g->v2m, 0, 0);
	err |= cfg_u32(c, "gic", "v2m_irq_base", &g->v2m_irq_base, 0, 0, 987, 0);
	err |= cfg_u32(c, "gic", "v2m_irq_count", &g->v2m_irq_count, 32, 1, 988, 0);
	if (err)
		return -1;
	if (need_v3 && g->redist_size < (uint64_t)m->vcpus * GICV3_REDIST_SIZE) {
		cfg_error(c, cfg_get(c, "gic", "redistributor_size"), "gic",
			  "redistributor_size 0x%llx holds fewer than %u redistributors of 128K",
			  (unsigned long long)g->redist_size, m->vcpus);
		return -1;
	}
	err |= alloc_region(&m->alloc, "gic", "distributor", g->dist,
			    g->version == 2 ? GICV2_DIST_SIZE : GICV3_DIST_SIZE,
			    cfg_get(c, "gic", "distributor"));
	if (need_v2)
		err |= alloc_region(&m->alloc, "gic", "cpu_interface", g->cpuif, GICV2_CPU_SIZE,
				    cfg_get(c, "gic", "cpu_interface"));
	if (need_v3)
		err |= alloc_region(&m->alloc, "gic", "redistributor", g->redist, g->redist_size,
				    cfg_get(c, "gic", "redistributor"));
	if (need_v3 && g->its)
		err |= alloc_region(&m->alloc, "gic", "its", g->its, GICV3_ITS_SIZE,
				    cfg_get(c, "gic", "its"));
	if (need_v2 && g->v2m) {
		err |= alloc_region(&m->alloc, "gic", "v2m", g->v2m, GICV2M_SIZE,
				    cfg_get(c, "gic", "v2m"));
		if (!err)
			alloc_region_irqs(&m->alloc, "gic", g->v2m_irq_base, g->v2m_irq_count);
		err |= alloc_irqs(&m->alloc, "gic v2m", g->v2m_irq_base, g->v2m_irq_count,
				  cfg_get(c, "gic", "v2m_irq_base"));
	}
	return err;
}

static void describe(const struct machine *m, FILE *out)
{
	const struct gic_config *g = &m->gic;

	static const char *const msi[] = {"none", "ITS", "GICv2m frame"};

	fprintf(out, "  gic: %s, %u SPIs (device irq N is GIC INTID 32+N), PCI MSI: %s\n",
		g->version == 2	  ? "GICv2 (GIC-400)"
		: g->version == 3 ? "GICv3"
				  : "auto (GICv3 if the host has it, else GICv2)",
		g->spis, msi[arm64_msi_kind(m)]);
}

int arm64_msi_kind(const struct machine *m)
{
	if (!m->has_pci || !m->pci_msi)
		return ARM64_MSI_NONE;
	if (m->gic.version == 3 && m->gic.its)
		return ARM64_MSI_ITS;
	if (m->gic.version == 2 && m->gic.v2m)
		return ARM64_MSI_V2M;
	return ARM64_MSI_NONE;
}

static bool pci_msi(const struct machine *m)
{
	/* Before KVM picks a version for "auto", both controllers must be described. */
	if (m->gic.version == 0)
		return m->has_pci && m->pci_msi && m->gic.its && m->gic.v2m;
	return arm64_msi_kind(m) != ARM64_MSI_NONE;
}

uint32_t arm64_pci_msi_phandle(const struct machine *m, bool *msi_map)
{
	*msi_map = arm64_msi_kind(m) == ARM64_MSI_ITS;
	return pci_msi(m) ? ARM64_MSI_PHANDLE : 0;
}

uint64_t arm64_mpidr(unsigned id)
{
	/* The affinity KVM gives vCPU id by default (Aff0 holds 16 CPUs). */
	return (id & 0xf) | (uint64_t)((id >> 4) & 0xff) << 8 | (uint64_t)((id >> 12) & 0xff) << 16;
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

static int fdt_gic(const struct machine *m, void *fdt)
{
	const struct gic_config *g = &m->gic;
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
		snprintf(name, sizeof(name), "msi-controller@%llx", (unsigned long long)g->its);
		node = fdt_add_subnode(fdt, node, name);
		if (node < 0)
			return node;
		err = fdt_setprop_string(fdt, node, "compatible", "arm,gic-v3-its");
		err = err ?: fdt_setprop_empty(fdt, node, "msi-controller");
		err = err ?: fdt_setprop_u32(fdt, node, "#msi-cells", 1);
		err = err ?: fdt_setprop_u64(fdt, node, "reg", g->its);
		err = err ?: fdt_appendprop_u64(fdt, node, "reg", GICV3_ITS_SIZE);
		err = err ?: fdt_setprop_u32(fdt, node, "phandle", ARM64_MSI_PHANDLE);
		break;
	case ARM64_MSI_V2M:
		snprintf(name, sizeof(name), "v2m@%llx", (unsigned long long)g->v2m);
		node = fdt_add_subnode(fdt, node, name);
		if (node < 0)
			return node;
		err = fdt_setprop_string(fdt, node, "compatible", "arm,gic-v2m-frame");
		err = err ?: fdt_setprop_empty(fdt, node, "msi-controller");
		err = err ?: fdt_setprop_u64(fdt, node, "reg", g->v2m);
		err = err ?: fdt_appendprop_u64(fdt, node, "reg", GICV2M_SIZE);
		err = err ?: fdt_setprop_u32(fdt, node, "phandle", ARM64_MSI_PHANDLE);
		break;
	}
	return err;
}

static int fdt_timer_psci(const struct machine *m, void *fdt)
{
	/* Secure, non-secure physical, virtual and hypervisor timer PPIs. */
	static const uint32_t ppis[] = {13, 14, 11, 10};
	uint32_t flags = IRQ_TYPE_LEVEL_HIGH;
	static const char psci[] = "arm,psci-1.0\0arm,psci-0.2";
	int node, err = 0;

	if (m->gic.version == 2)
		flags |= ((1u << m->vcpus) - 1) << 8; /* GICv2 PPI CPU mask */
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

int arm64_fdt(const struct machine *m, void *fdt)
{
	int err = fdt_gic(m, fdt);

	err = err ?: fdt_timer_psci(m, fdt);
	return err ?: fdt_cpus(m, fdt);
}

int arm64_fdt_irq(void *fdt, int node, uint32_t irq, bool level)
{
	int err = fdt_setprop_u32(fdt, node, "interrupts", FDT_GIC_SPI);

	err = err ?: fdt_appendprop_u32(fdt, node, "interrupts", irq);
	return err
		       ?: fdt_appendprop_u32(fdt, node, "interrupts",
					     level ? IRQ_TYPE_LEVEL_HIGH : IRQ_TYPE_EDGE_RISING);
}

static int layout(const struct machine *m, const uint8_t *kernel, size_t klen, size_t initrd_len,
		  struct boot_layout *bl, char *why, size_t whylen)
{
	return arm64_boot_layout(m->ram_base, m->ram_size, kernel, klen, initrd_len, bl, why,
				 whylen);
}

/* The device tree, at the place the layout keeps for it. */
static int boot_info(const struct machine *m, const struct boot_layout *bl, struct boot_info *bi)
{
	void *dtb;
	size_t len;
	int err = fdt_build(m, bl, &dtb, &len);

	if (err)
		return err;
	if (bl->dtb_max && len > bl->dtb_max) {
		log_error("the device tree (%zu bytes) does not fit its place in guest RAM", len);
		free(dtb);
		return -EINVAL;
	}
	bi->arg = bl->dtb_addr;
	return boot_info_add(bi, "dtb", bl->dtb_addr, dtb, len);
}

const struct arch arch_arm64 = {
	.name = "arm64",
	.sections = sections,
	.configure = configure,
	.describe = describe,
	.pci_msi = pci_msi,
	.boot_layout = layout,
	.boot_info = boot_info,
};
