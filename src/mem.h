/*
 * mem: checked guest-physical to host-virtual translation over guest RAM: one region, or two
 * when RAM continues above a hole (x86: the 32-bit PCI hole), both in one host mapping.
 */
#ifndef MICROVM_MEM_H
#define MICROVM_MEM_H

#include <stdint.h>

struct guest_mem {
	uint8_t *hva;  /* host mapping of guest RAM */
	uint64_t gpa;  /* guest physical base */
	uint64_t size; /* bytes */
	/* RAM above the hole, mapped at hva + size: its guest base and size (0: none) */
	uint64_t hi_gpa, hi_size;
};

/* Host pointer for [gpa, gpa+len) if it lies wholly in one RAM region (len > 0), else NULL. */
static inline void *gm_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	if (!len)
		return 0;
	if (gpa >= m->gpa && len <= m->size && gpa - m->gpa <= m->size - len)
		return m->hva + (gpa - m->gpa);
	if (m->hi_size && gpa >= m->hi_gpa && len <= m->hi_size &&
	    gpa - m->hi_gpa <= m->hi_size - len)
		return m->hva + m->size + (gpa - m->hi_gpa);
	return 0;
}

#endif
