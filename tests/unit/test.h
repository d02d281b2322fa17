/* test: a minimal assertion harness for the unit tests (no KVM needed). */
#ifndef MICROVM_TEST_H
#define MICROVM_TEST_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "timeline.h"

extern int test_passed, test_failed;
extern const char *test_current;

/*
 * How long a wait for an event may take before it is called a hang: generous, since a
 * machine that is busy with other work is slow, but never this slow.
 */
#define TEST_HANG_SECONDS 60

struct machine;

/* machine_load for a test (not a run), checked: false, with nothing to free, if it failed. */
bool test_machine_load(struct machine *m, const char *path, char *const *sets, size_t nsets);
/*
 * Name the case that starts now ("suite/name"), for failure lines and for a crash report:
 * the runner's output names it, with the counts so far, before the case runs.
 */
void test_case(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Run the case fn(), named after it. */
#define TEST_RUN(fn) (test_case("%s", #fn), fn())

/*
 * Evaluate to whether cond came true, running step (which must wait for an event, for a
 * bounded time) until it does or TEST_HANG_SECONDS pass; a hang is reported with the
 * condition and where it was awaited.
 */
#define TEST_WAIT(cond, step)                                                                      \
	({                                                                                         \
		uint64_t until_ = timeline_clock_ns() + TEST_HANG_SECONDS * 1000000000ull;         \
		bool ok_;                                                                          \
		while (!(ok_ = (cond)) && timeline_clock_ns() < until_) {                          \
			step;                                                                      \
		}                                                                                  \
		if (!ok_)                                                                          \
			printf("HANG %s: waited %d s for %s (%s:%d)\n", test_current,              \
			       TEST_HANG_SECONDS, #cond, __FILE__, __LINE__);                      \
		ok_;                                                                               \
	})

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
void test_cli(void);
void test_kickctl(void);
void test_adapter(void);
void test_fdt(void);
void test_image(void);
void test_alloc(void);
void test_uart(void);
void test_bus(void);
void test_virtq(void);
void test_mmio(void);
void test_blk(void);
void test_rng(void);
void test_balloon(void);
void test_console(void);

struct snap;
/* A copy of section name of st with its field set to the number v (test_devsnap.c). */
struct snap *test_snap_with(const struct snap *st, const char *name, const char *field, uint64_t v);
void test_pci(void);
void test_net(void);
void test_timeline(void);
void test_loop(void);
void test_sandbox(void);
void test_sanitize(void);
void test_x86(void);
void test_api(void);
void test_snapfile(void);
void test_devsnap(void);
void test_snapopen(void);
void test_vsock(void);

#endif
