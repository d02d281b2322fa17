/*
 * x86 ACPI: RSDP, XSDT, a hardware-reduced FADT (sleep and reset registers on I/O ports),
 * MADT (LAPICs, IOAPIC, LINT1 NMI), MCFG, and a DSDT with \_S5, the devices, the PCI host
 * bridge (its windows and _PRT interrupt routing) and the VM generation ID with the Generic
 * Event Device that notifies it, written as AML by a small encoder.
 */
#include "x86.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "device.h"
#include "le.h"
#include "machine.h"
#include "pci/pci.h"

/* A growing byte buffer; failed is set (and the data dropped) when memory runs out. */
struct buf {
	uint8_t *b;
	size_t n, cap;
	bool failed;
};

static void put(struct buf *a, const void *p, size_t len)
{
	if (a->failed)
		return;
	if (a->n + len > a->cap) {
		size_t cap = (a->n + len) * 2 + 64;
		uint8_t *b = realloc(a->b, cap);

		if (!b) {
			a->failed = true;
			return;
		}
		a->b = b;
		a->cap = cap;
	}
	memcpy(a->b + a->n, p, len);
	a->n += len;
}

static void u8(struct buf *a, uint8_t v)
{
	put(a, &v, 1);
}

/* Append the low bytes (at most 8) of v, little-endian. */
static void le(struct buf *a, uint64_t v, unsigned bytes)
{
	uint8_t b[8];

	le64_put(b, v);
	put(a, b, bytes);
}

/* --- AML --- */

/* Start a PkgLength-prefixed body: returns where it starts (the length goes there). */
static size_t pkg_begin(struct buf *a)
{
	return a->n;
}

/* Insert the PkgLength (which counts itself) before the body started at start. */
static void pkg_end(struct buf *a, size_t start)
{
	size_t body = a->n - start, len;
	uint8_t enc[4];
	unsigned nb;

	if (body + 1 < 0x40) {
		nb = 1;
		enc[0] = (uint8_t)(body + 1);
	} else {
		nb = body + 2 < 0x1000 ? 2 : body + 3 < 0x100000 ? 3 : 4;
		len = body + nb;
		enc[0] = (uint8_t)((nb - 1) << 6 | (len & 0xf));
		for (unsigned i = 1; i < nb; i++)
			enc[i] = (uint8_t)(len >> (4 + 8 * (i - 1)));
	}
	put(a, enc, nb); /* grow, then move the body up */
	if (a->failed)
		return;
	memmove(a->b + start + nb, a->b + start, body);
	memcpy(a->b + start, enc, nb);
}

static void aml_int(struct buf *a, uint64_t v)
{
	if (v == 0 || v == 1) {
		u8(a, (uint8_t)v); /* ZeroOp, OneOp */
	} else if (v <= 0xff) {
		u8(a, 0x0a);
		le(a, v, 1);
	} else if (v <= 0xffff) {
		u8(a, 0x0b);
		le(a, v, 2);
	} else if (v <= 0xffffffff) {
		u8(a, 0x0c);
		le(a, v, 4);
	} else {
		u8(a, 0x0e);
		le(a, v, 8);
	}
}

static void aml_name(struct buf *a, const char *seg) /* Name(SEG, ...) */
{
	u8(a, 0x08);
	put(a, seg, 4);
}

static void aml_string(struct buf *a, const char *s)
{
	u8(a, 0x0d);
	put(a, s, strlen(s) + 1);
}

/* An EISA id ("PNP0A08") as its compressed 32-bit form. */
static void aml_eisaid(struct buf *a, const char *id)
{
	uint32_t v = (uint32_t)((id[0] - 0x40) << 26 | (id[1] - 0x40) << 21 | (id[2] - 0x40) << 16 |
				strtoul(id + 3, NULL, 16));

	/* Stored big-endian: the manufacturer bytes first. */
	u8(a, 0x0c);
	u8(a, (uint8_t)(v >> 24));
	u8(a, (uint8_t)(v >> 16));
	u8(a, (uint8_t)(v >> 8));
	u8(a, (uint8_t)v);
}

/* Package() {v[0], ...}: a package of integers. */
static void aml_package_ints(struct buf *a, const uint64_t *v, unsigned n)
{
	size_t p;

	u8(a, 0x12); /* PackageOp */
	p = pkg_begin(a);
	u8(a, (uint8_t)n);
	for (unsigned i = 0; i < n; i++)
		aml_int(a, v[i]);
	pkg_end(a, p);
}

/* Device(SEG) {: the body follows; pkg_end(a, returned) closes it. */
static size_t aml_device_begin(struct buf *a, const char *seg)
{
	size_t p;

	u8(a, 0x5b); /* DeviceOp */
	u8(a, 0x82);
	p = pkg_begin(a);
	put(a, seg, 4);
	return p;
}

/* Method(SEG, nargs, NotSerialized) {: the body follows; pkg_end(a, returned) closes it. */
static size_t aml_method_begin(struct buf *a, const char *seg, unsigned nargs)
{
	size_t p;

	u8(a, 0x14); /* MethodOp */
	p = pkg_begin(a);
	put(a, seg, 4);
	u8(a, (uint8_t)(nargs & 7)); /* MethodFlags: ArgCount, not serialized, SyncLevel 0 */
	return p;
}

/* Notify(\_SB.SEG, value). */
static void aml_notify_sb(struct buf *a, const char *seg, uint8_t value)
{
	u8(a, 0x86); /* NotifyOp */
	u8(a, '\\'); /* RootChar */
	u8(a, 0x2e); /* DualNamePrefix */
	put(a, "_SB_", 4);
	put(a, seg, 4);
	aml_int(a, value);
}

/* --- resource descriptors (inside a _CRS buffer) --- */

/* Word/DWord/QWord address space descriptor: a producer window with fixed min and max. */
static void res_addr(struct buf *a, uint8_t tag, unsigned width, uint8_t type, uint8_t tflags,
		     uint64_t base, uint64_t size)
{
	u8(a, tag);
	le(a, 3 + 5 * width, 2);
	u8(a, type);
	u8(a, 0x0c); /* min and max fixed, producer, positive decode */
	u8(a, tflags);
	le(a, 0, width);	       /* granularity */
	le(a, base, width);	       /* min */
	le(a, base + size - 1, width); /* max */
	le(a, 0, width);	       /* translation */
	le(a, size, width);	       /* length */
}

/* I/O ports [base, base+len), 16-bit decode. */
static void res_io(struct buf *a, uint16_t base, uint8_t len)
{
	u8(a, 0x47);
	u8(a, 1);
	le(a, base, 2);
	le(a, base, 2);
	u8(a, 1);
	u8(a, len);
}

static void res_mem32(struct buf *a, uint32_t base, uint32_t len)
{
	u8(a, 0x86);
	le(a, 9, 2);
	u8(a, 1); /* read-write */
	le(a, base, 4);
	le(a, len, 4);
}

/* One interrupt (GSI), active high, level- or edge-triggered, not shared. */
static void res_irq(struct buf *a, uint32_t gsi, bool level)
{
	u8(a, 0x89);
	le(a, 6, 2);
	u8(a, level ? 0x01 : 0x03); /* consumer; edge when bit 1 */
	u8(a, 1);
	le(a, gsi, 4);
}

static void res_end(struct buf *a)
{
	u8(a, 0x79);
	u8(a, 0);
}

/* Name(_CRS, ResourceTemplate() {...}) around the descriptors r holds. */
static void aml_crs(struct buf *a, struct buf *r)
{
	size_t p;

	res_end(r);
	aml_name(a, "_CRS");
	u8(a, 0x11); /* BufferOp */
	p = pkg_begin(a);
	aml_int(a, r->n);
	put(a, r->b, r->n);
	pkg_end(a, p);
	free(r->b);
	if (r->failed)
		a->failed = true;
}

/* _PRT: every slot's INTA-INTD to the swizzled GSIs, as the arm64 interrupt-map does. */
static void aml_prt(struct buf *a, const struct machine *m)
{
	size_t p;

	aml_name(a, "_PRT");
	u8(a, 0x12); /* PackageOp */
	p = pkg_begin(a);
	u8(a, 32 * 4);
	for (unsigned slot = 0; slot < 32; slot++)
		for (unsigned pin = 0; pin < 4; pin++) {
			/* a GSI (the third element 0: not a link device) */
			uint64_t e[4] = {(uint64_t)slot << 16 | 0xffff, pin, 0,
					 pci_swizzle(m->pci_intx_irq, slot, pin + 1)};

			aml_package_ints(a, e, 4);
		}
	pkg_end(a, p);
}

static void aml_pci_host(struct buf *a, const struct machine *m)
{
	struct buf r = {0};
	size_t p = aml_device_begin(a, "PCI0");

	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0A08");
	aml_name(a, "_CID");
	aml_eisaid(a, "PNP0A03");
	aml_name(a, "_SEG");
	aml_int(a, 0);
	aml_name(a, "_BBN");
	aml_int(a, 0);
	aml_name(a, "_UID");
	aml_int(a, 0);
	res_addr(&r, 0x88, 2, 2, 0, 0, m->ecam.size >> 20); /* bus numbers */
	if (m->mmio32.size)
		res_addr(&r, 0x87, 4, 0, 0x01, m->mmio32.base, m->mmio32.size);
	if (m->mmio64.size)
		res_addr(&r, 0x8a, 8, 0, 0x01, m->mmio64.base, m->mmio64.size);
	aml_crs(a, &r);
	aml_prt(a, m);
	pkg_end(a, p);
}

/* A device with an id and the resources one device description gives (COM port, virtio-mmio). */
static void aml_device(struct buf *a, const char *name, const char *eisa, const char *hid,
		       unsigned uid, const struct hw_desc *d)
{
	struct buf r = {0};
	size_t p = aml_device_begin(a, name);

	aml_name(a, "_HID");
	if (eisa)
		aml_eisaid(a, eisa);
	else
		aml_string(a, hid);
	aml_name(a, "_UID");
	aml_int(a, uid);
	if (d->io_port)
		res_io(&r, (uint16_t)d->base, (uint8_t)d->size);
	else
		res_mem32(&r, (uint32_t)d->base, (uint32_t)d->size);
	if (d->has_irq)
		res_irq(&r, d->irq, d->level);
	aml_crs(a, &r);
	pkg_end(a, p);
}

/*
 * The VM generation ID as Linux's vmgenid driver finds it through ACPI: a device with the id
 * "VMGENCTR" whose ADDR is Package() {low 32 bits, high 32 bits} of the ID's address, and
 * Notify(device, 0x80) when the ID changed. Hardware-reduced ACPI has no GPE block: a Generic
 * Event Device (ACPI0013) owns the device's interrupt, and its _EVT (called with the GSI that
 * fired, the only one it lists) sends the Notify.
 */
static void aml_vmgenid(struct buf *a, const struct hw_desc *d)
{
	uint64_t addr[2] = {d->base & 0xffffffffu, d->base >> 32};
	struct buf r = {0};
	size_t p, q;

	p = aml_device_begin(a, "VGEN");
	aml_name(a, "_HID");
	aml_string(a, "VMGENCTR");
	aml_name(a, "_CID");
	aml_string(a, "VM_GEN_COUNTER");
	aml_name(a, "ADDR");
	aml_package_ints(a, addr, 2);
	pkg_end(a, p);

	p = aml_device_begin(a, "GED0");
	aml_name(a, "_HID");
	aml_string(a, "ACPI0013");
	aml_name(a, "_UID");
	aml_int(a, 0);
	res_irq(&r, d->irq, false);
	aml_crs(a, &r);
	q = aml_method_begin(a, "_EVT", 1);
	aml_notify_sb(a, "VGEN", 0x80);
	pkg_end(a, q);
	pkg_end(a, p);
}

/* Every device a guest must be told of: with hardware-reduced ACPI there is no legacy PIC
 * and no ISA interrupt is set up unless a device here claims it. */
static void aml_devices(struct buf *a, const struct machine *m)
{
	unsigned nvirtio = 0;
	char name[8];

	for (size_t i = 0; i < m->ndevices; i++) {
		struct hw_desc d;

		arch_device_hw(&m->devices[i], &d);
		if (d.kind == HW_SERIAL && d.io_port) {
			snprintf(name, sizeof(name), "COM%u", x86_com_index(d.base) + 1);
			aml_device(a, name, "PNP0501", NULL, (unsigned)x86_com_index(d.base), &d);
		} else if (d.kind == HW_VIRTIO_MMIO && d.base + d.size <= 1ull << 32) {
			snprintf(name, sizeof(name), "VR%02X", nvirtio & 0xff);
			aml_device(a, name, NULL, "LNRO0005", nvirtio++, &d);
		} else if (d.kind == HW_VMGENID) {
			aml_vmgenid(a, &d); /* at most one (the machine's checks) */
		}
	}
}

static void aml_dsdt_body(struct buf *a, const struct machine *m)
{
	const uint64_t s5[2] = {X86_ACPI_S5, 0};
	size_t p;

	/* Name(\_S5, Package() {5, 0}): the SLP_TYP values the sleep register takes. */
	aml_name(a, "_S5_");
	aml_package_ints(a, s5, 2);
	u8(a, 0x10); /* Scope(\_SB) */
	p = pkg_begin(a);
	put(a, "\\_SB_", 5);
	aml_devices(a, m);
	if (m->has_pci)
		aml_pci_host(a, m);
	pkg_end(a, p);
}

/* --- tables --- */

static uint8_t checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum += *p++;
	return (uint8_t)-sum;
}

/* The 36-byte header; the length and checksum are fixed up by table_end. */
static void table_begin(struct buf *a, const char *sig, uint8_t rev)
{
	put(a, sig, 4);
	le(a, 0, 4);
	u8(a, rev);
	u8(a, 0);
	put(a, "MICROV", 6);
	put(a, "MICROVM ", 8);
	le(a, 1, 4);
	put(a, "MVM ", 4);
	le(a, 1, 4);
}

static int table_end(struct boot_info *bi, struct buf *a, const char *name, uint64_t gpa)
{
	if (a->failed) {
		free(a->b);
		return -ENOMEM;
	}
	le32_put(a->b + 4, (uint32_t)a->n); /* the table's length */
	a->b[9] = checksum(a->b, a->n);
	return boot_info_add(bi, name, gpa, a->b, a->n);
}

/* Generic address structure: an 8-bit register at an I/O port (0: none). */
static void gas_port(struct buf *a, uint16_t port)
{
	u8(a, port ? 1 : 0); /* system I/O */
	u8(a, port ? 8 : 0);
	u8(a, 0);
	u8(a, port ? 1 : 0); /* byte access */
	le(a, port, 8);
}

static void fadt(struct buf *a, uint64_t dsdt)
{
	table_begin(a, "FACP", 6);
	le(a, 0, 4); /* FIRMWARE_CTRL */
	le(a, 0, 4); /* DSDT (32-bit): X_DSDT is used */
	u8(a, 0);    /* reserved */
	u8(a, 0);    /* preferred PM profile: unspecified */
	le(a, 0, 2); /* SCI_INT: none in hardware-reduced ACPI */
	for (int i = 0; i < 109 - 48; i++)
		u8(a, 0); /* SMI_CMD .. CENTURY: no fixed hardware */
	/* IAPC_BOOT_ARCH: no VGA, no i8042, no CMOS RTC, MSI works */
	le(a, 1u << 2 | 1u << 5, 2);
	u8(a, 0);
	/* Flags: WBINVD, HW_REDUCED_ACPI, RESET_REG_SUP */
	le(a, 1u << 0 | 1u << 20 | 1u << 10, 4);
	gas_port(a, X86_PORT_ACPI_RESET);
	u8(a, X86_ACPI_RESET_VALUE);
	le(a, 0, 2); /* ARM_BOOT_ARCH */
	u8(a, 5);    /* FADT minor version: 6.5 */
	le(a, 0, 8); /* X_FIRMWARE_CTRL */
	le(a, dsdt, 8);
	for (int i = 0; i < 8; i++)
		gas_port(a, 0); /* X_PM1a_EVT_BLK .. X_GPE1_BLK */
	gas_port(a, X86_PORT_ACPI_SLEEP);
	gas_port(a, X86_PORT_ACPI_SLEEP + 1);
	put(a, "MICROVM ", 8); /* hypervisor vendor identity */
}

static void madt(struct buf *a, const struct machine *m)
{
	table_begin(a, "APIC", 5);
	le(a, X86_LAPIC_BASE, 4);
	le(a, 1, 4); /* PCAT_COMPAT: the 8259 PICs exist (and are masked by the kernel) */
	for (unsigned i = 0; i < m->vcpus; i++) {
		u8(a, 0); /* processor local APIC */
		u8(a, 8);
		u8(a, (uint8_t)i); /* ACPI processor UID */
		u8(a, (uint8_t)i); /* APIC ID */
		le(a, 1, 4);	   /* enabled */
	}
	u8(a, 1); /* I/O APIC */
	u8(a, 12);
	u8(a, 0); /* I/O APIC ID */
	u8(a, 0);
	le(a, X86_IOAPIC_BASE, 4);
	le(a, 0, 4); /* GSI base */
	u8(a, 4);    /* local APIC NMI: LINT1 of every processor */
	u8(a, 6);
	u8(a, 0xff);
	le(a, 0, 2);
	u8(a, 1);
}

static void mcfg(struct buf *a, const struct machine *m)
{
	table_begin(a, "MCFG", 1);
	le(a, 0, 8);
	le(a, m->ecam.base, 8);
	le(a, 0, 2);				    /* segment */
	u8(a, 0);				    /* first bus */
	u8(a, (uint8_t)((m->ecam.size >> 20) - 1)); /* last bus */
	le(a, 0, 4);
}

static uint64_t align16(uint64_t v)
{
	return (v + 15) & ~15ull;
}

int x86_acpi_tables(const struct machine *m, struct boot_info *bi)
{
	struct buf t = {0}, x = {0};
	uint64_t at = X86_ACPI_ADDR + 64, addr[4];
	const char *names[] = {"acpi/FACP", "acpi/APIC", "acpi/MCFG", "acpi/DSDT"};
	unsigned n = 0;
	uint64_t dsdt_at;
	int err;

	/* DSDT first (the FADT points at it), then the XSDT's tables, then the XSDT. */
	dsdt_at = at;
	table_begin(&t, "DSDT", 2);
	aml_dsdt_body(&t, m);
	err = table_end(bi, &t, names[3], dsdt_at);
	at = align16(at + t.n);
	for (unsigned i = 0; !err && i < 3; i++) {
		if (i == 2 && !m->has_pci)
			continue;
		memset(&t, 0, sizeof(t));
		if (i == 0)
			fadt(&t, dsdt_at);
		else if (i == 1)
			madt(&t, m);
		else
			mcfg(&t, m);
		addr[n++] = at;
		err = table_end(bi, &t, names[i], at);
		at = align16(at + t.n);
	}
	if (err)
		return err;
	table_begin(&x, "XSDT", 1);
	for (unsigned i = 0; i < n; i++)
		le(&x, addr[i], 8);
	err = table_end(bi, &x, "acpi/XSDT", at);
	if (!err && at + x.n > X86_ACPI_ADDR + X86_ACPI_MAX)
		err = -E2BIG;
	if (err)
		return err;
	/* RSDP (ACPI 2.0+): checksum over the first 20 bytes, extended over all 36. */
	memset(&t, 0, sizeof(t));
	put(&t, "RSD PTR ", 8);
	u8(&t, 0);
	put(&t, "MICROV", 6);
	u8(&t, 2);
	le(&t, 0, 4);
	le(&t, 36, 4);
	le(&t, at, 8);
	u8(&t, 0);
	le(&t, 0, 3);
	if (t.failed) {
		free(t.b);
		return -ENOMEM;
	}
	t.b[8] = checksum(t.b, 20);
	t.b[32] = checksum(t.b, 36);
	return boot_info_add(bi, "acpi/RSDP", X86_ACPI_ADDR, t.b, t.n);
}
