/* arm64: constants and helpers shared by the arm64 machine model, loader and KVM code. */
#ifndef MICROVM_ARM64_H
#define MICROVM_ARM64_H

#include <stdint.h>

#define GICV2_DIST_SIZE	  0x1000ull
#define GICV2_CPU_SIZE	  0x2000ull
#define GICV2_MAX_CPUS	  8
#define GICV3_DIST_SIZE	  0x10000ull
#define GICV3_REDIST_SIZE 0x20000ull
#define GIC_SPI_BASE	  32 /* INTID of device interrupt line 0 */

#define ARM64_GIC_PHANDLE 1

/* The MPIDR affinity value KVM assigns to vCPU id (also the cpu node's reg). */
uint64_t arm64_mpidr(unsigned id);

#endif
