/* shorthand: --cpus, --memory, --disk and --net, each what --set would write. */
#include "shorthand.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "config.h"
#include "log.h"
#include "machine.h"

/* A ",word" or ",word=VALUE" a device's argument may have after its first field. */
struct word {
	const char *name;
	const char *key;  /* the section's key it sets */
	const char *flag; /* a word alone: the value it sets ("ro": readonly = on); NULL: VALUE */
};

struct shorthand {
	const char *name; /* the option, without "--" */
	const char *what; /* what its argument (its first field) is, for messages */
	const char *key;  /* a plain one: the SECTION.KEY its argument sets */
	/* A device: a new section PREFIXn of this type, its first field setting first. */
	const char *prefix, *type, *first;
	bool first_optional; /* the first field may be empty: the key's default applies */
	const struct word *words;
	int (*apply)(struct cfg *c, const struct machine_override *ov);
};

static const struct word disk_words[] = {
	{"ro", "readonly", "on"},
	{"transport", "transport", NULL},
	{0},
};

static const struct word net_words[] = {
	{"mac", "mac", NULL},
	{"transport", "transport", NULL},
	{"vhost", "vhost", NULL},
	{0},
};

enum { SH_CPUS, SH_MEMORY, SH_DISK, SH_NET };

static int apply_disk(struct cfg *c, const struct machine_override *ov);
static int apply_net(struct cfg *c, const struct machine_override *ov);

static const struct shorthand shorthands[] = {
	[SH_CPUS] = {.name = "cpus", .what = "a number of vCPUs", .key = "machine.vcpus"},
	[SH_MEMORY] = {.name = "memory", .what = "a size (512M, 2G)", .key = "memory.size"},
	[SH_DISK] = {.name = "disk",
		     .what = "an image's path",
		     .prefix = "blk",
		     .type = "virtio-blk",
		     .first = "path",
		     .words = disk_words,
		     .apply = apply_disk},
	[SH_NET] = {.name = "net",
		    .what = "a TAP's name",
		    .prefix = "net",
		    .type = "virtio-net",
		    .first = "tap",
		    .first_optional = true,
		    .words = net_words,
		    .apply = apply_net},
};

/* A device's argument, split: the keys it sets and their values (pointing into buf). */
struct parsed {
	char *buf;
	const char *key[8], *value[8];
	size_t n;
};

static const struct word *find_word(const struct word *w, const char *name)
{
	for (; w->name; w++)
		if (!strcmp(w->name, name))
			return w;
	return NULL;
}

/* "ro, transport=": the words a device's argument takes, for messages. */
static void list_words(const struct word *w, char *buf, size_t len)
{
	size_t at = 0;

	buf[0] = '\0';
	for (bool first = true; w->name && at < len; w++, first = false)
		at += (size_t)snprintf(buf + at, len - at, "%s%s%s", first ? "" : ", ", w->name,
				       w->flag ? "" : "=");
}

static bool has_key(const struct parsed *p, const char *key)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->key[i], key))
			return true;
	return false;
}

/* Split a device's argument "FIRST[,word][,word=VALUE]...". 0, or -1 with why. */
static int parse(const struct shorthand *s, const char *arg, struct parsed *p, char *why,
		 size_t len)
{
	char *next, *f, words[64];

	p->n = 0;
	p->buf = next = strdup(arg);
	if (!p->buf) {
		snprintf(why, len, "out of memory");
		return -1;
	}
	f = strsep(&next, ",");
	if (!*f && !s->first_optional) {
		snprintf(why, len, "%s is needed before any ','", s->what);
		return -1;
	}
	if (*f) {
		p->key[p->n] = s->first;
		p->value[p->n++] = f;
	}
	list_words(s->words, words, sizeof(words));
	while ((f = strsep(&next, ","))) {
		char *eq = strchr(f, '=');
		const struct word *w;

		if (eq)
			*eq++ = '\0';
		w = find_word(s->words, f);
		if (!*f)
			snprintf(why, len, "an empty option (%s)", words);
		else if (!w)
			snprintf(why, len, "unknown option '%s' (%s)", f, words);
		else if (w->flag && eq)
			snprintf(why, len, "'%s' takes no value", f);
		else if (!w->flag && (!eq || !*eq))
			snprintf(why, len, "'%s' needs a value (%s=...)", f, f);
		else if (has_key(p, w->key) || p->n == ARRAY_SIZE(p->key))
			snprintf(why, len, "'%s' is given twice", f);
		else {
			p->key[p->n] = w->key;
			p->value[p->n++] = w->flag ? w->flag : eq;
			continue;
		}
		return -1;
	}
	return 0;
}

/* Set sec.key = value as --set would, the messages naming ov's option and argument. */
static int set(struct cfg *c, const struct machine_override *ov, const char *sec, const char *key,
	       const char *value)
{
	char *arg;
	int err;

	if (asprintf(&arg, "%s.%s=%s", sec, key, value) < 0) {
		cfg_report(c, ov->origin, "out of memory");
		return -1;
	}
	err = cfg_set_from(c, arg, ov->origin, NULL);
	free(arg);
	return err;
}

/* Add the device s stands for to c: a section named after the PREFIXn ones c has. */
static int add_device(const struct shorthand *s, struct cfg *c, const struct machine_override *ov)
{
	struct parsed p = {0};
	char why[160], sec[64];
	int err = 0;

	if (cfg_next_name(c, s->prefix, sec, sizeof(sec)))
		snprintf(why, sizeof(why), "no name left for a new [%s...] section", s->prefix);
	else if (!parse(s, ov->arg, &p, why, sizeof(why)))
		why[0] = '\0';
	if (why[0]) {
		cfg_report(c, ov->origin, "%s", why);
		free(p.buf);
		return -1;
	}
	err |= set(c, ov, sec, "type", s->type);
	for (size_t i = 0; i < p.n; i++)
		err |= set(c, ov, sec, p.key[i], p.value[i]);
	free(p.buf);
	return err;
}

static int apply_disk(struct cfg *c, const struct machine_override *ov)
{
	return add_device(&shorthands[SH_DISK], c, ov);
}

static int apply_net(struct cfg *c, const struct machine_override *ov)
{
	return add_device(&shorthands[SH_NET], c, ov);
}

int shorthand_override(const char *name, const char *arg, struct machine_override *ov, char **mem,
		       char *why, size_t whylen)
{
	const struct shorthand *s = NULL;
	struct parsed p;
	int n;

	*mem = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(shorthands); i++)
		if (!strcmp(shorthands[i].name, name))
			s = &shorthands[i];
	BUG_ON(!s);
	if (s->key && !*arg) {
		snprintf(why, whylen, "%s is needed", s->what);
		return -1;
	}
	if (!s->key) {
		int err = parse(s, arg, &p, why, whylen);

		free(p.buf);
		if (err)
			return -1;
	}
	/* "--disk ARG" (where messages point), then what it sets: its argument, or KEY=ARG. */
	n = asprintf(mem, "--%s %s%c%s%s%s", name, arg, '\0', s->key ? s->key : "",
		     s->key ? "=" : "", arg);
	if (n < 0) {
		*mem = NULL;
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	*ov = (struct machine_override){
		.origin = *mem,
		.arg = *mem + strlen(*mem) + 1,
		.apply = s->apply,
	};
	return 0;
}
