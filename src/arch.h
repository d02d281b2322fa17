/* arch: the hooks each guest architecture provides (chosen by the Makefile, no #ifdefs). */
#ifndef MICROVM_ARCH_H
#define MICROVM_ARCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct machine;
struct vm;
struct vcpu;

/* phandle of the interrupt controller node (the parent of every device interrupt). */
#define ARCH_IRQCHIP_PHANDLE 1

/* Names of the INI sections the architecture reads (NULL-terminated). */
extern const char *const arch_sections[];
/* Read the architecture's sections (interrupt controller) and claim their regions. */
int arch_configure(struct machine *m);
/* Print architecture details (interrupt controller) for --check. */
void arch_describe(const struct machine *m, FILE *out);
/* Add cpus, interrupt controller, timer and firmware nodes; set the root interrupt-parent. */
int arch_fdt(const struct machine *m, void *fdt);
/* Does the machine give PCI devices an MSI controller (so MSI-X can be offered)? */
bool arch_pci_msi(const struct machine *m);
/* phandle of the PCI MSI controller (0 if none); *msi_map says whether it takes msi-map. */
uint32_t arch_pci_msi_phandle(const struct machine *m, bool *msi_map);
/* Set "interrupts" on node for device interrupt line irq (level- or edge-triggered). */
int arch_fdt_irq(void *fdt, int node, uint32_t irq, bool level);

#endif
