/* Unit tests: MMIO dispatch by address, overlap refusal, accesses that straddle a region. */
#include <errno.h>

#include "bus.h"
#include "test.h"

struct hit {
	uint64_t offset;
	uint32_t len;
	bool write;
	int count;
};

static void handler(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct hit *h = opaque;

	h->offset = offset;
	h->len = len;
	h->write = is_write;
	h->count++;
	if (!is_write)
		data[0] = 0xab;
}

void test_bus(void)
{
	struct bus b;
	struct hit h1 = {0}, h2 = {0};
	uint8_t data[8] = {0};

	bus_init(&b);
	CHECK(bus_register(&b, 0x2000, 0x100, handler, &h2, "two") == 0);
	CHECK(bus_register(&b, 0x1000, 0x100, handler, &h1, "one") == 0);
	CHECK(bus_register(&b, 0x10f0, 0x100, handler, &h1, "overlap") == -EEXIST);
	CHECK(bus_access(&b, 0x1004, data, 4, false));
	CHECK_EQ(h1.offset, 4);
	CHECK_EQ(data[0], 0xab);
	CHECK(bus_access(&b, 0x20ff, data, 1, true));
	CHECK(h2.write && h2.offset == 0xff);
	CHECK(!bus_access(&b, 0x20fe, data, 4, false)); /* straddles the end */
	CHECK(!bus_access(&b, 0x1100, data, 1, false)); /* just past the end */
	CHECK(!bus_access(&b, 0xfff, data, 1, false));
	CHECK_EQ(h1.count, 1);
	CHECK_EQ(h2.count, 1);
	CHECK(bus_unregister(&b, 0x2000) == 0);
	CHECK(!bus_access(&b, 0x20ff, data, 1, true));
	CHECK(bus_unregister(&b, 0x2000) == -ENOENT);
	CHECK(bus_register(&b, 0x2000, 0x80, handler, &h2, "moved") == 0);
	CHECK(bus_access(&b, 0x207f, data, 1, true));
	CHECK_EQ(h2.count, 2);
	bus_free(&b);
}
