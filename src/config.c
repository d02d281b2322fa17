/* config: INI parsing (inih) with file:line provenance, --set overrides and typed getters. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "array.h"
#include "log.h"

static char *xstrdup(const char *s)
{
	char *p = strdup(s);

	BUG_ON(!p);
	return p;
}

static void *grow(void *p, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return p;
	*cap = *cap ? *cap * 2 : 16;
	p = realloc(p, *cap * elem);
	BUG_ON(!p);
	return p;
}

/*
 * The indexes: sections by name, entries and known keys by section and key. An element's names
 * come from its array (a second name of "" for a section).
 */
typedef void names_fn(const struct cfg *c, size_t i, const char **a, const char **b);

static void entry_names(const struct cfg *c, size_t i, const char **a, const char **b)
{
	*a = c->entries[i].section;
	*b = c->entries[i].key;
}

static void section_names(const struct cfg *c, size_t i, const char **a, const char **b)
{
	*a = c->sections[i].name;
	*b = "";
}

static void known_names(const struct cfg *c, size_t i, const char **a, const char **b)
{
	*a = c->known[i];
	*b = c->known[i] + strlen(c->known[i]) + 1;
}

/* FNV-1a over both names, a byte that no name holds between them. */
static uint64_t hash_names(const char *a, const char *b)
{
	uint64_t h = 14695981039346656037ull;

	for (; *a; a++)
		h = (h ^ (unsigned char)*a) * 1099511628211ull;
	h = (h ^ 0xff) * 1099511628211ull;
	for (; *b; b++)
		h = (h ^ (unsigned char)*b) * 1099511628211ull;
	return h;
}

/* The element named a and b, or -1. */
static long idx_find(const struct cfg *c, const struct cfg_index *x, names_fn *names, const char *a,
		     const char *b)
{
	if (!x->cap)
		return -1;
	for (size_t i = hash_names(a, b) & (x->cap - 1);; i = (i + 1) & (x->cap - 1)) {
		const char *ea, *eb;

		if (!x->slot[i])
			return -1;
		names(c, x->slot[i] - 1, &ea, &eb);
		if (!strcmp(ea, a) && !strcmp(eb, b))
			return x->slot[i] - 1;
	}
}

static void idx_put(const struct cfg *c, struct cfg_index *x, names_fn *names, size_t i)
{
	const char *a, *b;
	size_t j;

	names(c, i, &a, &b);
	for (j = hash_names(a, b) & (x->cap - 1); x->slot[j]; j = (j + 1) & (x->cap - 1))
		;
	x->slot[j] = (uint32_t)i + 1;
}

/* Index the first n elements anew (after elements moved or went away). */
static void idx_rebuild(const struct cfg *c, struct cfg_index *x, names_fn *names, size_t n)
{
	size_t cap = 64;

	while (cap < 2 * n)
		cap *= 2;
	if (cap != x->cap) {
		free(x->slot);
		x->slot = NULL;
		x->cap = cap;
	}
	if (!x->slot)
		x->slot = calloc(x->cap, sizeof(*x->slot));
	else
		memset(x->slot, 0, x->cap * sizeof(*x->slot));
	BUG_ON(!x->slot);
	for (size_t i = 0; i < n; i++)
		idx_put(c, x, names, i);
}

/* Index element n - 1, the last one added: the index stays at most half full. */
static void idx_add(const struct cfg *c, struct cfg_index *x, names_fn *names, size_t n)
{
	if (2 * n > x->cap)
		idx_rebuild(c, x, names, n);
	else
		idx_put(c, x, names, n - 1);
}

static long section_index(const struct cfg *c, const char *sec)
{
	return idx_find(c, &c->section_idx, section_names, sec, "");
}

static struct cfg_entry *find(const struct cfg *c, const char *sec, const char *key)
{
	long i = idx_find(c, &c->entry_idx, entry_names, sec, key);

	return i < 0 ? NULL : &c->entries[i];
}

static void where(const struct cfg_entry *e, char *buf, size_t len)
{
	if (e->line)
		snprintf(buf, len, "%s:%d: [%s] %s", e->origin, e->line, e->section, e->key);
	else if (e->field)
		snprintf(buf, len, "%s: %s", e->origin, e->field);
	else if (strcmp(e->origin, "--set"))
		snprintf(buf, len, "%s: %s.%s", e->origin, e->section, e->key); /* e.g. --disk */
	else
		snprintf(buf, len, "--set %s.%s", e->section, e->key);
}

void cfg_where(const struct cfg_entry *e, char *buf, size_t len)
{
	where(e, buf, len);
}

/* Every error goes through here: counted, and printed while fewer than CFG_ERRORS_SHOWN were. */
static void vsay(struct cfg *c, const char *loc, const char *fmt, va_list ap)
{
	if (c->nerrors++ < CFG_ERRORS_SHOWN)
		log_vreport(loc, fmt, ap);
}

void cfg_report(struct cfg *c, const char *loc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(c, loc, fmt, ap);
	va_end(ap);
}

void cfg_errors_hidden(struct cfg *c)
{
	int more = c->nerrors - CFG_ERRORS_SHOWN;

	if (more > 0)
		log_report(c->path, "... and %d more error%s", more, more == 1 ? "" : "s");
}

void cfg_error(struct cfg *c, const struct cfg_entry *e, const char *sec, const char *fmt, ...)
{
	char loc[512];
	va_list ap;

	if (e) {
		where(e, loc, sizeof(loc));
	} else if (sec) {
		const struct cfg_section *s = cfg_section(c, sec);

		if (s && s->line)
			snprintf(loc, sizeof(loc), "%s:%d: [%s]", s->origin, s->line, sec);
		else if (s)
			snprintf(loc, sizeof(loc), "%s [%s]", s->origin, sec);
		else
			snprintf(loc, sizeof(loc), "%s: [%s]", c->path, sec);
	} else {
		snprintf(loc, sizeof(loc), "%s", c->path);
	}
	va_start(ap, fmt);
	vsay(c, loc, fmt, ap);
	va_end(ap);
}

static void line_error(struct cfg *c, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void line_error(struct cfg *c, int line, const char *fmt, ...)
{
	char loc[512];
	va_list ap;

	snprintf(loc, sizeof(loc), "%s:%d", c->path, line);
	va_start(ap, fmt);
	vsay(c, loc, fmt, ap);
	va_end(ap);
}

const struct cfg_section *cfg_section(const struct cfg *c, const char *sec)
{
	long i = section_index(c, sec);

	return i < 0 ? NULL : &c->sections[i];
}

static long add_section(struct cfg *c, const char *name, const char *origin, int line)
{
	c->sections = grow(c->sections, &c->seccap, c->nsections, sizeof(*c->sections));
	c->sections[c->nsections++] = (struct cfg_section){
		.name = xstrdup(name),
		.origin = origin,
		.line = line,
		.first = -1,
		.last = -1,
	};
	idx_add(c, &c->section_idx, section_names, c->nsections);
	return (long)c->nsections - 1;
}

/* Put entry i at the end of its section's chain. */
static void chain_entry(struct cfg *c, size_t i)
{
	struct cfg_section *s = &c->sections[section_index(c, c->entries[i].section)];

	c->entries[i].next = -1;
	if (s->last >= 0)
		c->entries[s->last].next = (int)i;
	else
		s->first = (int)i;
	s->last = (int)i;
}

/* A new key of an existing section. */
static void add_entry(struct cfg *c, const char *sec, const char *key, const char *val,
		      const char *origin, int line)
{
	c->entries = grow(c->entries, &c->cap, c->nentries, sizeof(*c->entries));
	c->entries[c->nentries++] = (struct cfg_entry){
		.section = xstrdup(sec),
		.key = xstrdup(key),
		.value = xstrdup(val),
		.origin = origin,
		.line = line,
	};
	chain_entry(c, c->nentries - 1);
	idx_add(c, &c->entry_idx, entry_names, c->nentries);
}

/* Take entry e out: the entries after it move down, so that the index and chains are made anew. */
static void remove_entry(struct cfg *c, struct cfg_entry *e)
{
	free(e->section);
	free(e->key);
	free(e->value);
	memmove(e, e + 1, (c->nentries - (e - c->entries) - 1) * sizeof(*e));
	c->nentries--;
	for (size_t i = 0; i < c->nsections; i++)
		c->sections[i].first = c->sections[i].last = -1;
	for (size_t i = 0; i < c->nentries; i++)
		chain_entry(c, i);
	idx_rebuild(c, &c->entry_idx, entry_names, c->nentries);
}

void cfg_consume_section(struct cfg *c, const char *sec)
{
	const struct cfg_section *s = cfg_section(c, sec);

	for (int i = s ? s->first : -1; i >= 0; i = c->entries[i].next)
		c->entries[i].used = true;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

bool cfg_valid_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
			return false;
	return true;
}

/* A line was refused: a key of the section being read may have been on it. */
static void damage(struct cfg *c)
{
	if (c->cursec >= 0)
		c->sections[c->cursec].damaged = true;
}

/*
 * Where inih ends a name (chars "=:") or a value (chars NULL): at one of chars, or at a ';'
 * after a space or tab, which starts a comment (INI_INLINE_COMMENT_PREFIXES). As inih's
 * ini_find_chars_or_comment, to say what inih will do with a line before it does.
 */
static char *inih_end(char *s, const char *chars)
{
	bool was_space = false;

	while (*s && (!chars || !strchr(chars, *s)) && !(was_space && *s == ';')) {
		was_space = isspace((unsigned char)*s);
		s++;
	}
	return s;
}

/*
 * Is [s, end) left inside quotes: an odd number of '"', or a '\'' that opens a quote (after a
 * space or '=', not an apostrophe as in "Bob's") left open?
 */
static bool open_quote(const char *s, const char *end)
{
	unsigned dq = 0, sq = 0;

	for (const char *p = s; p < end; p++) {
		dq += *p == '"';
		if (*p != '\'')
			continue;
		if (sq % 2 == 0 && p > s && !isspace((unsigned char)p[-1]) && p[-1] != '=')
			continue; /* an apostrophe */
		sq++;
	}
	return dq % 2 || sq % 2;
}

/*
 * A "[section" or "key =" (a name, blanks, then '=' or ':') at the start of s: a line that
 * is not the continuation of a value (a kernel parameter has no blank before its '=').
 */
static bool looks_like_key(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-");
	size_t blanks = strspn(s + n, " \t");

	return *s == '[' || (n && blanks && (s[n + blanks] == '=' || s[n + blanks] == ':'));
}

/*
 * An indented line that continues [boot] cmdline (s, trimmed): its words join the value, after
 * a space, an inline comment cut as on the first line, and refused as there when the comment
 * would cut the value inside its quotes. Nothing when the first line was refused.
 */
static void continue_cmdline(struct cfg *c, char *s)
{
	struct cfg_entry *e = find(c, "boot", "cmdline");
	char *cut = inih_end(s, NULL), *v;
	size_t n = (size_t)(cut - s), len;

	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	if (!e)
		return;
	len = strlen(e->value);
	v = realloc(e->value, len + n + 2);
	BUG_ON(!v);
	e->value = v;
	v[len] = ' ';
	memcpy(v + len + 1, s, n);
	v[len + 1 + n] = '\0';
	if (*cut == ';' && open_quote(v, v + len + 1 + n)) {
		line_error(c, c->lineno,
			   "';' after a space starts a comment, and this one would cut the value "
			   "inside its quotes: write the ';' without a space before it, or put the "
			   "comment on a line of its own");
		v[len] = '\0';
		damage(c);
		return;
	}
	if (!n)
		v[len] = '\0';
}

/*
 * A header: the section it opens (its name trimmed, "[ memory ]" is [memory]) becomes the one
 * being read, and inih gets it as "[name]". A header refused leaves its lines unread.
 */
static void header(struct cfg *c, char *s, char *out, size_t outlen, bool quiet)
{
	char *end = strchr(s, ']'), *rest, *name;
	long prev;

	c->cursec = -1;
	c->skip = true;
	if (!end) {
		if (!quiet)
			line_error(c, c->lineno, "malformed section header (missing ']')");
		c->lost_header = true;
		return;
	}
	*end = '\0';
	rest = trim(end + 1);
	name = trim(s + 1);
	if (!cfg_valid_name(name) || strlen(name) > CFG_SECTION_NAME_MAX) {
		if (!quiet && strlen(name) > CFG_SECTION_NAME_MAX)
			line_error(c, c->lineno, "section name longer than %d characters",
				   CFG_SECTION_NAME_MAX);
		else if (!quiet)
			line_error(c, c->lineno,
				   "bad section name '%s' (letters, digits, '-' and '_' only)",
				   name);
		c->lost_header = true;
		return;
	}
	prev = section_index(c, name);
	if (prev >= 0) {
		if (!quiet)
			line_error(
				c, c->lineno,
				"duplicate section [%s] (first at line %d): its lines are not read",
				name, c->sections[prev].line);
		c->sections[prev].damaged = true;
		return;
	}
	if (c->nsections >= CFG_MAX_SECTIONS) {
		line_error(c, c->lineno,
			   "[%s]: a machine description has at most %d sections (a machine has far "
			   "fewer devices); nothing more is read",
			   name, CFG_MAX_SECTIONS);
		c->unreadable = true;
		c->pos = c->len;
		return;
	}
	c->cursec = add_section(c, name, c->path, c->lineno);
	c->skip = false;
	if (*rest && *rest != ';' && *rest != '#') {
		if (!quiet)
			line_error(
				c, c->lineno,
				"'%s' after the section header: each key goes on a line of its own",
				rest);
		damage(c);
	}
	snprintf(out, outlen, "[%s]\n", name);
}

/*
 * Classify one line (its text checked already) before inih sees it: sections, syntax errors,
 * inline comments. What inih is to read goes to out: the line as written, a header made plain,
 * or nothing (an empty line) for a line refused or a comment.
 */
static void inspect_line(struct cfg *c, char *raw, char *out, size_t outlen)
{
	bool indented = raw[0] == ' ' || raw[0] == '\t', quiet = false;
	char *s = trim(raw), *end, *value, *cut, name[256];

	if (!*s || *s == ';' || *s == '#')
		return;
	/* The kernel command line may be longer than a line: indented lines continue it. */
	if (indented && c->cont && !looks_like_key(s)) {
		continue_cmdline(c, s);
		return;
	}
	if (indented) {
		/* inih would take it as the previous value's continuation: said once, then read
		 * as written without its indentation (or left out, without another error). */
		line_error(
			c, c->lineno,
			c->cont ? "indented line: a key or section starts at the beginning of "
				  "the line"
				: "indented line: only [boot] cmdline continues on indented lines");
		quiet = true;
	}
	c->cont = false;
	if (*s == '[') {
		header(c, s, out, outlen, quiet);
		return;
	}
	if (c->skip)
		return;
	if (c->cursec < 0) {
		if (!c->outside_said && !quiet)
			line_error(c, c->lineno, "key outside of any [section]");
		c->outside_said = true;
		c->lost_header = true;
		return;
	}
	end = inih_end(s, "=:");
	if (*end != '=' && *end != ':') {
		if (!quiet)
			line_error(c, c->lineno, "malformed line (expected 'key = value')");
		damage(c);
		return;
	}
	snprintf(name, sizeof(name), "%.*s", (int)(end - s), s);
	if (!cfg_valid_name(trim(name))) {
		if (!quiet)
			line_error(c, c->lineno, "[%s] bad key name '%s'",
				   c->sections[c->cursec].name, trim(name));
		damage(c);
		return;
	}
	c->cont = !strcmp(c->sections[c->cursec].name, "boot") && !strcmp(trim(name), "cmdline");
	/* A ';' after a space starts a comment, quotes or not: one that falls inside a quoted
	 * part of the value would leave the value cut short with its quote open. */
	value = end + 1;
	cut = inih_end(value, NULL);
	if (*cut == ';' && open_quote(value, cut)) {
		if (!quiet)
			line_error(
				c, c->lineno,
				"';' after a space starts a comment, and this one would cut the "
				"value inside its quotes: write the ';' without a space before it, "
				"or put the comment on a line of its own");
		damage(c);
		return;
	}
	snprintf(out, outlen, "%s\n", s);
}

/* The offset of the first byte of s[0..n) that is not UTF-8, or -1. */
static long utf8_invalid(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char b = s[i];
		uint32_t cp;
		size_t k;

		if (b < 0x80) {
			i++;
			continue;
		}
		if (b >= 0xc2 && b <= 0xdf)
			k = 1, cp = b & 0x1f;
		else if (b >= 0xe0 && b <= 0xef)
			k = 2, cp = b & 0x0f;
		else if (b >= 0xf0 && b <= 0xf4)
			k = 3, cp = b & 0x07;
		else
			return (long)i;
		for (size_t j = 1; j <= k; j++) {
			if (i + j >= n || (s[i + j] & 0xc0) != 0x80)
				return (long)i;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return (long)i;
		i += k + 1;
	}
	return -1;
}

/* The text of one line (without its line end) is text inih can read; else say why. */
static bool line_readable(struct cfg *c, const char *p, size_t n, size_t max)
{
	const char *nul = memchr(p, '\0', n), *cr = memchr(p, '\r', n);
	long bad = utf8_invalid((const unsigned char *)p, n);

	if (nul) {
		line_error(c, c->lineno,
			   "a NUL byte at column %zu: a machine description is text (UTF-8)",
			   (size_t)(nul - p) + 1);
	} else if (cr) {
		line_error(c, c->lineno,
			   "a carriage return (CR) at column %zu: lines end in LF or CRLF, never "
			   "in CR alone",
			   (size_t)(cr - p) + 1);
	} else if (bad >= 0) {
		line_error(c, c->lineno,
			   "not UTF-8: byte 0x%02x at column %ld (a file saved as Latin-1 or "
			   "another encoding?): save it as UTF-8",
			   (unsigned char)p[bad], bad + 1);
	} else if (n > max) {
		line_error(c, c->lineno, "line longer than %zu characters", max);
	} else {
		return true;
	}
	return false;
}

/* inih's reader: the next line of the text, as inspect_line hands it on. */
static char *reader(char *str, int num, void *stream)
{
	struct cfg *c = stream;
	const char *p, *nl, *end;
	char line[256];

	if (c->pos >= c->len)
		return NULL;
	p = c->text + c->pos;
	nl = memchr(p, '\n', c->len - c->pos);
	end = nl ? nl : c->text + c->len;
	c->pos = (size_t)(end - c->text) + (nl != NULL);
	c->lineno++;
	if (end > p && end[-1] == '\r') /* CRLF */
		end--;
	/* A byte-order mark (U+FEFF) is UTF-8 too: one where files were joined is passed over. */
	if (end - p >= 3 && !memcmp(p, "\xef\xbb\xbf", 3))
		p += 3;
	BUG_ON(num < 4 || (size_t)num > sizeof(line));
	snprintf(str, num, "\n");
	if (!line_readable(c, p, (size_t)(end - p), (size_t)num - 2)) {
		/* Refused: a header there leaves its section unread (and maybe missing). */
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p < end && *p == '[') {
			c->cursec = -1;
			c->skip = true;
			c->lost_header = true;
		} else {
			damage(c);
		}
		return str;
	}
	memcpy(line, p, (size_t)(end - p));
	line[end - p] = '\0';
	inspect_line(c, line, str, (size_t)num);
	return str;
}

static int handler(void *user, const char *inih_section, const char *name, const char *value)
{
	struct cfg *c = user;
	struct cfg_entry *prev;
	const char *section;

	/* inspect_line hands inih only the lines of the section being read, cursec. */
	(void)inih_section;
	BUG_ON(c->cursec < 0 || c->skip);
	section = c->sections[c->cursec].name;
	if (!cfg_valid_name(name)) { /* inspect_line said so already: this is a second guard */
		line_error(c, c->lineno, "[%s] bad key name '%s'", section, name);
		damage(c);
		return 1;
	}
	prev = find(c, section, name);
	if (prev) {
		line_error(c, c->lineno, "[%s] %s: duplicate key (first set at line %d)", section,
			   name, prev->line);
		return 1;
	}
	add_entry(c, section, name, value, c->path, c->lineno);
	return 1;
}

/* UTF-16 without a byte-order mark: which, by the zero bytes of its first 16-bit units. */
static const char *utf16_without_bom(const unsigned char *t, size_t n)
{
	size_t pairs = (n < 1024 ? n : 1024) / 2, even = 0, odd = 0;

	for (size_t i = 0; i < pairs; i++) {
		even += !t[2 * i];
		odd += !t[2 * i + 1];
	}
	/* ASCII text as UTF-16: every unit's high byte is zero, its low byte not. */
	if (pairs && 4 * odd >= 3 * pairs && 8 * even <= pairs)
		return "UTF-16 (little-endian, without a byte-order mark)";
	if (pairs && 4 * even >= 3 * pairs && 8 * odd <= pairs)
		return "UTF-16 (big-endian, without a byte-order mark)";
	return NULL;
}

/* Binary data: what it is, or NULL for text (a stray NUL is reported at its line). */
static const char *binary_kind(const unsigned char *t, size_t n)
{
	size_t m = n < 4096 ? n : 4096, odd = 0;

	if (n >= 4 && !memcmp(t, "\177ELF", 4))
		return "an ELF file";
	if (n >= 2 && t[0] == 0x1f && t[1] == 0x8b)
		return "gzip-compressed data";
	/* Control characters no text has: in more than a tenth of it (and more than a few). */
	for (size_t i = 0; i < m; i++) {
		unsigned char b = t[i];

		odd += (b < 0x20 && (!b || !strchr("\t\n\r\f\v\x1b", b))) || b == 0x7f;
	}
	return 10 * odd > m && odd >= 8 ? "binary data" : NULL;
}

/*
 * What makes the whole text unreadable as a machine description: another encoding, binary
 * data, lines ended by CR alone. Said without a line (there is no useful one); a UTF-8
 * byte-order mark is passed over.
 */
static void check_text(struct cfg *c)
{
	const unsigned char *t = (const unsigned char *)c->text;
	const char *what = NULL, *from = NULL;

	if (c->len >= 3 && !memcmp(t, "\xef\xbb\xbf", 3)) {
		c->text += 3;
		c->len -= 3;
		t += 3;
	}
	c->bytes = c->len;
	if (c->len >= 4 && !memcmp(t, "\xff\xfe\0\0", 4))
		what = "UTF-32 (little-endian, with a byte-order mark)", from = "UTF-32";
	else if (c->len >= 4 && !memcmp(t, "\0\0\xfe\xff", 4))
		what = "UTF-32 (big-endian, with a byte-order mark)", from = "UTF-32";
	else if (c->len >= 2 && t[0] == 0xff && t[1] == 0xfe)
		what = "UTF-16 (little-endian, with a byte-order mark)", from = "UTF-16";
	else if (c->len >= 2 && t[0] == 0xfe && t[1] == 0xff)
		what = "UTF-16 (big-endian, with a byte-order mark)", from = "UTF-16";
	else if ((what = utf16_without_bom(t, c->len)))
		from = "UTF-16";
	if (what) {
		cfg_report(c, c->path,
			   "the file is %s; a machine description is UTF-8 text: convert it "
			   "(iconv -f %s -t UTF-8)",
			   what, from);
	} else if ((what = binary_kind(t, c->len))) {
		cfg_report(c, c->path, "%s, not a machine description (an INI text file)", what);
	} else if (!memchr(t, '\n', c->len) && memchr(t, '\r', c->len)) {
		cfg_report(c, c->path,
			   "lines end in a carriage return (CR) alone, as on classic Mac OS: a "
			   "machine description's lines end in LF (or CRLF)");
	} else {
		return;
	}
	c->unreadable = true;
}

static void init(struct cfg *c, const char *path)
{
	char *tmp = xstrdup(path);

	c->path = xstrdup(path);
	c->dir = xstrdup(dirname(tmp));
	free(tmp);
	c->cwd = getcwd(NULL, 0);
	c->cursec = -1;
}

/* Read c->text as INI (after check_text): sections and entries, every problem said. */
static void parse(struct cfg *c)
{
	int ret;

	check_text(c);
	if (c->unreadable)
		return;
	c->pos = 0;
	ret = ini_parse_stream(reader, c, handler, c);
	/* Every line inih refuses was refused before it got there; should one get through: */
	if (ret > 0 && !c->nerrors)
		line_error(c, ret, "malformed line");
	c->cursec = -1;
}

/* The whole file, up to CFG_MAX_BYTES (beyond that, said): 0 or -errno. */
static int read_all(struct cfg *c, int fd)
{
	size_t cap = 0, len = 0;
	char *buf = NULL;

	for (;;) {
		ssize_t n;

		if (len == cap) {
			cap = cap ? 2 * cap : 64 << 10;
			buf = realloc(buf, cap + 1);
			BUG_ON(!buf);
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = -errno;

			free(buf);
			return err;
		}
		if (!n)
			break;
		len += (size_t)n;
		if (len > CFG_MAX_BYTES) {
			cfg_report(c, c->path, "larger than %u MiB: not a machine description",
				   CFG_MAX_BYTES >> 20);
			c->unreadable = true;
			break;
		}
	}
	buf[len] = '\0';
	c->textbuf = buf;
	c->text = buf;
	c->len = len;
	return 0;
}

int cfg_load(struct cfg *c, const char *path)
{
	/*
	 * Non-blocking, so that a FIFO no one writes reads as empty instead of blocking the
	 * open; then blocking again, so that a pipe (--config <(...)) is read to its end.
	 */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY), err;
	struct stat st;

	init(c, path);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		st.st_mode = 0;
	if (S_ISDIR(st.st_mode)) {
		cfg_report(c, c->path,
			   "is a directory: --config takes a machine description file (such as "
			   "machines/rpi5.ini)");
		c->unreadable = true;
		close(fd);
		return 0;
	}
	c->kind = S_ISFIFO(st.st_mode)	 ? "a FIFO"
		  : S_ISCHR(st.st_mode)	 ? "a character device"
		  : S_ISBLK(st.st_mode)	 ? "a block device"
		  : S_ISSOCK(st.st_mode) ? "a socket"
					 : NULL;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	err = read_all(c, fd);
	close(fd);
	if (err)
		return err;
	if (!c->unreadable)
		parse(c);
	return 0;
}

int cfg_load_text(struct cfg *c, const char *name, const char *text)
{
	init(c, name);
	c->text = text;
	c->len = strlen(text);
	parse(c);
	/* Relative paths in a built-in machine are the working directory's, as for --set. */
	free(c->dir);
	c->dir = xstrdup(".");
	return 0;
}

int cfg_set(struct cfg *c, const char *arg)
{
	return cfg_set_from(c, arg, "--set", NULL);
}

int cfg_set_from(struct cfg *c, const char *arg, const char *origin, const char *field)
{
	const char *dot = strchr(arg, '.');
	const char *eq = strchr(arg, '=');
	char sec[128], key[128];
	struct cfg_entry *e;
	char loc[320];

	snprintf(loc, sizeof(loc), "%s %s", origin, arg); /* "--set foo" */
	if (!dot || !eq || dot > eq || (size_t)(dot - arg) >= sizeof(sec) ||
	    (size_t)(eq - dot - 1) >= sizeof(key)) {
		cfg_report(c, loc, "expected SECTION.KEY=VALUE");
		return -1;
	}
	memcpy(sec, arg, dot - arg);
	sec[dot - arg] = '\0';
	memcpy(key, dot + 1, eq - dot - 1);
	key[eq - dot - 1] = '\0';
	if (!cfg_valid_name(sec) || !cfg_valid_name(key)) {
		cfg_report(c, loc, "bad section or key name");
		return -1;
	}
	e = find(c, sec, key);
	if (!eq[1]) {
		/* "SEC.KEY=" removes the key, so that its default applies again. */
		if (e)
			remove_entry(c, e);
		return 0;
	}
	if (!cfg_section(c, sec))
		add_section(c, sec, origin, 0);
	if (!e) {
		add_entry(c, sec, key, eq + 1, origin, 0);
		e = &c->entries[c->nentries - 1];
	} else {
		free(e->value);
		e->value = xstrdup(eq + 1);
		e->origin = origin;
		e->line = 0;
	}
	e->field = field;
	return 0;
}

int cfg_next_name(const struct cfg *c, const char *prefix, char *buf, size_t len)
{
	size_t lp = strlen(prefix);
	unsigned long next = 0;

	for (size_t i = 0; i < c->nsections; i++) {
		const char *n = c->sections[i].name;
		char *end;
		unsigned long v;

		if (strncmp(n, prefix, lp) || !isdigit((unsigned char)n[lp]))
			continue;
		errno = 0;
		v = strtoul(n + lp, &end, 10);
		if (!*end && !errno && v >= next)
			next = v + 1;
	}
	return snprintf(buf, len, "%s%lu", prefix, next) < (int)len ? 0 : -1;
}

static bool skipped(const char *skip_sec, const char *const *skip_keys, const char *sec,
		    const char *key)
{
	if (!skip_sec || strcmp(sec, skip_sec))
		return false;
	for (; *skip_keys; skip_keys++)
		if (!strcmp(*skip_keys, key))
			return true;
	return false;
}

/* The longest line cfg_dump writes: inih reads lines of at most 198 characters. */
#define DUMP_LINE_MAX 160

/*
 * [boot] cmdline as lines that load back the same: a line longer than DUMP_LINE_MAX goes on
 * on indented lines, its words joined by one space. -1 when a word is too long for a line.
 */
static int dump_cmdline(FILE *out, const char *value)
{
	size_t col = strlen("cmdline =");

	if (col + 1 + strlen(value) <= DUMP_LINE_MAX) {
		fprintf(out, "cmdline = %s\n", value);
		return 0;
	}
	fputs("cmdline =", out);
	for (const char *w = value + strspn(value, " \t"); *w; w += strspn(w, " \t")) {
		size_t n = strcspn(w, " \t");

		if (n + 1 > DUMP_LINE_MAX)
			return -1;
		if (col + 1 + n > DUMP_LINE_MAX) {
			fputc('\n', out); /* the next word starts an indented line */
			col = 0;
		}
		fprintf(out, "%c%.*s", col ? ' ' : '\t', (int)n, w);
		col += 1 + n;
		w += n;
	}
	fputc('\n', out);
	return 0;
}

int cfg_dump(const struct cfg *c, FILE *out, const char *skip_sec, const char *const *skip_keys)
{
	for (size_t i = 0; i < c->nsections; i++) {
		const char *sec = c->sections[i].name;
		bool header = false;

		for (int j = c->sections[i].first; j >= 0; j = c->entries[j].next) {
			const struct cfg_entry *e = &c->entries[j];
			const char *dir = e->line ? c->dir : ".";

			if (skipped(skip_sec, skip_keys, sec, e->key))
				continue;
			/* inih would take these as a comment or strip them */
			if (strpbrk(e->value, ";#\n") ||
			    (e->value[0] &&
			     (isspace((unsigned char)e->value[0]) ||
			      isspace((unsigned char)e->value[strlen(e->value) - 1]))))
				return -1;
			if (!header)
				fprintf(out, "[%s]\n", sec);
			header = true;
			if (!strcmp(sec, "boot") && !strcmp(e->key, "cmdline")) {
				if (dump_cmdline(out, e->value))
					return -1;
			} else if (!e->path || e->value[0] == '/') {
				fprintf(out, "%s = %s\n", e->key, e->value);
			} else if (dir[0] == '/') {
				fprintf(out, "%s = %s/%s\n", e->key, dir, e->value);
			} else {
				fprintf(out, "%s = %s/%s/%s\n", e->key, c->cwd ? c->cwd : ".", dir,
					e->value);
			}
		}
	}
	return ferror(out) ? -1 : 0;
}

void cfg_free(struct cfg *c)
{
	for (size_t i = 0; i < c->nentries; i++) {
		free(c->entries[i].section);
		free(c->entries[i].key);
		free(c->entries[i].value);
	}
	for (size_t i = 0; i < c->nsections; i++)
		free(c->sections[i].name);
	for (size_t i = 0; i < c->nknown; i++)
		free(c->known[i]);
	free(c->entries);
	free(c->sections);
	free(c->known);
	free(c->known_words);
	free(c->path);
	free(c->dir);
	free(c->cwd);
	free(c->textbuf);
	free(c->entry_idx.slot);
	free(c->section_idx.slot);
	free(c->known_idx.slot);
	memset(c, 0, sizeof(*c));
}

/* Record section.key as known (once); its index in c->known. */
static size_t note_known(struct cfg *c, const char *sec, const char *key)
{
	size_t ls = strlen(sec), lk = strlen(key);
	long i = idx_find(c, &c->known_idx, known_names, sec, key);
	char *k;

	if (i >= 0)
		return (size_t)i;
	k = malloc(ls + lk + 2);
	BUG_ON(!k);
	memcpy(k, sec, ls + 1);
	memcpy(k + ls + 1, key, lk + 1);
	if (c->nknown == c->knowncap) {
		c->known = grow(c->known, &c->knowncap, c->nknown, sizeof(*c->known));
		c->known_words = realloc(c->known_words, c->knowncap * sizeof(*c->known_words));
		BUG_ON(!c->known_words);
	}
	c->known_words[c->nknown] = NULL;
	c->known[c->nknown++] = k;
	idx_add(c, &c->known_idx, known_names, c->nknown);
	return c->nknown - 1;
}

void cfg_note_words(struct cfg *c, const char *sec, const char *key, const char *const *words)
{
	c->known_words[note_known(c, sec, key)] = words;
}

const char *const *cfg_known_words(const struct cfg *c, const char *sec, const char *key)
{
	long i = idx_find(c, &c->known_idx, known_names, sec, key);

	return i < 0 ? NULL : c->known_words[i];
}

struct cfg_entry *cfg_get(struct cfg *c, const char *sec, const char *key)
{
	struct cfg_entry *e = find(c, sec, key);

	note_known(c, sec, key);
	if (e)
		e->used = true;
	return e;
}

/* Fetch a non-empty entry; 1 = found, 0 = absent, -1 = error reported. */
static int get_value(struct cfg *c, const char *sec, const char *key, unsigned flags,
		     struct cfg_entry **out)
{
	struct cfg_entry *e = cfg_get(c, sec, key);

	*out = e;
	if (!e) {
		const struct cfg_section *s = cfg_section(c, sec);

		if (!(flags & CFG_REQUIRED))
			return 0;
		/* Not again when a line refused may have held it (the error there says why). */
		if (!(s ? s->damaged : c->lost_header))
			cfg_error(c, NULL, sec, "missing required key '%s'", key);
		return -1;
	}
	if (!*e->value) {
		cfg_error(c, e, NULL, "empty value");
		return -1;
	}
	return 1;
}

/*
 * A decimal-looking number with a leading zero ("010", "08K"): C's strtoull would read octal,
 * which nobody writing an interrupt line or a size means. Say so, and what to write instead.
 */
static bool leading_zero(const char *s, char *why, size_t whylen)
{
	const char *d = s, *sfx;
	unsigned long long oct;
	bool octal = true;

	if (s[0] != '0' || !isdigit((unsigned char)s[1]))
		return false;
	while (*d == '0' && isdigit((unsigned char)d[1]))
		d++;
	for (sfx = d; isdigit((unsigned char)*sfx); sfx++)
		octal &= *sfx < '8';
	if (!why)
		return true;
	errno = 0;
	oct = strtoull(s, NULL, 8);
	if (octal && !errno && sfx - d > 1)
		snprintf(why, whylen,
			 "'%s': a leading zero is refused (in C it makes a number octal: %.*s is "
			 "%llu): write %s in decimal, or %llu%s or 0x%llx%s if octal was meant",
			 s, (int)(sfx - s), s, oct, d, oct, sfx, oct, sfx);
	else
		snprintf(why, whylen,
			 "'%s': a leading zero is refused (in C it makes a number octal): write %s",
			 s, d);
	return true;
}

int parse_size(const char *s, uint64_t *out)
{
	return parse_size_why(s, out, NULL, 0);
}

int parse_size_why(const char *s, uint64_t *out, char *why, size_t whylen)
{
	static const struct {
		const char *sfx;
		unsigned shift;
	} sfx[] = {{"", 0},	{"K", 10},   {"M", 20},	  {"G", 30},   {"T", 40},
		   {"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}, {"k", 10}};
	char *end;
	unsigned long long v;

	if (why && whylen)
		why[0] = '\0';
	if (!*s || *s == '-' || *s == '+' || isspace((unsigned char)*s))
		return -1;
	if (leading_zero(s, why, whylen))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	for (size_t i = 0; i < ARRAY_SIZE(sfx); i++) {
		if (strcmp(end, sfx[i].sfx))
			continue;
		if (sfx[i].shift && v > (UINT64_MAX >> sfx[i].shift))
			return -1;
		*out = (uint64_t)v << sfx[i].shift;
		return 0;
	}
	return -1;
}

int cfg_u64(struct cfg *c, const char *sec, const char *key, uint64_t *out, uint64_t def,
	    unsigned flags)
{
	struct cfg_entry *e;
	int r = get_value(c, sec, key, flags, &e);
	char why[256];

	*out = def;
	if (r <= 0)
		return r;
	if (parse_size_why(e->value, out, why, sizeof(why))) {
		if (why[0])
			cfg_error(c, e, NULL, "%s", why);
		else
			cfg_error(c, e, NULL,
				  "'%s' is not a number or size (examples: 4096, 0x1000, 512M, 1G)",
				  e->value);
		*out = def;
		return -1;
	}
	return 0;
}

int cfg_u32(struct cfg *c, const char *sec, const char *key, uint32_t *out, uint32_t def,
	    uint32_t min, uint32_t max, unsigned flags)
{
	struct cfg_entry *e;
	int r = get_value(c, sec, key, flags, &e);
	char why[256];
	uint64_t v;

	*out = def;
	if (r <= 0)
		return r;
	if (parse_size_why(e->value, &v, why, sizeof(why))) {
		if (why[0])
			cfg_error(c, e, NULL, "%s", why);
		else
			cfg_error(c, e, NULL, "'%s' is not a number", e->value);
		return -1;
	}
	if (v < min || v > max) {
		cfg_error(c, e, NULL, "%s is out of range (%u..%u)", e->value, min, max);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

/* A boolean's words: 1 (true), 0 (false), -1 (not a boolean). */
static int bool_word(const char *v)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};

	for (int i = 0; i < 4; i++) {
		if (!strcasecmp(v, yes[i]))
			return 1;
		if (!strcasecmp(v, no[i]))
			return 0;
	}
	return -1;
}

int cfg_bool(struct cfg *c, const char *sec, const char *key, bool *out, bool def)
{
	static const char *const words[] = {"on", "off", NULL};
	struct cfg_entry *e;
	int r = get_value(c, sec, key, 0, &e), b;

	cfg_note_words(c, sec, key, words);
	*out = def;
	if (r <= 0)
		return r;
	b = bool_word(e->value);
	if (b >= 0) {
		*out = b;
		return 0;
	}
	cfg_error(c, e, NULL, "'%s' is not a boolean (true/false, yes/no, on/off, 1/0)", e->value);
	return -1;
}

const char *cfg_value(const struct cfg *c, const char *sec, const char *key)
{
	const struct cfg_entry *e = find(c, sec, key);

	return e ? e->value : NULL;
}

bool cfg_value_true(const struct cfg *c, const char *sec, const char *key)
{
	const char *v = cfg_value(c, sec, key);

	return v && bool_word(v) == 1;
}

int cfg_str(struct cfg *c, const char *sec, const char *key, const char **out, const char *def,
	    unsigned flags)
{
	struct cfg_entry *e;
	int r = get_value(c, sec, key, flags, &e);

	*out = r > 0 ? e->value : def;
	return r < 0 ? -1 : 0;
}

int cfg_path(struct cfg *c, const char *sec, const char *key, char **out, unsigned flags)
{
	struct cfg_entry *e;
	int r = get_value(c, sec, key, flags, &e);

	*out = NULL;
	if (r <= 0)
		return r;
	e->path = true;
	*out = cfg_entry_path(c, e);
	return 0;
}

char *cfg_entry_path(const struct cfg *c, const struct cfg_entry *e)
{
	size_t n = strlen(c->dir) + strlen(e->value) + 2;
	char *p;

	if (e->value[0] == '/' || e->line == 0)
		return xstrdup(e->value);
	p = malloc(n);
	BUG_ON(!p);
	snprintf(p, n, "%s/%s", c->dir, e->value);
	return p;
}

int cfg_need_file(struct cfg *c, const struct cfg_entry *e, const char *path, bool blockdev)
{
	struct stat st;
	const char *kind;

	if (stat(path, &st) < 0 || S_ISREG(st.st_mode) || (blockdev && S_ISBLK(st.st_mode)))
		return 0;
	kind = S_ISDIR(st.st_mode)    ? "a directory"
	       : S_ISFIFO(st.st_mode) ? "a FIFO"
	       : S_ISSOCK(st.st_mode) ? "a socket"
	       : S_ISCHR(st.st_mode)  ? "a character device"
	       : S_ISBLK(st.st_mode)  ? "a block device"
				      : "a special file";
	cfg_error(c, e, NULL, "'%s' is %s, not a regular file%s", path, kind,
		  blockdev ? " or a block device" : "");
	return -1;
}

int cfg_enum(struct cfg *c, const char *sec, const char *key, const char *const *names, int *out,
	     int def)
{
	struct cfg_entry *e;
	int r = get_value(c, sec, key, 0, &e);
	char list[256] = "";
	const char *hint;

	cfg_note_words(c, sec, key, names);
	*out = def;
	if (r <= 0)
		return r;
	for (int i = 0; names[i]; i++) {
		if (!strcmp(e->value, names[i])) {
			*out = i;
			return 0;
		}
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
			 names[i]);
	}
	hint = closest_name(e->value, names, 0);
	if (hint)
		cfg_error(c, e, NULL, "'%s' is not one of: %s (did you mean '%s'?)", e->value, list,
			  hint);
	else
		cfg_error(c, e, NULL, "'%s' is not one of: %s", e->value, list);
	return -1;
}

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), prev[64], cur[64];

	if (la >= 63 || lb >= 63)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (tolower((unsigned char)a[i - 1]) !=
						    tolower((unsigned char)b[j - 1]));
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;

			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, cur, sizeof(size_t) * (lb + 1));
	}
	return prev[lb];
}

const char *closest_name(const char *s, const char *const *cands, size_t n)
{
	const char *best = NULL;
	size_t bestd = SIZE_MAX;

	for (size_t i = 0; n ? i < n : cands[i] != NULL; i++) {
		size_t d = edit_distance(s, cands[i]);

		if (d < bestd) {
			bestd = d;
			best = cands[i];
		}
	}
	/* Near enough to be a typo: at most a third of the word, and at least one edit. */
	size_t limit = strlen(s) / 3 > 1 ? strlen(s) / 3 : 1;

	if (best && bestd <= limit)
		return best;
	return NULL;
}

void cfg_print_known(const struct cfg *c, FILE *f)
{
	for (size_t i = 0; i < c->nknown; i++)
		fprintf(f, "%s.%s\n", c->known[i], c->known[i] + strlen(c->known[i]) + 1);
}

void cfg_check_unused(struct cfg *c, const char *const *fixed_sections)
{
	/* The keys asked for in each section, in the order asked: chains through knext. */
	int *khead = malloc((c->nsections + 1) * sizeof(int));
	int *ktail = malloc((c->nsections + 1) * sizeof(int));
	int *knext = malloc((c->nknown + 1) * sizeof(int));
	bool *said = calloc(c->nsections + 1, sizeof(bool));

	BUG_ON(!khead || !ktail || !knext || !said);
	for (size_t s = 0; s < c->nsections; s++)
		khead[s] = ktail[s] = -1;
	for (size_t k = 0; k < c->nknown; k++) {
		long s = section_index(c, c->known[k]);

		knext[k] = -1;
		if (s < 0)
			continue;
		if (ktail[s] >= 0)
			knext[ktail[s]] = (int)k;
		else
			khead[s] = (int)k;
		ktail[s] = (int)k;
	}
	for (size_t i = 0; i < c->nentries; i++) {
		struct cfg_entry *e = &c->entries[i];
		long s = section_index(c, e->section);
		const char *cands[128];
		size_t n = 0, ls = strlen(e->section);
		const char *hint;

		if (e->used)
			continue;
		if (khead[s] < 0) {
			/* Reported once per section, at its first unused entry. */
			if (said[s])
				continue;
			said[s] = true;
			hint = closest_name(e->section, fixed_sections, 0);
			if (hint)
				cfg_error(c, NULL, e->section,
					  "unknown section (did you mean [%s]?)", hint);
			else
				cfg_error(c, NULL, e->section,
					  "unknown section (a device section needs 'type = ...')");
			continue;
		}
		for (int k = khead[s]; k >= 0 && n < ARRAY_SIZE(cands); k = knext[k])
			cands[n++] = c->known[k] + ls + 1;
		/* No hint looked for where the error is only counted. */
		hint = c->nerrors < CFG_ERRORS_SHOWN ? closest_name(e->key, cands, n) : NULL;
		if (hint)
			cfg_error(c, e, NULL, "unknown key (did you mean '%s'?)", hint);
		else
			cfg_error(c, e, NULL, "unknown key");
	}
	free(khead);
	free(ktail);
	free(knext);
	free(said);
}
