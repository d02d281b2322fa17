/* virtio-pci: the modern (virtio 1.x) PCI transport with MSI-X or INTx interrupts. */
#ifndef MICROVM_VIRTIO_PCI_H
#define MICROVM_VIRTIO_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "pci/pci.h"
#include "vm.h"

struct snap_sec;
struct virtio_dev;
struct vm;

/* BAR 0 layout: every structure in one 32-bit, non-prefetchable, power-of-two BAR. */
#define VPCI_COMMON_OFF 0x0000
#define VPCI_ISR_OFF	0x1000
#define VPCI_DEVICE_OFF 0x2000
#define VPCI_NOTIFY_OFF 0x3000
#define VPCI_MSIX_OFF	0x4000
#define VPCI_PBA_OFF	0x6000
#define VPCI_BAR_SIZE	0x8000
#define VPCI_NOTIFY_MUL 4

struct virtio_pci {
	struct pci_dev pdev;
	struct virtio_dev *vd;
	struct vm *vm;
	bool msix;	  /* the MSI-X capability is offered */
	uint8_t msix_cap; /* its offset in configuration space */
	uint32_t dev_feat_sel, drv_feat_sel;
	uint16_t queue_sel, msix_config;
	uint16_t *queue_vector;
	unsigned nvec;
	uint8_t *table; /* nvec entries of 16 bytes */
	uint64_t pending[8];
	struct msi_route *routes;
	/* Copies of configuration space taken under the device lock (see cfg_written). */
	uint16_t cmd, msix_ctrl;
	uint64_t bar_base; /* the queue kick eventfds are ioeventfds here while mapped */
	bool bar_mapped;
	int intx_fd, resample_fd;
	bool intx_level; /* fallback when KVM has no irqfd resampling */
	unsigned warnings;
};

/*
 * Decode an access to BAR 0 (exported for tests): widths 1, 2, 4 and 8, naturally aligned;
 * any other reads 0 and writes nothing.
 */
void virtio_pci_bar_access(struct virtio_pci *t, uint64_t off, uint8_t *data, uint32_t len,
			   bool is_write);
/* Build the PCI function for vd in slot (config space, capabilities, BAR), without a VM. */
int virtio_pci_init(struct virtio_pci *t, struct virtio_dev *vd, uint8_t slot, bool msix,
		    uint32_t class, const char *name);
/* Attach to the running VM: host bridge slot, INTx irqfd, event loop. -errno. */
int virtio_pci_attach(struct virtio_pci *t, struct vm *vm);
/* Undo attach and init. */
void virtio_pci_detach(struct virtio_pci *t);

/*
 * Snapshot (device lock held, vCPUs parked): configuration space ("pci.config"), the common
 * configuration's selectors, the MSI-X vectors ("pci.msix_config", "pci.q0.vector"), table
 * and PBA ("msix.table", "msix.pba"). 0 or -errno.
 */
int virtio_pci_save(struct virtio_pci *t, struct snap_sec *sec);
/*
 * Restore them into a function as init and attach left it (device lock held): what the
 * guest cannot write in configuration space must be this function's, vectors within the
 * table, pending bits of its vectors; on -EINVAL (said) nothing changed. Configuration space
 * itself is only checked: virtio_pci_restore_config writes it.
 */
int virtio_pci_restore(struct virtio_pci *t, const struct snap_sec *sec);
/* The transport as init left it (a restore refused after virtio_pci_restore took). */
void virtio_pci_reset(struct virtio_pci *t);
/*
 * After virtio_pci_restore, with the device lock NOT held (the configuration lock comes
 * first): configuration space written back through the guest's own path.
 */
void virtio_pci_restore_config(struct virtio_pci *t, const struct snap_sec *sec);
/* The restored device runs (device lock held): INTx asserted again while the ISR is set. */
void virtio_pci_restored(struct virtio_pci *t);

#endif
