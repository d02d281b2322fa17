/* transport: puts a virtio device on the transport its INI section names (mmio or pci). */
#include "virtio/transport.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "device.h"
#include "arch.h"
#include "machine.h"
#include "snapshot/devstate.h"
#include "virtio/virtio.h"

/* The "transport" key's words, in enum virtio_transport_kind order. */
static const char *const kinds[] = {"mmio", "pci", NULL};
/* The "ioeventfd" key's words (a boolean, or auto), for completion. */
static const char *const ioeventfd_words[] = {"auto", "on", "off", NULL};

int virtio_transport_configure(struct virtio_transport *t, struct device *dev, struct machine *m,
			       uint32_t pci_class)
{
	struct cfg_entry *e;
	int kind, err;

	err = cfg_enum(&m->cfg, dev->name, "transport", kinds, &kind, VIRTIO_TRANSPORT_MMIO);
	t->kind = kind;
	t->ioeventfd = !t->kicks_trap;
	e = cfg_get(&m->cfg, dev->name, "ioeventfd");
	if (e && !strcasecmp(e->value, "auto")) {
		t->kicks_auto = true;
	} else if (e) {
		err |= cfg_bool(&m->cfg, dev->name, "ioeventfd", &t->ioeventfd, !t->kicks_trap);
		t->kicks_auto = false;
	}
	cfg_note_words(&m->cfg, dev->name, "ioeventfd", ioeventfd_words);
	if (err)
		return -1;
	if (kind == VIRTIO_TRANSPORT_MMIO)
		t->mmio.irqfd = -1;
	else
		t->pci.intx_fd = t->pci.resample_fd = -1;
	if (kind == VIRTIO_TRANSPORT_PCI) {
		t->pci_class = pci_class;
		/* Not against a [gic] or [pci] in error: that error is said there. */
		if (m->has_pci && m->pci_msi && !m->arch->pci_msi(m) &&
		    !(m->bad & (MACHINE_BAD_IRQCHIP | MACHINE_BAD_PCI))) {
			cfg_error(&m->cfg, cfg_get(&m->cfg, dev->name, "transport"), dev->name,
				  "[pci] msi = on needs an MSI controller in [gic] (its for GICv3, "
				  "v2m for GICv2, both for version = auto), or set msi = off");
			return -1;
		}
		t->msix = m->arch->pci_msi(m); /* for --check; realize decides */
		return machine_pci_slot(m, dev->name, &t->pci_slot);
	}
	return machine_virtio_mmio_slot(m, dev->name, &t->base, &t->irq);
}

int virtio_transport_realize(struct virtio_transport *t, struct vm *vm, struct virtio_dev *vd,
			     const char *name)
{
	int err;

	vd->kick.trap = !t->ioeventfd && !t->kicks_auto;
	if (t->kind == VIRTIO_TRANSPORT_MMIO) {
		err = virtio_mmio_attach(&t->mmio, vm, vd, t->base, t->irq, name);
	} else {
		/* Decided now: with gic version = auto the controller is known only after KVM
		 * chose. */
		t->msix = vm->m->arch->pci_msi(vm->m);
		err = virtio_pci_init(&t->pci, vd, t->pci_slot, t->msix, t->pci_class, name);
		err = err ?: virtio_pci_attach(&t->pci, vm);
	}
	if (!err && t->kicks_auto)
		virtio_kicks_adapt(vd);
	return err;
}

void virtio_transport_unrealize(struct virtio_transport *t)
{
	if (t->kind == VIRTIO_TRANSPORT_MMIO)
		virtio_mmio_detach(&t->mmio);
	else
		virtio_pci_detach(&t->pci);
}

void virtio_transport_hw(const struct virtio_transport *t, struct hw_desc *d)
{
	/* PCI functions are found by enumeration: the host bridge covers them. */
	if (t->kind != VIRTIO_TRANSPORT_MMIO)
		return;
	*d = (struct hw_desc){.kind = HW_VIRTIO_MMIO,
			      .base = t->base,
			      .size = VIRTIO_MMIO_SIZE,
			      .has_irq = true,
			      .irq = t->irq};
}

void virtio_transport_describe(const struct virtio_transport *t, FILE *out)
{
	if (t->kind == VIRTIO_TRANSPORT_MMIO)
		fprintf(out, "virtio-mmio at 0x%llx, irq %u", (unsigned long long)t->base, t->irq);
	else
		fprintf(out, "pci 0000:00:%02x.0, %s", t->pci_slot, t->msix ? "MSI-X" : "INTx");
}

int virtio_transport_save(enum virtio_transport_kind kind, struct virtio_dev *vd,
			  struct snap_sec *sec)
{
	int err = snap_put_text(sec, "transport", kinds[kind]);

	if (err)
		return err;
	if (kind == VIRTIO_TRANSPORT_MMIO)
		return virtio_mmio_save(vd->transport, sec);
	return virtio_pci_save(vd->transport, sec);
}

int virtio_transport_restore(enum virtio_transport_kind kind, struct virtio_dev *vd,
			     const struct snap_sec *sec)
{
	const char *saved;
	int err = snap_get_text(sec, "transport", &saved);

	if (err)
		return devstate_bad(sec, "transport",
				    err == -ENOENT ? "missing" : "of another type");
	if (strcmp(saved, kinds[kind]))
		return devstate_bad(sec, "transport", "'%.16s', this device is on %s", saved,
				    kinds[kind]);
	if (kind == VIRTIO_TRANSPORT_MMIO)
		return virtio_mmio_restore(vd->transport, sec);
	return virtio_pci_restore(vd->transport, sec);
}

void virtio_transport_reset(enum virtio_transport_kind kind, struct virtio_dev *vd)
{
	if (kind == VIRTIO_TRANSPORT_MMIO)
		virtio_mmio_reset(vd->transport);
	else
		virtio_pci_reset(vd->transport);
}

void virtio_transport_restore_config(enum virtio_transport_kind kind, struct virtio_dev *vd,
				     const struct snap_sec *sec)
{
	if (kind == VIRTIO_TRANSPORT_PCI)
		virtio_pci_restore_config(vd->transport, sec);
}

void virtio_transport_restored(enum virtio_transport_kind kind, struct virtio_dev *vd)
{
	if (kind == VIRTIO_TRANSPORT_MMIO)
		virtio_mmio_restored(vd->transport);
	else
		virtio_pci_restored(vd->transport);
}
