/* arm64: constants and helpers shared by the arm64 machine model, loader and KVM code. */
#ifndef MICROVM_ARM64_H
#define MICROVM_ARM64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch.h"

#define GICV2_DIST_SIZE	  0x1000ull
#define GICV2_CPU_SIZE	  0x2000ull
#define GICV2_MAX_CPUS	  8
#define GICV3_DIST_SIZE	  0x10000ull
#define GICV3_REDIST_SIZE 0x20000ull
#define GIC_SPI_BASE	  32 /* INTID of device interrupt line 0 */
#define GICV3_ITS_SIZE	  0x20000ull
#define GICV2M_SIZE	  0x1000ull
#define GICV2M_SETSPI	  0x040

#define ARM64_MSI_PHANDLE 2

enum { ARM64_MSI_NONE, ARM64_MSI_ITS, ARM64_MSI_V2M };

#define ARM64_GIC_PHANDLE 1 /* the parent of every device interrupt */

struct boot_layout;
struct machine;
struct vm;

/*
 * Place the kernel (its first min(klen, BLOB_HEAD_MAX) bytes, or NULL), the initrd and the
 * DTB in RAM; fills why on error. -EINVAL.
 */
int arm64_boot_layout(uint64_t ram_base, uint64_t ram_size, const uint8_t *kernel, size_t klen,
		      size_t initrd_len, struct boot_layout *bl, char *why, size_t whylen);
/* Add cpus, interrupt controller, timer and PSCI nodes; set the root interrupt-parent. */
int arm64_fdt(const struct machine *m, void *fdt);
/* Set "interrupts" on node for device interrupt line irq (level- or edge-triggered). */
int arm64_fdt_irq(void *fdt, int node, uint32_t irq, bool level);
/* phandle of the PCI MSI controller (0 if none); *msi_map says whether it takes msi-map. */
uint32_t arm64_pci_msi_phandle(const struct machine *m, bool *msi_map);

/* The MPIDR affinity value KVM assigns to vCPU id (also the cpu node's reg). */
uint64_t arm64_mpidr(unsigned id);
/* Does the machine have an MSI controller for PCI (ITS on GICv3, v2m frame on GICv2)? */
int arm64_msi_kind(const struct machine *m);
/* Register the emulated GICv2m frame on the VM's bus. -errno. */
int gicv2m_realize(struct vm *vm);

#endif
