/*
 * devstate: what devices share to write their section of a snapshot and to check it on
 * restore: fields named with an index ("q0.num"), booleans, and a refusal that names the
 * section (the device) and the field.
 */
#ifndef MICROVM_DEVSTATE_H
#define MICROVM_DEVSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snapshot/snapfile.h"

/* Room for a field name and its NUL. */
#define DEVSTATE_NAME_LEN (SNAP_NAME_MAX + 1)

/* Refuse a restore: "snapshot: section 'S': field 'F': why" said; returns -EINVAL. */
int devstate_bad(const struct snap_sec *sec, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Field name fmt (one %u) with index i, written in buf (DEVSTATE_NAME_LEN bytes); buf. */
const char *devstate_name(char *buf, const char *fmt, unsigned i)
	__attribute__((format(printf, 2, 0)));
/* A number field of element i (name fmt, one %u): snap_put_u64 / snap_need_u64 by index. */
int devstate_put_at(struct snap_sec *sec, const char *fmt, unsigned i, uint64_t v);
int devstate_need_at(const struct snap_sec *sec, const char *fmt, unsigned i, uint64_t max,
		     uint64_t *v);
/*
 * A bytes field of at most max bytes (*len of them), or of exactly len, without copying (*p
 * valid while sec is). 0 or -EINVAL (said).
 */
int devstate_need_blob_max(const struct snap_sec *sec, const char *field, size_t max,
			   const void **p, size_t *len);
int devstate_need_blob(const struct snap_sec *sec, const char *field, size_t len, const void **p);
/* How many sections fmt (one %u) names from 0 on without a gap: "vcpu0", "vcpu1"... */
unsigned devstate_count(const struct snap *s, const char *fmt)
	__attribute__((format(printf, 2, 0)));
/* A boolean field: 0 or 1, else -EINVAL (said). */
int devstate_need_bool(const struct snap_sec *sec, const char *field, bool *b);

#endif
