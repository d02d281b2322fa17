/* Unit tests: arm64 Image header checks, boot placement, gzip decompression. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#include "blob.h"
#include "boot.h"
#include "log.h"
#include "machine.h"
#include "arch/arm64/arm64.h"
#include "arch/arm64/image.h"
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
	CHECK(arm64_boot_layout(base, size, h, sizeof(h), false, 0x300000, &bl, why, sizeof(why)) ==
	      0);
	CHECK_EQ(bl.kernel_addr, base);
	CHECK_EQ(bl.entry, base);
	CHECK_EQ(bl.dtb_addr, base + size - (2 << 20));
	CHECK_EQ(bl.dtb_addr % (2 << 20), 0);
	CHECK(bl.initrd_addr + bl.initrd_size <= bl.dtb_addr);
	CHECK_EQ(bl.initrd_addr % 0x10000, 0);
	CHECK(bl.initrd_addr >= bl.kernel_end);
	/* RAM that cannot hold kernel + initrd + DTB is refused with a reason. */
	CHECK(arm64_boot_layout(base, 32 << 20, h, sizeof(h), false, 20 << 20, &bl, why,
				sizeof(why)) == -EINVAL);
	CHECK(strstr(why, "do not fit") != NULL);
	CHECK(arm64_boot_layout(base, 16 << 20, h, sizeof(h), false, 64 << 20, &bl, why,
				sizeof(why)) == -EINVAL);
	/* An image_size that would wrap the end address around is refused, not placed. */
	make_header(h, 0, 0xffffffffffe00000ull, 0);
	CHECK(arm64_boot_layout(base, size, h, sizeof(h), false, 0x300000, &bl, why, sizeof(why)) ==
	      -EINVAL);
	CHECK(strstr(why, "more than the") != NULL);
	/* No kernel (device-tree dump): placement still computed. */
	CHECK(arm64_boot_layout(base, size, NULL, 0, false, 0x1000, &bl, why, sizeof(why)) == 0);
	CHECK_EQ(bl.initrd_size, 0x1000);
	/* A raw kernel (kernel_format = raw): no header read, at RAM + 0x80000, its own size. */
	memset(h, 0, sizeof(h));
	CHECK(arm64_boot_layout(base, size, h, sizeof(h), false, 0, &bl, why, sizeof(why)) ==
	      -EINVAL);
	CHECK(strstr(why, "kernel_format = raw") != NULL);
	CHECK(arm64_boot_layout(base, size, h, 3 << 20, true, 0x1000, &bl, why, sizeof(why)) == 0);
	CHECK_EQ(bl.kernel_addr, base + 0x80000);
	CHECK_EQ(bl.entry, base + 0x80000);
	CHECK_EQ(bl.kernel_end, base + 0x80000 + (3 << 20));
	CHECK(bl.initrd_addr >= bl.kernel_end && bl.initrd_addr + 0x1000 <= bl.dtb_addr);
	CHECK(arm64_boot_layout(base, 4 << 20, h, 3 << 20, true, 0, &bl, why, sizeof(why)) ==
	      -EINVAL);
}

/* Write len bytes to a new temporary file; its path goes to path (a mkstemp template). */
static void write_tmp(char *path, const void *data, size_t len)
{
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	CHECK(fd >= 0 && write(fd, data, len) == (ssize_t)len);
	if (fd >= 0)
		close(fd);
}

/* One gzip file, opened and loaded: 0, or the first error; the bytes loaded go to len. */
static int gz_load(const uint8_t *gz, size_t n, uint8_t *out, uint64_t room, struct blob *b,
		   uint64_t *len)
{
	char path[] = "/tmp/microvm-blob-XXXXXX";
	int err;

	*len = 0;
	write_tmp(path, gz, n);
	err = blob_open(b, path, 1 << 20, true);
	unlink(path);
	if (!err) {
		err = blob_load(b, out, room, len);
		blob_close(b);
	}
	return err;
}

/* gzip data inflates straight into the destination, its first stream only, within room. */
static void gzip(void)
{
	static uint8_t plain[100000], packed[120000], out[200000];
	z_stream zs = {0};
	struct blob b;
	uint64_t len;
	size_t n;

	for (size_t i = 0; i < sizeof(plain); i++)
		plain[i] = (uint8_t)(i * 7 + (i >> 9));
	CHECK(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
	zs.next_in = plain;
	zs.avail_in = sizeof(plain);
	zs.next_out = packed;
	zs.avail_out = sizeof(packed) - 64;
	CHECK(deflate(&zs, Z_FINISH) == Z_STREAM_END);
	deflateEnd(&zs);
	n = zs.total_out;
	memset(out, 0xaa, sizeof(out));
	CHECK_EQ(gz_load(packed, n, out, sizeof(out), &b, &len), 0);
	CHECK(b.gzip);
	CHECK_EQ(len, sizeof(plain));
	CHECK_EQ(b.head_len, BLOB_HEAD_MAX);
	CHECK(memcmp(b.head, plain, BLOB_HEAD_MAX) == 0);
	CHECK(memcmp(out, plain, sizeof(plain)) == 0);
	CHECK_EQ(out[sizeof(plain)], 0xaa);			       /* nothing past its end */
	CHECK_EQ(gz_load(packed, n, out, sizeof(plain), &b, &len), 0); /* exactly its room */
	CHECK_EQ(gz_load(packed, n, out, 50000, &b, &len), -EFBIG);    /* no room */
	/* Something after the stream (an appended DTB, padding): ignored. */
	memset(packed + n, 0x55, 64);
	CHECK_EQ(gz_load(packed, n + 64, out, sizeof(out), &b, &len), 0);
	CHECK_EQ(len, sizeof(plain));
	packed[n - 3] ^= 1; /* the stream's own length check (ISIZE) */
	CHECK_EQ(gz_load(packed, n, out, sizeof(out), &b, &len), -EINVAL);
	packed[n - 3] ^= 1;
	packed[n / 2] ^= 0xff; /* corrupt in the middle */
	CHECK_EQ(gz_load(packed, n, out, sizeof(out), &b, &len), -EINVAL);
	CHECK_EQ(gz_load(packed, n / 3, out, sizeof(out), &b, &len), -EINVAL); /* cut short */
}

/* blob_open refuses what is not a regular file, with the right error; plain data as is. */
static void blob_kinds(void)
{
	char path[] = "/tmp/microvm-blob-XXXXXX";
	uint8_t data[100], out[100];
	struct blob b;
	uint64_t len;

	CHECK_EQ(blob_open(&b, "/tmp", 1 << 20, true), -EISDIR);
	CHECK_EQ(blob_open(&b, "/dev/null", 1 << 20, true), -EINVAL);
	CHECK_EQ(blob_open(&b, "/nonexistent/kernel", 1 << 20, true), -ENOENT);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = i ^ 0x5a;
	data[0] = 0x1f; /* a gzip magic, but not inflated when not asked */
	data[1] = 0x8b;
	write_tmp(path, data, sizeof(data));
	CHECK_EQ(blob_open(&b, path, 99, false), -EFBIG);
	CHECK_EQ(blob_open(&b, path, 1 << 20, false), 0);
	CHECK(!b.gzip);
	CHECK_EQ(b.size, sizeof(data));
	CHECK_EQ(b.head_len, sizeof(data));
	CHECK_EQ(blob_load(&b, out, sizeof(out) - 1, &len), -EFBIG);
	CHECK_EQ(blob_load(&b, out, sizeof(out), &len), 0);
	CHECK_EQ(len, sizeof(data));
	CHECK(memcmp(out, data, sizeof(data)) == 0);
	blob_close(&b);
	CHECK_EQ(blob_open(&b, path, 1ull << 40, true), -EINVAL); /* a corrupt gzip */
	unlink(path);
}

/*
 * boot_prepare with the --set arguments sets (rpi5.ini, 64 MiB): its status; what it said
 * (the errors, captured) goes to said.
 */
static int prepare(const char *const *sets, size_t n, enum boot_use use, struct boot_images *bi,
		   char *said, size_t len)
{
	char *all[8] = {"memory.size=64M"}, *text = NULL;
	struct machine m;
	size_t tlen = 0;
	FILE *f;
	int err;

	for (size_t i = 0; i < n && i < 7; i++)
		all[1 + i] = (char *)sets[i];
	said[0] = '\0';
	if (!test_machine_load(&m, "machines/rpi5.ini", all, n + 1))
		return -1;
	f = open_memstream(&text, &tlen);
	log_capture(f);
	err = boot_prepare(&m, bi, use);
	log_capture(NULL);
	if (f)
		fclose(f);
	snprintf(said, len, "%s", text ? text : "");
	free(text);
	CHECK(err ? m.cfg.nerrors > 0 : m.cfg.nerrors == 0);
	boot_free(bi);
	machine_free(&m);
	return err;
}

/*
 * boot_prepare: each boot file's problem at the key that named it; a dump reads no kernel
 * and leaves out an initrd that does not exist; what fails only with the initrd is its own.
 */
static void prepare_errors(void)
{
	char kernel[] = "/tmp/microvm-kernel-XXXXXX", text[] = "/tmp/microvm-text-XXXXXX";
	char initrd[] = "/tmp/microvm-initrd-XXXXXX", said[1024], sk[64], si[64], st[64];
	uint8_t h[4096];
	struct boot_images bi;
	int fd;

	make_header(h, 0, 2 << 20, 0);
	write_tmp(kernel, h, sizeof(h));
	memset(h + 2048, 't', 100);
	write_tmp(text, h + 2048, 100); /* long enough for a header, without its magic */
	write_tmp(initrd, h, 64);
	snprintf(sk, sizeof(sk), "boot.kernel=%s", kernel);
	snprintf(si, sizeof(si), "boot.initrd=%s", initrd);
	snprintf(st, sizeof(st), "boot.kernel=%s", text);
	{
		const char *const ok[] = {sk, si};
		const char *const missing[] = {"boot.kernel=/nonexistent/k",
					       "boot.initrd=/nonexistent/i"};
		const char *const none[] = {"boot.kernel=", si};
		const char *const foreign[] = {st, si};
		const char *const big_initrd[] = {sk, si};

		CHECK_EQ(prepare(ok, 2, BOOT_RUN, &bi, said, sizeof(said)), 0);
		CHECK_EQ(bi.layout.initrd_size, 64);
		/* both missing files are said, each at its key */
		CHECK_EQ(prepare(missing, 2, BOOT_RUN, &bi, said, sizeof(said)), -ENOENT);
		CHECK(strstr(said, "--set boot.kernel: '/nonexistent/k' does not exist"));
		CHECK(strstr(said, "--set boot.initrd: '/nonexistent/i' does not exist"));
		/* a dump needs neither */
		CHECK_EQ(prepare(missing, 2, BOOT_DUMP, &bi, said, sizeof(said)), 0);
		CHECK_EQ(bi.layout.initrd_size, 0);
		CHECK(!strstr(said, "does not exist"));
		CHECK_EQ(prepare(none, 2, BOOT_RUN, &bi, said, sizeof(said)), -EINVAL);
		CHECK(strstr(said, "[boot]: no kernel"));
		CHECK_EQ(prepare(none, 2, BOOT_DUMP, &bi, said, sizeof(said)), 0);
		/* a kernel of the wrong format: its own path, at its key */
		CHECK_EQ(prepare(foreign, 2, BOOT_RUN, &bi, said, sizeof(said)), -EINVAL);
		CHECK(strstr(said, "--set boot.kernel: '") && strstr(said, text) &&
		      strstr(said, "': not an arm64 Image"));
		/* an initrd that does not fit beside the kernel is the initrd's fault */
		fd = open(initrd, O_WRONLY);
		CHECK(fd >= 0 && ftruncate(fd, 62 << 20) == 0);
		if (fd >= 0)
			close(fd);
		CHECK_EQ(prepare(big_initrd, 2, BOOT_RUN, &bi, said, sizeof(said)), -EINVAL);
		CHECK(strstr(said, "--set boot.initrd: '") && strstr(said, "do not fit"));
		CHECK(!strstr(said, "boot.kernel"));
	}
	unlink(kernel);
	unlink(text);
	unlink(initrd);
}

void test_image(void)
{
	header();
	blob_kinds();
	layout();
	gzip();
	prepare_errors();
}
