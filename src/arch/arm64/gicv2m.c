/* gicv2m: an emulated GICv2m MSI frame, so that PCI MSI-X works on GICv2 (GIC-400) hosts. */
#include <string.h>

#include "arm64.h"
#include "kvm_arch.h"
#include "le.h"
#include "log.h"
#include "machine.h"
#include "vm.h"

#define V2M_MSI_TYPER 0x008
#define V2M_MSI_IIDR  0xfcc

static void v2m_access(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct vm *vm = opaque;
	const struct gic_config *g = arm64_gic(vm->m);
	uint32_t v = 0;

	if (len != 4) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	if (is_write) {
		v = le32_get(data);
		/* A CPU writing SETSPI raises that SPI, as the device MSIs do through irqfds. */
		if (off == GICV2M_SETSPI && v >= GIC_SPI_BASE + g->v2m_irq_base &&
		    v < GIC_SPI_BASE + g->v2m_irq_base + g->v2m_irq_count) {
			kvm_arch_irq_line(vm, v - GIC_SPI_BASE, 1);
			kvm_arch_irq_line(vm, v - GIC_SPI_BASE, 0);
		}
		return;
	}
	if (off == V2M_MSI_TYPER)
		v = (GIC_SPI_BASE + g->v2m_irq_base) << 16 | g->v2m_irq_count;
	else if (off == V2M_MSI_IIDR)
		v = 0;
	le32_put(data, v);
}

int gicv2m_realize(struct vm *vm)
{
	int err = bus_register(&vm->bus, arm64_gic(vm->m)->v2m, GICV2M_SIZE, v2m_access, vm,
			       "gic-v2m");

	if (err)
		log_error("[gic] v2m: cannot place the frame: %s", strerror(-err));
	return err;
}
