/* machine: the validated machine description built from the INI file and overrides. */
#ifndef MICROVM_MACHINE_H
#define MICROVM_MACHINE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "alloc.h"
#include "config.h"
#include "sandbox.h"

struct arch;
struct device;

enum reboot_action { REBOOT_EXIT, REBOOT_RESTART };

/*
 * What an error already reported leaves unknown (struct machine's bad): the checks that depend
 * on it are left out, so that one mistake is reported once, not again by everything after it.
 */
enum {
	MACHINE_BAD_VCPUS = 1 << 0,	  /* [machine] vcpus */
	MACHINE_BAD_MEMORY = 1 << 1,	  /* [memory] base or size */
	MACHINE_BAD_IRQCHIP = 1 << 2,	  /* the interrupt controller ([gic]) */
	MACHINE_BAD_VIRTIO_MMIO = 1 << 3, /* [virtio-mmio]: its slots */
	MACHINE_BAD_PCI = 1 << 4,	  /* [pci]: its slots and MSI */
};

/* The most vCPUs a machine may have ([machine] vcpus). */
#define MACHINE_MAX_VCPUS 512

struct window {
	uint64_t base, size;
};

/*
 * The longest kernel command line, its NUL included: Linux's COMMAND_LINE_SIZE on arm64 and
 * x86 (an x86 kernel's header may say less: its cmdline_size is checked with the kernel).
 */
#define BOOT_CMDLINE_MAX 2048

struct machine {
	struct cfg cfg;
	struct alloc alloc;
	const char *name;
	const struct arch *arch; /* [machine] arch: the guest architecture's model */
	void *arch_priv;	 /* its own part of the machine (arch->configure), freed with it */
	uint32_t vcpus;
	int on_reboot;
	struct sandbox_config sandbox; /* [machine] seccomp, user, seccomp_deny */
	const char *user;	       /* as written, for messages */
	const char *api_sock;	       /* [machine] api_sock: serve the control API there */
	char *snapshot_dir;	       /* [machine] snapshot_dir: where snapshots may be written */
	uint32_t ipa_bits;
	uint64_t align;
	uint64_t ram_base, ram_size;
	uint64_t ram_low_size; /* RAM at ram_base; the rest (ram_size - this) is at 4 GiB */
	bool ram_hugepages;    /* [memory] hugepages: back RAM with transparent huge pages */
	char *kernel, *initrd;
	const char *cmdline;
	bool has_virtio_mmio;
	struct window virtio_mmio;
	uint64_t virtio_slot_size;
	uint32_t virtio_irq_base, virtio_irq_count;
	uint32_t virtio_slots_used;
	bool has_pci;
	struct window ecam, mmio32, mmio64, pio;
	uint32_t pci_intx_irq;
	bool pci_msi;
	uint32_t pci_slots_used;
	struct device *devices;
	size_t ndevices;
	const struct device *console; /* device whose node is /chosen/stdout-path */
	bool run;		      /* loaded to run (machine_load) */
	unsigned bad;		      /* MACHINE_BAD_*: parts an error left unknown */
};

/*
 * Parse path, apply "SECTION.KEY=VALUE" overrides and validate everything. For a run, files
 * are opened as the run needs them (disk images read-write); otherwise (--check, --dump-dtb)
 * only read. Every problem is reported with file:line; -errno on I/O, -EINVAL on bad input.
 */
int machine_load(struct machine *m, const char *path, char *const *sets, size_t nsets, bool run);

/* One override of a machine source, from an origin such as an API request (cfg_set_from). */
struct machine_override {
	const char *arg; /* "SECTION.KEY=VALUE" */
	const char *origin, *field;
	/*
	 * Optional: apply arg another way than cfg_set_from (a shorthand such as --disk, which
	 * adds a section named after those already in c). 0, or -1 (said, counted in c).
	 */
	int (*apply)(struct cfg *c, const struct machine_override *ov);
};

/* Where a machine comes from: a file, or built-in INI text called name, and overrides. */
struct machine_src {
	const char *path; /* the file, or the name of text */
	const char *text; /* built-in INI (an architecture's default machine), or NULL */
	const struct machine_override *ov;
	size_t nov;
	/*
	 * Optional: a look at the description as read, before the overrides apply (a restore
	 * checks them against it). 0, or -1 (said): nothing more is loaded.
	 */
	int (*check)(const struct cfg *c, void *arg);
	void *check_arg;
};

/* machine_load from a source: the same parsing and checks, whatever filled it. */
int machine_load_src(struct machine *m, const struct machine_src *src, bool run);
/* Print the resolved machine (regions, IRQs, vCPUs, memory, boot files) for --check. */
void machine_print(const struct machine *m, FILE *out);
/* Free the machine and its devices (devices must not be realized). */
void machine_free(struct machine *m);
/*
 * Hand the next virtio-mmio slot (base and interrupt line) to owner; -1 (reported) if none, or
 * -1 without a word when [virtio-mmio] itself is in error (said there). The same for PCI.
 */
int machine_virtio_mmio_slot(struct machine *m, const char *owner, uint64_t *base, uint32_t *irq);
/* Hand the next PCI slot (device number on bus 0, from 1) to owner; -1 (reported) if none. */
int machine_pci_slot(struct machine *m, const char *owner, uint8_t *slot);
/* Mark dev as the machine's console; returns -1 (reported) if another device already is. */
int machine_set_console(struct machine *m, const struct device *dev);

#endif
