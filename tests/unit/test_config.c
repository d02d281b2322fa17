/* Unit tests: INI parsing, typed getters, --set overrides, sizes and name hints. */
#include <stdlib.h>
#include <unistd.h>

#include "array.h"
#include "config.h"
#include "device.h"
#include "log.h"
#include "arch/arm64/arm64.h"
#include "machine.h"
#include "test.h"

static char *write_tmp(const char *text)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/mvtest-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	close(fd);
	return path;
}

/* A file of len bytes (NULs and all) in /tmp; the caller unlinks it. */
static char *write_tmp_n(const char *text, size_t len)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/mvtest-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len)
		abort();
	close(fd);
	return path;
}

/* Load text as the file path, with what it reports captured (into *said, freed by the caller). */
static int load_said(struct cfg *c, const char *text, size_t len, char **said)
{
	size_t n = 0;
	FILE *f = open_memstream(said, &n);
	const char *path = write_tmp_n(text, len);
	int err;

	log_capture(f);
	err = cfg_load(c, path);
	log_capture(NULL);
	fclose(f);
	unlink(path);
	return err;
}

static void sizes(void)
{
	uint64_t v = 0;

	CHECK(parse_size("512M", &v) == 0 && v == 512ull << 20);
	CHECK(parse_size("1G", &v) == 0 && v == 1ull << 30);
	CHECK(parse_size("1GiB", &v) == 0 && v == 1ull << 30);
	CHECK(parse_size("16K", &v) == 0 && v == 16384);
	CHECK(parse_size("0x1000", &v) == 0 && v == 4096);
	CHECK(parse_size("4096", &v) == 0 && v == 4096);
	CHECK(parse_size("2T", &v) == 0 && v == 2ull << 40);
	CHECK(parse_size("", &v) < 0);
	CHECK(parse_size("-1", &v) < 0);
	CHECK(parse_size("12Q", &v) < 0);
	CHECK(parse_size("1 G", &v) < 0);
	CHECK(parse_size(" 1", &v) < 0);
	CHECK(parse_size("0xffffffffffffffffK", &v) < 0);
	CHECK(parse_size("99999999999999999999", &v) < 0);
}

/* A decimal-looking number with a leading zero is refused, with what to write instead. */
static void leading_zeros(void)
{
	uint64_t v = 1;
	char why[256];

	CHECK(parse_size("0", &v) == 0 && v == 0);
	CHECK(parse_size("0x10", &v) == 0 && v == 16);
	CHECK(parse_size("0K", &v) == 0 && v == 0);
	CHECK(parse_size("010", &v) < 0);
	CHECK(parse_size("00", &v) < 0);
	CHECK(parse_size("08", &v) < 0);
	CHECK(parse_size("012M", &v) < 0);
	CHECK(parse_size_why("010", &v, why, sizeof(why)) < 0 && strstr(why, "010 is 8") &&
	      strstr(why, "write 10 in decimal, or 8 or 0x8"));
	CHECK(parse_size_why("09", &v, why, sizeof(why)) < 0 && strstr(why, "write 9"));
	CHECK(parse_size_why("1Q", &v, why, sizeof(why)) < 0 && !why[0]);
}

static void hints(void)
{
	static const char *const names[] = {"machine", "memory", "boot", "gic", NULL};

	CHECK(closest_name("memroy", names, 0) &&
	      !strcmp(closest_name("memroy", names, 0), "memory"));
	CHECK(closest_name("gci", names, 0) == NULL); /* 2 edits on 3 letters is not a typo */
	CHECK(closest_name("bot", names, 0) && !strcmp(closest_name("bot", names, 0), "boot"));
	CHECK(closest_name("network", names, 0) == NULL);
}

static void getters(void)
{
	static const char *const modes[] = {"exit", "restart", NULL};
	struct cfg c = {0};
	const char *path = write_tmp("; comment\n[a]\nsize = 2M\nflag = yes\nmode = restart\n"
				     "name = hello world ; trailing comment\nfile = img\n");
	uint64_t v;
	uint32_t u;
	bool b;
	int e;
	const char *s;
	char *p;

	CHECK(cfg_load(&c, path) == 0);
	CHECK_EQ(c.nerrors, 0);
	CHECK(cfg_u64(&c, "a", "size", &v, 0, 0) == 0 && v == 2 << 20);
	CHECK(cfg_bool(&c, "a", "flag", &b, false) == 0 && b);
	CHECK(cfg_enum(&c, "a", "mode", modes, &e, 0) == 0 && e == 1);
	CHECK(cfg_str(&c, "a", "name", &s, NULL, 0) == 0 && !strcmp(s, "hello world"));
	CHECK(cfg_u32(&c, "a", "missing", &u, 7, 0, 10, 0) == 0 && u == 7);
	CHECK(cfg_u32(&c, "a", "missing", &u, 7, 0, 10, CFG_REQUIRED) < 0);
	CHECK(cfg_path(&c, "a", "file", &p, 0) == 0 && p && !strcmp(p, "/tmp/img"));
	free(p);
	CHECK(cfg_u32(&c, "a", "size", &u, 0, 0, 1000, 0) < 0); /* 2M out of range */
	CHECK_EQ(c.nerrors, 2);

	/* --set replaces a value and its provenance, or adds a new key. */
	CHECK(cfg_set(&c, "a.size=4M") == 0);
	CHECK(cfg_set(&c, "b.new=1") == 0);
	CHECK(cfg_set(&c, "nodot=1") < 0);
	CHECK(cfg_set(&c, "a.=1") < 0);
	CHECK(cfg_u64(&c, "a", "size", &v, 0, 0) == 0 && v == 4 << 20);
	CHECK(cfg_get(&c, "a", "size")->line == 0);
	CHECK(cfg_section(&c, "b") != NULL);
	CHECK(cfg_set(&c, "a.flag=") == 0); /* removed: the default applies */
	CHECK(cfg_bool(&c, "a", "flag", &b, false) == 0 && !b);
	CHECK(cfg_get(&c, "a", "flag") == NULL);
	CHECK(cfg_set(&c, "a.file=rel") == 0);
	CHECK(cfg_path(&c, "a", "file", &p, 0) == 0 && p && !strcmp(p, "rel"));
	free(p);
	cfg_free(&c);
	unlink(path);
}

static void syntax_errors(void)
{
	struct cfg c = {0};
	const char *path = write_tmp("[a]\nx = 1\nx = 2\nbroken line\n[a]\n[bad name]\n");

	CHECK(cfg_load(&c, path) == 0);
	/* duplicate key, malformed line, duplicate section, bad section name */
	CHECK_EQ(c.nerrors, 4);
	cfg_free(&c);
	unlink(path);
}

/*
 * The section and key index: every one of CFG_MAX_SECTIONS sections and its keys found,
 * first and last alike; a duplicate among them found; lookups right after a key goes away
 * (the entries move) and after sections come from --set; one section more is refused.
 */
static void lookup_index(void)
{
	size_t cap = (size_t)CFG_MAX_SECTIONS * 48 + 64, n = 0;
	char *text = malloc(cap), *said = NULL, key[32], val[32];
	struct cfg c = {0};
	bool all = true;

	if (!text)
		abort();
	for (int i = 0; i < CFG_MAX_SECTIONS; i++)
		n += snprintf(text + n, cap - n, "[s%d]\na = %d\nb = x%d\nc = 1\n", i, i, i);
	CHECK(load_said(&c, text, n, &said) == 0);
	CHECK_EQ(c.nerrors, 0);
	CHECK_EQ(c.nsections, CFG_MAX_SECTIONS);
	CHECK_EQ(c.nentries, 3 * CFG_MAX_SECTIONS);
	for (int i = 0; i < CFG_MAX_SECTIONS && all; i++) {
		const struct cfg_section *sec;

		snprintf(key, sizeof(key), "s%d", i);
		snprintf(val, sizeof(val), "x%d", i);
		sec = cfg_section(&c, key);
		all = sec && !strcmp(sec->name, key) && sec->line == 4 * i + 1 &&
		      cfg_value(&c, key, "b") && !strcmp(cfg_value(&c, key, "b"), val) &&
		      !cfg_value(&c, key, "d");
	}
	CHECK(all);
	CHECK(cfg_section(&c, "s4096") == NULL && cfg_section(&c, "s") == NULL);
	/* a key out of the first section: every entry after it moves */
	CHECK(cfg_set(&c, "s0.a=") == 0);
	CHECK(cfg_value(&c, "s0", "a") == NULL && !strcmp(cfg_value(&c, "s0", "b"), "x0"));
	CHECK(!strcmp(cfg_value(&c, "s4095", "a"), "4095"));
	CHECK(cfg_set(&c, "new.k=v") == 0 && cfg_section(&c, "new") &&
	      !strcmp(cfg_value(&c, "new", "k"), "v"));
	CHECK(cfg_set(&c, "s17.c=2") == 0 && !strcmp(cfg_value(&c, "s17", "c"), "2"));
	/* keys asked for, each once (cfg_print_known), found again by the index */
	for (int i = 0; i < 3; i++)
		CHECK(cfg_get(&c, "s9", "a") != NULL);
	CHECK_EQ(c.nknown, 1);
	cfg_free(&c);
	free(said);
	said = NULL;

	/* one more section: said at its line, nothing more read */
	n += snprintf(text + n, cap - n, "[s%d]\na = 1\n", CFG_MAX_SECTIONS);
	CHECK(load_said(&c, text, n, &said) == 0);
	CHECK_EQ(c.nerrors, 1);
	CHECK(c.unreadable && c.nsections == CFG_MAX_SECTIONS);
	CHECK(said && strstr(said, ":16385: [s4096]: a machine description has at most 4096 "));
	cfg_free(&c);
	free(said);
	free(text);
}

/* What a file's bytes may be: a byte-order mark and CRLF read as nothing; the rest named. */
static void encodings(void)
{
	static const struct {
		const char *text;
		size_t len;
		int errors;
		bool unreadable;
		const char *said; /* a part of what is said ("" for nothing) */
	} cases[] = {
#define T(s) s, sizeof(s) - 1
		{T("\xef\xbb\xbf[a]\nx = 1\n"), 0, false, ""},
		{T("[a]\r\nx = 1\r\n"), 0, false, ""},
		{T("[a]\n\xef\xbb\xbfx = 1\n"), 0, false, ""},
		{T("\xff\xfe[\0a\0]\0\n\0"), 1, true, "UTF-16 (little-endian, with a byte-order"},
		{T("\xfe\xff\0[\0a\0]\0\n"), 1, true, "UTF-16 (big-endian, with a byte-order"},
		{T("[\0a\0]\0\n\0x\0 \0=\0 \0001\0\n\0"), 1, true,
		 "UTF-16 (little-endian, without"},
		{T("[a]\rx = 1\r"), 1, true, "carriage return (CR) alone"},
		{T("[a]\nx = 1\ry = 2\n"), 1, false, ":2: a carriage return (CR) at column 6"},
		{T("[a]\nx = 1\0\ny = 2\n"), 1, false, ":2: a NUL byte at column 6"},
		{T("[a]\nx = caf\xe9\n"), 1, false, ":2: not UTF-8: byte 0xe9 at column 8"},
		{T("\x7f"
		   "ELF\2\1\1\0\0\0\0\0\0\0\0\0"),
		 1, true, "an ELF file"},
		{T(""), 0, false, ""},
	};
#undef T

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct cfg c = {0};
		char *said = NULL;

		test_case("encodings/%zu", i);
		CHECK(load_said(&c, cases[i].text, cases[i].len, &said) == 0);
		CHECK_EQ(c.nerrors, cases[i].errors);
		CHECK_EQ(c.unreadable, cases[i].unreadable);
		CHECK(said && strstr(said, cases[i].said));
		if (!cases[i].errors)
			CHECK(c.nsections == (cases[i].len ? 1u : 0u) &&
			      (!c.nsections || !strcmp(cfg_value(&c, "a", "x"), "1")));
		cfg_free(&c);
		free(said);
	}
}

/* Lines as inih would misread them: each said once, at its line, and nothing after it. */
static void line_forms(void)
{
	const char *text = "[ memory ]\n"		    /* 1: [memory] */
			   "size = 1G\n"		    /* 2 */
			   "  base = 0\n"		    /* 3: indented, read as written */
			   "cmd = a \"b ; c\"\n"	    /* 4: the comment would cut it */
			   "cmd2 = a;b ; a comment\n"	    /* 5: 'a;b' */
			   "who = Bob's ; it's a comment\n" /* 6: an apostrophe, not a quote */
			   "[dev] type = x\n"		    /* 7: a key on the header's line */
			   "[dev]\n"			    /* 8: a duplicate: its lines not read */
			   "x = 1\n"			    /* 9 */
			   "[bad name]\n"		    /* 10 */
			   "y = 1\n";			    /* 11: not read */
	struct cfg c = {0};
	char *said = NULL;
	struct cfg_entry *e;

	CHECK(load_said(&c, text, strlen(text), &said) == 0);
	CHECK_EQ(c.nerrors, 5);
	CHECK(said && strstr(said, ":3: indented line") && strstr(said, ":4: ';' after a space") &&
	      strstr(said, ":7: 'type = x' after the section header") &&
	      strstr(said, ":8: duplicate section [dev] (first at line 7)") &&
	      strstr(said, ":10: bad section name 'bad name'"));
	CHECK(cfg_section(&c, "memory") && cfg_section(&c, "memory")->line == 1);
	e = cfg_get(&c, "memory", "base");
	CHECK(e && e->line == 3 && !strcmp(e->value, "0"));
	CHECK(cfg_value(&c, "memory", "cmd") == NULL);
	CHECK(cfg_value(&c, "memory", "cmd2") && !strcmp(cfg_value(&c, "memory", "cmd2"), "a;b"));
	CHECK(cfg_value(&c, "memory", "who") && !strcmp(cfg_value(&c, "memory", "who"), "Bob's"));
	CHECK(cfg_section(&c, "dev") && cfg_section(&c, "dev")->damaged);
	CHECK(cfg_value(&c, "dev", "x") == NULL && cfg_section(&c, "bad name") == NULL);
	CHECK(cfg_section(&c, "memory")->damaged); /* line 4 was refused */
	/* a key of a section a refused line may have held is not reported missing */
	{
		uint64_t v;

		CHECK(cfg_u64(&c, "dev", "base", &v, 0, CFG_REQUIRED) < 0);
		CHECK(cfg_u64(&c, "gone", "base", &v, 0, CFG_REQUIRED) < 0);
		CHECK_EQ(c.nerrors, 5);
	}
	cfg_free(&c);
	free(said);
}

/* Errors past the first 20 are counted, not printed; one line says how many more. */
static void error_cap(void)
{
	struct cfg c = {0};
	char *text = NULL, *said = NULL;
	size_t len = 0, n = 0;
	FILE *f = open_memstream(&text, &len);
	int lines = 0;

	fprintf(f, "[a]\n");
	for (int i = 0; i < 25; i++)
		fprintf(f, "broken line %d\n", i);
	fclose(f);
	f = open_memstream(&said, &n);
	log_capture(f);
	{
		const char *path = write_tmp(text);

		CHECK(cfg_load(&c, path) == 0);
		unlink(path);
	}
	cfg_errors_hidden(&c);
	log_capture(NULL);
	fclose(f);
	CHECK_EQ(c.nerrors, 25);
	for (const char *p = said; p && *p; p++)
		lines += *p == '\n';
	CHECK_EQ(lines, 21);
	CHECK(said && strstr(said, ":21: malformed line") && !strstr(said, ":22: ") &&
	      strstr(said, ": ... and 5 more errors\n"));
	cfg_free(&c);
	free(text);
	free(said);
}

/*
 * Load text as a file: whether it loaded without an error; the value of section.key as
 * loaded (or "") goes to value.
 */
static bool load_clean(const char *text, const char *sec, const char *key, char *value, size_t len)
{
	struct cfg c = {0};
	const char *path = write_tmp(text), *s = NULL;
	bool clean = cfg_load(&c, path) == 0 && c.nerrors == 0;

	snprintf(value, len, "%s", cfg_str(&c, sec, key, &s, NULL, 0) == 0 && s ? s : "");
	cfg_free(&c);
	unlink(path);
	return clean;
}

/*
 * [boot] cmdline goes on on indented lines (blank lines and comments between them aside),
 * joined by a space, an inline comment cut; no other key does, and an indented "key =" or
 * "[section" is an error, not part of the command line.
 */
static void continuation_lines(void)
{
	char v[64];

	CHECK(load_clean("[boot]\ncmdline = a=1 b\n\tc=3 ; note\n\n  ; comment\n  d\nkernel = k\n"
			 "[x]\ny = 1\n",
			 "boot", "cmdline", v, sizeof(v)));
	CHECK_STR(v, "a=1 b c=3 d");
	CHECK(load_clean("[boot]\ncmdline = a\n  b\nkernel = k\n", "boot", "kernel", v, sizeof(v)));
	CHECK_STR(v, "k");
	/* another key: not continued (and the line is no new key either) */
	CHECK(!load_clean("[boot]\nkernel = k\n  more\n", "boot", "kernel", v, sizeof(v)));
	CHECK_STR(v, "k");
	/* an indented key or section after cmdline: an error, not words of the command line */
	CHECK(!load_clean("[boot]\ncmdline = a\n  initrd = x\n", "boot", "cmdline", v, sizeof(v)));
	CHECK_STR(v, "a");
	CHECK(!load_clean("[boot]\ncmdline = a\n  [pci]\n", "boot", "cmdline", v, sizeof(v)));
	CHECK_STR(v, "a");
	/* a key named like it in another section: not continued */
	CHECK(!load_clean("[x]\ncmdline = a\n  b\n", "x", "cmdline", v, sizeof(v)));
	/* a comment that would cut the value inside quotes opened on the line before: refused */
	CHECK(!load_clean("[boot]\ncmdline = init=/bin/sh -c \"a\n  b ; c\"\n", "boot", "cmdline",
			  v, sizeof(v)));
	CHECK_STR(v, "init=/bin/sh -c \"a");
	/* the same with blanks before the ';': the quotes are counted up to the trimmed words */
	CHECK(!load_clean("[boot]\ncmdline = init=/bin/sh -c \"a\n  b  \t ; c\"\n", "boot",
			  "cmdline", v, sizeof(v)));
	CHECK_STR(v, "init=/bin/sh -c \"a");
	CHECK(load_clean("[boot]\ncmdline = -c \"a\n  b;c\" ; note\n", "boot", "cmdline", v,
			 sizeof(v)));
	CHECK_STR(v, "-c \"a b;c\"");
}

/* A command line longer than a line comes out of cfg_dump on lines that load back the same. */
static void dump_long_cmdline(void)
{
	char set[1200] = "boot.cmdline=", *text = NULL;
	struct cfg c = {0}, c2 = {0};
	const char *path = write_tmp("[boot]\ncmdline = x\n"), *s;
	size_t len = 0;
	FILE *f;

	for (int i = 0; i < 100; i++)
		snprintf(set + strlen(set), sizeof(set) - strlen(set), "%sw%d=%d", i ? " " : "", i,
			 i * 7);
	CHECK(cfg_load(&c, path) == 0 && cfg_set(&c, set) == 0);
	f = open_memstream(&text, &len);
	CHECK(f && cfg_dump(&c, f, NULL, NULL) == 0);
	if (f)
		fclose(f);
	for (const char *l = text; l && *l; l += strcspn(l, "\n") + (l[strcspn(l, "\n")] != 0))
		CHECK(strcspn(l, "\n") <= 198);
	CHECK(text && strchr(strchr(text, '\n') + 1, '\n') < text + len - 1); /* several */
	CHECK(text && cfg_load_text(&c2, "dumped", text) == 0);
	CHECK_EQ(c2.nerrors, 0);
	CHECK(cfg_str(&c2, "boot", "cmdline", &s, NULL, 0) == 0 && !strcmp(s, set + 13));
	cfg_free(&c2);
	/* a word no line can hold cannot be written */
	memset(set + 13, 'a', 300);
	set[313] = '\0';
	CHECK(cfg_set(&c, set) == 0);
	free(text);
	text = NULL;
	f = open_memstream(&text, &len);
	CHECK(f && cfg_dump(&c, f, NULL, NULL) < 0);
	if (f)
		fclose(f);
	free(text);
	cfg_free(&c);
	unlink(path);
}

static void machines(void)
{
	struct machine m;
	char *sets[] = {"machine.vcpus=2", "uart0.irq=5"};

	if (!test_machine_load(&m, "machines/rpi5.ini", NULL, 0))
		return;
	CHECK_EQ(m.vcpus, 4);
	CHECK_EQ(arm64_gic(&m)->version, 2);
	CHECK_EQ(m.ram_base, 0x40000000);
	CHECK_EQ(m.ram_size, 1ull << 30);
	CHECK_EQ(m.ndevices, 3); /* uart0, boot-timer, vmgenid */
	CHECK(m.console == &m.devices[0]);
	CHECK(m.has_virtio_mmio && m.has_pci);
	machine_free(&m);

	if (!test_machine_load(&m, "machines/virt-gicv3.ini", sets, 2))
		return;
	CHECK_EQ(m.vcpus, 2);
	CHECK_EQ(arm64_gic(&m)->version, 3);
	/* uart0's line, as the override says */
	for (size_t i = 0; i < m.alloc.nirqs; i++)
		if (!strcmp(m.alloc.irqs[i].owner, "uart0"))
			CHECK_EQ(m.alloc.irqs[i].irq, 5);
	machine_free(&m);
}

/*
 * cfg_dump: the description as INI text loads into the same machine, from any directory
 * (the file's relative paths become absolute), leaving out what it is told to.
 */
static void dump_loads_the_same(void)
{
	char *sets[] = {"machine.vcpus=2", "machine.api_sock=/tmp/x.sock", "boot.initrd=rel/i.gz"};
	const char *const skip[] = {"api_sock", NULL};
	struct machine m, m2;
	struct machine_src src = {.path = "dumped"};
	char *text = NULL, *p1 = NULL, *p2 = NULL;
	size_t len = 0, l1 = 0, l2 = 0;
	FILE *f;

	char *abs = realpath("machines/rpi5.ini", NULL);

	/* (from its absolute path, so that both name the boot files alike) */
	if (!abs || !test_machine_load(&m, abs, sets, 2)) {
		free(abs);
		return;
	}
	free(abs);
	f = open_memstream(&text, &len);
	CHECK(f && cfg_dump(&m.cfg, f, "machine", skip) == 0);
	if (f)
		fclose(f);
	CHECK(text && !strstr(text, "api_sock") && strstr(text, "vcpus = 2"));
	CHECK(text && strstr(text, "kernel = /") && strstr(text, "/machines/../build/guest/Image"));
	src.text = text;
	CHECK_EQ(machine_load_src(&m2, &src, false), 0);
	/* the same regions, lines and devices: --check's text after its first line */
	f = open_memstream(&p1, &l1);
	machine_print(&m, f);
	fclose(f);
	f = open_memstream(&p2, &l2);
	machine_print(&m2, f);
	fclose(f);
	CHECK(p1 && p2 && strchr(p1, '\n') && strchr(p2, '\n') &&
	      !strcmp(strchr(p1, '\n'), strchr(p2, '\n')));
	CHECK(m2.api_sock == NULL);
	machine_free(&m2);
	machine_free(&m);
	free(text);
	free(p1);
	free(p2);

	/* a --set path is the working directory's: it comes out absolute too */
	text = NULL;
	if (!test_machine_load(&m, "machines/rpi5.ini", sets + 2, 1))
		return;
	f = open_memstream(&text, &len);
	CHECK(f && cfg_dump(&m.cfg, f, NULL, NULL) == 0);
	if (f)
		fclose(f);
	CHECK(text && strstr(text, "initrd = /") && strstr(text, "/./rel/i.gz"));
	machine_free(&m);
	free(text);
}

void test_config(void)
{
	sizes();
	leading_zeros();
	hints();
	getters();
	syntax_errors();
	continuation_lines();
	dump_long_cmdline();
	machines();
	dump_loads_the_same();
	lookup_index();
	encodings();
	line_forms();
	error_cap();
}
