/* x86: constants and helpers shared by the x86-64 machine model, boot loader and KVM code. */
#ifndef MICROVM_X86_H
#define MICROVM_X86_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Fixed platform windows (the guest kernel expects them here). */
#define X86_IOAPIC_BASE 0xfec00000ull
#define X86_IOAPIC_SIZE 0x1000ull
#define X86_LAPIC_BASE	0xfee00000ull
#define X86_LAPIC_SIZE	0x100000ull
#define X86_IOAPIC_PINS 24	      /* device irq N is IOAPIC pin N, GSI N */
#define X86_PCI_HOLE	0xc0000000ull /* RAM below 4 GiB ends here at most */
#define X86_IOPORTS	0x10000
/*
 * KVM's private pages (Intel VMX; AMD ignores them): the identity-map page table, then the
 * real-mode TSS's three pages. Guest accesses there never reach microvm: claimed like the
 * windows above, so that no device is placed over them.
 */
#define X86_KVM_IDMAP_ADDR 0xfffbc000ull
#define X86_KVM_TSS_ADDR   0xfffbd000ull
#define X86_KVM_PAGES_SIZE 0x4000ull /* both, from X86_KVM_IDMAP_ADDR */

/* Guest-physical layout of what microvm writes before the first run (all in low RAM). */
#define X86_GDT_ADDR	 0x500ull
#define X86_IDT_ADDR	 0x520ull
#define X86_BOOT_STACK	 0x8ff0ull
#define X86_ZERO_PAGE	 0x7000ull
#define X86_PML4_ADDR	 0x9000ull /* then the PDPT and 4 PDs: 4 GiB identity-mapped */
#define X86_CMDLINE_ADDR 0x20000ull
#define X86_CMDLINE_MAX	 0x10000ull
#define X86_EBDA_START	 0x9fc00ull
#define X86_ACPI_ADDR	 0xe0000ull /* RSDP (found by the BIOS-area scan too) and tables */
#define X86_ACPI_MAX	 0x10000ull
#define X86_HIGH_RAM	 0x100000ull /* the protected-mode kernel is loaded here */

/* GDT selectors of the 64-bit entry. */
#define X86_SEL_CODE 0x10
#define X86_SEL_DATA 0x18

/* I/O ports of microvm's platform devices. */
#define X86_PORT_PCI_ADDR    0xcf8 /* PCI configuration mechanism #1 */
#define X86_PORT_PCI_DATA    0xcfc
#define X86_PORT_I8042_CMD   0x64  /* 0xfe written here resets the machine */
#define X86_PORT_POST	     0x80  /* the kernel's I/O delay port */
#define X86_PORT_ACPI_SLEEP  0x600 /* FADT sleep control; +1 status; +2 reset */
#define X86_PORT_ACPI_RESET  (X86_PORT_ACPI_SLEEP + 2)
#define X86_ACPI_RESET_VALUE 0x0f
#define X86_ACPI_S5	     5 /* SLP_TYP of \_S5 */
#define X86_ACPI_SLP_EN	     0x20

struct machine;
struct boot_layout;
struct boot_info;

/* bzImage setup header fields microvm uses (offsets into the file / boot_params). */
struct x86_bzimage {
	uint32_t setup_size; /* bytes before the protected-mode kernel */
	uint16_t version;
	uint8_t loadflags;
	uint16_t xloadflags;
	uint32_t initrd_addr_max, cmdline_size, init_size;
	uint64_t pref_address;
	uint32_t header_end; /* the setup header is [0x1f1, header_end) */
};

/* Parse a bzImage's setup header from its first len bytes; why says what is wrong. -EINVAL. */
int x86_bzimage_parse(const uint8_t *k, size_t len, struct x86_bzimage *img, char *why,
		      size_t whylen);

struct vm;

/* arch hooks (struct arch): placement of kernel and initrd, boot information, platform. */
int x86_boot_layout(const struct machine *m, const uint8_t *kernel, size_t klen, size_t initrd_len,
		    struct boot_layout *bl, char *why, size_t whylen);
int x86_boot_info(const struct machine *m, const struct boot_layout *bl, struct boot_info *bi);
/* Register the platform's I/O ports (PCI config mechanism #1, ACPI sleep/reset, i8042). */
int x86_platform_realize(struct vm *vm);

/* The PCI configuration address latch (0xcf8): its value, after storing *set unless NULL. */
uint32_t x86_platform_cf8(const struct vm *vm, const uint32_t *set);
/* Read the MSRs this host's KVM saves (KVM_GET_MSR_INDEX_LIST), for snapshots. 0 or -errno. */
int x86_snap_init(struct vm *vm);

/* Which COM port (0-3: ttyS0-3) I/O port base is, or -1. */
int x86_com_index(uint64_t port);
/* The ECAM offset that PCI configuration address cf8 selects, plus byte (0-3). */
uint32_t x86_cf8_to_ecam(uint32_t cf8, unsigned byte);

/* One e820 entry. */
struct x86_e820 {
	uint64_t addr, size;
	uint32_t type;
};
#define X86_E820_RAM	  1
#define X86_E820_RESERVED 2
#define X86_E820_MAX	  128

/* The e820 map of m (RAM around the legacy hole, reserved windows); returns the count. */
unsigned x86_e820(const struct machine *m, struct x86_e820 *e, unsigned max);
/* The ACPI tables of m (each a chunk "acpi/SIG" at its address); bi->arg untouched. -errno. */
int x86_acpi_tables(const struct machine *m, struct boot_info *bi);
/* The kernel command line of m: the configured one plus how to find its devices. NULL. */
char *x86_cmdline(const struct machine *m);

#endif
