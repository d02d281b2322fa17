/*
 * libFuzzer target: the snapshot state file's reader (snap_parse). The input's first byte
 * says whether to set both CRC32s right before parsing (bit 0: so that mutations reach the
 * header's other fields, protobuf-c and the checks after it, instead of stopping at the
 * checksums); the rest is the file. What parses is walked through every accessor: names
 * valid and unique, each field found by its name with its type and value, text as long as
 * its strlen, the snap_need_* checks; then written with snap_write and read back (into a
 * private directory, on tmpfs where there is one) as the same state.
 *
 * MICROVM_FUZZ_SEEDS=DIR writes a corpus into DIR and exits: a state of a few sections (as
 * written and with its checksums left for the target to set), damaged copies of it (a byte
 * flipped, cut short, format version 2) and payloads with duplicate names, a bad name, a
 * field without a value and text holding a NUL.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <snapshot/snapshot.pb-c.h>

#include "le.h"
#include "log.h"
#include "snapshot/snapfile.h"

#define HDR 32

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/dev/shm/fuzz_snapfile-XXXXXX";
static int dir_fd = -1;

/* Set buf's two CRC32s (its header's and its payload's, all of buf after the header). */
static void set_crcs(uint8_t *buf, size_t len)
{
	if (len < HDR)
		return;
	le32_put(buf + 24, (uint32_t)crc32(0, buf + HDR, (uInt)(len - HDR)));
	le32_put(buf + 28, (uint32_t)crc32(0, buf, 28));
}

/* ---- seeds ---- */

static void write_seed(int fd, unsigned n, uint8_t mode, const uint8_t *p, size_t len)
{
	char name[32];
	int out;

	snprintf(name, sizeof(name), "seed-%02u", n);
	out = openat(fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0 || write(out, &mode, 1) != 1 || write(out, p, len) != (ssize_t)len)
		abort();
	close(out);
}

/* A file of the payload the sections encode to (its CRC32s set). */
static uint8_t *file_of(Microvm__Snapshot__Section **secs, size_t n, size_t *len)
{
	Microvm__Snapshot__State st = MICROVM__SNAPSHOT__STATE__INIT;
	uint8_t *buf;

	st.n_sections = n;
	st.sections = secs;
	*len = HDR + microvm__snapshot__state__get_packed_size(&st);
	buf = malloc(*len);
	if (!buf)
		abort();
	memcpy(buf, "\x89MVS\r\n\x1a\n", 8);
	le32_put(buf + 8, 1);
	le32_put(buf + 12, 0);
	le64_put(buf + 16, *len - HDR);
	microvm__snapshot__state__pack(&st, buf + HDR);
	set_crcs(buf, *len);
	return buf;
}

/* A seed of one or two sections: name0 with fields a and b (b may be NULL), name1 empty. */
static void bad_seed(int fd, unsigned n, const char *name0, const char *name1,
		     Microvm__Snapshot__Field *a, Microvm__Snapshot__Field *b)
{
	Microvm__Snapshot__Field *fp[2] = {a, b};
	Microvm__Snapshot__Section sec[2] = {MICROVM__SNAPSHOT__SECTION__INIT,
					     MICROVM__SNAPSHOT__SECTION__INIT};
	Microvm__Snapshot__Section *sp[2] = {&sec[0], &sec[1]};
	uint8_t *buf;
	size_t len;

	sec[0].name = (ProtobufCBinaryData){strlen(name0), (uint8_t *)name0};
	sec[0].fields = fp;
	sec[0].n_fields = b ? 2 : 1;
	if (name1)
		sec[1].name = (ProtobufCBinaryData){strlen(name1), (uint8_t *)name1};
	buf = file_of(sp, name1 ? 2 : 1, &len);
	write_seed(fd, n, 1, buf, len);
	free(buf);
}

/* Payloads snap_write would not write: each becomes a seed. */
static void write_bad_seeds(int fd, unsigned n)
{
	Microvm__Snapshot__Field pc = MICROVM__SNAPSHOT__FIELD__INIT,
				 none = MICROVM__SNAPSHOT__FIELD__INIT,
				 nul = MICROVM__SNAPSHOT__FIELD__INIT;

	pc.name = (ProtobufCBinaryData){2, (uint8_t *)"pc"};
	pc.value_case = MICROVM__SNAPSHOT__FIELD__VALUE_U64;
	pc.u64 = 0x80000;
	none.name = (ProtobufCBinaryData){4, (uint8_t *)"none"};
	nul.name = (ProtobufCBinaryData){5, (uint8_t *)"model"};
	nul.value_case = MICROVM__SNAPSHOT__FIELD__VALUE_TEXT;
	nul.text = (ProtobufCBinaryData){4, (uint8_t *)"a\0bc"};
	bad_seed(fd, n++, "cpu0", "cpu0", &pc, NULL); /* a section twice */
	bad_seed(fd, n++, "cpu0", "gic", &pc, &pc);   /* a field twice */
	bad_seed(fd, n++, "cpu0", NULL, &pc, &none);  /* a field without a value */
	bad_seed(fd, n++, "cpu0", NULL, &nul, &pc);   /* text with a NUL */
	bad_seed(fd, n++, "c u", NULL, &pc, NULL);    /* a bad name */
}

static void write_seeds(const char *seeds)
{
	int fd = open(seeds, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct snap *s = snap_new();
	struct snap_sec *cpu = snap_add(s, "cpu0"), *gic = snap_add(s, "gic"),
			*uart = snap_add(s, "uart0");
	uint8_t regs[64], *buf, *copy;
	unsigned n = 0;
	struct stat st;
	int in;

	for (size_t i = 0; i < sizeof(regs); i++)
		regs[i] = (uint8_t)(i * 13);
	if (fd < 0 || !cpu || !gic || !uart || snap_put_u64(cpu, "pc", 0xffff800080000000ull) ||
	    snap_put_u64(cpu, "pstate", 0x3c5) || snap_put_bytes(cpu, "x", regs, sizeof(regs)) ||
	    snap_put_text(cpu, "model", "cortex-a76") || snap_put_u64(gic, "nr_irqs", 96) ||
	    snap_put_bytes(gic, "dist", regs, 16) || snap_put_text(uart, "backend", "stdio") ||
	    snap_put_bytes(uart, "fifo", NULL, 0) || snap_write(s, fd, "state") < 0)
		abort();
	snap_free(s);
	in = openat(fd, "state", O_RDONLY | O_CLOEXEC);
	if (in < 0 || fstat(in, &st) < 0 || !(buf = malloc((size_t)st.st_size)) ||
	    !(copy = malloc((size_t)st.st_size)) ||
	    read(in, buf, (size_t)st.st_size) != (ssize_t)st.st_size)
		abort();
	close(in);
	unlinkat(fd, "state", 0);

	write_seed(fd, n++, 0, buf, (size_t)st.st_size); /* as written */
	write_seed(fd, n++, 1, buf, (size_t)st.st_size); /* checksums set by the target */
	memcpy(copy, buf, (size_t)st.st_size);
	copy[HDR + 10] ^= 0x40;
	write_seed(fd, n++, 0, copy, (size_t)st.st_size);    /* damaged: checksum mismatch */
	write_seed(fd, n++, 1, copy, (size_t)st.st_size);    /* the same decoded */
	write_seed(fd, n++, 0, buf, (size_t)st.st_size - 7); /* cut short */
	memcpy(copy, buf, (size_t)st.st_size);
	le32_put(copy + 8, 2);
	write_seed(fd, n++, 1, copy, (size_t)st.st_size); /* format version 2 */
	write_bad_seeds(fd, n);
	free(buf);
	free(copy);
	close(fd);
}

static void remove_dir(void)
{
	unlinkat(dir_fd, "rt", 0);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (getenv("MICROVM_FUZZ_SEEDS")) {
		write_seeds(getenv("MICROVM_FUZZ_SEEDS"));
		exit(0);
	}
	if (!mkdtemp(dir)) {
		memcpy(dir, "/tmp/", 5); /* no /dev/shm: /tmp/fuzz_snapfile-XXXXXX */
		memmove(dir + 5, dir + 9, strlen(dir + 9) + 1);
		if (!mkdtemp(dir))
			abort();
	}
	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		abort();
	atexit(remove_dir);
	/* The refusals' messages (snap_need_*) are expected: not worth a write each. */
	log_capture(fopen("/dev/null", "w"));
	return 0;
}

/* ---- one input ---- */

static bool name_ok(const char *name)
{
	size_t len = strlen(name);

	if (!len || len > SNAP_NAME_MAX)
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
	       len;
}

/* Every field of sec, through every accessor: each must agree with snap_field_at. */
static void walk_section(const struct snap *s, const struct snap_sec *sec)
{
	size_t n = snap_nfields(sec);
	struct snap_field_view f, g;
	uint8_t *copy;

	if (snap_find(s, snap_sec_name(sec)) != sec || !name_ok(snap_sec_name(sec)) ||
	    snap_field_at(sec, n, &f) != -ERANGE)
		abort();
	for (size_t i = 0; i < n; i++) {
		const char *text;
		const void *p;
		uint64_t v;
		size_t len;

		if (snap_field_at(sec, i, &f) || !name_ok(f.name))
			abort();
		for (size_t j = 0; j < i; j++)
			if (snap_field_at(sec, j, &g) || !strcmp(g.name, f.name))
				abort(); /* unique */
		switch (f.type) {
		case SNAP_U64:
			if (snap_get_u64(sec, f.name, &v) || v != f.u64 ||
			    snap_get_bytes(sec, f.name, &p, &len) != -EINVAL ||
			    snap_get_text(sec, f.name, &text) != -EINVAL ||
			    snap_need_u64(sec, f.name, f.u64, &v) || v != f.u64 ||
			    (f.u64 && snap_need_u64(sec, f.name, f.u64 - 1, &v) != -EINVAL) ||
			    snap_need_bytes(sec, f.name, NULL, 0) != -EINVAL)
				abort();
			break;
		case SNAP_BYTES:
			copy = malloc(f.len + 1);
			if (!copy || snap_get_bytes(sec, f.name, &p, &len) || p != f.data ||
			    len != f.len || snap_get_u64(sec, f.name, &v) != -EINVAL ||
			    snap_get_text(sec, f.name, &text) != -EINVAL ||
			    snap_need_bytes(sec, f.name, copy, f.len) ||
			    (f.len && memcmp(copy, f.data, f.len)) ||
			    snap_need_bytes(sec, f.name, copy, f.len + 1) != -EINVAL ||
			    snap_need_u64(sec, f.name, UINT64_MAX, &v) != -EINVAL)
				abort();
			free(copy);
			break;
		case SNAP_TEXT:
			if (snap_get_text(sec, f.name, &text) || text != f.data ||
			    strlen(text) != f.len || snap_get_u64(sec, f.name, &v) != -EINVAL ||
			    snap_need_bytes(sec, f.name, NULL, 0) != -EINVAL)
				abort();
			break;
		default:
			abort();
		}
	}
}

/* Whether a and b hold the same sections and fields, in the same order. */
static bool same(const struct snap *a, const struct snap *b)
{
	if (snap_nsections(a) != snap_nsections(b))
		return false;
	for (size_t i = 0; i < snap_nsections(a); i++) {
		const struct snap_sec *x = snap_section_at(a, i), *y = snap_section_at(b, i);

		if (strcmp(snap_sec_name(x), snap_sec_name(y)) ||
		    snap_nfields(x) != snap_nfields(y))
			return false;
		for (size_t j = 0; j < snap_nfields(x); j++) {
			struct snap_field_view f, g;

			if (snap_field_at(x, j, &f) || snap_field_at(y, j, &g) ||
			    strcmp(f.name, g.name) || f.type != g.type || f.u64 != g.u64 ||
			    f.len != g.len || (f.len && memcmp(f.data, g.data, f.len)))
				return false;
		}
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snap *s = NULL, *back = NULL;
	char why[256];
	uint8_t *buf;
	size_t n;

	if (!size)
		return 0;
	n = size - 1;
	buf = malloc(n ? n : 1); /* exactly the file: ASan sees a read past it */
	if (!buf)
		abort();
	memcpy(buf, data + 1, n);
	if (data[0] & 1)
		set_crcs(buf, n);
	why[0] = 0;
	if (snap_parse(buf, n, &s, why, sizeof(why))) {
		if (s || !why[0] || strlen(why) >= sizeof(why) - 1)
			abort(); /* refused: nothing out, and a sentence */
		free(buf);
		return 0;
	}
	free(buf);
	if (!s || snap_section_at(s, snap_nsections(s)) || snap_need(s, "no.such-section"))
		abort();
	for (size_t i = 0; i < snap_nsections(s); i++) {
		const struct snap_sec *sec = snap_section_at(s, i);

		if (!sec || snap_need(s, snap_sec_name(sec)) != sec)
			abort();
		walk_section(s, sec);
	}
	/* What was read is written back as it is. */
	if (snap_write(s, dir_fd, "rt") || snap_read(dir_fd, "rt", &back) || !same(s, back))
		abort();
	snap_free(back);
	snap_free(s);
	return 0;
}
