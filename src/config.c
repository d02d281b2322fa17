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
	log_vreport(loc, fmt, ap);
	va_end(ap);
	c->nerrors++;
}

static void line_error(struct cfg *c, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void line_error(struct cfg *c, int line, const char *fmt, ...)
{
	char loc[512];
	va_list ap;

	snprintf(loc, sizeof(loc), "%s:%d", c->path, line);
	va_start(ap, fmt);
	log_vreport(loc, fmt, ap);
	va_end(ap);
	c->nerrors++;
}

const struct cfg_section *cfg_section(const struct cfg *c, const char *sec)
{
	for (size_t i = 0; i < c->nsections; i++)
		if (!strcmp(c->sections[i].name, sec))
			return &c->sections[i];
	return NULL;
}

static void add_section(struct cfg *c, const char *name, const char *origin, int line)
{
	c->sections = grow(c->sections, &c->seccap, c->nsections, sizeof(*c->sections));
	c->sections[c->nsections++] = (struct cfg_section){xstrdup(name), origin, line};
}

static struct cfg_entry *find(const struct cfg *c, const char *sec, const char *key)
{
	for (size_t i = 0; i < c->nentries; i++)
		if (!strcmp(c->entries[i].section, sec) && !strcmp(c->entries[i].key, key))
			return &c->entries[i];
	return NULL;
}

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

/* Classify each physical line before inih sees it: sections, syntax errors, line numbers. */
static void inspect_line(struct cfg *c, const char *raw)
{
	char buf[1024];
	char *s;

	snprintf(buf, sizeof(buf), "%s", raw);
	s = trim(buf);
	if (!*s || *s == ';' || *s == '#')
		return;
	if (isspace((unsigned char)raw[0]) && c->cursec) {
		if (c->cont && !looks_like_key(s)) {
			c->in_cont = true;
			return;
		}
		line_error(
			c, c->lineno,
			c->cont ? "indented line: a key or section starts at the beginning of "
				  "the line"
				: "indented line: only [boot] cmdline continues on indented lines");
		return;
	}
	c->cont = false;
	if (*s == '[') {
		char *end = strchr(s, ']');
		const struct cfg_section *prev;

		if (!end) {
			line_error(c, c->lineno, "malformed section header (missing ']')");
			return;
		}
		*end = '\0';
		s = trim(s + 1);
		if (!cfg_valid_name(s)) {
			line_error(c, c->lineno,
				   "bad section name '%s' (letters, digits, '-' and '_' only)", s);
			return;
		}
		prev = cfg_section(c, s);
		if (prev)
			line_error(c, c->lineno, "duplicate section [%s] (first at line %d)", s,
				   prev->line);
		else
			add_section(c, s, c->path, c->lineno);
		free(c->cursec);
		c->cursec = xstrdup(s);
		return;
	}
	if (!strchr(s, '=') && !strchr(s, ':')) {
		line_error(c, c->lineno, "malformed line (expected 'key = value')");
		return;
	}
	if (!c->cursec) {
		line_error(c, c->lineno, "key outside of any [section]");
		return;
	}
	/* The kernel command line may be longer than a line: indented lines continue it. */
	s[strcspn(s, "=:")] = '\0';
	c->cont = !strcmp(c->cursec, "boot") && !strcmp(trim(s), "cmdline");
}

static char *reader(char *str, int num, void *stream)
{
	struct cfg *c = stream;
	FILE *f = c->stream;
	size_t len;

	if (!fgets(str, num, f))
		return NULL;
	c->lineno++;
	c->in_cont = false;
	len = strlen(str);
	if (len && str[len - 1] != '\n' && !feof(f)) {
		int ch;

		while ((ch = fgetc(f)) != EOF && ch != '\n')
			;
		line_error(c, c->lineno, "line longer than %d characters", num - 2);
		str[0] = '\0';
		return str;
	}
	inspect_line(c, str);
	return str;
}

/* An indented line that continues [boot] cmdline: its words join the value, after a space. */
static void continue_value(struct cfg *c, const char *section, const char *name, const char *value)
{
	struct cfg_entry *e = find(c, section, name);
	size_t n = strlen(value), len;
	char *v;

	/* inih keeps an inline comment on a continuation line: cut it as on the first line. */
	for (const char *p = strchr(value, ';'); p; p = strchr(p + 1, ';'))
		if (p > value && isspace((unsigned char)p[-1])) {
			n = p - value;
			break;
		}
	while (n && isspace((unsigned char)value[n - 1]))
		n--;
	if (!e || !n)
		return;
	len = strlen(e->value);
	v = realloc(e->value, len + n + 2);
	BUG_ON(!v);
	v[len] = ' ';
	memcpy(v + len + 1, value, n);
	v[len + 1 + n] = '\0';
	e->value = v;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct cfg *c = user;
	struct cfg_entry *prev;

	if (!*section || !c->cursec)
		return 1; /* reported by inspect_line */
	if (c->in_cont) {
		continue_value(c, section, name, value);
		return 1;
	}
	if (!cfg_valid_name(name)) {
		line_error(c, c->lineno, "[%s] bad key name '%s'", section, name);
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

static int load(struct cfg *c, const char *path, FILE *f)
{
	char *tmp;

	c->path = xstrdup(path);
	tmp = xstrdup(path);
	c->dir = xstrdup(dirname(tmp));
	free(tmp);
	c->cwd = getcwd(NULL, 0);
	if (!f)
		return -errno;
	c->stream = f;
	ini_parse_stream(reader, c, handler, c);
	fclose(f);
	c->stream = NULL;
	free(c->cursec);
	c->cursec = NULL;
	return 0;
}

int cfg_load(struct cfg *c, const char *path)
{
	/*
	 * Non-blocking, so that a FIFO no one writes reads as empty instead of blocking the
	 * open; then blocking again, so that a pipe (--config <(...)) is read to its end.
	 */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY), err;
	FILE *f = NULL;

	if (fd >= 0) {
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
		f = fdopen(fd, "r");
		if (!f) {
			err = errno;
			close(fd);
			errno = err;
		}
	}
	return load(c, path, f);
}

int cfg_load_text(struct cfg *c, const char *name, const char *text)
{
	int err = load(c, name, fmemopen((void *)text, strlen(text), "r"));

	/* Relative paths in a built-in machine are the working directory's, as for --set. */
	free(c->dir);
	c->dir = xstrdup(".");
	return err;
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
		log_report(loc, "expected SECTION.KEY=VALUE");
		c->nerrors++;
		return -1;
	}
	memcpy(sec, arg, dot - arg);
	sec[dot - arg] = '\0';
	memcpy(key, dot + 1, eq - dot - 1);
	key[eq - dot - 1] = '\0';
	if (!cfg_valid_name(sec) || !cfg_valid_name(key)) {
		log_report(loc, "bad section or key name");
		c->nerrors++;
		return -1;
	}
	e = find(c, sec, key);
	if (!eq[1]) {
		/* "SEC.KEY=" removes the key, so that its default applies again. */
		if (e) {
			free(e->section);
			free(e->key);
			free(e->value);
			memmove(e, e + 1, (c->nentries - (e - c->entries) - 1) * sizeof(*e));
			c->nentries--;
		}
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

		for (size_t j = 0; j < c->nentries; j++) {
			const struct cfg_entry *e = &c->entries[j];
			const char *dir = e->line ? c->dir : ".";

			if (strcmp(e->section, sec) || skipped(skip_sec, skip_keys, sec, e->key))
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
	free(c->cursec);
	memset(c, 0, sizeof(*c));
}

/* Record section.key as known (once); its index in c->known. */
static size_t note_known(struct cfg *c, const char *sec, const char *key)
{
	size_t ls = strlen(sec), lk = strlen(key);
	char *k;

	for (size_t i = 0; i < c->nknown; i++)
		if (!strcmp(c->known[i], sec) && !strcmp(c->known[i] + ls + 1, key))
			return i;
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
	return c->nknown - 1;
}

void cfg_note_words(struct cfg *c, const char *sec, const char *key, const char *const *words)
{
	c->known_words[note_known(c, sec, key)] = words;
}

const char *const *cfg_known_words(const struct cfg *c, const char *sec, const char *key)
{
	size_t ls = strlen(sec);

	for (size_t i = 0; i < c->nknown; i++)
		if (!strcmp(c->known[i], sec) && !strcmp(c->known[i] + ls + 1, key))
			return c->known_words[i];
	return NULL;
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
		if (flags & CFG_REQUIRED) {
			cfg_error(c, NULL, sec, "missing required key '%s'", key);
			return -1;
		}
		return 0;
	}
	if (!*e->value) {
		cfg_error(c, e, NULL, "empty value");
		return -1;
	}
	return 1;
}

int parse_size(const char *s, uint64_t *out)
{
	static const struct {
		const char *sfx;
		unsigned shift;
	} sfx[] = {{"", 0},	{"K", 10},   {"M", 20},	  {"G", 30},   {"T", 40},
		   {"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}, {"k", 10}};
	char *end;
	unsigned long long v;

	if (!*s || *s == '-' || *s == '+' || isspace((unsigned char)*s))
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

	*out = def;
	if (r <= 0)
		return r;
	if (parse_size(e->value, out)) {
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
	uint64_t v;

	*out = def;
	if (r <= 0)
		return r;
	if (parse_size(e->value, &v)) {
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
	for (size_t i = 0; i < c->nentries; i++) {
		struct cfg_entry *e = &c->entries[i];
		const char *cands[128];
		size_t n = 0, ls = strlen(e->section);
		const char *hint;
		bool section_known = false;

		if (e->used)
			continue;
		for (size_t k = 0; k < c->nknown && n < 128; k++) {
			if (strcmp(c->known[k], e->section))
				continue;
			section_known = true;
			cands[n++] = c->known[k] + ls + 1;
		}
		if (!section_known) {
			/* Reported once per section, at its first unused entry. */
			bool first = true;

			for (size_t j = 0; j < i; j++)
				if (!strcmp(c->entries[j].section, e->section) &&
				    !c->entries[j].used)
					first = false;
			if (!first)
				continue;
			hint = closest_name(e->section, fixed_sections, 0);
			if (hint)
				cfg_error(c, NULL, e->section,
					  "unknown section (did you mean [%s]?)", hint);
			else
				cfg_error(c, NULL, e->section,
					  "unknown section (a device section needs 'type = ...')");
			continue;
		}
		hint = closest_name(e->key, cands, n);
		if (hint)
			cfg_error(c, e, NULL, "unknown key (did you mean '%s'?)", hint);
		else
			cfg_error(c, e, NULL, "unknown key");
	}
}
