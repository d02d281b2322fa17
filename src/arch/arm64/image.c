/* arm64 Image loader: boot-protocol header checks and kernel/initrd/DTB placement. */
#include "boot.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "arm64.h"
#include "image.h"
#include "le.h"

#define SZ_2M	    (2ull << 20)
#define SZ_64K	    (64ull << 10)
#define DTB_MAX	    SZ_2M
#define ARM64_MAGIC 0x644d5241u /* "ARM\x64" */

int arm64_image_header(const uint8_t *buf, size_t len, struct arm64_image *img, char *why,
		       size_t whylen)
{
	uint32_t magic;

	if (len < 64) {
		snprintf(why, whylen, "too small for an arm64 Image header (%zu bytes)", len);
		return -EINVAL;
	}
	magic = le32_get(buf + 56);
	if (magic != ARM64_MAGIC) {
		snprintf(why, whylen,
			 "not an arm64 Image (no \"ARM\\x64\" magic at offset 56; a "
			 "headerless kernel needs [boot] kernel_format = raw)");
		return -EINVAL;
	}
	img->text_offset = le64_get(buf + 8);
	img->image_size = le64_get(buf + 16);
	img->flags = le64_get(buf + 24);
	if (img->flags & 1) {
		snprintf(why, whylen, "a big-endian Image; only little-endian is supported");
		return -EINVAL;
	}
	if (img->image_size == 0) {
		/* Kernels before 3.17: text_offset 0x80000, footprint unknown. */
		img->text_offset = 0x80000;
		img->image_size = len;
	}
	if (img->image_size < len || img->text_offset % 4096 || img->text_offset >= SZ_2M) {
		snprintf(why, whylen,
			 "Image header is inconsistent (text_offset 0x%llx, image_size "
			 "0x%llx, file 0x%zx)",
			 (unsigned long long)img->text_offset, (unsigned long long)img->image_size,
			 len);
		return -EINVAL;
	}
	return 0;
}

int arm64_boot_layout(uint64_t ram_base, uint64_t ram_size, const uint8_t *kernel, size_t klen,
		      bool raw, size_t initrd_len, struct boot_layout *bl, char *why, size_t whylen)
{
	uint64_t ram_end = ram_base + ram_size, low;
	struct arm64_image img = {0};
	int err;

	memset(bl, 0, sizeof(*bl));
	if (kernel && raw) {
		img.text_offset = ARM64_RAW_TEXT_OFFSET;
		img.image_size = klen;
	} else if (kernel) {
		err = arm64_image_header(kernel, klen, &img, why, whylen);
		if (err)
			return err;
	}
	if (img.image_size > ram_size) {
		snprintf(why, whylen,
			 "Image header says it needs 0x%llx bytes, more than the %llu MiB of "
			 "RAM",
			 (unsigned long long)img.image_size, (unsigned long long)(ram_size >> 20));
		return -EINVAL;
	}
	/* Kernel at the bottom of RAM (ram_base is 2 MiB aligned), DTB in the top 2 MiB block. */
	bl->kernel_addr = ram_base + img.text_offset;
	bl->kernel_end = bl->kernel_addr + img.image_size;
	bl->entry = bl->kernel_addr;
	bl->dtb_max = DTB_MAX;
	if (ram_size < 2 * SZ_2M) {
		snprintf(why, whylen, "RAM too small for kernel and device tree");
		return -EINVAL;
	}
	bl->dtb_addr = (ram_end - DTB_MAX) & ~(SZ_2M - 1);
	low = (bl->kernel_end + SZ_2M - 1) & ~(SZ_2M - 1);
	if (initrd_len) {
		if (initrd_len > bl->dtb_addr - ram_base) {
			snprintf(why, whylen, "initrd of %zu bytes does not fit in RAM",
				 initrd_len);
			return -EINVAL;
		}
		bl->initrd_addr = (bl->dtb_addr - initrd_len) & ~(SZ_64K - 1);
		bl->initrd_size = initrd_len;
		if (bl->initrd_addr < low) {
			snprintf(
				why, whylen,
				"kernel (%llu KiB), initrd (%zu KiB) and device tree do not fit in "
				"%llu MiB of RAM",
				(unsigned long long)(img.image_size >> 10), initrd_len >> 10,
				(unsigned long long)(ram_size >> 20));
			return -EINVAL;
		}
	} else if (bl->dtb_addr < low) {
		snprintf(why, whylen,
			 "kernel (%llu KiB) and device tree do not fit in %llu MiB of RAM",
			 (unsigned long long)(img.image_size >> 10),
			 (unsigned long long)(ram_size >> 20));
		return -EINVAL;
	}
	return 0;
}
