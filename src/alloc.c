/* alloc: guest-physical regions and interrupt lines, checked for alignment, range and overlap. */
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "range.h"

static const char *src_loc(const struct cfg_entry *e, char *buf, size_t n)
{
	if (!e)
		snprintf(buf, n, "built in");
	else if (e->line)
		snprintf(buf, n, "line %d", e->line);
	else
		snprintf(buf, n, "--set");
	return buf;
}

/* alloc_region, and with aligned the check of base against [machine] align. */
static int claim(struct alloc *a, const char *owner, const char *what, uint64_t base, uint64_t size,
		 const struct cfg_entry *src, bool aligned)
{
	char loc[64];
	int ret = 0;

	if (!size) {
		cfg_error(a->cfg, src, owner, "%s: size must not be zero", what);
		return -1;
	}
	if (base + size < base) {
		cfg_error(a->cfg, src, owner, "%s: 0x%llx + 0x%llx wraps around", what,
			  (unsigned long long)base, (unsigned long long)size);
		return -1;
	}
	if (aligned && a->align && base % a->align) {
		cfg_error(a->cfg, src, owner,
			  "%s: base 0x%llx is not aligned to 0x%llx ([machine] align)", what,
			  (unsigned long long)base, (unsigned long long)a->align);
		ret = -1;
	}
	if (base + size > a->ipa_limit) {
		cfg_error(a->cfg, src, owner,
			  "%s: 0x%llx-0x%llx lies outside the 0x%llx-byte guest physical address "
			  "space ([machine] ipa_bits)",
			  what, (unsigned long long)base, (unsigned long long)(base + size - 1),
			  (unsigned long long)a->ipa_limit);
		ret = -1;
	}
	for (size_t i = 0; i < a->nregions; i++) {
		const struct alloc_region *r = &a->regions[i];

		if (!range_overlap(base, size, r->base, r->size))
			continue;
		cfg_error(a->cfg, src, owner,
			  "%s 0x%llx-0x%llx overlaps [%s] %s 0x%llx-0x%llx (%s)", what,
			  (unsigned long long)base, (unsigned long long)(base + size - 1), r->owner,
			  r->what, (unsigned long long)r->base,
			  (unsigned long long)(r->base + r->size - 1),
			  src_loc(r->src, loc, sizeof(loc)));
		ret = -1;
	}
	if (ret)
		return ret;
	if (a->nregions == a->rcap) {
		a->rcap = a->rcap ? 2 * a->rcap : 16;
		a->regions = realloc(a->regions, a->rcap * sizeof(*a->regions));
		BUG_ON(!a->regions);
	}
	a->regions[a->nregions++] = (struct alloc_region){
		.owner = strdup(owner),
		.what = strdup(what),
		.base = base,
		.size = size,
		.src = src,
	};
	return 0;
}

int alloc_region(struct alloc *a, const char *owner, const char *what, uint64_t base, uint64_t size,
		 const struct cfg_entry *src)
{
	return claim(a, owner, what, base, size, src, true);
}

int alloc_fixed(struct alloc *a, const char *owner, const char *what, uint64_t base, uint64_t size)
{
	return claim(a, owner, what, base, size, NULL, false);
}

int alloc_irqs(struct alloc *a, const char *owner, uint32_t first, uint32_t count,
	       const struct cfg_entry *src)
{
	char loc[64];

	if (!count || first >= a->nr_irqs || count > a->nr_irqs - first) {
		cfg_error(a->cfg, src, owner,
			  "interrupt lines %u-%u outside 0-%u (the GIC's SPIs, [gic] spis)", first,
			  first + count - 1, a->nr_irqs - 1);
		return -1;
	}
	for (size_t i = 0; i < a->nirqs; i++) {
		const struct alloc_irq *q = &a->irqs[i];

		if (q->irq >= first && q->irq - first < count) {
			cfg_error(a->cfg, src, owner,
				  "interrupt line %u is already used by [%s] (%s)", q->irq,
				  q->owner, src_loc(q->src, loc, sizeof(loc)));
			return -1;
		}
	}
	for (uint32_t i = 0; i < count; i++) {
		if (a->nirqs == a->icap) {
			a->icap = a->icap ? 2 * a->icap : 32;
			a->irqs = realloc(a->irqs, a->icap * sizeof(*a->irqs));
			BUG_ON(!a->irqs);
		}
		a->irqs[a->nirqs++] = (struct alloc_irq){first + i, strdup(owner), src};
	}
	return 0;
}

void alloc_region_irqs(struct alloc *a, const char *owner, uint32_t first, uint32_t count)
{
	for (size_t i = a->nregions; i-- > 0;) {
		if (strcmp(a->regions[i].owner, owner))
			continue;
		a->regions[i].irq_first = first;
		a->regions[i].irq_count = count;
		return;
	}
}

static int cmp_region(const void *x, const void *y)
{
	const struct alloc_region *a = *(const struct alloc_region *const *)x;
	const struct alloc_region *b = *(const struct alloc_region *const *)y;

	return a->base < b->base ? -1 : a->base > b->base;
}

void alloc_print(const struct alloc *a, FILE *out)
{
	const struct alloc_region **v = calloc(a->nregions, sizeof(*v));

	BUG_ON(a->nregions && !v);
	for (size_t i = 0; i < a->nregions; i++)
		v[i] = &a->regions[i];
	qsort(v, a->nregions, sizeof(*v), cmp_region);
	fprintf(out, "  %-18s %-18s %-18s %-12s %s\n", "region", "base", "last", "size", "irq");
	for (size_t i = 0; i < a->nregions; i++) {
		char name[64], irq[48] = "-";
		uint64_t s = v[i]->size;

		snprintf(name, sizeof(name), "%s.%s", v[i]->owner, v[i]->what);
		if (v[i]->irq_count == 1)
			snprintf(irq, sizeof(irq), "%u", v[i]->irq_first);
		else if (v[i]->irq_count)
			snprintf(irq, sizeof(irq), "%u-%u", v[i]->irq_first,
				 v[i]->irq_first + v[i]->irq_count - 1);
		char sz[32];
		if (s >= (1ull << 30) && !(s & ((1ull << 30) - 1)))
			snprintf(sz, sizeof(sz), "%llu GiB", (unsigned long long)(s >> 30));
		else if (s >= (1ull << 20) && !(s & ((1ull << 20) - 1)))
			snprintf(sz, sizeof(sz), "%llu MiB", (unsigned long long)(s >> 20));
		else if (s >= 1024 && !(s & 1023))
			snprintf(sz, sizeof(sz), "%llu KiB", (unsigned long long)(s >> 10));
		else
			snprintf(sz, sizeof(sz), "%llu B", (unsigned long long)s);
		fprintf(out, "  %-18s 0x%016llx 0x%016llx %-12s %s\n", name,
			(unsigned long long)v[i]->base, (unsigned long long)(v[i]->base + s - 1),
			sz, irq);
	}
	free(v);
}

void alloc_free(struct alloc *a)
{
	for (size_t i = 0; i < a->nregions; i++) {
		free(a->regions[i].owner);
		free(a->regions[i].what);
	}
	for (size_t i = 0; i < a->nirqs; i++)
		free(a->irqs[i].owner);
	free(a->regions);
	free(a->irqs);
	a->regions = NULL;
	a->irqs = NULL;
	a->nregions = a->nirqs = 0;
}
