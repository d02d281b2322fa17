/* Unit tests: INI parsing, typed getters, --set overrides, sizes and name hints. */
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "device.h"
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
	hints();
	getters();
	syntax_errors();
	continuation_lines();
	dump_long_cmdline();
	machines();
	dump_loads_the_same();
}
