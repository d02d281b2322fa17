/* range: address ranges given as base and size, where a size may reach 2^64. */
#ifndef MICROVM_RANGE_H
#define MICROVM_RANGE_H

#include <stdbool.h>
#include <stdint.h>

/* Return true when [b1,b1+s1) and [b2,b2+s2) intersect (sizes may reach 2^64). */
static inline bool range_overlap(uint64_t b1, uint64_t s1, uint64_t b2, uint64_t s2)
{
	/* Compare last addresses so that regions ending at 2^64 do not wrap. */
	uint64_t l1 = b1 + (s1 - 1), l2 = b2 + (s2 - 1);

	if (!s1 || !s2)
		return false;
	return b1 <= l2 && b2 <= l1;
}

#endif
