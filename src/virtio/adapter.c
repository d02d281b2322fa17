/* adapter: what every virtio device type shares (keys, transport, life cycle order). */
#include "virtio/adapter.h"

#include <errno.h>
#include <stdlib.h>

#include "config.h"
#include "log.h"
#include "machine.h"
#include "vm.h"

static const struct virtio_device_ops *vops(const struct device *dev)
{
	return dev->ops->impl;
}

int virtio_adapter_queue_keys(struct device *dev, struct machine *m)
{
	struct virtio_adapter *a = dev->priv;
	struct cfg *c = &m->cfg;
	int err = 0;

	a->queue_keys = true;
	a->queues = vops(dev)->fixed_queues;
	if (!a->queues)
		/* Up to one per vCPU: any number a machine may have, when vcpus is in error. */
		err |= cfg_u32(c, dev->name, "queues", &a->queues, 1, 1,
			       m->bad & MACHINE_BAD_VCPUS ? MACHINE_MAX_VCPUS : m->vcpus, 0);
	err |= cfg_u32(c, dev->name, "queue_size", &a->queue_size, 256, 2, VIRTQ_MAX_SIZE, 0);
	return err;
}

int virtio_adapter_configure(struct device *dev, struct machine *m)
{
	const struct virtio_device_ops *ops = vops(dev);
	struct cfg *c = &m->cfg;
	struct virtio_adapter *a = calloc(1, ops->size);
	int own, err = 0;

	if (!a)
		return -1;
	dev->priv = a;
	/* Each part checked whatever the others hold: the type's keys, queues, transport. */
	own = ops->configure ? ops->configure(dev, m) : 0;
	err |= own;
	err |= a->queue_keys ? 0 : virtio_adapter_queue_keys(dev, m);
	a->tr.kicks_auto = ops->kicks_auto;
	a->tr.kicks_trap = ops->kicks_trap;
	err |= virtio_transport_configure(&a->tr, dev, m, ops->pci_class);
	if (a->queue_size & (a->queue_size - 1)) {
		cfg_error(c, cfg_get(c, dev->name, "queue_size"), NULL, "%u is not a power of two",
			  a->queue_size);
		err = -1;
	}
	/* What needs every key of the type's own (an image opened, a MAC address parsed). */
	if (!own && ops->configure_late)
		err |= ops->configure_late(dev, m);
	return err ? -1 : 0;
}

void virtio_adapter_describe(const struct device *dev, FILE *out)
{
	const struct virtio_adapter *a = dev->priv;

	fprintf(out, "  %s: ", dev->name);
	if (vops(dev)->describe)
		vops(dev)->describe(dev, out);
	else
		fprintf(out, "%s, ", dev->ops->type);
	virtio_transport_describe(&a->tr, out);
	fputc('\n', out);
}

int virtio_adapter_realize(struct device *dev, struct vm *vm)
{
	const struct virtio_device_ops *ops = vops(dev);
	struct virtio_adapter *a = dev->priv;
	int err = ops->open ? ops->open(dev) : 0;

	if (err)
		return err;
	a->opened = true;
	err = ops->start(dev, &vm->mem, &vm->loop);
	return err ?: virtio_transport_realize(&a->tr, vm, &a->vd, dev->name);
}

void virtio_adapter_unrealize(struct device *dev)
{
	const struct virtio_device_ops *ops = vops(dev);
	struct virtio_adapter *a = dev->priv;

	if (!a->opened)
		return;
	if (ops->report)
		ops->report(dev);
	if (ops->quiesce)
		ops->quiesce(dev);
	virtio_transport_unrealize(&a->tr);
	ops->stop(dev);
	if (ops->close)
		ops->close(dev);
	a->opened = false;
}

void virtio_adapter_hw(const struct device *dev, struct hw_desc *d)
{
	const struct virtio_adapter *a = dev->priv;

	virtio_transport_hw(&a->tr, d);
}

void virtio_adapter_destroy(struct device *dev)
{
	if (!dev->priv)
		return;
	if (vops(dev)->destroy)
		vops(dev)->destroy(dev);
	free(dev->priv);
	dev->priv = NULL;
}

int virtio_adapter_pause(struct device *dev)
{
	const struct virtio_device_ops *ops = vops(dev);
	struct virtio_adapter *a = dev->priv;
	int err = 0;

	if (!a->vd.vqs)
		return 0; /* never started */
	virtio_lock(&a->vd);
	virtio_set_paused(&a->vd, true);
	if (ops->pause)
		err = ops->pause(dev);
	virtio_unlock(&a->vd);
	if (err)
		virtio_adapter_resume(dev);
	return err;
}

void virtio_adapter_resume(struct device *dev)
{
	const struct virtio_device_ops *ops = vops(dev);
	struct virtio_adapter *a = dev->priv;

	if (!a->vd.vqs)
		return;
	virtio_lock(&a->vd);
	virtio_set_paused(&a->vd, false);
	if (ops->resume)
		ops->resume(dev);
	/* Kicks that came while paused were read and dropped: look at every queue. */
	virtio_serve_queues(&a->vd);
	virtio_unlock(&a->vd);
}

/* A device realize never got to the virtio side of has no state to save or restore. */
static int started(const struct device *dev)
{
	const struct virtio_adapter *a = dev->priv;

	if (a->vd.vqs)
		return 0;
	log_error("%s: snapshot: the device was never started", dev->name);
	return -EINVAL;
}

int virtio_adapter_save(struct device *dev, struct snap_sec *sec)
{
	const struct virtio_device_ops *ops = vops(dev);
	struct virtio_adapter *a = dev->priv;
	int err = started(dev);

	if (err)
		return err;
	virtio_lock(&a->vd);
	if (!a->vd.paused) {
		/* Only a paused device has nothing in flight. */
		log_error("%s: snapshot: the device is not paused", dev->name);
		err = -EBUSY;
	}
	err = err ?: virtio_save(&a->vd, sec);
	err = err ?: virtio_transport_save(a->tr.kind, &a->vd, sec);
	err = err ?: (ops->save ? ops->save(dev, sec) : 0);
	virtio_unlock(&a->vd);
	return err;
}

/* The core's, the transport's and the type's state, each checked: all of it, or none. */
static int restore_state(struct device *dev, const struct snap_sec *sec)
{
	const struct virtio_device_ops *ops = vops(dev);
	struct virtio_adapter *a = dev->priv;
	uint32_t gen = a->vd.config_gen;
	int err = virtio_restore(&a->vd, sec);

	if (err)
		return err;
	err = virtio_transport_restore(a->tr.kind, &a->vd, sec);
	if (!err && ops->restore) {
		err = ops->restore(dev, sec);
		if (err)
			virtio_transport_reset(a->tr.kind, &a->vd);
	}
	if (err) {
		/* Back to what realize made: power-on state, the generation it had. */
		virtio_reset(&a->vd);
		a->vd.config_gen = gen;
	}
	return err;
}

int virtio_adapter_restore(struct device *dev, const struct snap_sec *sec)
{
	struct virtio_adapter *a = dev->priv;
	int err = started(dev);

	if (err)
		return err;
	virtio_lock(&a->vd);
	/* Nothing is served until the device is whole: it resumes last, as after a pause. */
	virtio_set_paused(&a->vd, true);
	err = restore_state(dev, sec);
	if (err) {
		virtio_set_paused(&a->vd, false);
		virtio_unlock(&a->vd);
		return err;
	}
	virtio_unlock(&a->vd);
	virtio_transport_restore_config(a->tr.kind, &a->vd, sec);
	virtio_lock(&a->vd);
	virtio_restart(&a->vd);
	virtio_transport_restored(a->tr.kind, &a->vd);
	virtio_unlock(&a->vd);
	/* The type's resume (a TAP watched, vhost rings handed over), every queue served. */
	virtio_adapter_resume(dev);
	return 0;
}
