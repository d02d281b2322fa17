/* arch: the arm64 machine model's entry in the architecture table. */
#include <errno.h>
#include <stdlib.h>

#include "arm64.h"
#include "boot.h"
#include "log.h"

static const char *const sections[] = {"gic", NULL};

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

const struct arch arch_arm64 = {
	.name = "arm64",
	.sections = sections,
	.boot_info_kind = ARCH_DTB,
	.boot_info_hint = "--dump-dtb writes its device tree",
	.configure = arm64_gic_configure,
	.describe = arm64_gic_describe,
	.pci_msi = arm64_pci_msi,
	.boot_layout = layout,
	.boot_info = boot_info,
	.boot_info_ready = boot_info_ready,
};
