/* config: the INI machine description as typed, provenance-tracked key/value entries. */
#ifndef MICROVM_CONFIG_H
#define MICROVM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* One "key = value" line of the file, or one --set override. */
struct cfg_entry {
	char *section;
	char *key;
	char *value;
	const char *origin; /* file name, "--set", or an API request ("PUT /drives/rootfs") */
	const char *field;  /* for an API request: its JSON field, named in messages */
	int line;	    /* 1-based line in origin; 0 for --set and the API */
	bool used;	    /* consumed by a getter */
	bool path; /* read as a path (cfg_path): relative to dir or the working directory */
};

/* One [section] header (or a section first named by --set). */
struct cfg_section {
	char *name;
	const char *origin;
	int line;
};

struct cfg {
	char *path; /* the INI file as given */
	char *dir;  /* its directory, for relative paths */
	char *cwd;  /* the working directory when it was loaded (cfg_dump's absolute paths) */
	struct cfg_entry *entries;
	size_t nentries, cap;
	struct cfg_section *sections;
	size_t nsections, seccap;
	char **known; /* "section\0key" pairs asked for by getters */
	const char *const *
		*known_words; /* for each, the words it takes (cfg_note_words), or NULL */
	size_t nknown, knowncap;
	int nerrors;
	/* parser state */
	int lineno;
	char *cursec;
	void *stream;
	bool overlong;
	bool cont;    /* indented lines now continue [boot] cmdline */
	bool in_cont; /* the line being read is such a continuation */
};

enum { CFG_REQUIRED = 1 };

/* Parse an INI file into c; syntax errors are counted in c->nerrors. Returns -errno on I/O. */
int cfg_load(struct cfg *c, const char *path);
/* Parse INI text (a built-in machine) as if it were the file called name. */
int cfg_load_text(struct cfg *c, const char *name, const char *text);
/* Apply one "SECTION.KEY=VALUE" override ("SECTION.KEY=" removes the key); -1 when malformed. */
int cfg_set(struct cfg *c, const char *arg);
/*
 * The same, from origin (e.g. an API request, kept by the caller for c's lifetime) whose field
 * supplies the value: messages name origin and field instead of "--set SECTION.KEY".
 */
int cfg_set_from(struct cfg *c, const char *arg, const char *origin, const char *field);
/*
 * Into buf, the name of a new section: prefix and the number one past every "prefixN" section
 * c has ("blk" -> "blk0", or "blk3" after [blk2]). 0, or -1 when buf is too short.
 */
int cfg_next_name(const struct cfg *c, const char *prefix, char *buf, size_t len);
/*
 * Write c as INI text that loads into the same values from any directory: every section and
 * key as they stand after the overrides, paths made absolute, the keys skip_keys (NULL-ended)
 * of section skip_sec (or none: NULL) left out. 0, or -1 on a value INI cannot carry.
 */
int cfg_dump(const struct cfg *c, FILE *out, const char *skip_sec, const char *const *skip_keys);
/* Free everything held by c. */
void cfg_free(struct cfg *c);

/* Where entry e comes from, as errors name it: "FILE:LINE: [SEC] KEY", "--set SEC.KEY", ... */
void cfg_where(const struct cfg_entry *e, char *buf, size_t len);
/* Report an error at entry e (or at section sec's header when e is NULL); counts it. */
void cfg_error(struct cfg *c, const struct cfg_entry *e, const char *sec, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Return the entry for section.key (marking it used), or NULL. Also records key as known. */
struct cfg_entry *cfg_get(struct cfg *c, const char *sec, const char *key);
/* Return the header record of a section, or NULL when absent. */
const struct cfg_section *cfg_section(const struct cfg *c, const char *sec);

/* The value of section.key as written (NULL if absent), for reading back a loaded machine. */
const char *cfg_value(const struct cfg *c, const char *sec, const char *key);
/* Is section.key written as a true boolean (the words cfg_bool takes)? */
bool cfg_value_true(const struct cfg *c, const char *sec, const char *key);
/* A section or key name: letters, digits, '-' and '_', not empty. */
bool cfg_valid_name(const char *s);

/* Typed getters: absent -> default (or error when CFG_REQUIRED). Return 0, or -1 on error. */
int cfg_u64(struct cfg *c, const char *sec, const char *key, uint64_t *out, uint64_t def,
	    unsigned flags);
int cfg_u32(struct cfg *c, const char *sec, const char *key, uint32_t *out, uint32_t def,
	    uint32_t min, uint32_t max, unsigned flags);
int cfg_bool(struct cfg *c, const char *sec, const char *key, bool *out, bool def);
int cfg_str(struct cfg *c, const char *sec, const char *key, const char **out, const char *def,
	    unsigned flags);
/* A path resolved against the INI file's directory (or the cwd for --set); caller frees. */
int cfg_path(struct cfg *c, const char *sec, const char *key, char **out, unsigned flags);
/*
 * Without opening it (a FIFO would block the open), check that path, the file entry e names,
 * is a regular file (or, with blockdev, a block device) when it exists; otherwise report what
 * it is at e. 0, or -1 after the error; a missing path is left to whoever opens it.
 */
int cfg_need_file(struct cfg *c, const struct cfg_entry *e, const char *path, bool blockdev);
/* The path entry e names, resolved as cfg_path resolves it; caller frees. */
char *cfg_entry_path(const struct cfg *c, const struct cfg_entry *e);
/* Enumerated value: names is NULL-terminated; *out gets the index. */
int cfg_enum(struct cfg *c, const char *sec, const char *key, const char *const *names, int *out,
	     int def);

/* Print "section.key" for every key a getter asked for, one per line, in the order asked. */
void cfg_print_known(const struct cfg *c, FILE *f);
/*
 * Record the words section.key takes (words: NULL-ended, kept by the caller for c's life):
 * cfg_enum's and cfg_bool's own, or those of a key read another way.
 */
void cfg_note_words(struct cfg *c, const char *sec, const char *key, const char *const *words);
/* The words section.key was recorded to take, or NULL (free-form, or never asked for). */
const char *const *cfg_known_words(const struct cfg *c, const char *sec, const char *key);

/* Report every entry no getter consumed (unknown keys/sections) with a closest-name hint. */
void cfg_check_unused(struct cfg *c, const char *const *fixed_sections);

/* Parse "512M", "1G", "0x1000", "4096" (K/M/G/T and KiB/MiB/GiB/TiB suffixes). 0 or -1. */
int parse_size(const char *s, uint64_t *out);
/* Return the name in cands (NULL-terminated, or n entries) closest to s, or NULL if none is near.
 */
const char *closest_name(const char *s, const char *const *cands, size_t n);

#endif
