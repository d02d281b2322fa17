/*
 * adapter: what every virtio device type shares, so that a type writes only its own
 * behaviour: the queues, queue_size, transport and ioeventfd keys and their checks, placement
 * on the chosen transport, what the guest is told (hw) and the --check line, and the order in
 * which realize and unrealize start and stop the host side, the virtio side and the transport.
 */
#ifndef MICROVM_VIRTIO_ADAPTER_H
#define MICROVM_VIRTIO_ADAPTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "device.h"
#include "virtio/transport.h"
#include "virtio/virtio.h"

struct guest_mem;
struct hw_desc;
struct loop;
struct machine;
struct snap_sec;
struct vm;

/* The shared part of a virtio device: the first member of the type's own struct. */
struct virtio_adapter {
	struct virtio_dev vd;	    /* the device core: features, status, queues, config */
	struct virtio_transport tr; /* where the device sits: a virtio-mmio slot or a PCI slot */
	uint32_t queues;     /* [DEV] queues: queues (virtio-blk) or queue pairs (virtio-net) */
	uint32_t queue_size; /* [DEV] queue_size: a power of two */
	bool queue_keys;     /* queues and queue_size have been read */
	bool opened;	     /* the host side is open (realize got past ops->open) */
};

/*
 * What a virtio device type writes. dev->priv is its struct (ops->size bytes, zeroed), which
 * begins with its struct virtio_adapter.
 */
struct virtio_device_ops {
	size_t size;
	uint32_t pci_class; /* its class code on PCI */
	bool kicks_auto;    /* ioeventfd = auto unless the section says */
	bool kicks_trap;    /* ioeventfd = false unless the section says (and not kicks_auto) */
	/* Its number of queues when the type fixes it (no queues key), else 0. */
	uint32_t fixed_queues;
	/*
	 * Optional: read the type's own keys, before the shared ones unless it calls
	 * virtio_adapter_queue_keys among them; no host side effects. 0 or -1.
	 */
	int (*configure)(struct device *dev, struct machine *m);
	/* Optional: checks that need every key, and what --check must see opened. 0 or -1. */
	int (*configure_late)(struct device *dev, struct machine *m);
	/* Optional: the --check line's words on the device itself, ending in ", " (or "TYPE, "). */
	void (*describe)(const struct device *dev, FILE *out);
	/* Optional: take the host side for a run (the image's lock, a TAP device). -errno. */
	int (*open)(struct device *dev);
	/* Build the virtio side over guest memory and the event loop (virtio_init). -errno. */
	int (*start)(struct device *dev, const struct guest_mem *mem, struct loop *loop);
	/* Optional: the device's counters for --verbose, before it stops. */
	void (*report)(const struct device *dev);
	/* Optional: let go of what uses the transport's eventfds, before the transport does. */
	void (*quiesce)(struct device *dev);
	/* Finish in-flight work pushing nothing; free what start made (a partial start too). */
	void (*stop)(struct device *dev);
	/* Optional: release what open took. */
	void (*close)(struct device *dev);
	/*
	 * Optional, lock held, kicks already dropped (vd.paused): stop what serves the guest
	 * besides kicks (a TAP's readiness, the kernel's rings) and finish the host I/O in
	 * flight, its used entries and interrupts sent. 0 or -errno (the adapter resumes it).
	 */
	int (*pause)(struct device *dev);
	/* Optional, lock held: undo pause; the adapter then serves every queue once. */
	void (*resume)(struct device *dev);
	/*
	 * Optional, lock held, VM paused: the type's own state besides the core's and the
	 * transport's.
	 */
	int (*save)(struct device *dev, struct snap_sec *sec);
	/*
	 * Optional, lock held, before any vCPU runs: set what save wrote, once the core and the
	 * transport are restored (before the device is activated again). 0 or -EINVAL (said).
	 */
	int (*restore)(struct device *dev, const struct snap_sec *sec);
	/* Optional: release what configure took (the adapter frees the struct). */
	void (*destroy)(struct device *dev);
};

/*
 * Read queues and queue_size now: for a type's configure whose keys go around them (else the
 * adapter reads them after it). 0 or -1 (said).
 */
int virtio_adapter_queue_keys(struct device *dev, struct machine *m);
/* Read the shared keys around ops->configure, claim the transport's slot. 0 or -1 (said). */
int virtio_adapter_configure(struct device *dev, struct machine *m);
/* The --check line: name, the type's words, where the transport put it. */
void virtio_adapter_describe(const struct device *dev, FILE *out);
/* Open the host side, start the virtio side, place it on the transport, in that order. */
int virtio_adapter_realize(struct device *dev, struct vm *vm);
/* Report, quiesce, take it off the transport, stop, close: realize undone in reverse. */
void virtio_adapter_unrealize(struct device *dev);
/* What the guest is told: a virtio-mmio slot (a PCI function is found by enumeration). */
void virtio_adapter_hw(const struct device *dev, struct hw_desc *d);
/* Release what configure took and the device's struct. */
void virtio_adapter_destroy(struct device *dev);
/* The VM pauses: kicks are dropped, then the type's pause (device_ops.pause). */
int virtio_adapter_pause(struct device *dev);
/* The VM resumes: kicks served again, the type's resume, every queue served once. */
void virtio_adapter_resume(struct device *dev);

/* Snapshot: the core's state (features, status, queues), the transport's, then the type's. */
int virtio_adapter_save(struct device *dev, struct snap_sec *sec);
/* Restore what virtio_adapter_save wrote (device_ops.restore); an active device is activated. */
int virtio_adapter_restore(struct device *dev, const struct snap_sec *sec);

/*
 * The device_ops of a virtio device type called name, whose own ops are vops and whose keys a
 * restore may set are keys (device_ops.restore_keys).
 */
#define VIRTIO_DEVICE(name, vops, keys)                                                            \
	{                                                                                          \
		.type = (name), .configure = virtio_adapter_configure,                             \
		.describe = virtio_adapter_describe, .realize = virtio_adapter_realize,            \
		.unrealize = virtio_adapter_unrealize, .hw = virtio_adapter_hw,                    \
		.destroy = virtio_adapter_destroy, .pause = virtio_adapter_pause,                  \
		.resume = virtio_adapter_resume, .save = virtio_adapter_save,                      \
		.restore = virtio_adapter_restore, .impl = &(vops), .restore_keys = (keys),        \
	}

#endif
