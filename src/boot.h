/* boot: kernel, initrd and device-tree placement in guest RAM. */
#ifndef MICROVM_BOOT_H
#define MICROVM_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "blob.h"

struct guest_mem;
struct machine;

struct boot_layout {
	uint64_t kernel_addr; /* where the image is copied */
	uint64_t kernel_end;  /* end of the kernel's memory footprint (image_size) */
	uint64_t entry;
	uint64_t initrd_addr, initrd_size;
	uint64_t dtb_addr, dtb_max;
};

/* The boot files, open, with their sizes and heads; their data is read by boot_load. */
struct boot_images {
	const char *kernel_path, *initrd_path;
	struct blob kernel, initrd; /* fd -1 when absent */
	struct boot_layout layout;
};

/*
 * Open the machine's kernel and initrd (either may be absent for --dump-dtb), read their
 * headers and compute their placement. Errors name the file and reason; returns -errno.
 */
int boot_prepare(const struct machine *m, struct boot_images *bi, int need_kernel);
/*
 * Read (and inflate) the kernel and initrd straight into their places in guest RAM, with
 * no copy in between. Errors name the file; returns -errno.
 */
int boot_load(const struct boot_images *bi, const struct guest_mem *mem);
/* Close the files opened by boot_prepare. */
void boot_free(struct boot_images *bi);

/*
 * Architecture hook: place the kernel (its first min(klen, BLOB_HEAD_MAX) bytes, or NULL),
 * the initrd and the DTB; fills why on error. -EINVAL.
 */
int arch_boot_layout(uint64_t ram_base, uint64_t ram_size, const uint8_t *kernel, size_t klen,
		     size_t initrd_len, struct boot_layout *bl, char *why, size_t whylen);

#endif
