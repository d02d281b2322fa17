/* x86 boot: bzImage header checks, placement, boot_params with e820, page tables and GDT. */
#include "x86.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "boot.h"
#include "device.h"
#include "le.h"
#include "machine.h"

#define SZ_4K	      0x1000ull
#define HDR_START     0x1f1
#define LOADED_HIGH   0x01
#define XLF_KERNEL_64 0x01

int x86_bzimage_parse(const uint8_t *k, size_t len, struct x86_bzimage *img, char *why,
		      size_t whylen)
{
	unsigned sects;

	memset(img, 0, sizeof(*img));
	if (len < 0x270 || le16_get(k + 0x1fe) != 0xaa55 || memcmp(k + 0x202, "HdrS", 4)) {
		snprintf(why, whylen,
			 "not an x86 bzImage (no boot sector signature and "
			 "\"HdrS\" setup header)");
		return -EINVAL;
	}
	img->version = le16_get(k + 0x206);
	if (img->version < 0x20c) {
		snprintf(why, whylen, "boot protocol %u.%02u is older than 2.12 (64-bit entry)",
			 img->version >> 8, img->version & 0xff);
		return -EINVAL;
	}
	img->header_end = 0x202u + k[0x201];
	if (img->header_end < 0x268 || img->header_end - HDR_START > 160) {
		snprintf(why, whylen, "setup header length 0x%x is out of range", img->header_end);
		return -EINVAL;
	}
	img->loadflags = k[0x211];
	img->xloadflags = le16_get(k + 0x236);
	if (!(img->loadflags & LOADED_HIGH) || !(img->xloadflags & XLF_KERNEL_64)) {
		snprintf(why, whylen,
			 "no 64-bit entry point loaded at 1 MiB "
			 "(loadflags/xloadflags)");
		return -EINVAL;
	}
	sects = k[0x1f1] ? k[0x1f1] : 4;
	/* The real-mode setup is loaded just below 1 MiB: keep it above the ACPI area. */
	img->setup_size = (sects + 1) * 512;
	if (img->setup_size > X86_HIGH_RAM - X86_ACPI_ADDR - X86_ACPI_MAX) {
		snprintf(why, whylen, "real-mode setup of %u sectors is too large", sects);
		return -EINVAL;
	}
	img->initrd_addr_max = le32_get(k + 0x22c);
	img->cmdline_size = le32_get(k + 0x238);
	img->pref_address = le64_get(k + 0x258);
	img->init_size = le32_get(k + 0x260);
	if (!img->init_size || img->pref_address < X86_HIGH_RAM ||
	    img->pref_address > (1ull << 40)) {
		snprintf(why, whylen,
			 "header gives an implausible footprint (init_size "
			 "0x%x at 0x%llx)",
			 img->init_size, (unsigned long long)img->pref_address);
		return -EINVAL;
	}
	if (len < img->setup_size) {
		snprintf(why, whylen, "shorter than its real-mode setup (%zu bytes)", len);
		return -EINVAL;
	}
	return 0;
}

/* Where RAM below the PCI hole ends (the initrd stays below it); the machine split it. */
static uint64_t low_ram_end(const struct machine *m)
{
	return m->ram_base + m->ram_low_size;
}

int x86_boot_layout(const struct machine *m, const uint8_t *kernel, size_t klen, size_t initrd_len,
		    struct boot_layout *bl, char *why, size_t whylen)
{
	struct x86_bzimage img;
	uint64_t top, max;
	char *cmdline;
	size_t cmdlen;
	int err;

	memset(bl, 0, sizeof(*bl));
	if (!kernel)
		return 0;
	err = x86_bzimage_parse(kernel, klen, &img, why, whylen);
	if (err)
		return err;
	/* The kernel keeps cmdline_size bytes of its command line (the NUL not counted). */
	cmdline = x86_cmdline(m);
	cmdlen = cmdline ? strlen(cmdline) : 0;
	free(cmdline);
	if (cmdlen > img.cmdline_size) {
		snprintf(why, whylen,
			 "the kernel takes a command line of at most %u bytes, and this one is %zu "
			 "(with what microvm puts first: console=, microvm.boot_timer=)",
			 img.cmdline_size, cmdlen);
		return -E2BIG;
	}
	/* The file is loaded so that its protected-mode part starts at 1 MiB. */
	bl->kernel_addr = X86_HIGH_RAM - img.setup_size;
	bl->entry = X86_HIGH_RAM + 0x200; /* startup_64 */
	/* The kernel decompresses itself to pref_address (init_size bytes) or above. */
	bl->kernel_end = img.pref_address + img.init_size;
	if (bl->kernel_end < X86_HIGH_RAM + klen - img.setup_size)
		bl->kernel_end = X86_HIGH_RAM + klen - img.setup_size;
	if (bl->kernel_end > low_ram_end(m)) {
		snprintf(why, whylen,
			 "needs RAM up to 0x%llx (it decompresses to 0x%llx), more than "
			 "the %llu MiB of RAM",
			 (unsigned long long)bl->kernel_end, (unsigned long long)img.pref_address,
			 (unsigned long long)(m->ram_size >> 20));
		return -EINVAL;
	}
	memcpy(bl->setup, kernel + HDR_START, img.header_end - HDR_START);
	bl->setup_len = img.header_end - HDR_START;
	if (initrd_len) {
		max = (uint64_t)img.initrd_addr_max + 1;
		top = low_ram_end(m) < max ? low_ram_end(m) : max;
		if (top < bl->kernel_end || initrd_len > top - bl->kernel_end) {
			snprintf(why, whylen,
				 "initrd of %zu KiB does not fit between the kernel (to 0x%llx) "
				 "and 0x%llx",
				 initrd_len >> 10, (unsigned long long)bl->kernel_end,
				 (unsigned long long)top);
			return -EINVAL;
		}
		bl->initrd_addr = (top - initrd_len) & ~(SZ_4K - 1);
		bl->initrd_size = initrd_len;
		if (bl->initrd_addr < bl->kernel_end) {
			snprintf(why, whylen, "initrd of %zu KiB does not fit above the kernel",
				 initrd_len >> 10);
			return -EINVAL;
		}
	}
	return 0;
}

static unsigned e820_add(struct x86_e820 *e, unsigned n, unsigned max, uint64_t addr, uint64_t size,
			 uint32_t type)
{
	if (n < max && size)
		e[n++] = (struct x86_e820){addr, size, type};
	return n;
}

unsigned x86_e820(const struct machine *m, struct x86_e820 *e, unsigned max)
{
	unsigned n = 0;

	/* Conventional memory up to the EBDA, the BIOS area (ACPI tables), then the rest. */
	n = e820_add(e, n, max, 0, X86_EBDA_START, X86_E820_RAM);
	n = e820_add(e, n, max, X86_ACPI_ADDR, X86_HIGH_RAM - X86_ACPI_ADDR, X86_E820_RESERVED);
	n = e820_add(e, n, max, X86_HIGH_RAM, low_ram_end(m) - X86_HIGH_RAM, X86_E820_RAM);
	n = e820_add(e, n, max, 1ull << 32, m->ram_size - m->ram_low_size, X86_E820_RAM);
	/* The ECAM window: the kernel uses MCFG only where firmware reserved it. */
	if (m->has_pci)
		n = e820_add(e, n, max, m->ecam.base, m->ecam.size, X86_E820_RESERVED);
	return n;
}

/* boot_params: the setup header from the bzImage, then what the boot loader fills. */
static uint8_t *zero_page(const struct machine *m, const struct boot_layout *bl, size_t cmdlen)
{
	struct x86_e820 e[X86_E820_MAX];
	uint8_t *zp = calloc(1, 4096);
	unsigned n = x86_e820(m, e, X86_E820_MAX);

	if (!zp)
		return NULL;
	memcpy(zp + HDR_START, bl->setup, bl->setup_len);
	le16_put(zp + 0x1fa, 0xffff); /* vid_mode: normal */
	zp[0x210] = 0xff;	      /* type_of_loader: undefined */
	zp[0x211] |= 0x80;	      /* loadflags: CAN_USE_HEAP */
	le16_put(zp + 0x224, 0xde00); /* heap_end_ptr */
	le32_put(zp + 0x228, (uint32_t)X86_CMDLINE_ADDR);
	le32_put(zp + 0x238, (uint32_t)cmdlen);
	le32_put(zp + 0x218, (uint32_t)bl->initrd_addr);
	le32_put(zp + 0x21c, (uint32_t)bl->initrd_size);
	le32_put(zp + 0x0c0, (uint32_t)(bl->initrd_addr >> 32));
	le32_put(zp + 0x0c4, (uint32_t)(bl->initrd_size >> 32));
	le64_put(zp + 0x070, X86_ACPI_ADDR); /* acpi_rsdp_addr */
	zp[0x1e8] = (uint8_t)n;
	for (unsigned i = 0; i < n; i++) {
		uint8_t *p = zp + 0x2d0 + 20 * i;

		le64_put(p, e[i].addr);
		le64_put(p + 8, e[i].size);
		le32_put(p + 16, e[i].type);
	}
	return zp;
}

/* A GDT with 64-bit code and data segments (the IDT after it stays empty). */
static uint8_t *gdt(void)
{
	uint8_t *t = calloc(1, X86_IDT_ADDR + 8 - X86_GDT_ADDR);

	/* null, unused, 64-bit code (0x10), data (0x18) */
	if (t) {
		le64_put(t + X86_SEL_CODE, 0x00af9b000000ffffull);
		le64_put(t + X86_SEL_DATA, 0x00cf93000000ffffull);
	}
	return t;
}

/* Page tables identity-mapping the first 4 GiB with 2 MiB pages: PML4, PDPT, 4 PDs. */
static uint8_t *page_tables(void)
{
	uint8_t *pml4 = calloc(6, SZ_4K), *pdpt = pml4 + SZ_4K;

	if (!pml4)
		return NULL;
	le64_put(pml4, (X86_PML4_ADDR + SZ_4K) | 3);
	for (unsigned i = 0; i < 4; i++) {
		uint8_t *pd = pdpt + SZ_4K * (1 + i);

		le64_put(pdpt + 8 * i, (X86_PML4_ADDR + SZ_4K * (2 + i)) | 3);
		for (unsigned j = 0; j < 512; j++)
			le64_put(pd + 8 * j, ((uint64_t)(i * 512 + j) << 21) | 0x83);
	}
	return pml4;
}

/* Add data (NULL: out of memory) as chunk name unless an earlier step failed. */
static int add(struct boot_info *bi, int err, const char *name, uint64_t gpa, void *data,
	       size_t len)
{
	if (err || !data) {
		free(data);
		return err ?: -ENOMEM;
	}
	return boot_info_add(bi, name, gpa, data, len);
}

int x86_boot_info(const struct machine *m, const struct boot_layout *bl, struct boot_info *bi)
{
	char *cmdline = x86_cmdline(m);
	size_t cmdlen = cmdline ? strlen(cmdline) : 0;
	int err = cmdlen + 1 > X86_CMDLINE_MAX ? -E2BIG : 0;

	err = add(bi, err, "cmdline", X86_CMDLINE_ADDR, cmdline, cmdlen + 1);
	err = add(bi, err, "boot_params", X86_ZERO_PAGE, err ? NULL : zero_page(m, bl, cmdlen),
		  4096);
	err = add(bi, err, "gdt", X86_GDT_ADDR, err ? NULL : gdt(),
		  X86_IDT_ADDR + 8 - X86_GDT_ADDR);
	err = add(bi, err, "page_tables", X86_PML4_ADDR, err ? NULL : page_tables(), 6 * SZ_4K);
	err = err ?: x86_acpi_tables(m, bi);
	if (err)
		boot_info_free(bi);
	bi->arg = X86_ZERO_PAGE;
	return err;
}
