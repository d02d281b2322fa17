/* Unit tests: region overlap, alignment, IPA limit and interrupt-line collisions. */
#include "alloc.h"
#include "config.h"
#include "range.h"
#include "test.h"

void test_alloc(void)
{
	struct cfg c = {.path = "test.ini"};
	struct alloc a = {.cfg = &c, .ipa_limit = 1ull << 40, .align = 0x4000, .nr_irqs = 64};

	CHECK(range_overlap(0, 10, 9, 1));
	CHECK(!range_overlap(0, 10, 10, 1));
	CHECK(!range_overlap(10, 1, 0, 10));
	CHECK(range_overlap(0xfffffffffffff000ull, 0x1000, 0xffffffffffffffffull, 1));
	CHECK(!range_overlap(0, 0, 0, 10)); /* empty ranges overlap nothing */

	CHECK(alloc_region(&a, "ram", "ram", 0x40000000, 0x40000000, NULL) == 0);
	CHECK(alloc_region(&a, "uart", "regs", 0x9000000, 0x1000, NULL) == 0);
	CHECK(alloc_region(&a, "x", "touching", 0x9004000, 0x1000, NULL) == 0);
	CHECK(alloc_region(&a, "x", "overlap", 0x3fffc000, 0x8000, NULL) < 0);
	CHECK(alloc_region(&a, "x", "misaligned", 0x9001000, 0x1000, NULL) < 0);
	CHECK(alloc_region(&a, "x", "outside", 0xffffffc000ull, 0x8000, NULL) < 0);
	CHECK(alloc_region(&a, "x", "last page", 0xffffffc000ull, 0x4000, NULL) == 0);
	CHECK(alloc_region(&a, "x", "wraps", 0xffffffffffffc000ull, 0x8000, NULL) < 0);
	CHECK(alloc_region(&a, "x", "empty", 0x100000, 0, NULL) < 0);
	CHECK_EQ(a.nregions, 4);
	/* A window the platform fixes is not held to align, but is to everything else. */
	CHECK(alloc_fixed(&a, "fixed", "page", 0x9009000, 0x1000) == 0);
	CHECK(alloc_fixed(&a, "fixed", "over", 0x9008000, 0x2000) < 0);
	CHECK(alloc_region(&a, "x", "over fixed", 0x9008000, 0x4000, NULL) < 0);
	CHECK(alloc_fixed(&a, "fixed", "outside", 0xffffffff000ull, 0x2000) < 0);
	CHECK_EQ(a.nregions, 5);

	CHECK(alloc_irqs(&a, "uart", 1, 1, NULL) == 0);
	CHECK(alloc_irqs(&a, "virtio", 16, 32, NULL) == 0);
	CHECK(alloc_irqs(&a, "x", 47, 1, NULL) < 0); /* inside virtio's range */
	CHECK(alloc_irqs(&a, "x", 0, 2, NULL) < 0);  /* covers the UART's line */
	CHECK(alloc_irqs(&a, "x", 63, 2, NULL) < 0); /* past the last SPI */
	CHECK(alloc_irqs(&a, "x", 64, 1, NULL) < 0);
	CHECK(alloc_irqs(&a, "x", 48, 16, NULL) == 0); /* exactly up to the last */
	CHECK_EQ(c.nerrors, 12);
	alloc_free(&a);
}
