/*
 * snapfile: the snapshot state file: named sections of named fields (an unsigned number,
 * bytes or text), encoded with protobuf-c behind a versioned, checksummed header. The format
 * is documented in docs/snapshot.md. A state read from disk is untrusted: snap_parse checks
 * everything it can (header, checksum, names, duplicates, sizes) before anyone looks inside.
 */
#ifndef MICROVM_SNAPFILE_H
#define MICROVM_SNAPFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNAP_NAME_MAX	 64	    /* a section's or field's name: [A-Za-z0-9._-], 1..64 */
#define SNAP_PAYLOAD_MAX (8u << 20) /* the encoded sections, at most */

struct snap;	 /* a state being written, or one read and checked */
struct snap_sec; /* one section of it */

enum snap_type { SNAP_U64, SNAP_BYTES, SNAP_TEXT };

/* One field as read (snap_field_at): its name, type and value. */
struct snap_field_view {
	const char *name;
	enum snap_type type;
	uint64_t u64;	  /* SNAP_U64 */
	const void *data; /* SNAP_BYTES: len bytes; SNAP_TEXT: NUL-terminated, len = strlen */
	size_t len;
};

/* An empty state to fill. NULL on allocation failure. */
struct snap *snap_new(void);
/* Free a state (NULL is fine). */
void snap_free(struct snap *s);

/*
 * Writing. Add a section called name (a valid name, not yet used in s); NULL on allocation
 * failure or a bad/duplicate name (a programming error: said with log_error).
 */
struct snap_sec *snap_add(struct snap *s, const char *name);
/* Add a field to sec (a valid name not yet used in sec). 0, -ENOMEM or -EINVAL (said). */
int snap_put_u64(struct snap_sec *sec, const char *field, uint64_t v);
int snap_put_bytes(struct snap_sec *sec, const char *field, const void *p, size_t len);
int snap_put_text(struct snap_sec *sec, const char *field, const char *text);
/*
 * Encode s and write it as file name in directory dirfd (AT_FDCWD for the working
 * directory), through a temporary file in the same directory renamed over name once it is
 * complete and synced: a failed write leaves no partial file. 0 or -errno (said, naming path);
 * -EFBIG when the encoded sections would be over SNAP_PAYLOAD_MAX.
 */
int snap_write(const struct snap *s, int dirfd, const char *name);
/*
 * The same for any file: fill(fd, arg) writes the temporary file (0 or -errno), which is
 * synced, renamed over name, its directory synced; a failure at any step removes it. 0 or
 * -errno (said, naming the step and the file).
 */
int snap_write_file(int dirfd, const char *name, int (*fill)(int fd, void *arg), void *arg);

/*
 * Reading. Check and decode len bytes of a state file; the result owns copies of what it
 * needs (buf may be freed after). 0 with *out set, or -EINVAL (-ENOMEM) with *out NULL and
 * why filled (a sentence without the file name, e.g. "checksum mismatch (file damaged)").
 */
int snap_parse(const void *buf, size_t len, struct snap **out, char *why, size_t whylen);
/* Read file name in dirfd and snap_parse it. 0 or -errno/-EINVAL (said, naming the file). */
int snap_read(int dirfd, const char *name, struct snap **out);
/* The section called name, or NULL. */
const struct snap_sec *snap_find(const struct snap *s, const char *name);
/* How many sections s has, and the i-th (in the order they were added or stored). */
size_t snap_nsections(const struct snap *s);
const struct snap_sec *snap_section_at(const struct snap *s, size_t i);
/* A section's name. */
const char *snap_sec_name(const struct snap_sec *sec);
/* How many fields sec has, and the i-th. 0, or -ERANGE past the end. */
size_t snap_nfields(const struct snap_sec *sec);
int snap_field_at(const struct snap_sec *sec, size_t i, struct snap_field_view *f);
/* Field lookups: 0, -ENOENT when absent, -EINVAL when of another type (nothing said). */
int snap_get_u64(const struct snap_sec *sec, const char *field, uint64_t *v);
int snap_get_bytes(const struct snap_sec *sec, const char *field, const void **p, size_t *len);
int snap_get_text(const struct snap_sec *sec, const char *field, const char **text);
/*
 * The same, for restore code: a missing field, another type, a number above max, or bytes of
 * another length than len is said ("snapshot: section 'vcpu0': field 'pc': missing") and
 * gives -EINVAL. A NULL sec (a snap_need that failed, and said so) gives -EINVAL unsaid.
 */
int snap_need_u64(const struct snap_sec *sec, const char *field, uint64_t max, uint64_t *v);
int snap_need_bytes(const struct snap_sec *sec, const char *field, void *p, size_t len);
/* The section called name, or NULL said ("snapshot: no section 'gic'"). */
const struct snap_sec *snap_need(const struct snap *s, const char *name);

#endif
