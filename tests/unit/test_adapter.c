/*
 * Unit tests: the virtio adapter, through the smallest virtio device it allows (one queue;
 * the driver sends one byte, the device counts the bytes that are BOOT_TIMER_MAGIC). The
 * device is all its type writes: struct, virtio_ops, virtio_device_ops, device_ops.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "config.h"
#include "devices/boottimer.h"
#include "iov.h"
#include "machine.h"
#include "test.h"
#include "vdrv.h"
#include "virtio/adapter.h"

struct mini {
	struct virtio_adapter va;
	struct iovec iov[4];
	unsigned magic; /* bytes that were BOOT_TIMER_MAGIC */
	bool stopped;
};

static void mini_notify(struct virtio_dev *vd, unsigned q)
{
	struct mini *t = vd->priv;
	struct virtq_chain c = {.iov = t->iov, .iov_max = 4};
	uint8_t byte;
	int r;

	while ((r = virtq_pop(&vd->vqs[q], vd->mem, &c)) > 0) {
		if (iov_to_buf(c.iov, c.nout, 0, &byte, 1) == 1 && byte == BOOT_TIMER_MAGIC)
			t->magic++;
		virtq_push(&vd->vqs[q], c.head, 0);
	}
	if (r < 0)
		virtio_needs_reset(vd, "queue %u: malformed descriptor chain", q);
	virtio_queue_interrupt(vd, q);
}

static const struct virtio_ops mini_virtio_ops = {.device_id = 63, .notify = mini_notify};

static int mini_start(struct device *dev, const struct guest_mem *mem, struct loop *loop)
{
	struct mini *t = dev->priv;

	(void)loop;
	return virtio_init(&t->va.vd, dev->name, &mini_virtio_ops, t, 0, 1, t->va.queue_size, NULL,
			   0, mem);
}

static void mini_stop(struct device *dev)
{
	struct mini *t = dev->priv;

	virtio_free(&t->va.vd);
	t->stopped = true;
}

static const struct virtio_device_ops mini_ops = {
	.size = sizeof(struct mini),
	.pci_class = 0x088000,
	.start = mini_start,
	.stop = mini_stop,
};

static const struct device_ops mini_device_ops = VIRTIO_DEVICE("virtio-mini", mini_ops, NULL);

/* The --check line of dev. */
static void describe(const struct device *dev, char *buf, size_t len)
{
	FILE *f = fmemopen(buf, len, "w");

	memset(buf, 0, len);
	if (!f)
		return;
	dev->ops->describe(dev, f);
	fclose(f);
}

void test_adapter(void)
{
	struct machine m;
	struct device dev = {.name = "mini0", .ops = &mini_device_ops};
	struct vdrv d;
	struct mini *t;
	struct hw_desc hw;
	struct vdrv_buf b;
	uint64_t gpa;
	char line[256];

	test_case("configure");
	/* The machine has no such type: its section is added after loading. */
	if (!test_machine_load(&m, "machines/rpi5.ini", NULL, 0))
		return;
	CHECK(cfg_set(&m.cfg, "mini0.queue_size=64") == 0);
	CHECK(dev.ops->configure(&dev, &m) == 0);
	t = dev.priv;
	if (!t) {
		machine_free(&m);
		return;
	}
	/* The shared keys: queues by default, queue_size as set, the default transport. */
	CHECK_EQ(t->va.queues, 1);
	CHECK_EQ(t->va.queue_size, 64);
	CHECK_EQ(t->va.tr.kind, VIRTIO_TRANSPORT_MMIO);
	describe(&dev, line, sizeof(line));
	CHECK(!strcmp(line, "  mini0: virtio-mini, virtio-mmio at 0xa000000, irq 16\n"));
	arch_device_hw(&dev, &hw);
	CHECK(hw.kind == HW_VIRTIO_MMIO && hw.base == 0xa000000 && hw.irq == 16 && hw.has_irq);

	test_case("driven");
	vdrv_init(&d, 1 << 20);
	CHECK(mini_ops.start(&dev, &d.mem, &d.loop) == 0);
	vdrv_attach(&d, &t->va.vd);
	CHECK_EQ(vdrv_start(&d, 0, 1, 8) & VIRTIO_STATUS_DRIVER_OK, VIRTIO_STATUS_DRIVER_OK);
	gpa = vdrv_alloc(&d, 1, 1);
	*(uint8_t *)vdrv_ptr(&d, gpa) = BOOT_TIMER_MAGIC;
	b = (struct vdrv_buf){.gpa = gpa, .len = 1};
	vdrv_post(&d, 0, vdrv_chain(&d, 0, &b, 1));
	vdrv_kick(&d, 0);
	CHECK(vdrv_wait_used(&d, 0, 1));
	CHECK_EQ(t->magic, 1);
	CHECK(d.interrupts >= 1);
	vdrv_detach(&d);
	mini_ops.stop(&dev);
	CHECK(t->stopped);
	vdrv_free(&d);
	/* unrealize before realize does nothing: the host side was never opened. */
	t->stopped = false;
	dev.ops->unrealize(&dev);
	CHECK(!t->stopped);
	dev.ops->destroy(&dev);
	CHECK(dev.priv == NULL);
	machine_free(&m);

	/* queue_size must be a power of two (said with the file and key; a -1). */
	test_case("queue_size");
	if (!test_machine_load(&m, "machines/rpi5.ini", NULL, 0))
		return;
	CHECK(cfg_set(&m.cfg, "mini0.queue_size=48") == 0);
	dev.priv = NULL;
	CHECK(dev.ops->configure(&dev, &m) == -1);
	dev.ops->destroy(&dev);
	machine_free(&m);
}
