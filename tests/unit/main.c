/* Unit test runner: runs every suite and prints "N passed, N failed". */
#include "test.h"

int test_passed, test_failed;
const char *test_current;

static const struct {
	const char *name;
	void (*fn)(void);
} suites[] = {
	{"config", test_config},     {"alloc", test_alloc},	{"fdt", test_fdt},
	{"image", test_image},	     {"uart", test_uart},	{"bus", test_bus},
	{"virtq", test_virtq},	     {"mmio", test_mmio},	{"blk", test_blk},
	{"pci", test_pci},	     {"net", test_net},		{"timeline", test_timeline},
	{"loop", test_loop},	     {"kickctl", test_kickctl}, {"sandbox", test_sandbox},
	{"sanitize", test_sanitize}, {"x86", test_x86},
};

int main(void)
{
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		int before = test_failed;

		test_current = suites[i].name;
		suites[i].fn();
		printf("%s %s\n", test_failed == before ? "ok  " : "FAIL", suites[i].name);
	}
	printf("%d passed, %d failed\n", test_passed, test_failed);
	return test_failed != 0;
}
