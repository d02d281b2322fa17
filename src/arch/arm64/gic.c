/* gic: the arm64 machine's [gic] section, its MSI controller for PCI, vCPU affinities. */
#include <errno.h>
#include <stdlib.h>

#include "alloc.h"
#include "arm64.h"
#include "config.h"
#include "log.h"
#include "machine.h"

/*
 * [gic]: every key is read and checked whatever else is wrong. A version in error requires
 * neither version's own regions; spis in error leave every line a GIC can have to the devices;
 * a region in error is not claimed. Any error leaves the controller unknown to the rest
 * (MACHINE_BAD_IRQCHIP: PCI's MSI is not checked against it).
 */
int arm64_gic_configure(struct machine *m)
{
	static const char *const versions[] = {"auto", "2", "3", NULL};
	struct cfg *c = &m->cfg;
	struct gic_config *g = arm64_gic(m);
	int version, before = c->nerrors, err = 0;
	bool need_v2, need_v3, vknown, vcpus = !(m->bad & MACHINE_BAD_VCPUS);
	bool present = cfg_section(c, "gic") != NULL;
	int edist, ecpu, eredist, esize, eits, ev2m, ev2mirq;

	/* Missing as a whole: said once, not once for each key it would need. */
	if (!present && !c->lost_header)
		cfg_error(c, NULL, "gic",
			  "missing: an arm64 machine describes its interrupt controller in [gic] "
			  "(version, distributor, cpu_interface or redistributor: see "
			  "docs/config.md)");
	vknown = !cfg_enum(c, "gic", "version", versions, &version, 0) && present;
	g->version = version == 0 ? 0 : version + 1;
	if (cfg_u32(c, "gic", "spis", &g->spis, 96, 32, 988, 0)) {
		g->spis = 988;
	} else if (g->spis % 32) {
		cfg_error(c, cfg_get(c, "gic", "spis"), "gic", "spis must be a multiple of 32");
		g->spis = 988;
	}
	m->alloc.nr_irqs = g->spis;
	need_v2 = g->version != 3;
	need_v3 = g->version != 2;
	/* A file may describe both layouts (for version = auto or a --set switch); only the
	 * regions the chosen version needs are required and claimed. */
	edist = cfg_u64(c, "gic", "distributor", &g->dist, 0, present ? CFG_REQUIRED : 0);
	ecpu = cfg_u64(c, "gic", "cpu_interface", &g->cpuif, 0,
		       need_v2 && vknown ? CFG_REQUIRED : 0);
	eredist = cfg_u64(c, "gic", "redistributor", &g->redist, 0,
			  need_v3 && vknown ? CFG_REQUIRED : 0);
	esize = cfg_u64(c, "gic", "redistributor_size", &g->redist_size,
			(uint64_t)m->vcpus * GICV3_REDIST_SIZE, 0);
	/* MSI controllers for PCI: an ITS (GICv3) and/or a v2m frame (GICv2). */
	eits = cfg_u64(c, "gic", "its", &g->its, 0, 0);
	ev2m = cfg_u64(c, "gic", "v2m", &g->v2m, 0, 0);
	ev2mirq = cfg_u32(c, "gic", "v2m_irq_base", &g->v2m_irq_base, 0, 0, 987, 0);
	ev2mirq |= cfg_u32(c, "gic", "v2m_irq_count", &g->v2m_irq_count, 32, 1, 988, 0);
	if (vcpus && !esize && need_v3 && g->redist_size < (uint64_t)m->vcpus * GICV3_REDIST_SIZE) {
		cfg_error(c, cfg_get(c, "gic", "redistributor_size"), "gic",
			  "redistributor_size 0x%llx holds fewer than %u redistributors of 128K",
			  (unsigned long long)g->redist_size, m->vcpus);
		esize = -1;
	}
	if (!edist && present)
		err |= alloc_region(&m->alloc, "gic", "distributor", g->dist,
				    g->version == 2 ? GICV2_DIST_SIZE : GICV3_DIST_SIZE,
				    cfg_get(c, "gic", "distributor"));
	/* With the version in error, what the file gives is claimed, nothing required. */
	if (need_v2 && !ecpu && (vknown || cfg_get(c, "gic", "cpu_interface")))
		err |= alloc_region(&m->alloc, "gic", "cpu_interface", g->cpuif, GICV2_CPU_SIZE,
				    cfg_get(c, "gic", "cpu_interface"));
	if (need_v3 && !eredist && !esize && (vknown || cfg_get(c, "gic", "redistributor")))
		err |= alloc_region(&m->alloc, "gic", "redistributor", g->redist, g->redist_size,
				    cfg_get(c, "gic", "redistributor"));
	if (need_v3 && !eits && g->its)
		err |= alloc_region(&m->alloc, "gic", "its", g->its, GICV3_ITS_SIZE,
				    cfg_get(c, "gic", "its"));
	if (need_v2 && !ev2m && g->v2m) {
		int ev2mreg = alloc_region(&m->alloc, "gic", "v2m", g->v2m, GICV2M_SIZE,
					   cfg_get(c, "gic", "v2m"));

		if (!ev2mreg && !ev2mirq)
			alloc_region_irqs(&m->alloc, "gic", g->v2m_irq_base, g->v2m_irq_count);
		if (!ev2mirq)
			err |= alloc_irqs(&m->alloc, "gic v2m", g->v2m_irq_base, g->v2m_irq_count,
					  cfg_get(c, "gic", "v2m_irq_base"));
		err |= ev2mreg;
	}
	if (c->nerrors != before || err)
		m->bad |= MACHINE_BAD_IRQCHIP;
	if (vcpus && g->version == 2 && m->vcpus > GICV2_MAX_CPUS) {
		cfg_error(c, cfg_get(c, "machine", "vcpus"), "machine",
			  "%u vCPUs, but GICv2 supports at most %d", m->vcpus, GICV2_MAX_CPUS);
		err = -1;
	}
	return c->nerrors != before || err ? -1 : 0;
}

void arm64_gic_describe(const struct machine *m, FILE *out)
{
	const struct gic_config *g = arm64_gic(m);

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
	const struct gic_config *g = arm64_gic(m);

	if (g->version == 3 && g->its)
		return ARM64_MSI_ITS;
	if (g->version == 2 && g->v2m)
		return ARM64_MSI_V2M;
	return ARM64_MSI_NONE;
}

bool arm64_pci_msi(const struct machine *m)
{
	const struct gic_config *g = arm64_gic(m);

	/* Before KVM picks a version for "auto", both controllers must be described. */
	if (g->version == 0)
		return m->has_pci && m->pci_msi && g->its && g->v2m;
	return arm64_msi_kind(m) != ARM64_MSI_NONE;
}

uint64_t arm64_mpidr(unsigned id)
{
	/* The affinity KVM gives vCPU id by default (Aff0 holds 16 CPUs). */
	return (id & 0xf) | (uint64_t)((id >> 4) & 0xff) << 8 | (uint64_t)((id >> 12) & 0xff) << 16;
}
