/* alloc: the one owner of guest-physical regions and interrupt lines of a machine. */
#ifndef MICROVM_ALLOC_H
#define MICROVM_ALLOC_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct cfg;
struct cfg_entry;

struct alloc_region {
	char *owner; /* section name, e.g. "uart0" */
	char *what;  /* e.g. "registers" */
	uint64_t base, size;
	const struct cfg_entry *src;
	bool is_ram;
	uint32_t irq_first, irq_count; /* interrupt lines tied to this region, if any */
};

struct alloc_irq {
	uint32_t irq;
	char *owner;
	const struct cfg_entry *src;
};

struct alloc {
	struct cfg *cfg;    /* where errors are reported */
	uint64_t ipa_limit; /* first address past the guest physical address space */
	uint64_t align;	    /* required alignment of every region base */
	uint32_t nr_irqs;   /* interrupt lines available to devices (0..nr_irqs-1) */
	struct alloc_region *regions;
	size_t nregions, rcap;
	struct alloc_irq *irqs;
	size_t nirqs, icap;
};

/*
 * Claim [base, base+size) for owner. Checks alignment, the IPA limit and overlap with every
 * earlier claim; errors are reported at src through the config. Returns 0 or -1.
 */
int alloc_region(struct alloc *a, const char *owner, const char *what, uint64_t base, uint64_t size,
		 const struct cfg_entry *src);
/*
 * Claim a window the platform fixes (built in): not held to [machine] align, only to the IPA
 * limit and overlaps. Returns 0 or -1.
 */
int alloc_fixed(struct alloc *a, const char *owner, const char *what, uint64_t base, uint64_t size);
/* Claim interrupt lines [first, first+count) for owner; reports range errors and collisions. */
int alloc_irqs(struct alloc *a, const char *owner, uint32_t first, uint32_t count,
	       const struct cfg_entry *src);
/* Tie interrupt lines to the most recently claimed region of owner (for --check output). */
void alloc_region_irqs(struct alloc *a, const char *owner, uint32_t first, uint32_t count);
/* Print every claimed region in address order, with its interrupt lines. */
void alloc_print(const struct alloc *a, FILE *out);
/* Free everything held by a. */
void alloc_free(struct alloc *a);

#endif
