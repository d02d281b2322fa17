/* devstate: indexed field names, booleans and refusals for devices' snapshot sections. */
#include "snapshot/devstate.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "log.h"

int devstate_bad(const struct snap_sec *sec, const char *field, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_error("snapshot: section '%s': field '%s': %s", snap_sec_name(sec), field, why);
	return -EINVAL;
}

const char *devstate_name(char *buf, const char *fmt, unsigned i)
{
	snprintf(buf, DEVSTATE_NAME_LEN, fmt, i);
	return buf;
}

unsigned devstate_count(const struct snap *s, const char *fmt)
{
	char name[DEVSTATE_NAME_LEN];
	unsigned n = 0;

	while (snap_find(s, devstate_name(name, fmt, n)))
		n++;
	return n;
}

int devstate_put_at(struct snap_sec *sec, const char *fmt, unsigned i, uint64_t v)
{
	char name[DEVSTATE_NAME_LEN];

	return snap_put_u64(sec, devstate_name(name, fmt, i), v);
}

int devstate_need_at(const struct snap_sec *sec, const char *fmt, unsigned i, uint64_t max,
		     uint64_t *v)
{
	char name[DEVSTATE_NAME_LEN];

	return snap_need_u64(sec, devstate_name(name, fmt, i), max, v);
}

int devstate_need_blob_max(const struct snap_sec *sec, const char *field, size_t max,
			   const void **p, size_t *len)
{
	int err = snap_get_bytes(sec, field, p, len);

	if (err)
		return devstate_bad(sec, field, err == -ENOENT ? "missing" : "of another type");
	if (*len > max)
		return devstate_bad(sec, field, "%zu bytes, at most %zu", *len, max);
	return 0;
}

int devstate_need_blob(const struct snap_sec *sec, const char *field, size_t len, const void **p)
{
	size_t n;
	int err = devstate_need_blob_max(sec, field, len, p, &n);

	if (!err && n != len)
		return devstate_bad(sec, field, "%zu bytes, not %zu", n, len);
	return err;
}

int devstate_need_bool(const struct snap_sec *sec, const char *field, bool *b)
{
	uint64_t v;
	int err = snap_need_u64(sec, field, 1, &v);

	if (!err)
		*b = v;
	return err;
}
