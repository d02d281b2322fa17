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
	int next;  /* the next entry of its section (index in cfg.entries), or -1 */
};

/* One [section] header (or a section first named by --set). */
struct cfg_section {
	char *name;
	const char *origin;
	int line;
	int first, last; /* its entries, a chain through cfg_entry.next (-1: none) */
	/*
	 * A line of it was refused (or the section was written twice): a key it lacks may be on
	 * that line, so that a missing key is not reported again as one.
	 */
	bool damaged;
};

/* An open-addressing hash over one of cfg's arrays: each slot holds an index + 1 (0: free). */
struct cfg_index {
	uint32_t *slot;
	size_t cap; /* a power of two, at least twice the elements indexed */
};

/* The longest section name (inih keeps 49 characters of one). */
#define CFG_SECTION_NAME_MAX 49
/* A machine description has at most this many sections (a machine has far fewer devices). */
#define CFG_MAX_SECTIONS 4096
/* ... and is at most this large. */
#define CFG_MAX_BYTES (16u << 20)
/* Errors printed; the rest are counted ("... and N more errors"). */
#define CFG_ERRORS_SHOWN 20

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
	struct cfg_index entry_idx, section_idx, known_idx; /* by section and key */
	int nerrors;
	/*
	 * The file cannot be read as a machine description at all (a directory, another
	 * encoding, binary data, CR line ends, too large, too many sections): nothing more of it
	 * is checked.
	 */
	bool unreadable;
	size_t bytes;	  /* the file's size as read (after a UTF-8 byte-order mark) */
	const char *kind; /* what the file is when not a regular file ("a FIFO"), for messages */
	/* parser state */
	char *textbuf; /* the file as read */
	const char *text;
	size_t len, pos;
	int lineno;
	int cursec; /* index of the section being read, or -1 */
	bool skip;  /* in a section whose header was refused: its lines are not read */
	/*
	 * A line that may have been a section header (or keys before any) was refused: a
	 * section that is missing may be that one, and is not reported missing again.
	 */
	bool lost_header;
	bool outside_said; /* a key before any [section] was reported */
	bool cont;	   /* indented lines now continue [boot] cmdline */
};

enum { CFG_REQUIRED = 1 };

/*
 * Parse an INI file into c; syntax and encoding errors are reported and counted in c->nerrors
 * (c->unreadable when the file is no machine description at all). Returns -errno on I/O.
 */
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
/*
 * Report an error at entry e (or at section sec's header when e is NULL); counts it. Only the
 * first CFG_ERRORS_SHOWN are printed: cfg_errors_hidden says how many more there were.
 */
void cfg_error(struct cfg *c, const struct cfg_entry *e, const char *sec, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The same at loc, a place no entry or section names (an option, the file as a whole). */
void cfg_report(struct cfg *c, const char *loc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* After the last error: "FILE: ... and N more errors" when some were not printed. */
void cfg_errors_hidden(struct cfg *c);
/* Return the entry for section.key (marking it used), or NULL. Also records key as known. */
struct cfg_entry *cfg_get(struct cfg *c, const char *sec, const char *key);
/* Return the header record of a section, or NULL when absent. */
const struct cfg_section *cfg_section(const struct cfg *c, const char *sec);
/* Mark every key of section sec used: the section was reported as a whole. */
void cfg_consume_section(struct cfg *c, const char *sec);

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

/*
 * Parse "512M", "1G", "0x1000", "4096" (K/M/G/T and KiB/MiB/GiB/TiB suffixes). 0 or -1. A
 * decimal number with a leading zero ("010") is refused: C would read it as octal. Every
 * number of a machine description is read here.
 */
int parse_size(const char *s, uint64_t *out);
/* The same; why (when not NULL) says what is wrong when there is more to say than "not a
 * number" (else it is left empty). */
int parse_size_why(const char *s, uint64_t *out, char *why, size_t whylen);
/* Return the name in cands (NULL-terminated, or n entries) closest to s, or NULL if none is near.
 */
const char *closest_name(const char *s, const char *const *cands, size_t n);

#endif
