/* bus: a sorted table of MMIO regions, searched by binary search on every trapped access. */
#include "bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "range.h"

void bus_init(struct bus *b)
{
	memset(b, 0, sizeof(*b));
	pthread_rwlock_init(&b->lock, NULL);
}

int bus_register(struct bus *b, uint64_t base, uint64_t size, mmio_fn fn, void *opaque,
		 const char *name)
{
	int err = 0;
	size_t i;

	pthread_rwlock_wrlock(&b->lock);
	for (i = 0; i < b->n; i++)
		if (range_overlap(base, size, b->regions[i].base, b->regions[i].size))
			err = -EEXIST;
	if (!err && b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 8;
		struct bus_region *r = realloc(b->regions, cap * sizeof(*r));

		if (r) {
			b->regions = r;
			b->cap = cap;
		} else {
			err = -ENOMEM;
		}
	}
	if (!err) {
		for (i = b->n; i > 0 && b->regions[i - 1].base > base; i--)
			b->regions[i] = b->regions[i - 1];
		b->regions[i] = (struct bus_region){base, size, fn, opaque, name};
		b->n++;
	}
	pthread_rwlock_unlock(&b->lock);
	return err;
}

int bus_unregister(struct bus *b, uint64_t base)
{
	int err = -ENOENT;

	pthread_rwlock_wrlock(&b->lock);
	for (size_t i = 0; i < b->n; i++) {
		if (b->regions[i].base != base)
			continue;
		memmove(&b->regions[i], &b->regions[i + 1], (b->n - i - 1) * sizeof(*b->regions));
		b->n--;
		err = 0;
		break;
	}
	pthread_rwlock_unlock(&b->lock);
	return err;
}

bool bus_access(struct bus *b, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	struct bus_region hit = {0};
	size_t lo, hi;

	/* Find under the lock, call without it: a handler may move regions (PCI BARs). */
	pthread_rwlock_rdlock(&b->lock);
	lo = 0;
	hi = b->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct bus_region *r = &b->regions[mid];

		if (addr < r->base) {
			hi = mid;
		} else if (addr - r->base >= r->size) {
			lo = mid + 1;
		} else {
			/* An access straddling the end of the region belongs to nobody. */
			if (len <= r->size - (addr - r->base))
				hit = *r;
			break;
		}
	}
	pthread_rwlock_unlock(&b->lock);
	if (!hit.fn)
		return false;
	hit.fn(hit.opaque, addr - hit.base, data, len, is_write);
	return true;
}

void bus_free(struct bus *b)
{
	free(b->regions);
	pthread_rwlock_destroy(&b->lock);
	memset(b, 0, sizeof(*b));
}
