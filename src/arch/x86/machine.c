/* x86-64 machine model: fixed platform windows, interrupt lines, the kernel command line. */
#include "arch.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "boot.h"
#include "config.h"
#include "device.h"
#include "machine.h"
#include "x86.h"

static const char *const sections[] = {NULL};

static int configure(struct machine *m)
{
	int err = 0;

	m->alloc.nr_irqs = X86_IOAPIC_PINS;
	/* The interrupt controllers' windows: nothing else may sit there. */
	err |= alloc_fixed(&m->alloc, "ioapic", "registers", X86_IOAPIC_BASE, X86_IOAPIC_SIZE);
	err |= alloc_fixed(&m->alloc, "lapic", "registers", X86_LAPIC_BASE, X86_LAPIC_SIZE);
	/* KVM's own pages (Intel VMX; 16 KiB aligned): a device there would see no access. */
	err |= alloc_fixed(&m->alloc, "kvm", "private pages", X86_KVM_IDMAP_ADDR,
			   X86_KVM_PAGES_SIZE);
	/* ISA lines the in-kernel PIT and the PIC cascade use. */
	err |= alloc_irqs(&m->alloc, "pit", 0, 1, NULL);
	err |= alloc_irqs(&m->alloc, "pic cascade", 2, 1, NULL);
	return err;
}

static void describe(const struct machine *m, FILE *out)
{
	fprintf(out,
		"  irqchip: in-kernel LAPIC per vCPU, IOAPIC (%d pins: device irq N is GSI N), "
		"PIC, PIT; ACPI (hardware-reduced)%s\n",
		X86_IOAPIC_PINS, m->has_pci && m->pci_msi ? ", PCI MSI through the LAPIC" : "");
}

static bool pci_msi(const struct machine *m)
{
	return m->has_pci && m->pci_msi; /* every LAPIC takes MSI writes */
}

int x86_com_index(uint64_t port)
{
	static const uint64_t ports[] = {0x3f8, 0x2f8, 0x3e8, 0x2e8};

	for (int i = 0; i < 4; i++)
		if (port == ports[i])
			return i;
	return -1;
}

static bool append(char **s, size_t *len, const char *fmt, ...)
{
	va_list ap;
	char *more;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&more, fmt, ap);
	va_end(ap);
	if (n < 0)
		return false;
	char *t = realloc(*s, *len + (size_t)n + 2);
	if (!t) {
		free(more);
		return false;
	}
	*s = t;
	if (*len)
		t[(*len)++] = ' ';
	memcpy(t + *len, more, (size_t)n + 1);
	*len += (size_t)n;
	free(more);
	return true;
}

char *x86_cmdline(const struct machine *m)
{
	const char *user = m->cmdline ? m->cmdline : "";
	char *s = NULL;
	size_t len = 0;
	bool ok = true;

	/* Devices first: the configured line (and what follows "--") keeps the last word. */
	for (size_t i = 0; ok && i < m->ndevices; i++) {
		struct hw_desc d;

		arch_device_hw(&m->devices[i], &d);
		switch (d.kind) {
		case HW_SERIAL:
			if (d.console && !strstr(user, "console="))
				ok = append(&s, &len, "console=ttyS%d", x86_com_index(d.base));
			break;
		case HW_VIRTIO_MMIO: /* in the DSDT */
			break;
		case HW_BOOT_TIMER:
			ok = append(&s, &len, "microvm.boot_timer=0x%llx",
				    (unsigned long long)d.base);
			break;
		case HW_VMGENID: /* in the DSDT */
		case HW_NONE:
			break;
		}
	}
	if (ok && *user)
		ok = append(&s, &len, "%s", user);
	if (ok && !s)
		s = strdup("");
	if (!ok) {
		free(s);
		return NULL;
	}
	return s;
}

/* After the whole file: what only the complete machine shows. */
static int configure_late(struct machine *m)
{
	struct cfg *c = &m->cfg;
	const char *vmgenid = NULL;
	int err = 0;

	if (m->vcpus > 255) {
		cfg_error(c, cfg_get(c, "machine", "vcpus"), "machine",
			  "%u vCPUs: an x86_64 machine has at most 255 (8-bit APIC IDs)", m->vcpus);
		err = -1;
	}
	if (!(m->bad & MACHINE_BAD_MEMORY) && m->ram_base != 0) {
		cfg_error(c, cfg_get(c, "memory", "base"), "memory",
			  "base must be 0 on x86_64 (boot_params, the page tables and the "
			  "kernel's real-mode trampoline live in the first MiB)");
		err = -1;
	}
	for (size_t i = 0; i < m->ndevices; i++) {
		struct hw_desc d;

		if (m->devices[i].bad) /* its own error said; what it holds is not known */
			continue;
		arch_device_hw(&m->devices[i], &d);
		if (d.kind == HW_SERIAL && x86_com_index(d.base) < 0) {
			cfg_error(c, cfg_get(c, m->devices[i].name, "base"), m->devices[i].name,
				  "on x86_64 a 16550A sits at a COM port: 0x3f8, 0x2f8, 0x3e8 or "
				  "0x2e8");
			err = -1;
		}
		/* The DSDT names it \_SB.VGEN, with one Generic Event Device for its interrupt. */
		if (d.kind == HW_VMGENID && vmgenid) {
			cfg_error(c, cfg_get(c, m->devices[i].name, "type"), m->devices[i].name,
				  "a second vmgenid: an x86_64 machine has at most one ([%s])",
				  vmgenid);
			err = -1;
		} else if (d.kind == HW_VMGENID) {
			vmgenid = m->devices[i].name;
		}
		/* The DSDT describes it with a 32-bit fixed memory descriptor. */
		if (d.kind == HW_VIRTIO_MMIO && d.base + d.size > 1ull << 32) {
			cfg_error(c, cfg_get(c, "virtio-mmio", "base"), "virtio-mmio",
				  "on x86_64 the virtio-mmio window must lie below 4 GiB");
			err = -1;
			break;
		}
	}
	return err;
}

/* The machine --api-sock starts with (Firecracker's defaults: 1 vCPU, 128 MiB), no boot files. */
static const char default_machine[] = "[machine]\nname = default\narch = x86_64\nvcpus = 1\n"
				      "align = 4K\n[memory]\nbase = 0\nsize = 128M\n"
				      "[uart0]\ntype = ns16550a\nbase = 0x3f8\nirq = 4\n"
				      "[vmgenid]\ntype = vmgenid\nbase = 0xd0801000\nirq = 20\n"
				      "[boot]\ncmdline = console=ttyS0 panic=-1\n"
				      "[virtio-mmio]\nbase = 0xd0000000\nsize = 44K\n"
				      "slot_size = 4K\nirq_base = 5\nirq_count = 11\n"
				      "[pci]\necam_base = 0xe0000000\necam_size = 16M\n"
				      "mmio32_base = 0xc0000000\nmmio32_size = 256M\n"
				      "mmio64_base = 0x8000000000\nmmio64_size = 64G\n"
				      "intx_irq = 16\n";

const struct arch arch_x86_64 = {
	.name = "x86_64",
	.default_machine = default_machine,
	.sections = sections,
	.boot_info_kind = ARCH_ACPI,
	.boot_info_hint = "the guest learns it from boot_params and ACPI tables: --dump-acpi DIR "
			  "writes the tables",
	.ioports = X86_IOPORTS,
	.ram_hole = X86_PCI_HOLE,
	.configure = configure,
	.configure_late = configure_late,
	.describe = describe,
	.pci_msi = pci_msi,
	.boot_layout = x86_boot_layout,
	.boot_info = x86_boot_info,
	.realize = x86_platform_realize,
};
