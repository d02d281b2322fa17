/* bus: a sorted table of MMIO regions, searched by binary search on every trapped access. */
#include "bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

int bus_register(struct bus *b, uint64_t base, uint64_t size, mmio_fn fn, void *opaque,
		 const char *name)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		if (ranges_overlap(base, size, b->regions[i].base, b->regions[i].size))
			return -EEXIST;
	if (b->n == b->cap) {
		struct bus_region *r;

		b->cap = b->cap ? 2 * b->cap : 8;
		r = realloc(b->regions, b->cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		b->regions = r;
	}
	for (i = b->n; i > 0 && b->regions[i - 1].base > base; i--)
		b->regions[i] = b->regions[i - 1];
	b->regions[i] = (struct bus_region){base, size, fn, opaque, name};
	b->n++;
	return 0;
}

bool bus_access(const struct bus *b, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	size_t lo = 0, hi = b->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct bus_region *r = &b->regions[mid];

		if (addr < r->base) {
			hi = mid;
		} else if (addr - r->base >= r->size) {
			lo = mid + 1;
		} else {
			if (len > r->size - (addr - r->base))
				return false; /* straddles the end of the region */
			r->fn(r->opaque, addr - r->base, data, len, is_write);
			return true;
		}
	}
	return false;
}

void bus_free(struct bus *b)
{
	free(b->regions);
	memset(b, 0, sizeof(*b));
}
