/* test: a minimal assertion harness for the unit tests (no KVM needed). */
#ifndef MICROVM_TEST_H
#define MICROVM_TEST_H

#include <stdio.h>
#include <string.h>

extern int test_passed, test_failed;
extern const char *test_current;

/* Record one assertion; prints the failing expression with its location. */
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (cond) {                                                                        \
			test_passed++;                                                             \
		} else {                                                                           \
			test_failed++;                                                             \
			printf("FAIL %s: %s (%s:%d)\n", test_current, #cond, __FILE__, __LINE__);  \
		}                                                                                  \
	} while (0)

#define CHECK_EQ(a, b)                                                                             \
	do {                                                                                       \
		unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b);     \
		if (a_ == b_) {                                                                    \
			test_passed++;                                                             \
		} else {                                                                           \
			test_failed++;                                                             \
			printf("FAIL %s: %s == %s (0x%llx != 0x%llx) (%s:%d)\n", test_current, #a, \
			       #b, a_, b_, __FILE__, __LINE__);                                    \
		}                                                                                  \
	} while (0)

#define CHECK_STR(a, b) CHECK(strcmp((a), (b)) == 0)

/* Each test file defines one suite function, listed in tests/unit/main.c. */
void test_config(void);
void test_kickctl(void);
void test_fdt(void);
void test_image(void);
void test_alloc(void);
void test_uart(void);
void test_bus(void);
void test_virtq(void);
void test_mmio(void);
void test_blk(void);
void test_pci(void);
void test_net(void);
void test_timeline(void);
void test_loop(void);
void test_sandbox(void);
void test_sanitize(void);
void test_x86(void);

#endif
