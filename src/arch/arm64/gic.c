/* gic: the arm64 machine's [gic] section, its MSI controller for PCI, vCPU affinities. */
#include <errno.h>
#include <stdlib.h>

#include "alloc.h"
#include "arm64.h"
#include "config.h"
#include "log.h"
#include "machine.h"

int arm64_gic_configure(struct machine *m)
{
	static const char *const versions[] = {"auto", "2", "3", NULL};
	struct cfg *c = &m->cfg;
	struct gic_config *g = arm64_gic(m);
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
