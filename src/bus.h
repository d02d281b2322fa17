/* bus: dispatch of trapped guest MMIO accesses to the device that owns the address. */
#ifndef MICROVM_BUS_H
#define MICROVM_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>

/* Handle an access of len bytes at offset within the region; data is little-endian. */
typedef void (*mmio_fn)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

struct bus_region {
	uint64_t base, size;
	mmio_fn fn;
	void *opaque;
	const char *name;
};

struct bus {
	struct bus_region *regions; /* sorted by base */
	size_t n, cap;
	pthread_rwlock_t lock; /* regions move when the guest relocates a PCI BAR */
};

/* Prepare an empty bus. */
void bus_init(struct bus *b);
/* Register [base, base+size); fails with -EEXIST on overlap. Safe while vCPUs run. */
int bus_register(struct bus *b, uint64_t base, uint64_t size, mmio_fn fn, void *opaque,
		 const char *name);
/* Remove the region registered at base; -ENOENT if there is none. */
int bus_unregister(struct bus *b, uint64_t base);
/* Dispatch an access; returns false when no region claims addr (the caller decides). */
bool bus_access(struct bus *b, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);
/* Free the region table. */
void bus_free(struct bus *b);

#endif
