/* arm64 Image header (Documentation/arch/arm64/booting.rst). */
#ifndef MICROVM_ARM64_IMAGE_H
#define MICROVM_ARM64_IMAGE_H

#include <stddef.h>
#include <stdint.h>

struct arm64_image {
	uint64_t text_offset, image_size, flags;
};

/* Parse and check the 64-byte Image header at buf. -EINVAL with why filled when invalid. */
int arm64_image_header(const uint8_t *buf, size_t len, struct arm64_image *img, char *why,
		       size_t whylen);

#endif
