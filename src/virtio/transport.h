/* transport: puts a virtio device on the transport its INI section names (mmio or pci). */
#ifndef MICROVM_VIRTIO_TRANSPORT_H
#define MICROVM_VIRTIO_TRANSPORT_H

#include <stdint.h>
#include <stdio.h>

#include "arch.h"
#include "virtio/mmio.h"
#include "virtio/pci.h"

struct device;
struct machine;
struct snap_sec;
struct virtio_dev;
struct vm;

enum virtio_transport_kind { VIRTIO_TRANSPORT_MMIO, VIRTIO_TRANSPORT_PCI };

struct virtio_transport {
	enum virtio_transport_kind kind;
	uint64_t base;	  /* mmio: slot base */
	uint32_t irq;	  /* mmio: interrupt line */
	uint8_t pci_slot; /* pci: device number on bus 0 */
	bool msix;	  /* pci: MSI-X offered (the machine has an MSI controller) */
	uint32_t pci_class;
	bool ioeventfd; /* queue kicks wake the event loop (else: served on the trapping vCPU) */
	/* ioeventfd = auto: kicks move between both by measurement (set before configure for a
	 * device whose default it is) */
	bool kicks_auto;
	/* ioeventfd = false unless the section says (set before configure, as kicks_auto) */
	bool kicks_trap;
	union { /* the chosen one's state (kind) */
		struct virtio_mmio mmio;
		struct virtio_pci pci;
	};
};

/*
 * Read the "transport" and "ioeventfd" keys (true, false or auto; absent: t->kicks_auto as
 * set, else true), claim the transport's resources. 0 or -1 (reported).
 */
int virtio_transport_configure(struct virtio_transport *t, struct device *dev, struct machine *m,
			       uint32_t pci_class);
/* Attach vd to the running VM on the chosen transport. -errno. */
int virtio_transport_realize(struct virtio_transport *t, struct vm *vm, struct virtio_dev *vd,
			     const char *name);
/* Detach from the VM (ioeventfds, irqfds, handlers). */
void virtio_transport_unrealize(struct virtio_transport *t);
/* Say how the guest learns of the device: its virtio-mmio slot (nothing for PCI). */
void virtio_transport_hw(const struct virtio_transport *t, struct hw_desc *d);
/* Describe where the device sits, for --check. */
void virtio_transport_describe(const struct virtio_transport *t, FILE *out);

/*
 * Snapshots. vd->transport is the transport's state (a struct virtio_mmio or virtio_pci, as
 * kind says): its kind as text ("transport": "mmio" or "pci") and its registers. Device lock
 * held. 0 or -errno.
 */
int virtio_transport_save(enum virtio_transport_kind kind, struct virtio_dev *vd,
			  struct snap_sec *sec);
/* Restore them, refusing another kind; on -EINVAL (said) nothing changed. Lock held. */
int virtio_transport_restore(enum virtio_transport_kind kind, struct virtio_dev *vd,
			     const struct snap_sec *sec);
/* The registers as realize left them (a restore refused after this part took). Lock held. */
void virtio_transport_reset(enum virtio_transport_kind kind, struct virtio_dev *vd);
/* After virtio_transport_restore, lock NOT held: PCI configuration space, as the guest writes. */
void virtio_transport_restore_config(enum virtio_transport_kind kind, struct virtio_dev *vd,
				     const struct snap_sec *sec);
/* The restored device runs (lock held): interrupts the driver has not acknowledged, again. */
void virtio_transport_restored(enum virtio_transport_kind kind, struct virtio_dev *vd);

#endif
