/*
 * Unit test runner: runs every suite and prints "N passed, N failed". Its output is line
 * buffered and names each case before it runs, with the counts so far, so a crash (a
 * sanitizer's abort) still leaves what had passed and where it stopped.
 */
#include <stdarg.h>

#include "array.h"
#include "machine.h"
#include "test.h"

int test_passed, test_failed;
const char *test_current;
static const char *suite;
static char case_name[160];

static const struct {
	const char *name;
	void (*fn)(void);
} suites[] = {
	{"config", test_config},     {"alloc", test_alloc},	  {"fdt", test_fdt},
	{"image", test_image},	     {"uart", test_uart},	  {"bus", test_bus},
	{"virtq", test_virtq},	     {"mmio", test_mmio},	  {"blk", test_blk},
	{"pci", test_pci},	     {"net", test_net},		  {"timeline", test_timeline},
	{"loop", test_loop},	     {"kickctl", test_kickctl},	  {"adapter", test_adapter},
	{"sandbox", test_sandbox},   {"sanitize", test_sanitize}, {"x86", test_x86},
	{"api", test_api},	     {"snapfile", test_snapfile}, {"devsnap", test_devsnap},
	{"snapopen", test_snapopen}, {"rng", test_rng},		  {"vsock", test_vsock},
	{"balloon", test_balloon},   {"cli", test_cli},		  {"console", test_console},
};

/* Say which case runs now, with the counts so far (the crash report's last word). */
static void announce(void)
{
	printf("case %s (%d passed, %d failed so far)\n", test_current, test_passed, test_failed);
}

void test_case(const char *fmt, ...)
{
	int n = snprintf(case_name, sizeof(case_name), "%s/", suite);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(case_name + n, sizeof(case_name) - n, fmt, ap);
	va_end(ap);
	test_current = case_name;
	announce();
}

bool test_machine_load(struct machine *m, const char *path, char *const *sets, size_t nsets)
{
	bool loaded = machine_load(m, path, sets, nsets, false) == 0;

	CHECK(loaded);
	return loaded;
}

int main(void)
{
	/* Each line reaches the log as it is printed: an abort loses nothing before it. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < ARRAY_SIZE(suites); i++) {
		int before = test_failed;

		suite = test_current = suites[i].name;
		announce();
		suites[i].fn();
		printf("%s %s\n", test_failed == before ? "ok  " : "FAIL", suite);
	}
	printf("%d passed, %d failed\n", test_passed, test_failed);
	return test_failed != 0;
}
