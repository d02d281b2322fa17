/* mem: checked guest-physical to host-virtual translation over one RAM region. */
#ifndef MICROVM_MEM_H
#define MICROVM_MEM_H

#include <stdint.h>

struct guest_mem {
	uint8_t *hva;  /* host mapping of guest RAM */
	uint64_t gpa;  /* guest physical base */
	uint64_t size; /* bytes */
};

/* Host pointer for [gpa, gpa+len) if it lies wholly in RAM (len > 0), else NULL. */
static inline void *gm_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	if (!len || gpa < m->gpa || len > m->size || gpa - m->gpa > m->size - len)
		return 0;
	return m->hva + (gpa - m->gpa);
}

#endif
