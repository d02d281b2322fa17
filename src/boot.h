/* boot: kernel, initrd and device-tree placement in guest RAM. */
#ifndef MICROVM_BOOT_H
#define MICROVM_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "blob.h"

struct cfg;
struct guest_mem;
struct machine;

struct boot_layout {
	uint64_t kernel_addr; /* where the image is copied */
	uint64_t kernel_end;  /* end of the kernel's memory footprint (image_size) */
	uint64_t entry;
	uint64_t initrd_addr, initrd_size;
	uint64_t dtb_addr, dtb_max;
	/* x86: the bzImage setup header, repeated in boot_params ([0x1f1, 0x1f1 + setup_len)) */
	uint8_t setup[160];
	uint32_t setup_len;
};

/* The boot files, open, with their sizes and heads; their data is read by boot_load. */
struct boot_images {
	struct cfg *cfg; /* the machine's: errors name the [boot] key that gave the file */
	const char *kernel_path, *initrd_path;
	struct blob kernel, initrd; /* fd -1 when absent */
	struct boot_layout layout;
};

/* What the boot files are opened for. */
enum boot_use {
	BOOT_RUN,  /* a run or --check: a kernel is required, every file must be usable */
	BOOT_DUMP, /* --dump-dtb: no kernel is read; a missing initrd is left out (said) */
};

/*
 * Open the machine's kernel and initrd, read their headers and compute their placement.
 * Errors are the configuration's (counted in m->cfg), at the key that named the file, with
 * the reason; returns -errno.
 */
int boot_prepare(struct machine *m, struct boot_images *bi, enum boot_use use);
/*
 * Read (and inflate) the kernel and initrd straight into their places in guest RAM, with
 * no copy in between. Errors name the key that gave the file, and the file; returns -errno.
 */
int boot_load(const struct boot_images *bi, const struct guest_mem *mem);
/* Close the files opened by boot_prepare. */
void boot_free(struct boot_images *bi);

#endif
