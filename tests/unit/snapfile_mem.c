/*
 * snapfile_mem: an in-memory stand-in for src/snapshot/snapfile.c until that module lands:
 * sections of named fields kept in memory, with the same names, lookups and messages as
 * snapfile.h says; no encoding, so snap_write, snap_parse and snap_read are not here. The
 * Makefile links it only while src/snapshot/snapfile.c does not exist: delete this file and
 * its Makefile line once it does.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "snapshot/snapfile.h"

struct field {
	char name[SNAP_NAME_MAX + 1];
	enum snap_type type;
	uint64_t u64;
	uint8_t *data; /* bytes, or text with its NUL */
	size_t len;
};

struct snap_sec {
	char name[SNAP_NAME_MAX + 1];
	struct field *fields;
	size_t nfields;
};

struct snap {
	struct snap_sec **secs;
	size_t nsecs;
};

static bool valid_name(const char *name)
{
	size_t n = strlen(name);

	if (n < 1 || n > SNAP_NAME_MAX)
		return false;
	return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
	       n;
}

struct snap *snap_new(void)
{
	return calloc(1, sizeof(struct snap));
}

void snap_free(struct snap *s)
{
	for (size_t i = 0; s && i < s->nsecs; i++) {
		for (size_t k = 0; k < s->secs[i]->nfields; k++)
			free(s->secs[i]->fields[k].data);
		free(s->secs[i]->fields);
		free(s->secs[i]);
	}
	if (s)
		free(s->secs);
	free(s);
}

struct snap_sec *snap_add(struct snap *s, const char *name)
{
	struct snap_sec **secs, *sec;

	if (!valid_name(name) || snap_find(s, name)) {
		log_error("snapshot: bad or duplicate section name '%s'", name);
		return NULL;
	}
	secs = realloc(s->secs, (s->nsecs + 1) * sizeof(*secs));
	if (!secs)
		return NULL;
	s->secs = secs;
	sec = calloc(1, sizeof(*sec));
	if (!sec)
		return NULL;
	strcpy(sec->name, name);
	s->secs[s->nsecs++] = sec;
	return sec;
}

static const struct field *find(const struct snap_sec *sec, const char *name)
{
	for (size_t i = 0; i < sec->nfields; i++)
		if (!strcmp(sec->fields[i].name, name))
			return &sec->fields[i];
	return NULL;
}

/* Append a field whose data (if any) is a copy of len bytes at p. */
static int put(struct snap_sec *sec, const char *name, enum snap_type type, uint64_t v,
	       const void *p, size_t len)
{
	struct field *f;

	if (!valid_name(name) || find(sec, name)) {
		log_error("snapshot: section '%s': bad or duplicate field name '%s'", sec->name,
			  name);
		return -EINVAL;
	}
	f = realloc(sec->fields, (sec->nfields + 1) * sizeof(*f));
	if (!f)
		return -ENOMEM;
	sec->fields = f;
	f = &f[sec->nfields];
	*f = (struct field){.type = type, .u64 = v, .len = len};
	strcpy(f->name, name);
	if (type != SNAP_U64) {
		f->data = malloc(len + 1);
		if (!f->data)
			return -ENOMEM;
		if (len)
			memcpy(f->data, p, len);
		f->data[len] = 0;
	}
	sec->nfields++;
	return 0;
}

int snap_put_u64(struct snap_sec *sec, const char *field, uint64_t v)
{
	return put(sec, field, SNAP_U64, v, NULL, 0);
}

int snap_put_bytes(struct snap_sec *sec, const char *field, const void *p, size_t len)
{
	return put(sec, field, SNAP_BYTES, 0, p, len);
}

int snap_put_text(struct snap_sec *sec, const char *field, const char *text)
{
	return put(sec, field, SNAP_TEXT, 0, text, strlen(text));
}

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

int snap_field_at(const struct snap_sec *sec, size_t i, struct snap_field_view *f)
{
	const struct field *x;

	if (i >= sec->nfields)
		return -ERANGE;
	x = &sec->fields[i];
	*f = (struct snap_field_view){x->name, x->type, x->u64, x->data, x->len};
	return 0;
}

/* The field called name of type type: 0, -ENOENT or -EINVAL. */
static int get(const struct snap_sec *sec, const char *name, enum snap_type type,
	       const struct field **f)
{
	*f = find(sec, name);
	if (!*f)
		return -ENOENT;
	return (*f)->type == type ? 0 : -EINVAL;
}

int snap_get_u64(const struct snap_sec *sec, const char *field, uint64_t *v)
{
	const struct field *f;
	int err = get(sec, field, SNAP_U64, &f);

	if (!err)
		*v = f->u64;
	return err;
}

int snap_get_bytes(const struct snap_sec *sec, const char *field, const void **p, size_t *len)
{
	const struct field *f;
	int err = get(sec, field, SNAP_BYTES, &f);

	if (!err) {
		*p = f->data;
		*len = f->len;
	}
	return err;
}

int snap_get_text(const struct snap_sec *sec, const char *field, const char **text)
{
	const struct field *f;
	int err = get(sec, field, SNAP_TEXT, &f);

	if (!err)
		*text = (const char *)f->data;
	return err;
}

/* Say why field cannot be used (err from a lookup) and return -EINVAL. */
static int refuse(const struct snap_sec *sec, const char *field, int err, const char *what)
{
	log_error("snapshot: section '%s': field '%s': %s", sec->name, field,
		  err == -ENOENT ? "missing"
		  : err		 ? "of another type"
				 : what);
	return -EINVAL;
}

int snap_need_u64(const struct snap_sec *sec, const char *field, uint64_t max, uint64_t *v)
{
	int err = snap_get_u64(sec, field, v);

	if (err || *v > max)
		return refuse(sec, field, err, "out of range");
	return 0;
}

int snap_need_bytes(const struct snap_sec *sec, const char *field, void *p, size_t len)
{
	const void *q;
	size_t n;
	int err = snap_get_bytes(sec, field, &q, &n);

	if (err || n != len)
		return refuse(sec, field, err, "of another length");
	memcpy(p, q, len);
	return 0;
}

const struct snap_sec *snap_need(const struct snap *s, const char *name)
{
	const struct snap_sec *sec = snap_find(s, name);

	if (!sec)
		log_error("snapshot: no section '%s'", name);
	return sec;
}
