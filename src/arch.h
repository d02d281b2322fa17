/*
 * arch: a guest architecture's machine model. Devices describe themselves once (struct
 * hw_desc); each architecture tells the guest about the machine its own way (a device tree
 * on arm64; boot_params, e820, the command line and ACPI tables on x86-64). Every build
 * carries every model (for --check and dumps); the KVM backend is the host's (kvm_arch.h).
 */
#ifndef MICROVM_ARCH_H
#define MICROVM_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct boot_layout;
struct device;
struct machine;
struct vm;

/* What a guest must be told about a device (a PCI device describes itself on the bus). */
enum hw_kind { HW_NONE, HW_SERIAL, HW_VIRTIO_MMIO, HW_BOOT_TIMER, HW_VMGENID };

struct hw_desc {
	enum hw_kind kind;
	uint64_t base, size;
	bool io_port; /* base is an I/O port number, not a memory address */
	bool has_irq, level;
	uint32_t irq;	/* the device's interrupt line (interrupt-controller input) */
	uint32_t clock; /* HW_SERIAL: input clock in Hz */
	bool console;	/* HW_SERIAL: the machine's console */
};

/* A piece of boot information the architecture writes into guest RAM before the first run. */
struct boot_chunk {
	const char *name; /* "dtb", "boot_params", "acpi/DSDT", ... */
	uint64_t gpa;
	void *data; /* owned by the boot_info */
	size_t len;
};

#define BOOT_CHUNKS_MAX 16

struct boot_info {
	struct boot_chunk chunk[BOOT_CHUNKS_MAX];
	unsigned n;
	uint64_t arg; /* the boot vCPU's argument: the DTB (x0) or boot_params (rsi) address */
};

/* How the guest learns the machine: which --dump option shows it. */
enum arch_boot_info { ARCH_DTB, ARCH_ACPI };

struct arch {
	const char *name;		    /* [machine] arch value */
	enum arch_boot_info boot_info_kind; /* a device tree (--dump-dtb) or ACPI (--dump-acpi) */
	const char *boot_info_hint;	    /* for messages: how to see what the guest is told */
	const char *const *sections;	    /* INI sections the architecture reads (NULL-ended) */
	uint32_t ioports;		    /* I/O port space size (0: none) */
	uint64_t ram_hole;		    /* RAM stops here and goes on at 4 GiB (0: no hole) */
	const char *default_machine;	    /* INI text of the machine --api-sock starts with */
	/* Read the architecture's sections and claim their regions and lines. 0 or -1. */
	int (*configure)(struct machine *m);
	/* Check what only the whole machine shows (after every section), or NULL. 0 or -1. */
	int (*configure_late)(struct machine *m);
	/* Print architecture details (interrupt controller) for --check. */
	void (*describe)(const struct machine *m, FILE *out);
	/* Does the machine give PCI devices an MSI controller (so MSI-X can be offered)? */
	bool (*pci_msi)(const struct machine *m);
	/*
	 * Place the kernel (its first min(klen, BLOB_HEAD_MAX) bytes, or NULL), the initrd and
	 * the boot information; fills why on error. -EINVAL, or -E2BIG: the command line is
	 * longer than the kernel takes.
	 */
	int (*boot_layout)(const struct machine *m, const uint8_t *kernel, size_t klen,
			   size_t initrd_len, struct boot_layout *bl, char *why, size_t whylen);
	/* Build what tells the guest about the machine (bl may lack a kernel). -errno. */
	int (*boot_info)(const struct machine *m, const struct boot_layout *bl,
			 struct boot_info *bi);
	/* Can boot_info run before KVM made its choices (--dump-*)? NULL: yes. 0 or -1 (said). */
	int (*boot_info_ready)(const struct machine *m);
	/*
	 * Optional: a choice KVM made when the VM was built that a restore must make again, as
	 * an override "SECTION.KEY=VALUE" written into buf (arm64: the GIC version "auto"
	 * became). 1 when written, 0 when there is none.
	 */
	int (*snapshot_pin)(const struct machine *m, char *buf, size_t len);
	/* The one key snapshot_pin sets (a restore takes no other from a state file). */
	const char *snapshot_pin_key;
	/*
	 * Create the architecture's platform devices in a VM being built (or NULL). x86 keeps
	 * them in vm->arch_priv, which on arm64 belongs to the KVM backend (kvm.c). -errno.
	 */
	int (*realize)(struct vm *vm);
};

extern const struct arch arch_arm64, arch_x86_64;

/* The architecture named name ("arm64", "x86_64"), or NULL. */
const struct arch *arch_by_name(const char *name);
/* Ask device dev how the guest must be told of it; d->kind is HW_NONE when not at all. */
void arch_device_hw(const struct device *dev, struct hw_desc *d);
/* Add a chunk (taking ownership of data) to bi. -ENOSPC (data freed) when full. */
int boot_info_add(struct boot_info *bi, const char *name, uint64_t gpa, void *data, size_t len);
/* The chunk called name, or NULL. */
const struct boot_chunk *boot_info_find(const struct boot_info *bi, const char *name);
/* Free every chunk. */
void boot_info_free(struct boot_info *bi);

#endif
