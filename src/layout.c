/* layout: the resolved machine as JSON (what --check prints, for programs). */
#include "layout.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "arch.h"
#include "config.h"
#include "device.h"
#include "machine.h"
#include "pci/pci.h"
#include "virtio/adapter.h"

/* A string as JSON: null when it is absent or no UTF-8 (a path may be any bytes). */
static json_t *str(const char *s)
{
	json_t *j = s ? json_string(s) : NULL;

	return j ? j : json_null();
}

static json_t *window(const struct window *w)
{
	return json_pack("{s:I,s:I}", "base", (json_int_t)w->base, "size", (json_int_t)w->size);
}

/* Every section's keys as they stand after the overrides, paths resolved: {sec: {key: value}}. */
static json_t *settings(const struct cfg *c)
{
	json_t *all = json_object();

	for (size_t i = 0; i < c->nsections; i++)
		json_object_set_new(all, c->sections[i].name, json_object());
	for (size_t i = 0; i < c->nentries; i++) {
		const struct cfg_entry *e = &c->entries[i];
		json_t *sec = json_object_get(all, e->section);
		char *path = e->path ? cfg_entry_path(c, e) : NULL;

		json_object_set_new(sec, e->key, str(path ? path : e->value));
		free(path);
	}
	return all;
}

/* Where a virtio device sits: its transport, slot, interrupt and queues. */
static void virtio_where(const struct machine *m, const struct device *d, json_t *o)
{
	const struct virtio_adapter *a = d->priv;
	const struct virtio_transport *t = &a->tr;
	char addr[16];

	json_object_set_new(o, "transport",
			    json_string(t->kind == VIRTIO_TRANSPORT_PCI ? "pci" : "mmio"));
	json_object_set_new(o, "queues", json_integer(a->queues));
	json_object_set_new(o, "queue_size", json_integer(a->queue_size));
	if (t->kind != VIRTIO_TRANSPORT_PCI)
		return;
	snprintf(addr, sizeof(addr), "0000:00:%02x.0", t->pci_slot);
	json_object_set_new(o, "pci",
			    json_pack("{s:s,s:i,s:s,s:I}", "address", addr, "slot", t->pci_slot,
				      "interrupts", t->msix ? "msi-x" : "intx", "intx_irq",
				      (json_int_t)pci_swizzle(m->pci_intx_irq, t->pci_slot, 1)));
}

static json_t *device(const struct machine *m, const struct device *d, json_t *keys)
{
	json_t *o = json_pack("{s:s,s:s}", "name", d->name, "type", d->ops->type);
	struct hw_desc hw;

	arch_device_hw(d, &hw);
	if (hw.kind != HW_NONE) {
		json_object_set_new(o, "base", json_integer((json_int_t)hw.base));
		json_object_set_new(o, "size", json_integer((json_int_t)hw.size));
		if (hw.io_port)
			json_object_set_new(o, "io_port", json_true());
		if (hw.has_irq)
			json_object_set_new(o, "irq",
					    json_pack("{s:I,s:s}", "line", (json_int_t)hw.irq,
						      "trigger", hw.level ? "level" : "edge"));
	}
	if (d->ops->configure == virtio_adapter_configure)
		virtio_where(m, d, o);
	if (m->console == d)
		json_object_set_new(o, "console", json_true());
	if (keys)
		json_object_set(o, "settings", keys);
	else
		json_object_set_new(o, "settings", json_object());
	return o;
}

json_t *layout_json(const struct machine *m)
{
	json_t *regions = json_array(), *irqs = json_array(), *devs = json_array();
	json_t *keys = settings(&m->cfg), *o;
	const struct alloc *al = &m->alloc;

	for (size_t i = 0; i < al->nregions; i++) {
		const struct alloc_region *g = &al->regions[i];
		json_t *r = json_pack("{s:s,s:s,s:I,s:I}", "owner", g->owner, "what", g->what,
				      "base", (json_int_t)g->base, "size", (json_int_t)g->size);

		if (g->irq_count)
			json_object_set_new(
				r, "irqs",
				json_pack("[I,I]", (json_int_t)g->irq_first,
					  (json_int_t)(g->irq_first + g->irq_count - 1)));
		json_array_append_new(regions, r);
	}
	for (size_t i = 0; i < al->nirqs; i++)
		json_array_append_new(irqs,
				      json_pack("{s:I,s:s}", "irq", (json_int_t)al->irqs[i].irq,
						"owner", al->irqs[i].owner));
	for (size_t i = 0; i < m->ndevices; i++) {
		const struct device *d = &m->devices[i];

		json_array_append_new(devs, device(m, d, json_object_get(keys, d->name)));
		json_object_del(keys, d->name); /* the rest are the machine's own sections */
	}
	o = json_pack("{s:o,s:o,s:s,s:I,s:I,s:I,s:s,s:s,s:o}", "name", str(m->name), "path",
		      str(m->cfg.path), "arch", m->arch->name, "vcpus", (json_int_t)m->vcpus,
		      "ipa_bits", (json_int_t)m->ipa_bits, "align", (json_int_t)m->align,
		      "on_reboot", m->on_reboot == REBOOT_EXIT ? "exit" : "restart", "seccomp",
		      (const char *[]){"on", "off", "log"}[m->sandbox.mode], "user", str(m->user));
	json_object_set_new(o, "memory",
			    json_pack("{s:I,s:I,s:b}", "base", (json_int_t)m->ram_base, "size",
				      (json_int_t)m->ram_size, "hugepages", m->ram_hugepages));
	json_object_set_new(o, "kernel", str(m->kernel));
	json_object_set_new(o, "initrd", str(m->initrd));
	json_object_set_new(o, "cmdline", str(m->cmdline ? m->cmdline : ""));
	if (m->has_virtio_mmio)
		json_object_set_new(o, "virtio_mmio",
				    json_pack("{s:I,s:I,s:I,s:I,s:I}", "base",
					      (json_int_t)m->virtio_mmio.base, "size",
					      (json_int_t)m->virtio_mmio.size, "slot_size",
					      (json_int_t)m->virtio_slot_size, "irq_base",
					      (json_int_t)m->virtio_irq_base, "irq_count",
					      (json_int_t)m->virtio_irq_count));
	if (m->has_pci) {
		json_t *p = json_pack("{s:o,s:o,s:I,s:b}", "ecam", window(&m->ecam), "mmio32",
				      window(&m->mmio32), "intx_irq", (json_int_t)m->pci_intx_irq,
				      "msi", m->pci_msi);

		if (m->mmio64.size)
			json_object_set_new(p, "mmio64", window(&m->mmio64));
		if (m->pio.size)
			json_object_set_new(p, "io", window(&m->pio));
		json_object_set_new(o, "pci", p);
	}
	json_object_set_new(o, "devices", devs);
	json_object_set_new(o, "regions", regions);
	json_object_set_new(o, "irqs", irqs);
	json_object_set_new(o, "sections", keys);
	return o;
}

int layout_print_json(const struct machine *m, FILE *out)
{
	json_t *o = layout_json(m);
	int err = o ? json_dumpf(o, out, JSON_INDENT(2)) : -1;

	json_decref(o);
	if (!err && fputc('\n', out) == EOF)
		err = -1;
	return err;
}
