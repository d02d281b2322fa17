/* catalog: machine descriptions found by name, in an installed microvm's or a checkout's. */
#include "catalog.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

enum { DIRS_MAX = 2, NAMES_MAX = 256 };

struct dirs {
	char path[DIRS_MAX][PATH_MAX];
	int n;
};

/* Add dir/sub when it is a directory. */
static void add_dir(struct dirs *d, const char *dir, const char *sub)
{
	struct stat st;
	char *p = d->path[d->n];

	if (snprintf(p, PATH_MAX, "%s%s%s", strcmp(dir, "/") ? dir : "", "/", sub) >= PATH_MAX)
		return;
	if (!stat(p, &st) && S_ISDIR(st.st_mode))
		d->n++;
}

/* The directory that holds p, into out. */
static void parent(const char *p, char *out)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", p);
	snprintf(out, PATH_MAX, "%s", dirname(tmp));
}

/* Is p's last component name? */
static bool last_is(const char *p, const char *name)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", p);
	return !strcmp(basename(tmp), name);
}

/*
 * Where machines are looked for, in order: beside the binary as installed (BINDIR/..), then
 * the checkout whose build/ (or build/SUB/) holds it.
 */
static void search_dirs(struct dirs *d)
{
	char exe[PATH_MAX], bin[PATH_MAX], up[PATH_MAX], top[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	d->n = 0;
	if (n <= 0)
		return;
	exe[n] = '\0';
	parent(exe, bin);
	parent(bin, up);
	add_dir(d, up, "share/microvm/machines");
	if (last_is(bin, "build")) {
		add_dir(d, up, "machines");
	} else if (last_is(up, "build")) {
		parent(up, top);
		add_dir(d, top, "machines");
	}
}

/* A name to look up: no '/', not ending in ".ini", not "." or "..". */
static bool bare_name(const char *s)
{
	size_t n = strlen(s);

	return n && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..") &&
	       !(n >= 4 && !strcmp(s + n - 4, ".ini"));
}

static int only_ini(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	return n > 4 && !strcmp(e->d_name + n - 4, ".ini") && e->d_name[0] != '.';
}

/* The regular files NAME.ini of dir, sorted; *list is freed with free_list. */
static int scan(const char *dir, struct dirent ***list)
{
	int n = scandir(dir, list, only_ini, alphasort);

	return n < 0 ? 0 : n;
}

static void free_list(struct dirent **list, int n)
{
	for (int i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

char *catalog_find(const char *arg)
{
	const char *names[NAMES_MAX + 1];
	char path[PATH_MAX + 8], where[2 * PATH_MAX + 8] = "";
	struct dirs d;
	struct stat st;
	const char *hint;
	size_t nn = 0;

	if (!bare_name(arg) || !stat(arg, &st))
		return strdup(arg);
	search_dirs(&d);
	for (int i = 0; i < d.n; i++) {
		snprintf(path, sizeof(path), "%s/%s.ini", d.path[i], arg);
		if (!stat(path, &st))
			return strdup(path);
		snprintf(where + strlen(where), sizeof(where) - strlen(where), "%s%s",
			 i ? " or " : "", d.path[i]);
	}
	/* Nowhere: the closest name among those there is, if one is near. */
	struct dirent **list[DIRS_MAX];
	int nl[DIRS_MAX];

	for (int i = 0; i < d.n; i++) {
		nl[i] = scan(d.path[i], &list[i]);
		for (int j = 0; j < nl[i] && nn < NAMES_MAX; j++) {
			list[i][j]->d_name[strlen(list[i][j]->d_name) - 4] = '\0';
			names[nn++] = list[i][j]->d_name;
		}
	}
	names[nn] = NULL;
	hint = closest_name(arg, names, 0);
	if (!d.n)
		fprintf(stderr,
			"microvm: --config %s: no such file, and no machines directory beside "
			"this microvm (PREFIX/share/microvm/machines, or a checkout's machines/)\n",
			arg);
	else
		fprintf(stderr, "microvm: --config %s: no such file, and no %s.ini in %s%s%s%s\n",
			arg, arg, where, hint ? " (did you mean '" : " (microvm --list-machines)",
			hint ? hint : "", hint ? "'?)" : "");
	for (int i = 0; i < d.n; i++)
		free_list(list[i], nl[i]);
	return NULL;
}

/* The first comment line of the file at path, trimmed, into buf ("" if there is none). */
static void describe(const char *path, char *buf, size_t len)
{
	/* Non-blocking: a FIFO put there reads as empty instead of blocking the open. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	char text[512], *line, *next;
	struct stat st;
	ssize_t n = 0;

	buf[0] = '\0';
	if (fd < 0)
		return;
	if (!fstat(fd, &st) && S_ISREG(st.st_mode))
		n = read(fd, text, sizeof(text) - 1);
	close(fd);
	text[n > 0 ? n : 0] = '\0';
	for (next = text; (line = strsep(&next, "\n"));) {
		while (isspace((unsigned char)*line))
			line++;
		if (*line != ';' && *line != '#')
			continue;
		line++;
		while (isspace((unsigned char)*line))
			line++;
		snprintf(buf, len, "%s", line);
		for (char *e = buf + strlen(buf); e > buf && isspace((unsigned char)e[-1]);)
			*--e = '\0';
		return;
	}
}

int catalog_list(FILE *out)
{
	struct dirs d;
	struct dirent **list[DIRS_MAX];
	int nl[DIRS_MAX], count = 0, namew = 4, pathw = 4;
	char path[PATH_MAX + 8], desc[256];

	search_dirs(&d);
	/* Two passes: the widths of the columns, then the lines. */
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < d.n; i++) {
			if (!pass)
				nl[i] = scan(d.path[i], &list[i]);
			for (int j = 0; j < nl[i]; j++) {
				const char *name = list[i][j]->d_name;
				int shadowed = 0, len = (int)strlen(name) - 4;
				struct stat st;

				/* A name an earlier directory has is found there. */
				for (int k = 0; k < i && !shadowed; k++)
					for (int l = 0; l < nl[k] && !shadowed; l++)
						shadowed = !strcmp(list[k][l]->d_name, name);
				snprintf(path, sizeof(path), "%s/%s", d.path[i], name);
				if (shadowed || stat(path, &st) || !S_ISREG(st.st_mode))
					continue;
				if (!pass) {
					namew = len > namew ? len : namew;
					pathw = (int)strlen(path) > pathw ? (int)strlen(path)
									  : pathw;
					continue;
				}
				describe(path, desc, sizeof(desc));
				fprintf(out, "%-*.*s  %-*s  %s\n", namew, len, name, pathw, path,
					desc);
				count++;
			}
		}
	}
	for (int i = 0; i < d.n; i++)
		free_list(list[i], nl[i]);
	return count;
}
