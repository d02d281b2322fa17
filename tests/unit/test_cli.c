/*
 * Unit tests: the command line's conveniences: shorthands as overrides (their sections, their
 * messages), new section names, the words a key takes, machines by name, the JSON layout.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "catalog.h"
#include "config.h"
#include "layout.h"
#include "log.h"
#include "machine.h"
#include "shorthand.h"
#include "test.h"

static const char img[] = "/tmp/mvtest-cli.img";

static void next_name(void)
{
	struct cfg c = {0};
	char buf[16];

	CHECK(cfg_load_text(&c, "t",
			    "[blk0]\na = 1\n[blk2]\na = 1\n[blkx]\na = 1\n"
			    "[net]\na = 1\n[blk-9]\na = 1\n") == 0);
	CHECK(cfg_next_name(&c, "blk", buf, sizeof(buf)) == 0 && !strcmp(buf, "blk3"));
	CHECK(cfg_next_name(&c, "net", buf, sizeof(buf)) == 0 && !strcmp(buf, "net0"));
	CHECK(cfg_next_name(&c, "blk", buf, 4) < 0);
	cfg_free(&c);
}

/* shorthand_override for name and arg: its return, with why when it fails. */
static int parse(const char *name, const char *arg, struct machine_override *ov, char **mem,
		 char *why)
{
	int err = shorthand_override(name, arg, ov, mem, why, 160);

	if (err) {
		free(*mem);
		*mem = NULL;
	}
	return err;
}

static void arguments(void)
{
	struct machine_override ov;
	char why[160], *mem;

	CHECK(parse("disk", "/x,rw", &ov, &mem, why) < 0 &&
	      !strcmp(why, "unknown option 'rw' (ro, transport=)"));
	CHECK(parse("disk", "", &ov, &mem, why) < 0 && strstr(why, "path is needed"));
	CHECK(parse("disk", "a,ro=1", &ov, &mem, why) < 0 && !strcmp(why, "'ro' takes no value"));
	CHECK(parse("disk", "a,transport=", &ov, &mem, why) < 0 && strstr(why, "needs a value"));
	CHECK(parse("disk", "a,transport=pci,transport=mmio", &ov, &mem, why) < 0 &&
	      !strcmp(why, "'transport' is given twice"));
	CHECK(parse("disk", "a,", &ov, &mem, why) < 0 && strstr(why, "an empty option"));
	CHECK(parse("net", "t,rx=1", &ov, &mem, why) < 0 &&
	      !strcmp(why, "unknown option 'rx' (mac=, transport=, vhost=)"));
	CHECK(parse("cpus", "", &ov, &mem, why) < 0 && strstr(why, "vCPUs is needed"));
	/* A plain one is the --set it stands for; a device is applied at load. */
	CHECK(parse("cpus", "3", &ov, &mem, why) == 0 && !strcmp(ov.arg, "machine.vcpus=3") &&
	      !strcmp(ov.origin, "--cpus 3") && !ov.apply);
	free(mem);
	CHECK(parse("net", ",vhost=on", &ov, &mem, why) == 0 && !strcmp(ov.arg, ",vhost=on") &&
	      !strcmp(ov.origin, "--net ,vhost=on") && ov.apply);
	free(mem);
}

/* What the shorthands of a load stand for: kept until the machine is freed (its origins). */
static char *mem[8];

static void release(struct machine *m)
{
	machine_free(m);
	for (size_t i = 0; i < 8; i++) {
		free(mem[i]);
		mem[i] = NULL;
	}
}

/*
 * Load rpi5.ini with the shorthands args (name, arg pairs, NULL-ended) after a --set (a
 * read-only disk: the image a --disk shares with it must be read-only on both).
 */
static int load(struct machine *m, const char *const *args, char *msg, size_t len)
{
	struct machine_override ov[8] = {
		{.arg = "blk0.type=virtio-blk", .origin = "--set"},
		{.arg = "blk0.path=/tmp/mvtest-cli.img", .origin = "--set"},
		{.arg = "blk0.readonly=on", .origin = "--set"}};
	struct machine_src src = {.path = "machines/rpi5.ini", .ov = ov, .nov = 3};
	char why[160];
	FILE *f = fmemopen(msg, len, "w");
	int err = 0;

	memset(msg, 0, len);
	for (; *args && src.nov < 8; args += 2, src.nov++)
		err |= shorthand_override(args[0], args[1], &ov[src.nov], &mem[src.nov], why,
					  sizeof(why));
	CHECK(err == 0);
	log_capture(f);
	err = machine_load_src(m, &src, false);
	log_capture(NULL);
	if (f)
		fclose(f);
	return err;
}

static void sections(void)
{
	static const char *const good[] = {
		"disk", "/tmp/mvtest-cli.img,ro,transport=pci", "cpus", "2",
		"net",	"mvt0,mac=02:00:00:00:00:09",		NULL};
	static const char *const bad[] = {"disk", "/tmp/mvtest-cli.img,transport=pcx", "memory",
					  "1X", NULL};
	struct machine m;
	char msg[1024];

	if (load(&m, good, msg, sizeof(msg)) == 0) {
		/* After the --set blk0: blk1, read-only, on PCI; net0 on its TAP. */
		CHECK(m.vcpus == 2 && m.ndevices >= 5);
		CHECK_STR(cfg_value(&m.cfg, "blk1", "type"), "virtio-blk");
		CHECK_STR(cfg_value(&m.cfg, "blk1", "readonly"), "on");
		CHECK_STR(cfg_value(&m.cfg, "blk1", "transport"), "pci");
		CHECK_STR(cfg_value(&m.cfg, "net0", "tap"), "mvt0");
		CHECK_STR(cfg_value(&m.cfg, "net0", "mac"), "02:00:00:00:00:09");
		CHECK(cfg_section(&m.cfg, "blk1") &&
		      !strcmp(cfg_section(&m.cfg, "blk1")->origin,
			      "--disk /tmp/mvtest-cli.img,ro,transport=pci"));
	} else {
		CHECK(!"rpi5.ini with --disk, --cpus and --net loads");
		printf("    %s", msg);
	}
	release(&m);
	/* Errors name the option, its argument and the key it set. */
	CHECK(load(&m, bad, msg, sizeof(msg)) != 0);
	CHECK(strstr(msg, "--disk /tmp/mvtest-cli.img,transport=pcx: blk1.transport: 'pcx' is "
			  "not one of: mmio, pci"));
	CHECK(strstr(msg, "--memory 1X: memory.size: '1X' is not a number or size"));
	release(&m);
}

static void words_and_layout(void)
{
	static const char *const none[] = {NULL};
	const char *const *w;
	struct machine m;
	char msg[1024];
	json_t *j, *devs;

	if (load(&m, none, msg, sizeof(msg))) {
		CHECK(!"rpi5.ini with a disk loads");
		release(&m);
		return;
	}
	w = cfg_known_words(&m.cfg, "blk0", "transport");
	CHECK(w && !strcmp(w[0], "mmio") && !strcmp(w[1], "pci") && !w[2]);
	w = cfg_known_words(&m.cfg, "blk0", "readonly");
	CHECK(w && !strcmp(w[0], "on") && !strcmp(w[1], "off") && !w[2]);
	w = cfg_known_words(&m.cfg, "blk0", "ioeventfd");
	CHECK(w && !strcmp(w[0], "auto"));
	CHECK(cfg_known_words(&m.cfg, "blk0", "path") == NULL);
	CHECK(cfg_known_words(&m.cfg, "blk5", "transport") == NULL);
	j = layout_json(&m);
	devs = json_object_get(j, "devices");
	CHECK(json_is_array(devs) && json_array_size(devs) == m.ndevices);
	for (size_t i = 0; i < json_array_size(devs); i++) {
		json_t *d = json_array_get(devs, i);

		if (strcmp(json_string_value(json_object_get(d, "name")), "blk0"))
			continue;
		CHECK_STR(json_string_value(json_object_get(d, "transport")), "mmio");
		CHECK_EQ(json_integer_value(json_object_get(d, "base")), 0xa000000);
		CHECK_STR(
			json_string_value(json_object_get(json_object_get(d, "settings"), "path")),
			img);
	}
	CHECK(json_object_get(json_object_get(j, "sections"), "gic") &&
	      !json_object_get(json_object_get(j, "sections"), "blk0"));
	json_decref(j);
	release(&m);
}

/* catalog_find, its message (for a name found nowhere) sent to /dev/null. */
static char *find_quietly(const char *name)
{
	int saved = dup(STDERR_FILENO), null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	char *p;

	fflush(stderr);
	if (null >= 0)
		dup2(null, STDERR_FILENO);
	p = catalog_find(name);
	fflush(stderr);
	if (saved >= 0) {
		dup2(saved, STDERR_FILENO);
		close(saved);
	}
	if (null >= 0)
		close(null);
	return p;
}

/* The unit tests run from build/ (or build/SUB/) of the checkout: its machines/. */
static void by_name(void)
{
	char *p = find_quietly("rpi5"), *q = find_quietly("sub/rpi5");
	char *r = find_quietly("no-such-machine");
	size_t n = p ? strlen(p) : 0;

	CHECK(p && n > 18 && !strcmp(p + n - 18, "/machines/rpi5.ini") && !access(p, R_OK));
	CHECK(q && !strcmp(q, "sub/rpi5")); /* a path: as given, even when missing */
	CHECK(r == NULL);
	free(p);
	free(q);
	free(r);
}

void test_cli(void)
{
	int fd = open(img, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);

	CHECK(fd >= 0 && ftruncate(fd, 1 << 20) == 0);
	if (fd >= 0)
		close(fd);
	next_name();
	arguments();
	sections();
	words_and_layout();
	by_name();
	unlink(img);
}
