/*
 * snapfile: the snapshot state file (docs/snapshot.md, "The state file"): a 32-byte header
 * (magic, format version, flags, payload length and CRC32, the header's own CRC32), then the
 * sections encoded with protobuf-c (src/snapshot/snapshot.proto). A state in memory is an
 * array of sections, each an array of fields; a file read is decoded, checked and copied into
 * that form, so that a state read and a state being written are the same thing.
 */
#include "snapshot/snapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <snapshot/snapshot.pb-c.h>

#include "le.h"
#include "log.h"

/*
 * The header, little-endian: magic[8], version u32, flags u32, payload length u64, payload
 * CRC32 u32, CRC32 of the 28 bytes before it u32. The magic's first byte has its top bit set
 * and the rest holds "\r\n", 0x1a and "\n", so that a copy through a 7-bit or text-mode
 * channel changes it (PNG's scheme).
 */
#define MAGIC	      "\x89MVS\r\n\x1a\n"
#define MAGIC_LEN     8
#define VERSION	      1u
#define HDR_LEN	      32
#define HDR_VERSION   8
#define HDR_FLAGS     12
#define HDR_PLEN      16
#define HDR_PCRC      24
#define HDR_HCRC      28
#define SNAP_FILE_MAX ((size_t)HDR_LEN + SNAP_PAYLOAD_MAX)
#define TMP_TRIES     100 /* temporary names tried before a write gives up */
#define NAME_RULE     "1 to 64 of A-Z a-z 0-9 . _ -"
_Static_assert(SNAP_NAME_MAX == 64, "NAME_RULE says 64");

typedef Microvm__Snapshot__State PbState;
typedef Microvm__Snapshot__Section PbSection;
typedef Microvm__Snapshot__Field PbField;

struct snap_field {
	char name[SNAP_NAME_MAX + 1];
	enum snap_type type;
	uint64_t u64;
	uint8_t *data; /* SNAP_BYTES, SNAP_TEXT: len bytes and a NUL */
	size_t len;
};

struct snap_sec {
	char name[SNAP_NAME_MAX + 1];
	struct snap_field *fields;
	size_t nfields, cap;
};

struct snap {
	struct snap_sec **secs; /* pointers: a section stays where snap_add left it */
	size_t nsecs, cap;
};

static const char *const type_name[] = {
	[SNAP_U64] = "a number",
	[SNAP_BYTES] = "bytes",
	[SNAP_TEXT] = "text",
};

/* ---- names and arrays ---- */

/* Whether p[0..len) is a valid name: 1 to SNAP_NAME_MAX of [A-Za-z0-9._-]. */
static bool name_ok(const void *p, size_t len)
{
	const unsigned char *c = p;

	if (!len || len > SNAP_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((c[i] >= 'a' && c[i] <= 'z') || (c[i] >= 'A' && c[i] <= 'Z') ||
		      (c[i] >= '0' && c[i] <= '9') || c[i] == '.' || c[i] == '_' || c[i] == '-'))
			return false;
	return true;
}

/* Room in *arr (*cap elements of size) for n elements: 0 or -ENOMEM. */
static int reserve(void **arr, size_t *cap, size_t n, size_t size)
{
	size_t want = *cap ? *cap : 8;
	void *p;

	if (n <= *cap)
		return 0;
	while (want < n)
		want *= 2;
	if (want > SIZE_MAX / size)
		return -ENOMEM;
	p = realloc(*arr, want * size);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = want;
	return 0;
}

/* Append a section called name[0..len) (a valid name) to s: NULL on allocation failure. */
static struct snap_sec *sec_push(struct snap *s, const void *name, size_t len)
{
	struct snap_sec *sec;

	if (reserve((void **)&s->secs, &s->cap, s->nsecs + 1, sizeof(*s->secs)))
		return NULL;
	sec = calloc(1, sizeof(*sec));
	if (!sec)
		return NULL;
	memcpy(sec->name, name, len);
	s->secs[s->nsecs++] = sec;
	return sec;
}

/* Append a field called name[0..len) (a valid name) to sec: NULL on allocation failure. */
static struct snap_field *field_push(struct snap_sec *sec, const void *name, size_t len,
				     enum snap_type type)
{
	struct snap_field *f;

	if (reserve((void **)&sec->fields, &sec->cap, sec->nfields + 1, sizeof(*sec->fields)))
		return NULL;
	f = &sec->fields[sec->nfields++];
	memset(f, 0, sizeof(*f));
	memcpy(f->name, name, len);
	f->type = type;
	return f;
}

/* Give f a copy of p[0..len) and a NUL after it: 0 or -ENOMEM. */
static int field_copy(struct snap_field *f, const void *p, size_t len)
{
	f->data = malloc(len + 1);
	if (!f->data)
		return -ENOMEM;
	if (len)
		memcpy(f->data, p, len);
	f->data[len] = 0;
	f->len = len;
	return 0;
}

static const struct snap_field *field_find(const struct snap_sec *sec, const char *name)
{
	for (size_t i = 0; i < sec->nfields; i++)
		if (!strcmp(sec->fields[i].name, name))
			return &sec->fields[i];
	return NULL;
}

/* ---- building a state ---- */

struct snap *snap_new(void)
{
	return calloc(1, sizeof(struct snap));
}

void snap_free(struct snap *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nsecs; i++) {
		for (size_t j = 0; j < s->secs[i]->nfields; j++)
			free(s->secs[i]->fields[j].data);
		free(s->secs[i]->fields);
		free(s->secs[i]);
	}
	free(s->secs);
	free(s);
}

struct snap_sec *snap_add(struct snap *s, const char *name)
{
	struct snap_sec *sec;

	if (!name_ok(name, strlen(name))) {
		log_error("snapshot: bad section name '%s' (" NAME_RULE ")", name);
		return NULL;
	}
	if (snap_find(s, name)) {
		log_error("snapshot: section '%s' added twice", name);
		return NULL;
	}
	sec = sec_push(s, name, strlen(name));
	if (!sec)
		log_error("snapshot: section '%s': out of memory", name);
	return sec;
}

/* A new field of sec called name, or NULL said (*err: -EINVAL or -ENOMEM). */
static struct snap_field *put(struct snap_sec *sec, const char *name, enum snap_type type, int *err)
{
	struct snap_field *f;

	*err = -EINVAL;
	if (!name_ok(name, strlen(name))) {
		log_error("snapshot: section '%s': bad field name '%s' (" NAME_RULE ")", sec->name,
			  name);
		return NULL;
	}
	if (field_find(sec, name)) {
		log_error("snapshot: section '%s': field '%s' added twice", sec->name, name);
		return NULL;
	}
	f = field_push(sec, name, strlen(name), type);
	if (!f) {
		log_error("snapshot: section '%s': field '%s': out of memory", sec->name, name);
		*err = -ENOMEM;
	}
	return f;
}

int snap_put_u64(struct snap_sec *sec, const char *field, uint64_t v)
{
	int err;
	struct snap_field *f = put(sec, field, SNAP_U64, &err);

	if (!f)
		return err;
	f->u64 = v;
	return 0;
}

/* Put a field of type (SNAP_BYTES or SNAP_TEXT) holding a copy of p[0..len). */
static int put_data(struct snap_sec *sec, const char *field, enum snap_type type, const void *p,
		    size_t len)
{
	struct snap_field *f;
	int err;

	if (len > SNAP_PAYLOAD_MAX || (!p && (len || type == SNAP_TEXT))) {
		log_error("snapshot: section '%s': field '%s': %s", sec->name, field,
			  p ? "more than a state file holds" : "NULL");
		return -EINVAL;
	}
	f = put(sec, field, type, &err);
	if (!f)
		return err;
	err = field_copy(f, p, len);
	if (err) {
		sec->nfields--;
		log_error("snapshot: section '%s': field '%s': out of memory", sec->name, field);
	}
	return err;
}

int snap_put_bytes(struct snap_sec *sec, const char *field, const void *p, size_t len)
{
	return put_data(sec, field, SNAP_BYTES, p, len);
}

int snap_put_text(struct snap_sec *sec, const char *field, const char *text)
{
	return put_data(sec, field, SNAP_TEXT, text, text ? strlen(text) : 0);
}

/* ---- encoding and writing ---- */

/*
 * The file's bytes for s (header and payload) in *out, *len of them: 0, -ENOMEM, or -EFBIG
 * when the payload would be over SNAP_PAYLOAD_MAX (its size in *len). The protobuf-c
 * messages point into s; only their arrays are allocated here.
 */
static int encode(const struct snap *s, uint8_t **out, size_t *len)
{
	PbState st = MICROVM__SNAPSHOT__STATE__INIT;
	PbSection *secs, **secp;
	PbField *fields, **fieldp;
	size_t nfields = 0, k = 0, plen;
	uint8_t *buf = NULL;
	int err = -ENOMEM;

	for (size_t i = 0; i < s->nsecs; i++)
		nfields += s->secs[i]->nfields;
	secs = calloc(s->nsecs + 1, sizeof(*secs));
	secp = calloc(s->nsecs + 1, sizeof(*secp));
	fields = calloc(nfields + 1, sizeof(*fields));
	fieldp = calloc(nfields + 1, sizeof(*fieldp));
	if (!secs || !secp || !fields || !fieldp)
		goto out;
	for (size_t i = 0; i < s->nsecs; i++) {
		const struct snap_sec *sec = s->secs[i];

		microvm__snapshot__section__init(&secs[i]);
		secs[i].name.data = (uint8_t *)sec->name;
		secs[i].name.len = strlen(sec->name);
		secs[i].n_fields = sec->nfields;
		secs[i].fields = &fieldp[k];
		secp[i] = &secs[i];
		for (size_t j = 0; j < sec->nfields; j++, k++) {
			const struct snap_field *f = &sec->fields[j];
			PbField *pf = &fields[k];

			microvm__snapshot__field__init(pf);
			pf->name.data = (uint8_t *)f->name;
			pf->name.len = strlen(f->name);
			switch (f->type) {
			case SNAP_U64:
				pf->value_case = MICROVM__SNAPSHOT__FIELD__VALUE_U64;
				pf->u64 = f->u64;
				break;
			case SNAP_BYTES:
				pf->value_case = MICROVM__SNAPSHOT__FIELD__VALUE_DATA;
				pf->data.data = f->data;
				pf->data.len = f->len;
				break;
			case SNAP_TEXT:
				pf->value_case = MICROVM__SNAPSHOT__FIELD__VALUE_TEXT;
				pf->text.data = f->data;
				pf->text.len = f->len;
				break;
			}
			fieldp[k] = pf;
		}
	}
	st.n_sections = s->nsecs;
	st.sections = secp;
	plen = microvm__snapshot__state__get_packed_size(&st);
	if (plen > SNAP_PAYLOAD_MAX) {
		*len = plen;
		err = -EFBIG;
		goto out;
	}
	buf = malloc(HDR_LEN + plen);
	if (!buf)
		goto out;
	BUG_ON(microvm__snapshot__state__pack(&st, buf + HDR_LEN) != plen);
	memcpy(buf, MAGIC, MAGIC_LEN);
	le32_put(buf + HDR_VERSION, VERSION);
	le32_put(buf + HDR_FLAGS, 0);
	le64_put(buf + HDR_PLEN, plen);
	le32_put(buf + HDR_PCRC, (uint32_t)crc32(0, buf + HDR_LEN, (uInt)plen));
	le32_put(buf + HDR_HCRC, (uint32_t)crc32(0, buf, HDR_HCRC));
	*out = buf;
	*len = HDR_LEN + plen;
	err = 0;
out:
	free(secs);
	free(secp);
	free(fields);
	free(fieldp);
	return err;
}

/* Write all of p[0..len) to fd: 0 or -errno. */
static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Sync the directory holding name (relative to dirfd), so that a rename into it lasts: 0 or
 * -errno. A file system that cannot sync a directory (EINVAL) is taken at its word.
 */
static int sync_dir(int dirfd, const char *name, size_t dirlen)
{
	char *dir = dirlen ? strndup(name, dirlen) : strdup(".");
	int fd, err = 0;

	if (!dir)
		return -ENOMEM;
	fd = openat(dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0 && errno != EINVAL)
		err = -errno;
	close(fd);
	return err;
}

int snap_write_file(int dirfd, const char *name, int (*fill)(int fd, void *arg), void *arg)
{
	static unsigned counter; /* temporary names: the next suffix to try */
	const char *base = strrchr(name, '/');
	size_t dirlen = base ? (size_t)(base + 1 - name) : 0;
	char *tmp;
	int fd = -1, err = 0;

	base = name + dirlen;
	if (!*base) {
		log_error("snapshot %s: not a file name", name);
		return -EINVAL;
	}
	/* Beside name: DIR/.NAME.tmp-N, NAME cut so that the whole stays a valid file name. */
	tmp = malloc(dirlen + 240);
	if (!tmp) {
		log_error("snapshot %s: out of memory", name);
		return -ENOMEM;
	}
	for (int tries = 0; fd < 0; tries++) {
		snprintf(tmp, dirlen + 240, "%.*s.%.200s.tmp-%u", (int)dirlen, name, base,
			 __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
		fd = openat(dirfd, tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
		if (fd < 0 && (errno != EEXIST || tries == TMP_TRIES)) {
			err = -errno;
			log_error("snapshot %s: creating %s: %s", name, tmp, strerror(errno));
			goto out;
		}
	}
	err = fill(fd, arg);
	if (err) {
		log_error("snapshot %s: writing %s: %s", name, tmp, strerror(-err));
		goto fail;
	}
	if (fsync(fd) < 0) {
		err = -errno;
		log_error("snapshot %s: syncing %s: %s", name, tmp, strerror(errno));
		goto fail;
	}
	err = close(fd) < 0 ? -errno : 0;
	fd = -1;
	if (err) {
		log_error("snapshot %s: closing %s: %s", name, tmp, strerror(-err));
		goto fail;
	}
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		err = -errno;
		log_error("snapshot %s: renaming %s to it: %s", name, tmp, strerror(errno));
		goto fail;
	}
	/* In place and whole: a failure now is the rename's durability, not a partial file. */
	err = sync_dir(dirfd, name, dirlen);
	if (err)
		log_error("snapshot %s: syncing its directory: %s", name, strerror(-err));
	goto out;
fail:
	if (fd >= 0)
		close(fd);
	unlinkat(dirfd, tmp, 0);
out:
	free(tmp);
	return err;
}

/* The encoded state, for snap_write_file. */
struct encoded {
	const uint8_t *buf;
	size_t len;
};

static int fill_encoded(int fd, void *arg)
{
	const struct encoded *e = arg;

	return write_all(fd, e->buf, e->len);
}

int snap_write(const struct snap *s, int dirfd, const char *name)
{
	struct encoded e;
	uint8_t *buf = NULL;
	int err = encode(s, &buf, &e.len);

	if (err == -EFBIG) {
		log_error("snapshot %s: the state encodes to %zu bytes, over the limit of %u MiB",
			  name, e.len, SNAP_PAYLOAD_MAX >> 20);
		return err;
	}
	if (err) {
		log_error("snapshot %s: out of memory", name);
		return err;
	}
	e.buf = buf;
	err = snap_write_file(dirfd, name, fill_encoded, &e);
	free(buf);
	return err;
}

/* ---- reading ---- */

/* Fill why (a sentence) and return -EINVAL. */
static int __attribute__((format(printf, 3, 4)))
refuse(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Say "out of memory" in why and return -ENOMEM. */
static int no_memory(char *why, size_t whylen)
{
	refuse(why, whylen, "out of memory");
	return -ENOMEM;
}

#define BAD_NAME_LEN (SNAP_NAME_MAX + 16)

/*
 * What is wrong with a name from a file (name_ok refused it), in out: "no name", or "bad
 * name 'NAME'" with NAME cut after SNAP_NAME_MAX bytes and other bytes than printable ASCII
 * as '?'.
 */
static const char *bad_name(const ProtobufCBinaryData *b, char out[BAD_NAME_LEN])
{
	size_t n = b->len > SNAP_NAME_MAX ? SNAP_NAME_MAX : b->len;
	char shown[SNAP_NAME_MAX + 1];

	if (!n)
		return "no name";
	for (size_t i = 0; i < n; i++)
		shown[i] = b->data[i] >= 0x20 && b->data[i] < 0x7f ? (char)b->data[i] : '?';
	shown[n] = 0;
	snprintf(out, BAD_NAME_LEN, "bad name '%s%s'", shown, b->len > n ? "..." : "");
	return out;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first name of names[0..n) that is there twice (sorting names), or NULL. */
static const char *duplicate(const char **names, size_t n)
{
	qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 1; i < n; i++)
		if (!strcmp(names[i - 1], names[i]))
			return names[i];
	return NULL;
}

/* Copy the fields of ps into sec, checking each: 0 or -EINVAL/-ENOMEM (said in why). */
static int take_fields(struct snap_sec *sec, const PbSection *ps, const char **names, char *why,
		       size_t whylen)
{
	char bad[BAD_NAME_LEN];
	const char *dup;

	if (reserve((void **)&sec->fields, &sec->cap, ps->n_fields, sizeof(*sec->fields)))
		return no_memory(why, whylen);
	for (size_t j = 0; j < ps->n_fields; j++) {
		const PbField *pf = ps->fields[j];
		struct snap_field *f;
		int err = 0;

		if (!name_ok(pf->name.data, pf->name.len))
			return refuse(why, whylen, "section '%s': field %zu: %s", sec->name, j,
				      bad_name(&pf->name, bad));
		f = field_push(sec, pf->name.data, pf->name.len, SNAP_U64); /* room reserved */
		switch (pf->value_case) {
		case MICROVM__SNAPSHOT__FIELD__VALUE_U64:
			f->u64 = pf->u64;
			break;
		case MICROVM__SNAPSHOT__FIELD__VALUE_DATA:
			f->type = SNAP_BYTES;
			err = field_copy(f, pf->data.data, pf->data.len);
			break;
		case MICROVM__SNAPSHOT__FIELD__VALUE_TEXT:
			f->type = SNAP_TEXT;
			if (pf->text.len && memchr(pf->text.data, 0, pf->text.len))
				return refuse(why, whylen,
					      "section '%s': field '%s': text with a NUL byte",
					      sec->name, f->name);
			err = field_copy(f, pf->text.data, pf->text.len);
			break;
		default:
			return refuse(why, whylen, "section '%s': field '%s' has no value",
				      sec->name, f->name);
		}
		if (err)
			return no_memory(why, whylen);
		names[j] = f->name;
	}
	dup = duplicate(names, sec->nfields);
	if (dup)
		return refuse(why, whylen, "section '%s': field '%s' twice", sec->name, dup);
	return 0;
}

/* Copy the decoded st into s, checking names and duplicates: 0 or -errno (said in why). */
static int take(struct snap *s, const PbState *st, char *why, size_t whylen)
{
	size_t most = st->n_sections;
	const char **names, *dup;
	char bad[BAD_NAME_LEN];
	int err = 0;

	for (size_t i = 0; i < st->n_sections; i++)
		if (st->sections[i]->n_fields > most)
			most = st->sections[i]->n_fields;
	names = calloc(most + 1, sizeof(*names));
	if (!names || reserve((void **)&s->secs, &s->cap, st->n_sections, sizeof(*s->secs))) {
		free(names);
		return no_memory(why, whylen);
	}
	for (size_t i = 0; i < st->n_sections && !err; i++) {
		const PbSection *ps = st->sections[i];
		struct snap_sec *sec;

		if (!name_ok(ps->name.data, ps->name.len)) {
			err = refuse(why, whylen, "section %zu: %s", i, bad_name(&ps->name, bad));
			break;
		}
		sec = sec_push(s, ps->name.data, ps->name.len);
		err = sec ? take_fields(sec, ps, names, why, whylen) : no_memory(why, whylen);
	}
	if (!err) {
		for (size_t i = 0; i < s->nsecs; i++)
			names[i] = s->secs[i]->name;
		dup = duplicate(names, s->nsecs);
		if (dup)
			err = refuse(why, whylen, "section '%s' twice", dup);
	}
	free(names);
	return err;
}

int snap_parse(const void *buf, size_t len, struct snap **out, char *why, size_t whylen)
{
	const uint8_t *p = buf;
	PbState *st;
	struct snap *s;
	uint64_t plen;
	uint32_t version, flags;
	int err;

	*out = NULL;
	if (!len)
		return refuse(why, whylen, "empty (0 bytes)");
	if (memcmp(p, MAGIC, len < MAGIC_LEN ? len : MAGIC_LEN))
		return refuse(why, whylen, "not a microvm snapshot state file");
	if (len < HDR_LEN)
		return refuse(why, whylen, "truncated: %zu bytes, less than the %d-byte header",
			      len, HDR_LEN);
	/* The version first: another version may lay the rest of its header out otherwise. */
	version = le32_get(p + HDR_VERSION);
	if (version != VERSION)
		return refuse(why, whylen, "format version %u; this microvm reads %u", version,
			      VERSION);
	if (le32_get(p + HDR_HCRC) != (uint32_t)crc32(0, p, HDR_HCRC))
		return refuse(why, whylen, "header checksum mismatch (file damaged)");
	flags = le32_get(p + HDR_FLAGS);
	if (flags)
		return refuse(why, whylen, "unknown flags 0x%x", flags);
	plen = le64_get(p + HDR_PLEN);
	if (plen > SNAP_PAYLOAD_MAX)
		return refuse(why, whylen, "a payload of %llu bytes, over the limit of %u MiB",
			      (unsigned long long)plen, SNAP_PAYLOAD_MAX >> 20);
	if (len - HDR_LEN != plen)
		return refuse(why, whylen,
			      "%s: the header says %llu payload bytes, the file holds %zu",
			      len - HDR_LEN < plen ? "truncated" : "length mismatch",
			      (unsigned long long)plen, len - HDR_LEN);
	if (le32_get(p + HDR_PCRC) != (uint32_t)crc32(0, p + HDR_LEN, (uInt)plen))
		return refuse(why, whylen, "checksum mismatch (file damaged)");
	st = microvm__snapshot__state__unpack(NULL, plen, p + HDR_LEN);
	if (!st)
		return refuse(why, whylen, "the payload does not decode (protobuf)");
	s = snap_new();
	err = s ? take(s, st, why, whylen) : no_memory(why, whylen);
	microvm__snapshot__state__free_unpacked(st, NULL);
	if (err) {
		snap_free(s);
		return err;
	}
	*out = s;
	return 0;
}

/* Read fd's size bytes into a new *buf (*len: those read, fewer if it shrank): 0 or -errno. */
static int read_all(int fd, size_t size, uint8_t **buf, size_t *len)
{
	uint8_t *p = malloc(size ? size : 1);
	size_t got = 0;

	if (!p)
		return -ENOMEM;
	while (got < size) {
		ssize_t n = read(fd, p + got, size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = -errno;

			free(p);
			return err;
		}
		if (!n)
			break;
		got += (size_t)n;
	}
	*buf = p;
	*len = got;
	return 0;
}

int snap_read(int dirfd, const char *name, struct snap **out)
{
	char why[256];
	uint8_t *buf = NULL;
	struct stat st;
	size_t len = 0;
	int fd, err;

	*out = NULL;
	/* Non-blocking, so that a FIFO is refused (below), not waited on. */
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		err = -errno;
		log_error("snapshot %s: %s", name, strerror(errno));
		return err;
	}
	if (fstat(fd, &st) < 0) {
		err = -errno;
		log_error("snapshot %s: %s", name, strerror(errno));
		goto out;
	}
	err = -EINVAL;
	if (!S_ISREG(st.st_mode)) {
		log_error("snapshot %s: not a regular file", name);
		goto out;
	}
	if ((unsigned long long)st.st_size > SNAP_FILE_MAX) {
		log_error("snapshot %s: %lld bytes, more than a state file holds (%u MiB and a "
			  "%d-byte header)",
			  name, (long long)st.st_size, SNAP_PAYLOAD_MAX >> 20, HDR_LEN);
		goto out;
	}
	err = read_all(fd, (size_t)st.st_size, &buf, &len);
	if (err) {
		log_error("snapshot %s: %s", name, strerror(-err));
		goto out;
	}
	err = snap_parse(buf, len, out, why, sizeof(why));
	if (err)
		log_error("snapshot %s: %s", name, why);
out:
	free(buf);
	close(fd);
	return err;
}

/* ---- looking up ---- */

const struct snap_sec *snap_find(const struct snap *s, const char *name)
{
	for (size_t i = 0; i < s->nsecs; i++)
		if (!strcmp(s->secs[i]->name, name))
			return s->secs[i];
	return NULL;
}

size_t snap_nsections(const struct snap *s)
{
	return s->nsecs;
}

const struct snap_sec *snap_section_at(const struct snap *s, size_t i)
{
	return i < s->nsecs ? s->secs[i] : NULL;
}

const char *snap_sec_name(const struct snap_sec *sec)
{
	return sec->name;
}

size_t snap_nfields(const struct snap_sec *sec)
{
	return sec->nfields;
}

static void view(const struct snap_field *f, struct snap_field_view *v)
{
	v->name = f->name;
	v->type = f->type;
	v->u64 = f->type == SNAP_U64 ? f->u64 : 0;
	v->data = f->type == SNAP_U64 ? NULL : f->data;
	v->len = f->type == SNAP_U64 ? 0 : f->len;
}

int snap_field_at(const struct snap_sec *sec, size_t i, struct snap_field_view *f)
{
	if (i >= sec->nfields)
		return -ERANGE;
	view(&sec->fields[i], f);
	return 0;
}

/* The field called name if it has type: 0, -ENOENT or -EINVAL (nothing said). */
static int get(const struct snap_sec *sec, const char *name, enum snap_type type,
	       const struct snap_field **f)
{
	*f = field_find(sec, name);
	if (!*f)
		return -ENOENT;
	return (*f)->type == type ? 0 : -EINVAL;
}

int snap_get_u64(const struct snap_sec *sec, const char *field, uint64_t *v)
{
	const struct snap_field *f;
	int err = get(sec, field, SNAP_U64, &f);

	if (!err)
		*v = f->u64;
	return err;
}

int snap_get_bytes(const struct snap_sec *sec, const char *field, const void **p, size_t *len)
{
	const struct snap_field *f;
	int err = get(sec, field, SNAP_BYTES, &f);

	if (!err) {
		*p = f->data;
		*len = f->len;
	}
	return err;
}

int snap_get_text(const struct snap_sec *sec, const char *field, const char **text)
{
	const struct snap_field *f;
	int err = get(sec, field, SNAP_TEXT, &f);

	if (!err)
		*text = (const char *)f->data;
	return err;
}

/* The field called name if it has type, or NULL said. */
static const struct snap_field *need(const struct snap_sec *sec, const char *name,
				     enum snap_type type)
{
	const struct snap_field *f;
	int err;

	if (!sec)
		return NULL; /* snap_need said which section is missing */
	err = get(sec, name, type, &f);
	if (err == -ENOENT)
		log_error("snapshot: section '%s': field '%s': missing", sec->name, name);
	else if (err)
		log_error("snapshot: section '%s': field '%s': %s, not %s", sec->name, name,
			  type_name[f->type], type_name[type]);
	return err ? NULL : f;
}

int snap_need_u64(const struct snap_sec *sec, const char *field, uint64_t max, uint64_t *v)
{
	const struct snap_field *f = need(sec, field, SNAP_U64);

	if (!f)
		return -EINVAL;
	if (f->u64 > max) {
		log_error("snapshot: section '%s': field '%s': %llu, above the limit %llu",
			  sec->name, field, (unsigned long long)f->u64, (unsigned long long)max);
		return -EINVAL;
	}
	*v = f->u64;
	return 0;
}

int snap_need_bytes(const struct snap_sec *sec, const char *field, void *p, size_t len)
{
	const struct snap_field *f = need(sec, field, SNAP_BYTES);

	if (!f)
		return -EINVAL;
	if (f->len != len) {
		log_error("snapshot: section '%s': field '%s': %zu bytes, not %zu", sec->name,
			  field, f->len, len);
		return -EINVAL;
	}
	if (len)
		memcpy(p, f->data, len);
	return 0;
}

const struct snap_sec *snap_need(const struct snap *s, const char *name)
{
	const struct snap_sec *sec = snap_find(s, name);

	if (!sec)
		log_error("snapshot: no section '%s'", name);
	return sec;
}
