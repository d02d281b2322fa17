/* pci: a generic ECAM host bridge with type 0 configuration spaces, capabilities and BARs. */
#ifndef MICROVM_PCI_H
#define MICROVM_PCI_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define PCI_CFG_SIZE  256
#define PCI_MAX_SLOTS 32

struct machine;
struct pci_host;

struct pci_bar {
	uint64_t size;	/* power of two; 0 = not implemented */
	uint32_t flags; /* PCI_BASE_ADDRESS_* bits kept in the register's low bits */
	uint64_t addr;	/* where it decodes now, when mapped */
	bool mapped;
};

struct pci_dev {
	const char *name;
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE]; /* bits the guest may write */
	uint8_t w1c[PCI_CFG_SIZE];   /* bits a guest write of 1 clears */
	struct pci_bar bar[6];
	uint8_t slot;
	uint8_t last_cap; /* offset of the last capability, 0 if none */
	uint8_t cap_end;  /* next free offset for a capability */
	uint32_t intx_irq;
	/* The function asserts INTx (the status register's Interrupt Status bit; any thread). */
	atomic_bool intx_status;
	struct pci_host *host;
	/* BAR i starts (map) or stops decoding at addr. Returns 0 or -errno (then unmapped). */
	int (*bar_map)(struct pci_dev *d, int bar, uint64_t addr, bool map);
	/* Called after every guest write to configuration space (e.g. MSI-X control). */
	void (*cfg_written)(struct pci_dev *d, uint32_t off, uint32_t len);
	void *opaque;
};

struct pci_host {
	uint64_t ecam_base, ecam_size;
	uint64_t mmio32_base, mmio32_size, mmio64_base, mmio64_size, io_base, io_size;
	uint32_t intx_irq; /* line of INTA for slot 0; the others follow the swizzle */
	struct pci_dev bridge;
	struct pci_dev *slots[PCI_MAX_SLOTS];
	/*
	 * Serialises configuration accesses. A function's cfg_written hook may take its device
	 * lock inside it; no path holding a device lock takes this one.
	 */
	pthread_mutex_t lock;
	unsigned warnings;
};

/* Fill a type 0 header: IDs, class (base<<16|sub<<8|prog-if), INTx pin (0 none, 1 INTA). */
void pci_dev_init(struct pci_dev *d, const char *name, uint16_t vendor, uint16_t device,
		  uint32_t class, uint8_t revision, uint16_t subsys_vendor, uint16_t subsys,
		  uint8_t int_pin);
/* Declare BAR i (and i+1 for a 64-bit one) of size bytes with flag bits. */
void pci_dev_set_bar(struct pci_dev *d, int i, uint64_t size, uint32_t flags);
/* Append a capability of len bytes with id to the list; returns its offset (0 when full). */
uint8_t pci_dev_add_cap(struct pci_dev *d, uint8_t id, uint8_t len);
/*
 * Guest access to configuration space register off of d: widths 1, 2 and 4, naturally
 * aligned; any other reads all-ones and writes nothing.
 */
void pci_cfg_access(struct pci_dev *d, uint32_t off, uint8_t *data, uint32_t len, bool is_write);
/* The address BAR i is programmed with (both halves of a 64-bit BAR). */
uint64_t pci_bar_addr(const struct pci_dev *d, int i);
/* The INTx line a device in slot with pin (1..4) drives, by the standard swizzle. */
uint32_t pci_swizzle(uint32_t intx_base, unsigned slot, unsigned pin);

/* Set up the host bridge from the machine's [pci] windows. */
void pci_host_init(struct pci_host *h, const struct machine *m);
/* Put d in its slot (d->slot, 1..31). -EBUSY if taken. */
int pci_host_attach(struct pci_host *h, struct pci_dev *d);
/* ECAM access at offset into the window (bus/device/function/register decode). */
void pci_ecam_access(struct pci_host *h, uint64_t off, uint8_t *data, uint32_t len, bool is_write);

#endif
