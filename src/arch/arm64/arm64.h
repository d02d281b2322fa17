/* arm64: the arm64 machine model's private header (gic.c, fdt.c, arch.c, image.c, kvm.c, snap.c).
 */
#ifndef MICROVM_ARM64_H
#define MICROVM_ARM64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "arch.h"
#include "machine.h"

#define GICV2_DIST_SIZE	  0x1000ull
#define GICV2_CPU_SIZE	  0x2000ull
#define GICV2_MAX_CPUS	  8
#define GICV3_DIST_SIZE	  0x10000ull
#define GICV3_REDIST_SIZE 0x20000ull
#define GIC_SPI_BASE	  32 /* INTID of device interrupt line 0 */
#define GIC_PPI_BASE	  16 /* INTID of per-CPU interrupt PPI 0 */
#define GICV3_ITS_SIZE	  0x20000ull
#define GICV2M_SIZE	  0x1000ull
#define GICV2M_SETSPI	  0x040

#define ARM64_MSI_PHANDLE 2

enum { ARM64_MSI_NONE, ARM64_MSI_ITS, ARM64_MSI_V2M };

#define ARM64_GIC_PHANDLE 1 /* the parent of every device interrupt */

struct boot_layout;
struct vm;

/* [gic]: the interrupt controller the machine describes. */
struct gic_config {
	int version; /* 0 = auto, 2 or 3 */
	uint64_t dist, cpuif, redist, redist_size;
	uint32_t spis;
	uint64_t its;			      /* GICv3 ITS (MSI controller), 0 = none */
	uint64_t v2m;			      /* GICv2m MSI frame, 0 = none */
	uint32_t v2m_irq_base, v2m_irq_count; /* device lines the v2m frame raises */
};

/* The arm64 part of a machine (machine->arch_priv, from the arch's configure). */
struct arm64_machine {
	struct gic_config gic;
	bool raw_kernel; /* [boot] kernel_format = raw: no Image header, loaded at RAM + 0x80000 */
	bool pmu;	 /* [machine] pmu: a PMUv3 for every vCPU, overflow on PPI ARM64_PMU_PPI */
};

#define ARM64_RAW_TEXT_OFFSET 0x80000ull /* where a raw kernel goes (as kvmtool loads one) */
#define ARM64_PMU_PPI	      7		 /* the PMU overflow interrupt: PPI 7, INTID 23 */

/* The arm64 part of a VM (vm->arch_priv, from kvm_arch_vm_init). */
struct arm64_vm {
	int gic_fd;    /* the in-kernel vGIC device */
	int its_fd;    /* the in-kernel GICv3 ITS device (PCI MSI), -1 if none */
	bool ext_dabt; /* KVM can inject external data aborts (KVM_CAP_ARM_INJECT_EXT_DABT) */
};

/* Does the machine give its vCPUs a PMU ([machine] pmu)? */
static inline bool arm64_pmu(const struct machine *m)
{
	return ((const struct arm64_machine *)m->arch_priv)->pmu;
}

/* The machine's [gic] (version resolved by KVM for "auto" once the VM exists). */
static inline struct gic_config *arm64_gic(const struct machine *m)
{
	return &((struct arm64_machine *)m->arch_priv)->gic;
}

/*
 * Place the kernel (its first min(klen, BLOB_HEAD_MAX) bytes, or NULL), the initrd and the
 * DTB in RAM: an Image where its header says, a raw kernel (klen bytes, no header) at
 * ARM64_RAW_TEXT_OFFSET; fills why on error. -EINVAL.
 */
int arm64_boot_layout(uint64_t ram_base, uint64_t ram_size, const uint8_t *kernel, size_t klen,
		      bool raw, size_t initrd_len, struct boot_layout *bl, char *why,
		      size_t whylen);
/* Build the DTB for m (initrd range from bl, may be NULL). -errno; the caller frees *blob. */
int arm64_fdt_build(const struct machine *m, const struct boot_layout *bl, void **blob,
		    size_t *len);
/* Read [gic] into m->arch_priv, claim its regions and lines. 0 or -1. */
int arm64_gic_configure(struct machine *m);
/* Print the [gic] line for --check. */
void arm64_gic_describe(const struct machine *m, FILE *out);
/* Does the machine give PCI devices an MSI controller (so MSI-X can be offered)? */
bool arm64_pci_msi(const struct machine *m);

/* The MPIDR affinity value KVM assigns to vCPU id (also the cpu node's reg). */
uint64_t arm64_mpidr(unsigned id);
/* Does the machine have an MSI controller for PCI (ITS on GICv3, v2m frame on GICv2)? */
int arm64_msi_kind(const struct machine *m);
/* Register the emulated GICv2m frame on the VM's bus. -errno. */
int gicv2m_realize(struct vm *vm);
/* KVM_SET_DEVICE_ATTR / KVM_GET_DEVICE_ATTR (group, attr) on device fd, value at val. -errno. */
int arm64_set_attr(int fd, uint32_t group, uint64_t attr, const void *val);
int arm64_get_attr(int fd, uint32_t group, uint64_t attr, void *val);

#endif
