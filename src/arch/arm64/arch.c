/* arch: the arm64 machine model's entry in the architecture table. */
#include <errno.h>
#include <stdlib.h>

#include "arm64.h"
#include "boot.h"
#include "config.h"
#include "log.h"

static const char *const sections[] = {"gic", NULL};

/* [gic], and the arm64 keys of [boot] and [machine]: kernel_format, pmu. */
static int configure(struct machine *m)
{
	static const char *const formats[] = {"image", "raw", NULL};
	struct arm64_machine *am = calloc(1, sizeof(*am));
	struct cfg *c = &m->cfg;
	int format = 0, err = 0;

	if (!am) {
		log_error("%s: out of memory", c->path);
		return -1;
	}
	m->arch_priv = am;
	err |= cfg_enum(c, "boot", "kernel_format", formats, &format, 0);
	err |= cfg_bool(c, "machine", "pmu", &am->pmu, false);
	am->raw_kernel = format == 1;
	err |= arm64_gic_configure(m);
	return err ? -1 : 0;
}

static void describe(const struct machine *m, FILE *out)
{
	const struct arm64_machine *am = m->arch_priv;

	arm64_gic_describe(m, out);
	if (am->pmu)
		fprintf(out, "  pmu: PMUv3 on every vCPU, overflow interrupt PPI %d (INTID %d)\n",
			ARM64_PMU_PPI, GIC_PPI_BASE + ARM64_PMU_PPI);
	if (am->raw_kernel)
		fprintf(out, "  kernel format: raw (no Image header), loaded at RAM + 0x%llx\n",
			ARM64_RAW_TEXT_OFFSET);
}

static int layout(const struct machine *m, const uint8_t *kernel, size_t klen, size_t initrd_len,
		  struct boot_layout *bl, char *why, size_t whylen)
{
	const struct arm64_machine *am = m->arch_priv;

	return arm64_boot_layout(m->ram_base, m->ram_size, kernel, klen, am->raw_kernel, initrd_len,
				 bl, why, whylen);
}

/* The device tree, at the place the layout keeps for it. */
static int boot_info(const struct machine *m, const struct boot_layout *bl, struct boot_info *bi)
{
	void *dtb;
	size_t len;
	int err = arm64_fdt_build(m, bl, &dtb, &len);

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

/* The GIC node needs the version, which KVM decides at run time for "auto". */
static int boot_info_ready(const struct machine *m)
{
	if (arm64_gic(m)->version)
		return 0;
	log_error("%s: [gic] version = auto is decided by the host's KVM at run time; pass --set "
		  "gic.version=2 or 3 to dump a device tree",
		  m->cfg.path);
	return -1;
}

/* A restore builds the GIC that "auto" became when the snapshot's VM was built. */
static int snapshot_pin(const struct machine *m, char *buf, size_t len)
{
	if (!arm64_gic(m)->version)
		return 0;
	snprintf(buf, len, "gic.version=%d", arm64_gic(m)->version);
	return 1;
}

/*
 * The machine --api-sock starts with (Firecracker's defaults: 1 vCPU, 128 MiB): the GIC the
 * host has, both MSI controllers described, virtio-mmio and PCI windows, no boot files.
 */
static const char default_machine[] = "[machine]\nname = default\nvcpus = 1\nalign = 64K\n"
				      "[memory]\nbase = 0x40000000\nsize = 128M\n"
				      "[gic]\nversion = auto\ndistributor = 0x08000000\n"
				      "cpu_interface = 0x08010000\nv2m = 0x08020000\n"
				      "v2m_irq_base = 64\nv2m_irq_count = 32\n"
				      "redistributor = 0x080a0000\nits = 0x08080000\n"
				      "redistributor_size = 0xf60000\nspis = 96\n"
				      "[uart0]\ntype = ns16550a\nbase = 0x09000000\nirq = 1\n"
				      "[vmgenid]\ntype = vmgenid\nbase = 0x09020000\nirq = 2\n"
				      "[boot]\ncmdline = panic=-1\n"
				      "[virtio-mmio]\nbase = 0x0a000000\nsize = 2M\n"
				      "slot_size = 64K\nirq_base = 16\nirq_count = 32\n"
				      "[pci]\necam_base = 0x30000000\necam_size = 16M\n"
				      "mmio32_base = 0x10000000\nmmio32_size = 512M\n"
				      "mmio64_base = 0x8000000000\nmmio64_size = 256G\n"
				      "io_base = 0x0c000000\nio_size = 64K\nintx_irq = 48\n";

const struct arch arch_arm64 = {
	.name = "arm64",
	.default_machine = default_machine,
	.sections = sections,
	.boot_info_kind = ARCH_DTB,
	.boot_info_hint = "--dump-dtb writes its device tree",
	.configure = configure,
	.describe = describe,
	.pci_msi = arm64_pci_msi,
	.boot_layout = layout,
	.boot_info = boot_info,
	.boot_info_ready = boot_info_ready,
	.snapshot_pin = snapshot_pin,
	.snapshot_pin_key = "gic.version",
};
