/* Unit tests: arm64 Image header checks, boot placement, gzip decompression. */
#include <errno.h>
#include <stdlib.h>
#include <zlib.h>

#include "blob.h"
#include "boot.h"
#include "image.h"
#include "test.h"

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = v >> (8 * i);
}

static void make_header(uint8_t *h, uint64_t text_offset, uint64_t image_size, uint64_t flags)
{
	memset(h, 0, 64);
	put64(h + 8, text_offset);
	put64(h + 16, image_size);
	put64(h + 24, flags);
	memcpy(h + 56, "ARM\x64", 4);
}

static void header(void)
{
	uint8_t h[4096];
	struct arm64_image img;
	char why[256];

	memset(h, 0, sizeof(h));
	make_header(h, 0, 0x1200000, 0x2);
	CHECK(arm64_image_header(h, sizeof(h), &img, why, sizeof(why)) == 0);
	CHECK_EQ(img.text_offset, 0);
	CHECK_EQ(img.image_size, 0x1200000);
	make_header(h, 0, 0, 0); /* pre-3.17 kernel: text_offset 0x80000 */
	CHECK(arm64_image_header(h, sizeof(h), &img, why, sizeof(why)) == 0);
	CHECK_EQ(img.text_offset, 0x80000);
	make_header(h, 0, 0x1000, 1); /* big-endian */
	CHECK(arm64_image_header(h, sizeof(h), &img, why, sizeof(why)) == -EINVAL);
	make_header(h, 0, 0x100, 0); /* image_size smaller than the file */
	CHECK(arm64_image_header(h, sizeof(h), &img, why, sizeof(why)) == -EINVAL);
	make_header(h, 0x123, 0x100000, 0); /* unaligned text_offset */
	CHECK(arm64_image_header(h, sizeof(h), &img, why, sizeof(why)) == -EINVAL);
	make_header(h, 0, 0x100000, 0);
	h[56] = 'X';
	CHECK(arm64_image_header(h, sizeof(h), &img, why, sizeof(why)) == -EINVAL);
	CHECK(strstr(why, "magic") != NULL);
	CHECK(arm64_image_header(h, 32, &img, why, sizeof(why)) == -EINVAL);
}

static void layout(void)
{
	uint8_t h[4096];
	struct boot_layout bl;
	char why[256];
	const uint64_t base = 0x40000000, size = 256 << 20;

	make_header(h, 0, 0x1200000, 0);
	CHECK(arch_boot_layout(base, size, h, sizeof(h), 0x300000, &bl, why, sizeof(why)) == 0);
	CHECK_EQ(bl.kernel_addr, base);
	CHECK_EQ(bl.entry, base);
	CHECK_EQ(bl.dtb_addr, base + size - (2 << 20));
	CHECK_EQ(bl.dtb_addr % (2 << 20), 0);
	CHECK(bl.initrd_addr + bl.initrd_size <= bl.dtb_addr);
	CHECK_EQ(bl.initrd_addr % 0x10000, 0);
	CHECK(bl.initrd_addr >= bl.kernel_end);
	/* RAM that cannot hold kernel + initrd + DTB is refused with a reason. */
	CHECK(arch_boot_layout(base, 32 << 20, h, sizeof(h), 20 << 20, &bl, why, sizeof(why)) ==
	      -EINVAL);
	CHECK(strstr(why, "do not fit") != NULL);
	CHECK(arch_boot_layout(base, 16 << 20, h, sizeof(h), 64 << 20, &bl, why, sizeof(why)) ==
	      -EINVAL);
	/* An image_size that would wrap the end address around is refused, not placed. */
	make_header(h, 0, 0xffffffffffe00000ull, 0);
	CHECK(arch_boot_layout(base, size, h, sizeof(h), 0x300000, &bl, why, sizeof(why)) ==
	      -EINVAL);
	CHECK(strstr(why, "more than the") != NULL);
	/* No kernel (device-tree dump): placement still computed. */
	CHECK(arch_boot_layout(base, size, NULL, 0, 0x1000, &bl, why, sizeof(why)) == 0);
	CHECK_EQ(bl.initrd_size, 0x1000);
}

static void gzip(void)
{
	uint8_t plain[100000], packed[120000], *out = NULL;
	size_t outlen = 0;
	z_stream zs = {0};

	for (size_t i = 0; i < sizeof(plain); i++)
		plain[i] = (uint8_t)(i * 7 + (i >> 9));
	CHECK(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
	zs.next_in = plain;
	zs.avail_in = sizeof(plain);
	zs.next_out = packed;
	zs.avail_out = sizeof(packed);
	CHECK(deflate(&zs, Z_FINISH) == Z_STREAM_END);
	deflateEnd(&zs);
	CHECK(blob_gunzip(packed, zs.total_out, 1 << 20, &out, &outlen) == 0);
	CHECK_EQ(outlen, sizeof(plain));
	CHECK(out && memcmp(out, plain, sizeof(plain)) == 0);
	free(out);
	CHECK(blob_gunzip(packed, zs.total_out, 50000, &out, &outlen) == -EFBIG);
	CHECK(blob_gunzip(packed, zs.total_out / 2, 1 << 20, &out, &outlen) == -EINVAL);
	packed[20] ^= 0xff;
	CHECK(blob_gunzip(packed, zs.total_out, 1 << 20, &out, &outlen) == -EINVAL);
}

/* blob_read refuses what is not a regular file, with the right error. */
static void blob_kinds(void)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	CHECK_EQ(blob_read("/tmp", 1 << 20, &buf, &len), -EISDIR);
	CHECK_EQ(blob_read("/dev/null", 1 << 20, &buf, &len), -EINVAL);
	CHECK_EQ(blob_read("/nonexistent/kernel", 1 << 20, &buf, &len), -ENOENT);
}

void test_image(void)
{
	header();
	blob_kinds();
	layout();
	gzip();
}
