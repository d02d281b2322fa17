/* Unit tests: the x86-64 model: bzImage headers, placement, boot_params/e820, ACPI, CF8. */
#include <errno.h>
#include <stdlib.h>

#include "arch.h"
#include "array.h"
#include "boot.h"
#include "le.h"
#include "machine.h"
#include "mem.h"
#include "test.h"
#include "arch/x86/x86.h"

/* A plausible 6.12 bzImage header: protocol 2.15, 64-bit entry, relocatable. */
static void bzimage(uint8_t *k, size_t len)
{
	memset(k, 0, len);
	k[0x1f1] = 27; /* setup_sects */
	k[0x1fe] = 0x55;
	k[0x1ff] = 0xaa;
	k[0x200] = 0xeb;
	k[0x201] = 0x6a; /* header ends at 0x26c */
	memcpy(k + 0x202, "HdrS", 4);
	k[0x206] = 0x0f;
	k[0x207] = 0x02;
	k[0x211] = 0x01;		 /* LOADED_HIGH */
	le32_put(k + 0x22c, 0x7fffffff); /* initrd_addr_max */
	k[0x236] = 0x03;		 /* XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G */
	le32_put(k + 0x238, 2047);	 /* cmdline_size */
	le32_put(k + 0x258, 0x1000000);	 /* pref_address */
	le32_put(k + 0x260, 0x800000);	 /* init_size */
}

static void test_bzimage(void)
{
	uint8_t k[4096];
	struct x86_bzimage img;
	char why[256];

	/* The parser reads the header only; len is the file's length. */
	bzimage(k, sizeof(k));
	CHECK(x86_bzimage_parse(k, 0x8000, &img, why, sizeof(why)) == 0);
	CHECK_EQ(img.setup_size, 28 * 512);
	CHECK_EQ(img.version, 0x20f);
	CHECK_EQ(img.header_end, 0x26c);
	CHECK_EQ(img.init_size, 0x800000);
	/* Truncated, foreign, too old, 32-bit only, absurd setup or footprint: refused. */
	CHECK(x86_bzimage_parse(k, 0x200, &img, why, sizeof(why)) == -EINVAL);
	k[0x202] = 'X';
	CHECK(x86_bzimage_parse(k, 0x8000, &img, why, sizeof(why)) == -EINVAL);
	CHECK(strstr(why, "not an x86 bzImage") != NULL);
	bzimage(k, sizeof(k));
	k[0x206] = 0x0b;
	CHECK(x86_bzimage_parse(k, 0x8000, &img, why, sizeof(why)) == -EINVAL);
	CHECK(strstr(why, "older than 2.12") != NULL);
	bzimage(k, sizeof(k));
	k[0x236] = 0;
	CHECK(x86_bzimage_parse(k, 0x8000, &img, why, sizeof(why)) == -EINVAL);
	CHECK(strstr(why, "64-bit entry") != NULL);
	bzimage(k, sizeof(k));
	k[0x1f1] = 200;
	CHECK(x86_bzimage_parse(k, 0x80000, &img, why, sizeof(why)) == -EINVAL);
	CHECK(strstr(why, "setup of 200 sectors") != NULL);
	bzimage(k, sizeof(k));
	k[0x201] = 0xff;
	CHECK(x86_bzimage_parse(k, 0x8000, &img, why, sizeof(why)) == -EINVAL);
	CHECK(strstr(why, "header length") != NULL);
	bzimage(k, sizeof(k));
	le32_put(k + 0x260, 0);
	CHECK(x86_bzimage_parse(k, 0x8000, &img, why, sizeof(why)) == -EINVAL);
	CHECK(strstr(why, "implausible footprint") != NULL);
	bzimage(k, sizeof(k));
	CHECK(x86_bzimage_parse(k, 0x1000, &img, why, sizeof(why)) == -EINVAL);
	CHECK(strstr(why, "shorter than its real-mode setup") != NULL);
}

static int load(struct machine *m, const char *const *sets, size_t n)
{
	return machine_load(m, "machines/x86_64.ini", (char *const *)sets, n, false);
}

static void test_layout(void)
{
	static const char *const small[] = {"memory.size=20M"};
	uint8_t k[0x3800 + 0x1000];
	struct boot_layout bl;
	struct machine m;
	char why[256], *s;

	bzimage(k, sizeof(k));
	CHECK(load(&m, NULL, 0) == 0);
	CHECK(x86_boot_layout(&m, k, sizeof(k), 0x500000, &bl, why, sizeof(why)) == 0);
	CHECK_EQ(bl.kernel_addr, 0x100000 - 28 * 512); /* protected mode at 1 MiB */
	CHECK_EQ(bl.entry, 0x100200);
	CHECK_EQ(bl.kernel_end, 0x1800000);
	/* The initrd at the top of RAM, page aligned, above the kernel. */
	CHECK_EQ(bl.initrd_addr, (512ull << 20) - 0x500000);
	CHECK(bl.initrd_addr >= bl.kernel_end);
	CHECK_EQ(bl.setup_len, 0x26c - 0x1f1);
	/* The kernel keeps cmdline_size bytes of the line, with what microvm puts first. */
	s = x86_cmdline(&m);
	CHECK(s && strstr(s, "console=ttyS0"));
	le32_put(k + 0x238, s ? strlen(s) : 0);
	CHECK(x86_boot_layout(&m, k, sizeof(k), 0, &bl, why, sizeof(why)) == 0);
	le32_put(k + 0x238, s ? strlen(s) - 1 : 0);
	CHECK(x86_boot_layout(&m, k, sizeof(k), 0, &bl, why, sizeof(why)) == -E2BIG);
	CHECK(strstr(why, "at most") && strstr(why, "console="));
	free(s);
	le32_put(k + 0x238, 2047);
	/* An initrd that does not fit between the kernel and the top of RAM. */
	CHECK(x86_boot_layout(&m, k, sizeof(k), 500u << 20, &bl, why, sizeof(why)) == -EINVAL);
	machine_free(&m);
	/* RAM smaller than the kernel's footprint (it decompresses to 16 MiB + 8 MiB). */
	CHECK(load(&m, small, 1) == 0);
	CHECK(x86_boot_layout(&m, k, sizeof(k), 0, &bl, why, sizeof(why)) == -EINVAL);
	CHECK(strstr(why, "decompresses") != NULL);
	machine_free(&m);
	/* initrd_addr_max caps the initrd's place. */
	CHECK(load(&m, NULL, 0) == 0);
	le32_put(k + 0x22c, 0x0fffffff);
	CHECK(x86_boot_layout(&m, k, sizeof(k), 0x100000, &bl, why, sizeof(why)) == 0);
	CHECK_EQ(bl.initrd_addr + bl.initrd_size, 0x10000000);
	/* An initrd_addr_max below the kernel's footprint leaves the initrd no place. */
	le32_put(k + 0x22c, 0xfff);
	CHECK(x86_boot_layout(&m, k, sizeof(k), 0x1000, &bl, why, sizeof(why)) == -EINVAL);
	machine_free(&m);
}

static void test_e820_boot_params(void)
{
	static const char *const sets[] = {"memory.size=3G"};
	uint8_t k[0x3800 + 0x1000];
	struct x86_e820 e[X86_E820_MAX];
	struct boot_layout bl;
	struct boot_info bi = {0};
	const struct boot_chunk *zp, *cl;
	struct machine m;
	char why[256];
	unsigned n;

	CHECK(load(&m, sets, 1) == 0);
	n = x86_e820(&m, e, X86_E820_MAX);
	CHECK_EQ(n, 4);
	CHECK(e[0].addr == 0 && e[0].size == 0x9fc00 && e[0].type == X86_E820_RAM);
	CHECK(e[1].addr == 0xe0000 && e[1].type == X86_E820_RESERVED);
	CHECK(e[2].addr == 0x100000 && e[2].addr + e[2].size == 3ull << 30);
	CHECK(e[3].addr == 0xe0000000 && e[3].size == 16 << 20 && e[3].type == X86_E820_RESERVED);
	bzimage(k, sizeof(k));
	CHECK(x86_boot_layout(&m, k, sizeof(k), 0x200000, &bl, why, sizeof(why)) == 0);
	CHECK(x86_boot_info(&m, &bl, &bi) == 0);
	CHECK_EQ(bi.arg, X86_ZERO_PAGE);
	zp = boot_info_find(&bi, "boot_params");
	cl = boot_info_find(&bi, "cmdline");
	CHECK(zp && zp->gpa == X86_ZERO_PAGE && zp->len == 4096);
	CHECK(cl && cl->gpa == X86_CMDLINE_ADDR);
	if (zp && cl) {
		const uint8_t *p = zp->data;

		CHECK(!memcmp(p + 0x202, "HdrS", 4)); /* the setup header, copied */
		CHECK_EQ(p[0x210], 0xff);
		CHECK_EQ(le32_get(p + 0x228), X86_CMDLINE_ADDR);
		CHECK_EQ(le32_get(p + 0x238), strlen(cl->data));
		CHECK_EQ(le32_get(p + 0x218), bl.initrd_addr);
		CHECK_EQ(le32_get(p + 0x21c), 0x200000);
		CHECK_EQ(le64_get(p + 0x70), X86_ACPI_ADDR);
		CHECK_EQ(p[0x1e8], 4);
		CHECK_EQ(le64_get(p + 0x2d0 + 20 * 2), 0x100000);
		CHECK_EQ(le64_get(p + 0x2d0 + 20 * 2 + 8), (3ull << 30) - 0x100000);
		CHECK(strstr(cl->data, "console=ttyS0") != NULL);
		CHECK(strstr(cl->data, "microvm.boot_timer=0xd0800000") != NULL);
		CHECK(strstr(cl->data, "panic=-1") != NULL);
	}
	/* The page tables map 4 GiB with 2 MiB pages; no chunk overlaps another. */
	cl = boot_info_find(&bi, "page_tables");
	CHECK(cl && cl->gpa == X86_PML4_ADDR);
	if (cl) {
		const uint8_t *pt = cl->data;

		CHECK_EQ(le64_get(pt), (X86_PML4_ADDR + 0x1000) | 3);
		CHECK_EQ(le64_get(pt + 0x2000 + 8 * 511 + 3 * 0x1000),
			 ((4ull << 30) - (2 << 20)) | 0x83);
	}
	for (unsigned i = 0; i < bi.n; i++)
		for (unsigned j = i + 1; j < bi.n; j++)
			CHECK(bi.chunk[i].gpa + bi.chunk[i].len <= bi.chunk[j].gpa ||
			      bi.chunk[j].gpa + bi.chunk[j].len <= bi.chunk[i].gpa);
	boot_info_free(&bi);
	machine_free(&m);
}

/* 5 GiB of RAM: 3 GiB below the PCI hole, 2 GiB at 4 GiB; e820, memory slots, placement. */
static void test_split_ram(void)
{
	static const char *const sets[] = {"memory.size=5G"};
	static uint8_t host[64];
	uint8_t k[0x3800 + 0x1000];
	struct x86_e820 e[X86_E820_MAX];
	struct boot_layout bl;
	struct machine m;
	struct guest_mem mem;
	char why[256];
	unsigned n;

	CHECK(load(&m, sets, 1) == 0);
	CHECK_EQ(m.ram_low_size, 3ull << 30);
	n = x86_e820(&m, e, X86_E820_MAX);
	CHECK_EQ(n, 5);
	CHECK(e[2].addr == 0x100000 && e[2].addr + e[2].size == 3ull << 30);
	CHECK(e[3].addr == 4ull << 30 && e[3].size == 2ull << 30 && e[3].type == X86_E820_RAM);
	/* The initrd stays below the hole (and initrd_addr_max). */
	bzimage(k, sizeof(k));
	CHECK(x86_boot_layout(&m, k, sizeof(k), 0x100000, &bl, why, sizeof(why)) == 0);
	CHECK_EQ(bl.initrd_addr + bl.initrd_size, 0x80000000);
	machine_free(&m);
	/* Translation over two regions in one host mapping: 32 bytes low at 0, 32 high at 4G. */
	mem = (struct guest_mem){
		.hva = host, .gpa = 0, .size = 32, .hi_gpa = 1ull << 32, .hi_size = 32};
	CHECK(gm_ptr(&mem, 0, 32) == host);
	CHECK(gm_ptr(&mem, 1ull << 32, 32) == host + 32);
	CHECK(gm_ptr(&mem, (1ull << 32) + 31, 1) == host + 63);
	CHECK(gm_ptr(&mem, 16, 32) == NULL);		  /* runs past the low region */
	CHECK(gm_ptr(&mem, 32, 1) == NULL);		  /* the hole */
	CHECK(gm_ptr(&mem, (1ull << 32) - 1, 2) == NULL); /* straddles the hole's end */
	CHECK(gm_ptr(&mem, (1ull << 32) + 16, 32) == NULL);
	CHECK(gm_ptr(&mem, UINT64_MAX, 2) == NULL);
}

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s += *p++;
	return s;
}

static void test_acpi(void)
{
	static const char *const sets[] = {"machine.vcpus=4",
					   "blk0.type=virtio-blk",
					   "blk0.path=tests/configs/data/disk.img",
					   "blk0.transport=mmio",
					   "net0.type=virtio-net",
					   "net0.transport=pci"};
	struct boot_info bi = {0};
	const struct boot_chunk *c;
	struct machine m;
	const char *tables[] = {"acpi/XSDT", "acpi/FACP", "acpi/APIC", "acpi/DSDT", "acpi/MCFG"};

	CHECK(load(&m, sets, 6) == 0);
	CHECK(x86_acpi_tables(&m, &bi) == 0);
	c = boot_info_find(&bi, "acpi/RSDP");
	CHECK(c && c->gpa == X86_ACPI_ADDR && c->len == 36);
	if (c) {
		const uint8_t *r = c->data;

		CHECK(!memcmp(r, "RSD PTR ", 8));
		CHECK_EQ(sum(r, 20), 0);
		CHECK_EQ(sum(r, 36), 0);
		CHECK(boot_info_find(&bi, "acpi/XSDT") &&
		      le64_get(r + 24) == boot_info_find(&bi, "acpi/XSDT")->gpa);
	}
	for (size_t i = 0; i < ARRAY_SIZE(tables); i++) {
		c = boot_info_find(&bi, tables[i]);
		CHECK(c != NULL);
		if (!c)
			continue;
		CHECK(!memcmp(c->data, tables[i] + 5, 4));
		CHECK_EQ(le32_get((uint8_t *)c->data + 4), c->len);
		CHECK_EQ(sum(c->data, c->len), 0);
		CHECK(c->gpa >= X86_ACPI_ADDR && c->gpa + c->len <= X86_ACPI_ADDR + X86_ACPI_MAX);
	}
	/* XSDT: FADT, MADT and MCFG by address. */
	c = boot_info_find(&bi, "acpi/XSDT");
	if (c) {
		CHECK_EQ(c->len, 36 + 3 * 8);
		CHECK_EQ(le64_get((uint8_t *)c->data + 36), boot_info_find(&bi, "acpi/FACP")->gpa);
	}
	/* FADT: hardware-reduced, the DSDT, sleep and reset registers on our ports. */
	c = boot_info_find(&bi, "acpi/FACP");
	if (c) {
		const uint8_t *f = c->data;

		CHECK_EQ(c->len, 276);
		CHECK(le32_get(f + 112) & 1u << 20);
		CHECK_EQ(le64_get(f + 140), boot_info_find(&bi, "acpi/DSDT")->gpa);
		CHECK(f[244] == 1 && le64_get(f + 248) == X86_PORT_ACPI_SLEEP);
		CHECK(f[116] == 1 && le64_get(f + 120) == X86_PORT_ACPI_RESET);
		CHECK_EQ(f[128], X86_ACPI_RESET_VALUE);
	}
	/* MADT: four enabled LAPICs with IDs 0-3, the IOAPIC at its window, the LINT1 NMI. */
	c = boot_info_find(&bi, "acpi/APIC");
	if (c) {
		const uint8_t *p = (uint8_t *)c->data + 44, *end = (uint8_t *)c->data + c->len;
		unsigned lapics = 0, ioapics = 0, nmis = 0;

		for (; p < end && p[1]; p += p[1]) {
			if (p[0] == 0 && p[3] == lapics && le32_get(p + 4) == 1)
				lapics++;
			if (p[0] == 1 && le32_get(p + 4) == X86_IOAPIC_BASE)
				ioapics++;
			if (p[0] == 4 && p[5] == 1)
				nmis++;
		}
		CHECK(p == end);
		CHECK_EQ(lapics, 4);
		CHECK_EQ(ioapics, 1);
		CHECK_EQ(nmis, 1);
	}
	/* DSDT: \_S5, the devices and the host bridge with its routing table. */
	c = boot_info_find(&bi, "acpi/DSDT");
	if (c) {
		CHECK(memmem(c->data, c->len, "_S5_", 4) != NULL);
		CHECK(memmem(c->data, c->len, "PCI0", 4) != NULL);
		CHECK(memmem(c->data, c->len, "_PRT", 4) != NULL);
		/* COM1 (PNP0501) and the virtio-mmio disk (LNRO0005) with their interrupts. */
		CHECK(memmem(c->data, c->len, "COM1", 4) != NULL);
		CHECK(memmem(c->data, c->len, "VR00", 4) != NULL);
		CHECK(memmem(c->data, c->len, "LNRO0005", 8) != NULL);
		CHECK(memmem(c->data, c->len, "\x89\x06\x00\x03\x01\x05\x00\x00\x00", 9) != NULL);
		CHECK(memmem(c->data, c->len, "\x89\x06\x00\x01\x01\x04\x00\x00\x00", 9) != NULL);
		/* The VM generation ID: its id, ADDR = Package() {0xd0801000, 0}; the GED on
		 * GSI 20 (edge, active high) whose _EVT (one argument) does Notify(\_SB.VGEN,
		 * 0x80). */
		CHECK(memmem(c->data, c->len, "\x08_HID\x0dVMGENCTR\0", 15) != NULL);
		CHECK(memmem(c->data, c->len,
			     "\x08"
			     "ADDR\x12\x08\x02\x0c\x00\x10\x80\xd0\x00",
			     14) != NULL);
		CHECK(memmem(c->data, c->len,
			     "\x0d"
			     "ACPI0013\0",
			     10) != NULL);
		CHECK(memmem(c->data, c->len, "\x89\x06\x00\x03\x01\x14\x00\x00\x00", 9) != NULL);
		CHECK(memmem(c->data, c->len, "_EVT\x01\x86\\\x2e_SB_VGEN\x0a\x80", 18) != NULL);
	}
	boot_info_free(&bi);
	machine_free(&m);
}

static void test_cmdline(void)
{
	static const char *const sets[] = {
		"blk0.type=virtio-blk", "blk0.path=tests/configs/data/disk.img",
		"blk0.transport=mmio", "boot.cmdline=console=hvc0 quiet"};
	struct machine m;
	char *s;

	CHECK(load(&m, sets, 4) == 0);
	s = x86_cmdline(&m);
	CHECK(s != NULL);
	if (s) {
		/* Devices are in the DSDT; the configured console wins; the user's words last. */
		CHECK(strstr(s, "virtio_mmio.device") == NULL);
		CHECK(strstr(s, "console=ttyS0") == NULL);
		CHECK(strlen(s) > 18 && !strcmp(s + strlen(s) - 18, "console=hvc0 quiet"));
	}
	free(s);
	machine_free(&m);
}

static void test_cf8(void)
{
	/* enable | bus 2 | device 3 | function 1 | register 0x10, byte 2 */
	CHECK_EQ(x86_cf8_to_ecam(0x80000000u | 2 << 16 | 3 << 11 | 1 << 8 | 0x10, 2),
		 2 << 20 | 3 << 15 | 1 << 12 | 0x12);
	/* The two low bits of the address select nothing: the data port's offset does. */
	CHECK_EQ(x86_cf8_to_ecam(0x80000000u | 0x13, 0), 0x10);
	CHECK_EQ(x86_cf8_to_ecam(0x80000000u | 0xff << 16 | 31 << 11 | 7 << 8 | 0xfc, 3),
		 0xff << 20 | 31 << 15 | 7 << 12 | 0xff);
}

void test_x86(void)
{
	test_bzimage();
	test_layout();
	test_e820_boot_params();
	test_split_ram();
	test_acpi();
	test_cmdline();
	test_cf8();
}
