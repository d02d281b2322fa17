/*
 * x86 platform ports: PCI configuration mechanism #1 (0xcf8/0xcfc) onto the ECAM host
 * bridge, the hardware-reduced ACPI sleep and reset registers, the i8042 reset command and
 * the POST port the kernel uses as an I/O delay.
 */
#include "x86.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "bus.h"
#include "log.h"
#include "machine.h"
#include "pci/pci.h"
#include "vm.h"

struct x86_platform {
	struct vm *vm;
	atomic_uint cf8; /* the configuration address latch */
};

/* The ECAM offset that a CF8 address selects (bus, device, function, register). */
uint32_t x86_cf8_to_ecam(uint32_t cf8, unsigned byte)
{
	return ((cf8 >> 16) & 0xff) << 20 | ((cf8 >> 11) & 0x1f) << 15 | ((cf8 >> 8) & 7) << 12 |
	       (cf8 & 0xfc) | byte;
}

static void pci_addr(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct x86_platform *p = opaque;
	uint32_t v = 0;

	/* Only whole-register accesses select; byte accesses to 0xcf8-0xcfb are other ports. */
	if (off != 0 || len != 4) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	if (is_write) {
		memcpy(&v, data, 4);
		atomic_store(&p->cf8, v);
	} else {
		v = atomic_load(&p->cf8);
		memcpy(data, &v, 4);
	}
}

static void pci_data(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct x86_platform *p = opaque;
	uint32_t cf8 = atomic_load(&p->cf8);
	struct vm *vm = p->vm;

	/* Enabled, within the bridge's buses, and naturally aligned within the register. */
	if (!(cf8 & 0x80000000u) || !vm->pci || off + len > 4 || (off & (len - 1)) ||
	    ((cf8 >> 16) & 0xff) >= vm->m->ecam.size >> 20) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pci_ecam_access(vm->pci, x86_cf8_to_ecam(cf8, (unsigned)off), data, len, is_write);
}

static void acpi_ports(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct x86_platform *p = opaque;

	if (!is_write) {
		memset(data, 0, len); /* sleep status: never woken */
		return;
	}
	if (off == 0 && (data[0] & X86_ACPI_SLP_EN) && ((data[0] >> 2) & 7) == X86_ACPI_S5) {
		log_info("guest powered off (ACPI S5)");
		vm_stop(p->vm, VM_POWEROFF);
	} else if (off == X86_PORT_ACPI_RESET - X86_PORT_ACPI_SLEEP &&
		   data[0] == X86_ACPI_RESET_VALUE) {
		log_info("guest requested reset (ACPI reset register)");
		vm_stop(p->vm, VM_REBOOT);
	}
}

static void i8042(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct x86_platform *p = opaque;

	(void)off;
	if (!is_write) {
		memset(data, 0, len); /* status: nothing to read, ready for a command */
		return;
	}
	if (data[0] == 0xfe) { /* pulse the reset line */
		log_info("guest requested reset (i8042)");
		vm_stop(p->vm, VM_REBOOT);
	}
}

static void sink(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	(void)opaque;
	(void)off;
	if (!is_write)
		memset(data, 0xff, len);
}

uint32_t x86_platform_cf8(const struct vm *vm, const uint32_t *set)
{
	struct x86_platform *p = vm->arch_priv;

	if (!p)
		return 0;
	if (set)
		atomic_store(&p->cf8, *set);
	return atomic_load(&p->cf8);
}

int x86_platform_realize(struct vm *vm)
{
	struct x86_platform *p = calloc(1, sizeof(*p));
	int err;

	if (!p)
		return -ENOMEM;
	p->vm = vm;
	vm->arch_priv = p;
	err = bus_register(&vm->pio, X86_PORT_ACPI_SLEEP, 3, acpi_ports, p, "acpi");
	err = err ?: bus_register(&vm->pio, X86_PORT_I8042_CMD, 1, i8042, p, "i8042");
	err = err ?: bus_register(&vm->pio, X86_PORT_POST, 1, sink, p, "post");
	if (!err && vm->m->has_pci) {
		err = bus_register(&vm->pio, X86_PORT_PCI_ADDR, 4, pci_addr, p, "pci-cf8");
		err = err ?: bus_register(&vm->pio, X86_PORT_PCI_DATA, 4, pci_data, p, "pci-cfc");
	}
	if (err)
		log_error("platform I/O ports: %s", strerror(-err));
	return err;
}
