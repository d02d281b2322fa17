/* device: one instance per INI device section, created through the type table (registry.c). */
#ifndef MICROVM_DEVICE_H
#define MICROVM_DEVICE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct hw_desc;
struct machine;
struct snap_sec;
struct vm;

struct device {
	char *name; /* the INI section name, e.g. "uart0" */
	const struct device_ops *ops;
	void *priv; /* owned by the device type */
	bool bad;   /* its section had an error: checks of the whole machine pass it over */
};

struct device_ops {
	const char *type; /* value of the section's "type" key */
	/* Read the section's keys and claim regions and IRQs; no host side effects. */
	int (*configure)(struct device *dev, struct machine *m);
	/* Print a one-line summary for --check. */
	void (*describe)(const struct device *dev, FILE *out);
	/* Create host resources and hook the device into the running VM. Returns -errno. */
	int (*realize)(struct device *dev, struct vm *vm);
	/* Release what realize created, before the VM (loop, RAM, KVM) goes away. */
	void (*unrealize)(struct device *dev);
	/*
	 * Optional, for vm_pause on the event loop's thread with every vCPU parked: stop
	 * serving the guest and finish the host I/O in flight, its completions written back
	 * (used entries, interrupts); from then on the device writes no guest memory until
	 * resume. Devices that never write guest memory need none. 0 or -errno (nothing to undo).
	 */
	int (*pause)(struct device *dev);
	/* Optional: serve the guest again after pause (every queue looked at once). */
	void (*resume)(struct device *dev);
	/*
	 * Optional, for a snapshot of the paused VM: write what the guest can see of the device
	 * (registers, queues, FIFOs) as fields of sec, its own section (named after it). A
	 * device without save has no such state. 0 or -errno (said).
	 */
	int (*save)(struct device *dev, struct snap_sec *sec);
	/*
	 * Optional, for a restore: after realize and before any vCPU runs, set what save wrote.
	 * sec comes from a file: every value is checked as a guest write would be. 0 or
	 * -EINVAL (said, naming the device and field).
	 */
	int (*restore)(struct device *dev, const struct snap_sec *sec);
	/* Say what the guest must be told of the device (region, interrupt); d is zeroed. */
	void (*hw)(const struct device *dev, struct hw_desc *d);
	/* Release what configure acquired. */
	void (*destroy)(struct device *dev);
	/* A type built on a shared adapter: the type's own ops for it (virtio/adapter.h). */
	const void *impl;
	/*
	 * The keys a restore may set (NULL-terminated, or NULL: none): where the host side is,
	 * or what the device tells the guest anew (a NIC's MAC address).
	 */
	const char *const *restore_keys;
};

/* Look up a device type by its INI name (devices/registry.c); NULL when unknown. */
const struct device_ops *device_type(const char *type);
/* NULL-terminated list of every device type name (for error hints). */
const char *const *device_type_names(void);
/* A destroy() for types whose priv is one plain allocation: free it. */
void device_free_priv(struct device *dev);

#endif
