/* le: little-endian loads and stores at any byte address (headers, registers, tables). */
#ifndef MICROVM_LE_H
#define MICROVM_LE_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

/* The 16-bit little-endian value at p (any alignment). */
static inline uint16_t le16_get(const void *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return le16toh(v);
}

/* The 32-bit little-endian value at p (any alignment). */
static inline uint32_t le32_get(const void *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

/* The 64-bit little-endian value at p (any alignment). */
static inline uint64_t le64_get(const void *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

/* Store v at p as 16-bit little-endian (any alignment). */
static inline void le16_put(void *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, sizeof(v));
}

/* Store v at p as 32-bit little-endian (any alignment). */
static inline void le32_put(void *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

/* Store v at p as 64-bit little-endian (any alignment). */
static inline void le64_put(void *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

#endif
