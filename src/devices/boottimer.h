/* boot-timer: an MMIO register the guest's init writes when user space starts. */
#ifndef MICROVM_BOOTTIMER_H
#define MICROVM_BOOTTIMER_H

#include <stdbool.h>
#include <stdint.h>

#include "device.h"

/* The byte the guest writes at offset 0 to say "user space started". */
#define BOOT_TIMER_MAGIC 123

extern const struct device_ops boot_timer_ops;

/*
 * A guest access to the register page (exposed for unit tests): a byte BOOT_TIMER_MAGIC
 * written at offset 0 marks TL_INIT_REACHED; reads return the milliseconds since microvm
 * started (a 32-bit counter), so the guest can put its own marks on the same clock; after a
 * restore it goes on from where the snapshot's left off. opaque is the device's state (NULL:
 * none, the counter as it starts).
 */
void boot_timer_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif
