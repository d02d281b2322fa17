/* devtree: the arm64 guest's flattened device tree (libfdt), from the devices' descriptions. */
#include "devtree.h"

#include <errno.h>
#include <libfdt.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "arm64.h"
#include "boot.h"
#include "device.h"
#include "log.h"
#include "machine.h"
#include "pci/pci.h"

#define FDT_BUF_SIZE (1 << 20)

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
		err = err ?: arm64_fdt_irq(fdt, node, d->irq, d->level);
		return err ?: d->console ? set_console(fdt, node) : 0;
	case HW_VIRTIO_MMIO:
		node = add_mmio_node(fdt, "virtio_mmio", d->base, d->size);
		if (node < 0)
			return node;
		err = fdt_setprop_string(fdt, node, "compatible", "virtio,mmio");
		err = err ?: fdt_setprop_empty(fdt, node, "dma-coherent");
		return err ?: arm64_fdt_irq(fdt, node, d->irq, d->level);
	case HW_BOOT_TIMER:
		node = add_mmio_node(fdt, "boot-timer", d->base, d->size);
		return node < 0 ? node
				: fdt_setprop_string(fdt, node, "compatible", "microvm,boot-timer");
	case HW_NONE:
		break;
	}
	return 0;
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
		uint32_t msi = arm64_pci_msi_phandle(m, &msi_map);

		err = pci_host_fdt(m, fdt, ARM64_GIC_PHANDLE, msi, msi_map);
		if (err)
			return err;
	}
	err = arm64_fdt(m, fdt);
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

int fdt_build(const struct machine *m, const struct boot_layout *bl, void **blob, size_t *len)
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
