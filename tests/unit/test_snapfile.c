/*
 * Unit tests: the snapshot state file. Round trips of every type through a file; the header
 * as docs/snapshot.md lays it out (this file writes its own headers, from the document); each
 * damage and malformation a reader refuses, with its sentence; the write's temporary file
 * never left behind; the snap_need_* messages.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <snapshot/snapshot.pb-c.h>

#include "le.h"
#include "log.h"
#include "snapshot/snapfile.h"
#include "test.h"

#define HDR    32
#define NAME64 "0123456789012345678901234567890123456789012345678901234567890123"

typedef Microvm__Snapshot__Section PbSection;
typedef Microvm__Snapshot__Field PbField;

static char dir[] = "/tmp/test_snapfile-XXXXXX";
static int dfd = -1;

/* ---- captured messages ---- */

static FILE *cap;
static char *cap_buf;
static size_t cap_len;

static void cap_begin(void)
{
	cap = open_memstream(&cap_buf, &cap_len);
	log_capture(cap);
}

/* Stop capturing: whether what was said holds want (printed when it does not). */
static bool cap_said(const char *want)
{
	bool ok;

	log_capture(NULL);
	fclose(cap);
	ok = want ? strstr(cap_buf, want) != NULL : !*cap_buf;
	if (!ok)
		printf("    said: '%s', wanted '%s'\n", cap_buf, want ? want : "");
	free(cap_buf);
	return ok;
}

/* Run stmt (a check) capturing what it says, then check that it said want (NULL: nothing). */
#define SAYS(stmt, want)                                                                           \
	do {                                                                                       \
		cap_begin();                                                                       \
		stmt;                                                                              \
		CHECK(cap_said(want));                                                             \
	} while (0)

/* ---- files ---- */

/* How many entries dir holds (. and .. aside). */
static int entries(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

/* The bytes of file name in dir (malloc'd, *len of them), or NULL. */
static uint8_t *slurp(const char *name, size_t *len)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *p;

	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	p = malloc((size_t)st.st_size + 1);
	*len = (size_t)st.st_size;
	if (p && read(fd, p, *len) != (ssize_t)*len) {
		free(p);
		p = NULL;
	}
	close(fd);
	return p;
}

static bool spill(const char *name, const void *p, size_t len)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	bool ok = fd >= 0 && write(fd, p, len) == (ssize_t)len;

	if (fd >= 0)
		close(fd);
	return ok;
}

/*
 * The header as docs/snapshot.md says, over the plen bytes of payload after it: magic,
 * version, flags, claimed payload length, payload CRC32, header CRC32.
 */
static void header(uint8_t *buf, size_t plen, uint64_t claimed, uint32_t version, uint32_t flags)
{
	memcpy(buf, "\x89MVS\r\n\x1a\n", 8);
	le32_put(buf + 8, version);
	le32_put(buf + 12, flags);
	le64_put(buf + 16, claimed);
	le32_put(buf + 24, (uint32_t)crc32(0, buf + HDR, (uInt)plen));
	le32_put(buf + 28, (uint32_t)crc32(0, buf, 28));
}

/* A file holding payload p[0..plen) behind a header this test writes. */
static uint8_t *file_of_payload(const void *p, size_t plen, size_t *len)
{
	uint8_t *buf = malloc(HDR + plen + 1);

	memcpy(buf + HDR, p, plen);
	header(buf, plen, plen, 1, 0);
	*len = HDR + plen;
	return buf;
}

/* A file of the sections given, encoded by the test with protobuf-c. */
static uint8_t *file_of(PbSection **secs, size_t n, size_t *len)
{
	Microvm__Snapshot__State st = MICROVM__SNAPSHOT__STATE__INIT;
	size_t plen;
	uint8_t *payload, *buf;

	st.n_sections = n;
	st.sections = secs;
	plen = microvm__snapshot__state__get_packed_size(&st);
	payload = malloc(plen + 1);
	microvm__snapshot__state__pack(&st, payload);
	buf = file_of_payload(payload, plen, len);
	free(payload);
	return buf;
}

static void pb_section(PbSection *s, const char *name, size_t nlen, PbField **fields, size_t n)
{
	microvm__snapshot__section__init(s);
	s->name.data = (uint8_t *)name;
	s->name.len = nlen;
	s->fields = fields;
	s->n_fields = n;
}

/* A field called name[0..nlen); of value case vc, holding v or p[0..len). */
static void pb_field(PbField *f, const char *name, size_t nlen, int vc, uint64_t v, const char *p,
		     size_t len)
{
	microvm__snapshot__field__init(f);
	f->name.data = (uint8_t *)name;
	f->name.len = nlen;
	f->value_case = vc;
	if (vc == MICROVM__SNAPSHOT__FIELD__VALUE_U64) {
		f->u64 = v;
	} else if (vc) {
		f->data.data = (uint8_t *)p;
		f->data.len = len;
	}
}

static char why[256]; /* the last refusal's sentence */

/* snap_parse refuses buf[0..len) with a sentence holding want. */
static void refused(const void *buf, size_t len, const char *want)
{
	struct snap *s = (struct snap *)1;

	why[0] = 0;

	CHECK_EQ(snap_parse(buf, len, &s, why, sizeof(why)), -EINVAL);
	CHECK(s == NULL);
	CHECK(strstr(why, want) != NULL);
	if (!strstr(why, want))
		printf("    why: '%s', wanted '%s'\n", why, want);
}

/* snap_parse refuses the sections given, encoded, with a sentence holding want. */
static void refused_of(PbSection **secs, size_t n, const char *want)
{
	size_t len;
	uint8_t *buf = file_of(secs, n, &len);

	refused(buf, len, want);
	free(buf);
}

/* ---- cases ---- */

static uint8_t regs[300];

/* A state of every type: cpu0 (numbers, bytes, text, empty ones), gic, and an empty one. */
static struct snap *sample(void)
{
	struct snap *s = snap_new();
	struct snap_sec *cpu = snap_add(s, "cpu0"), *gic = snap_add(s, "gic.dist-v3_0");

	CHECK(snap_add(s, "empty") != NULL);
	for (size_t i = 0; i < sizeof(regs); i++)
		regs[i] = (uint8_t)(i * 7 + 1);
	CHECK(snap_put_u64(cpu, "pc", 0xffffffffffff0000ull) == 0);
	CHECK(snap_put_u64(cpu, "max", UINT64_MAX) == 0);
	CHECK(snap_put_u64(cpu, "zero", 0) == 0);
	CHECK(snap_put_bytes(cpu, "regs", regs, sizeof(regs)) == 0);
	CHECK(snap_put_bytes(cpu, "none", NULL, 0) == 0);
	CHECK(snap_put_text(cpu, "model", "cortex-a76 \xc3\xa9") == 0);
	CHECK(snap_put_text(cpu, "blank", "") == 0);
	CHECK(snap_put_u64(gic, "nr_irqs", 96) == 0);
	return s;
}

/* s is sample()'s state, whole and in order. */
static void check_sample(const struct snap *s)
{
	const struct snap_sec *cpu = snap_find(s, "cpu0"), *gic = snap_find(s, "gic.dist-v3_0");
	static const char *const order[] = {"pc", "max", "zero", "regs", "none", "model", "blank"};
	struct snap_field_view f;
	const char *text;
	const void *p;
	uint64_t v;
	size_t len;

	CHECK_EQ(snap_nsections(s), 3);
	CHECK(cpu && gic && snap_find(s, "empty"));
	if (!cpu || !gic)
		return;
	CHECK(snap_section_at(s, 0) == cpu);
	CHECK(snap_section_at(s, 1) == gic);
	CHECK_STR(snap_sec_name(snap_section_at(s, 2)), "empty");
	CHECK(snap_section_at(s, 3) == NULL);
	CHECK(snap_find(s, "cpu") == NULL);
	CHECK_EQ(snap_nfields(snap_section_at(s, 2)), 0);
	CHECK_EQ(snap_nfields(cpu), 7);
	for (size_t i = 0; i < 7; i++)
		CHECK(snap_field_at(cpu, i, &f) == 0 && !strcmp(f.name, order[i]));
	CHECK_EQ(snap_field_at(cpu, 7, &f), -ERANGE);

	CHECK(snap_field_at(cpu, 0, &f) == 0 && f.type == SNAP_U64);
	CHECK_EQ(f.u64, 0xffffffffffff0000ull);
	CHECK(snap_get_u64(cpu, "max", &v) == 0 && v == UINT64_MAX);
	CHECK(snap_get_u64(cpu, "zero", &v) == 0 && v == 0);
	CHECK(snap_get_u64(gic, "nr_irqs", &v) == 0 && v == 96);
	CHECK(snap_field_at(cpu, 3, &f) == 0 && f.type == SNAP_BYTES && f.len == sizeof(regs));
	CHECK(snap_get_bytes(cpu, "regs", &p, &len) == 0 && len == sizeof(regs));
	CHECK(len == sizeof(regs) && !memcmp(p, regs, len));
	CHECK(snap_get_bytes(cpu, "none", &p, &len) == 0 && len == 0 && p != NULL);
	CHECK(snap_field_at(cpu, 5, &f) == 0 && f.type == SNAP_TEXT);
	CHECK(f.len == strlen("cortex-a76 \xc3\xa9") && !strcmp(f.data, "cortex-a76 \xc3\xa9"));
	CHECK(snap_get_text(cpu, "model", &text) == 0 && !strcmp(text, "cortex-a76 \xc3\xa9"));
	CHECK(snap_get_text(cpu, "blank", &text) == 0 && !strcmp(text, ""));

	/* Absent, and of another type: nothing said. */
	cap_begin();
	CHECK_EQ(snap_get_u64(cpu, "sp", &v), -ENOENT);
	CHECK_EQ(snap_get_u64(cpu, "regs", &v), -EINVAL);
	CHECK_EQ(snap_get_bytes(cpu, "pc", &p, &len), -EINVAL);
	CHECK_EQ(snap_get_bytes(cpu, "model", &p, &len), -EINVAL);
	CHECK_EQ(snap_get_text(cpu, "regs", &text), -EINVAL);
	CHECK_EQ(snap_get_text(gic, "model", &text), -ENOENT);
	CHECK(cap_said(NULL));
}

static void roundtrip(void)
{
	struct snap *s = sample(), *r = NULL;
	char path[64];
	struct stat st;
	uint8_t *buf;
	size_t len;

	check_sample(s);
	CHECK(snap_write(s, dfd, "state.snap") == 0);
	CHECK(snap_read(dfd, "state.snap", &r) == 0);
	CHECK(r != NULL);
	if (r)
		check_sample(r);
	CHECK_EQ(entries(), 1); /* no temporary file left */
	CHECK(fstatat(dfd, "state.snap", &st, 0) == 0 && (st.st_mode & 0777) == 0600);

	/* The header as documented. */
	buf = slurp("state.snap", &len);
	CHECK(buf && len > HDR);
	if (buf && len > HDR) {
		CHECK(!memcmp(buf, "\x89MVS\r\n\x1a\n", 8));
		CHECK_EQ(le32_get(buf + 8), 1);
		CHECK_EQ(le32_get(buf + 12), 0);
		CHECK_EQ(le64_get(buf + 16), len - HDR);
		CHECK_EQ(le32_get(buf + 24), crc32(0, buf + HDR, (uInt)(len - HDR)));
		CHECK_EQ(le32_get(buf + 28), crc32(0, buf, 28));
	}
	free(buf);

	/* Written again, through a path, over the file: replaced whole. */
	snap_free(r);
	r = NULL;
	CHECK(snap_put_u64(snap_add(s, "more"), "x", 1) == 0);
	snprintf(path, sizeof(path), "%s/state.snap", dir);
	CHECK(snap_write(s, AT_FDCWD, path) == 0);
	CHECK(snap_read(dfd, "state.snap", &r) == 0 && r && snap_nsections(r) == 4);
	CHECK_EQ(entries(), 1);
	snap_free(r);
	snap_free(s);

	/* An empty state: an empty payload. */
	s = snap_new();
	CHECK(snap_write(s, dfd, "empty.snap") == 0);
	r = NULL;
	CHECK(snap_read(dfd, "empty.snap", &r) == 0 && r && snap_nsections(r) == 0);
	buf = slurp("empty.snap", &len);
	CHECK_EQ(len, HDR);
	free(buf);
	snap_free(r);
	snap_free(s);
	unlinkat(dfd, "empty.snap", 0);
	unlinkat(dfd, "state.snap", 0);
}

/* Many fields and sections: they keep their order through the duplicate checks. */
static void many(void)
{
	struct snap *s = snap_new(), *r = NULL;
	char name[16];
	uint64_t v;

	for (int i = 0; i < 50; i++) {
		struct snap_sec *sec;

		snprintf(name, sizeof(name), "s%d", 49 - i);
		sec = snap_add(s, name);
		for (int j = 0; j < (i ? 3 : 400); j++) {
			snprintf(name, sizeof(name), "f%d", (j * 37) % 400);
			CHECK(snap_put_u64(sec, name, (uint64_t)j) == 0);
		}
	}
	CHECK(snap_write(s, dfd, "many.snap") == 0);
	CHECK(snap_read(dfd, "many.snap", &r) == 0 && r);
	if (r) {
		struct snap_field_view f;

		CHECK_STR(snap_sec_name(snap_section_at(r, 0)), "s49");
		CHECK_STR(snap_sec_name(snap_section_at(r, 49)), "s0");
		CHECK_EQ(snap_nfields(snap_find(r, "s49")), 400);
		CHECK(snap_field_at(snap_find(r, "s49"), 399, &f) == 0 && !strcmp(f.name, "f363"));
		CHECK(snap_get_u64(snap_find(r, "s49"), "f0", &v) == 0 && v == 0);
		CHECK(snap_get_u64(snap_find(r, "s49"), "f37", &v) == 0 && v == 1);
		CHECK(snap_get_u64(snap_find(r, "s0"), "f74", &v) == 0 && v == 2);
	}
	snap_free(r);
	snap_free(s);
	unlinkat(dfd, "many.snap", 0);
}

/* Bad names and duplicates while building: said, and refused. */
static void put_errors(void)
{
	struct snap *s = snap_new();
	struct snap_sec *sec = snap_add(s, "a");
	static const char *const bad[] = {"",	   "a b", "x/y",     "caf\xc3\xa9",
					  "tab\t", "a:b", NAME64 "X"};
	const char *max = NAME64;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		SAYS(CHECK(snap_add(s, bad[i]) == NULL), "bad section name");
		SAYS(CHECK_EQ(snap_put_u64(sec, bad[i], 1), -EINVAL),
		     "snapshot: section 'a': bad field name");
	}
	CHECK(snap_add(s, max) != NULL);
	CHECK(snap_put_u64(sec, max, 1) == 0);
	SAYS(CHECK(snap_add(s, "a") == NULL), "snapshot: section 'a' added twice");
	SAYS(CHECK_EQ(snap_put_text(sec, max, "x"), -EINVAL), "field '" NAME64 "' added twice");
	SAYS(CHECK_EQ(snap_put_bytes(sec, "p", NULL, 4), -EINVAL), "field 'p': NULL");
	SAYS(CHECK_EQ(snap_put_text(sec, "t", NULL), -EINVAL), "field 't': NULL");
	SAYS(CHECK_EQ(snap_put_bytes(sec, "big", regs, (size_t)SNAP_PAYLOAD_MAX + 1), -EINVAL),
	     "more than a state file holds");
	CHECK_EQ(snap_nsections(s), 2);
	CHECK_EQ(snap_nfields(sec), 1);
	snap_free(s);
	snap_free(NULL);
}

/* The header's and the payload's checks, on a file snap_write wrote and copies of it. */
static void damage(void)
{
	struct snap *s = sample(), *r = NULL;
	uint8_t *good, *buf;
	size_t len;

	CHECK(snap_write(s, dfd, "good.snap") == 0);
	snap_free(s);
	good = slurp("good.snap", &len);
	CHECK(good && len > HDR + 16);
	if (!good || len <= HDR + 16)
		return;
	buf = malloc(len + 1);
	CHECK(snap_parse(good, len, &r, why, sizeof(why)) == 0 && r);
	snap_free(r);

	refused(good, 0, "empty");
	refused("\x89MV", 3, "truncated: 3 bytes, less than the 32-byte header");
	refused(good, 31, "truncated: 31 bytes, less than the 32-byte header");
	refused(good, HDR, "truncated: the header says");
	refused(good, HDR + 1, "truncated: the header says");
	refused(good, len - 1, "truncated: the header says");
	memcpy(buf, good, len);
	buf[len] = 0;
	refused(buf, len + 1, "length mismatch: the header says");
	refused("MVSNAP\r\n and more bytes than a header has", 42,
		"not a microvm snapshot state file");
	refused("[cpu0]\npc = 1\n", 14, "not a microvm snapshot state file");
	/* Through a text-mode copy: "\r\n" became "\n". */
	memcpy(buf, good, 4);
	memcpy(buf + 4, good + 5, len - 5);
	refused(buf, len - 1, "not a microvm snapshot state file");

	/* Any byte of the header flipped: damage (the version and magic have their own words). */
	for (size_t i = 0; i < HDR; i++) {
		memcpy(buf, good, len);
		buf[i] ^= 0x10;
		refused(buf, len,
			i < 8	 ? "not a microvm snapshot state file"
			: i < 12 ? "format version"
				 : "header checksum mismatch (file damaged)");
	}
	/* A payload byte flipped, at either end and in the middle. */
	for (size_t i = HDR; i < len; i += (len - HDR) / 3) {
		memcpy(buf, good, len);
		buf[i] ^= 1;
		refused(buf, len, "checksum mismatch (file damaged)");
		CHECK(strstr(why, "header") == NULL);
	}

	/* Headers made anew (valid checksums) that still say what this reader refuses. */
	memcpy(buf, good, len);
	header(buf, len - HDR, len - HDR, 2, 0);
	refused(buf, len, "format version 2; this microvm reads 1");
	header(buf, len - HDR, len - HDR, 0, 0);
	refused(buf, len, "format version 0; this microvm reads 1");
	header(buf, len - HDR, len - HDR, 1, 4);
	refused(buf, len, "unknown flags 0x4");
	header(buf, len - HDR, (uint64_t)SNAP_PAYLOAD_MAX + 1, 1, 0);
	refused(buf, len, "over the limit of 8 MiB");
	header(buf, len - HDR, UINT64_MAX, 1, 0);
	refused(buf, len, "over the limit of 8 MiB");
	header(buf, len - HDR, len - HDR - 1, 1, 0);
	refused(buf, len, "length mismatch: the header says");
	header(buf, len - HDR, len - HDR, 1, 0);
	CHECK(snap_parse(buf, len, &r, why, sizeof(why)) == 0 && r); /* the test's header */
	snap_free(r);

	/* Checksums right, payload not protobuf: a length past the end, a bad wire type. */
	free(buf);
	buf = file_of_payload("\x0a\x7f\x0a", 3, &len);
	refused(buf, len, "the payload does not decode");
	free(buf);
	buf = file_of_payload("\x0f", 1, &len);
	refused(buf, len, "the payload does not decode");
	free(buf);
	free(good);
	unlinkat(dfd, "good.snap", 0);
}

/* Payloads encoded by the test: names, duplicates, values. */
static void malformed(void)
{
	PbField f[4], *fp[4] = {&f[0], &f[1], &f[2], &f[3]};
	PbSection sec[3], *sp[3] = {&sec[0], &sec[1], &sec[2]};
	const char *long_name = NAME64 "X";
	struct snap *r = NULL;
	uint8_t *buf;
	size_t len;

	/* Valid: the reader takes the test's encoding. */
	pb_field(&f[0], "pc", 2, MICROVM__SNAPSHOT__FIELD__VALUE_U64, 5, NULL, 0);
	pb_field(&f[1], "raw", 3, MICROVM__SNAPSHOT__FIELD__VALUE_DATA, 0, "a\0b", 3);
	pb_field(&f[2], "t", 1, MICROVM__SNAPSHOT__FIELD__VALUE_TEXT, 0, "hi", 2);
	pb_section(&sec[0], "cpu0", 4, fp, 3);
	pb_section(&sec[1], "gic", 3, NULL, 0);
	buf = file_of(sp, 2, &len);
	CHECK(snap_parse(buf, len, &r, why, sizeof(why)) == 0 && r);
	if (r) {
		const void *p;
		size_t n;

		CHECK(snap_get_bytes(snap_find(r, "cpu0"), "raw", &p, &n) == 0 && n == 3);
		CHECK(n == 3 && !memcmp(p, "a\0b", 3));
	}
	snap_free(r);
	free(buf);

	/* Sections: no name, bad names, a name with a NUL in it, twice. */
	pb_section(&sec[1], "", 0, NULL, 0);
	refused_of(sp, 2, "section 1: no name");
	pb_section(&sec[1], "g i", 3, NULL, 0);
	refused_of(sp, 2, "section 1: bad name 'g i'");
	pb_section(&sec[1], "gic\0x", 5, NULL, 0);
	refused_of(sp, 2, "section 1: bad name 'gic?x'");
	pb_section(&sec[1], long_name, 65, NULL, 0);
	refused_of(sp, 2, "section 1: bad name '" NAME64 "...'");
	pb_section(&sec[1], "gic", 3, NULL, 0);
	pb_section(&sec[2], "cpu0", 4, NULL, 0);
	refused_of(sp, 3, "section 'cpu0' twice");

	/* Fields: bad names, twice, no value, text with a NUL. */
	pb_field(&f[3], "", 0, MICROVM__SNAPSHOT__FIELD__VALUE_U64, 1, NULL, 0);
	pb_section(&sec[0], "cpu0", 4, fp, 4);
	refused_of(sp, 1, "section 'cpu0': field 3: no name");
	pb_field(&f[3], "p\xc3\xa9", 3, MICROVM__SNAPSHOT__FIELD__VALUE_U64, 1, NULL, 0);
	refused_of(sp, 1, "section 'cpu0': field 3: bad name 'p?\?'");
	pb_field(&f[3], long_name, 65, MICROVM__SNAPSHOT__FIELD__VALUE_U64, 1, NULL, 0);
	refused_of(sp, 1, "section 'cpu0': field 3: bad name");
	pb_field(&f[3], "raw", 3, MICROVM__SNAPSHOT__FIELD__VALUE_U64, 1, NULL, 0);
	refused_of(sp, 1, "section 'cpu0': field 'raw' twice");
	pb_field(&f[3], "x", 1, MICROVM__SNAPSHOT__FIELD__VALUE__NOT_SET, 0, NULL, 0);
	refused_of(sp, 1, "section 'cpu0': field 'x' has no value");
	pb_field(&f[3], "x", 1, MICROVM__SNAPSHOT__FIELD__VALUE_TEXT, 0, "ab\0", 3);
	refused_of(sp, 1, "section 'cpu0': field 'x': text with a NUL byte");
	/* The same name in two sections is fine. */
	pb_field(&f[3], "x", 1, MICROVM__SNAPSHOT__FIELD__VALUE_TEXT, 0, "", 0);
	pb_section(&sec[1], "gic", 3, &fp[1], 3);
	buf = file_of(sp, 2, &len);
	CHECK(snap_parse(buf, len, &r, why, sizeof(why)) == 0 && r);
	if (r) {
		const char *text = NULL;

		CHECK(snap_get_text(snap_find(r, "gic"), "x", &text) == 0 && text && !*text);
	}
	snap_free(r);
	free(buf);
}

/* snap_read's own refusals, each said with the file's name. */
static void read_errors(void)
{
	struct snap *r = (struct snap *)1;
	uint8_t *buf;
	size_t len;
	int fd;

	cap_begin();
	CHECK_EQ(snap_read(dfd, "missing.snap", &r), -ENOENT);
	CHECK(r == NULL);
	CHECK(cap_said("snapshot missing.snap: No such file or directory"));

	CHECK(mkdirat(dfd, "sub", 0700) == 0);
	SAYS(CHECK_EQ(snap_read(dfd, "sub", &r), -EINVAL), "snapshot sub: not a regular file");
	CHECK(unlinkat(dfd, "sub", AT_REMOVEDIR) == 0);

	CHECK(mkfifoat(dfd, "fifo", 0600) == 0);
	/* not waited on */
	SAYS(CHECK_EQ(snap_read(dfd, "fifo", &r), -EINVAL), "snapshot fifo: not a regular file");
	unlinkat(dfd, "fifo", 0);

	/* Too large to be one, refused before a byte is read (sparse: nothing written). */
	fd = openat(dfd, "huge.snap", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	CHECK(fd >= 0 && ftruncate(fd, (off_t)HDR + SNAP_PAYLOAD_MAX + 1) == 0);
	close(fd);
	SAYS(CHECK_EQ(snap_read(dfd, "huge.snap", &r), -EINVAL),
	     "snapshot huge.snap: 8388641 bytes, more than a state file holds");
	unlinkat(dfd, "huge.snap", 0);

	/* A damaged file: snap_parse's sentence behind the name. */
	buf = file_of_payload("\x0a\x02\x0a\x00", 4, &len);
	buf[HDR + 1] = 3;
	CHECK(spill("bad.snap", buf, len));
	free(buf);
	SAYS(CHECK_EQ(snap_read(dfd, "bad.snap", &r), -EINVAL),
	     "snapshot bad.snap: checksum mismatch (file damaged)");
	unlinkat(dfd, "bad.snap", 0);

	/* Through a link: followed (a name the user gave). */
	CHECK(spill("x", "", 0));
	CHECK(symlinkat("x", dfd, "link.snap") == 0);
	SAYS(CHECK_EQ(snap_read(dfd, "link.snap", &r), -EINVAL),
	     "snapshot link.snap: empty (0 bytes)");
	unlinkat(dfd, "link.snap", 0);
	unlinkat(dfd, "x", 0);
	CHECK_EQ(entries(), 0);
}

/* A failed write says why with the path and leaves no file behind. */
static void write_errors(void)
{
	struct snap *s = sample(), *big = snap_new();
	uint8_t *huge;

	SAYS(CHECK_EQ(snap_write(s, dfd, "nodir/state.snap"), -ENOENT),
	     "snapshot nodir/state.snap: creating nodir/.state.snap.tmp-");
	SAYS(CHECK_EQ(snap_write(s, dfd, "sub/"), -EINVAL), "snapshot sub/: not a file name");

	/* The temporary file is written, the rename fails (a directory is in the way). */
	CHECK(mkdirat(dfd, "taken", 0700) == 0);
	CHECK(mkdirat(dfd, "taken/x", 0700) == 0);
	SAYS(CHECK(snap_write(s, dfd, "taken") < 0), "snapshot taken: renaming .taken.tmp-");
	CHECK_EQ(entries(), 1);
	CHECK(unlinkat(dfd, "taken/x", AT_REMOVEDIR) == 0);
	CHECK(unlinkat(dfd, "taken", AT_REMOVEDIR) == 0);

	/* Over the payload limit: refused before any file is made. */
	huge = calloc(1, SNAP_PAYLOAD_MAX);
	CHECK(huge && snap_put_bytes(snap_add(big, "ram"), "all", huge, SNAP_PAYLOAD_MAX) == 0);
	free(huge);
	SAYS(CHECK_EQ(snap_write(big, dfd, "big.snap"), -EFBIG), "bytes, over the limit of 8 MiB");
	CHECK_EQ(entries(), 0);
	snap_free(big);
	snap_free(s);
}

/* The restore side's checks, said with the section and field. */
static void need(void)
{
	struct snap *s = sample();
	const struct snap_sec *cpu;
	uint8_t got[sizeof(regs)];
	uint64_t v = 7;

	cap_begin();
	cpu = snap_need(s, "cpu0");
	CHECK(cpu != NULL);
	CHECK(snap_need_u64(cpu, "pc", UINT64_MAX, &v) == 0 && v == 0xffffffffffff0000ull);
	CHECK(snap_need_u64(cpu, "zero", 0, &v) == 0 && v == 0);
	CHECK(snap_need_bytes(cpu, "regs", got, sizeof(got)) == 0);
	CHECK(!memcmp(got, regs, sizeof(got)));
	CHECK(snap_need_bytes(cpu, "none", NULL, 0) == 0);
	CHECK(cap_said(NULL));

	SAYS(CHECK(snap_need(s, "gic") == NULL), "snapshot: no section 'gic'");
	SAYS(CHECK_EQ(snap_need_u64(cpu, "sp", 10, &v), -EINVAL),
	     "snapshot: section 'cpu0': field 'sp': missing");
	SAYS(CHECK_EQ(snap_need_u64(cpu, "pc", 0xffffffff, &v), -EINVAL),
	     "snapshot: section 'cpu0': field 'pc': 18446744073709486080, above the "
	     "limit 4294967295");
	SAYS(CHECK_EQ(snap_need_u64(cpu, "regs", 10, &v), -EINVAL),
	     "snapshot: section 'cpu0': field 'regs': bytes, not a number");
	SAYS(CHECK_EQ(snap_need_bytes(cpu, "model", got, 4), -EINVAL),
	     "snapshot: section 'cpu0': field 'model': text, not bytes");
	SAYS(CHECK_EQ(snap_need_bytes(cpu, "pc", got, 8), -EINVAL),
	     "snapshot: section 'cpu0': field 'pc': a number, not bytes");
	SAYS(CHECK_EQ(snap_need_bytes(cpu, "regs", got, 16), -EINVAL),
	     "snapshot: section 'cpu0': field 'regs': 300 bytes, not 16");
	SAYS(CHECK_EQ(snap_need_bytes(cpu, "missing", got, 16), -EINVAL),
	     "snapshot: section 'cpu0': field 'missing': missing");
	CHECK_EQ(v, 0); /* untouched by the failures */
	/* After a snap_need that failed (and said so): nothing more said. */
	cap_begin();
	CHECK_EQ(snap_need_u64(NULL, "pc", 1, &v), -EINVAL);
	CHECK_EQ(snap_need_bytes(NULL, "regs", got, 16), -EINVAL);
	CHECK(cap_said(NULL));
	snap_free(s);
}

void test_snapfile(void)
{
	dfd = -1;
	CHECK(mkdtemp(dir) != NULL);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(dfd >= 0);
	if (dfd < 0)
		return;
	TEST_RUN(roundtrip);
	TEST_RUN(many);
	TEST_RUN(put_errors);
	TEST_RUN(damage);
	TEST_RUN(malformed);
	TEST_RUN(read_errors);
	TEST_RUN(write_errors);
	TEST_RUN(need);
	CHECK_EQ(entries(), 0);
	close(dfd);
	rmdir(dir);
}
