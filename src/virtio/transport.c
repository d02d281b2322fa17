/* transport: puts a virtio device on the transport its INI section names (virtio-mmio now). */
#include "virtio/transport.h"

#include "config.h"
#include "device.h"
#include "machine.h"

int virtio_transport_configure(struct virtio_transport *t, struct device *dev, struct machine *m)
{
	static const char *const kinds[] = {"mmio", NULL};
	int kind;

	if (cfg_enum(&m->cfg, dev->name, "transport", kinds, &kind, VIRTIO_TRANSPORT_MMIO))
		return -1;
	t->kind = kind;
	t->mmio.irqfd = -1;
	return machine_virtio_mmio_slot(m, dev->name, &t->base, &t->irq);
}

int virtio_transport_realize(struct virtio_transport *t, struct vm *vm, struct virtio_dev *vd,
			     const char *name)
{
	return virtio_mmio_attach(&t->mmio, vm, vd, t->base, t->irq, name);
}

void virtio_transport_unrealize(struct virtio_transport *t)
{
	virtio_mmio_detach(&t->mmio);
}

int virtio_transport_fdt(const struct virtio_transport *t, void *fdt)
{
	return virtio_mmio_fdt(fdt, t->base, t->irq);
}

void virtio_transport_describe(const struct virtio_transport *t, FILE *out)
{
	fprintf(out, "virtio-mmio at 0x%llx, irq %u", (unsigned long long)t->base, t->irq);
}
