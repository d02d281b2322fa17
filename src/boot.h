/* boot: kernel, initrd and device-tree placement in guest RAM. */
#ifndef MICROVM_BOOT_H
#define MICROVM_BOOT_H

#include <stddef.h>
#include <stdint.h>

struct machine;

struct boot_layout {
	uint64_t kernel_addr; /* where the image is copied */
	uint64_t kernel_end;  /* end of the kernel's memory footprint (image_size) */
	uint64_t entry;
	uint64_t initrd_addr, initrd_size;
	uint64_t dtb_addr, dtb_max;
};

struct boot_images {
	uint8_t *kernel, *initrd;
	size_t kernel_len, initrd_len;
	struct boot_layout layout;
};

/*
 * Read the machine's kernel and initrd (either may be absent for --dump-dtb) and compute
 * their placement. Errors name the file and reason; returns -errno.
 */
int boot_prepare(const struct machine *m, struct boot_images *bi, int need_kernel);
/* Free the images read by boot_prepare. */
void boot_free(struct boot_images *bi);

/* Architecture hook: place kernel (may be NULL), initrd and DTB; fills why on error. -EINVAL. */
int arch_boot_layout(uint64_t ram_base, uint64_t ram_size, const uint8_t *kernel, size_t klen,
		     size_t initrd_len, struct boot_layout *bl, char *why, size_t whylen);

#endif
