/* Unit tests: virtio-mmio register decode and the device core, against a dummy device. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "test.h"
#include "virtio/mmio.h"
#include "virtio/virtio.h"

#define GPA  0x40000000ull
#define SIZE (1u << 20)

static int notified, activated, resets, interrupts;

static int dummy_activate(struct virtio_dev *vd)
{
	(void)vd;
	activated++;
	return 0;
}

static void dummy_notify(struct virtio_dev *vd, unsigned q)
{
	(void)vd;
	notified += 1 + (int)q * 100;
}

static void dummy_reset(struct virtio_dev *vd)
{
	(void)vd;
	resets++;
}

static void dummy_interrupt(struct virtio_dev *vd, int vq)
{
	(void)vd;
	(void)vq;
	interrupts++;
}

static const struct virtio_transport_ops dummy_tops = {.interrupt = dummy_interrupt};

static const struct virtio_ops dummy_ops = {
	.device_id = 42,
	.activate = dummy_activate,
	.notify = dummy_notify,
	.reset = dummy_reset,
};

static uint32_t rd(struct virtio_mmio *t, uint64_t off)
{
	uint32_t v = 0xdeadbeef;

	virtio_mmio_access(t, off, (uint8_t *)&v, 4, false);
	return v;
}

static void wr(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	virtio_mmio_access(t, off, (uint8_t *)&v, 4, true);
}

/*
 * The interrupt handler's accesses (status read, acknowledge) do not take the device lock, so
 * they never wait for a request served under it; other registers do. With an error-checking
 * lock held here, an access that took it would release it (its own lock fails with EDEADLK,
 * its unlock succeeds), and our unlock would then fail with EPERM.
 */
static void isr_without_lock(struct virtio_mmio *t, struct virtio_dev *vd)
{
	pthread_mutexattr_t attr;
	pthread_mutex_t saved = vd->lock;

	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(&vd->lock, &attr);
	pthread_mutexattr_destroy(&attr);

	atomic_store(&vd->isr, 3);
	CHECK_EQ(pthread_mutex_lock(&vd->lock), 0);
	CHECK_EQ(rd(t, 0x060), 3);
	wr(t, 0x064, 2);
	CHECK_EQ(rd(t, 0x060), 1);
	CHECK_EQ(pthread_mutex_unlock(&vd->lock), 0); /* still ours */

	CHECK_EQ(pthread_mutex_lock(&vd->lock), 0);
	CHECK_EQ(rd(t, 0x070), 1 | 2 | 4 | 8); /* status: under the lock */
	CHECK_EQ(pthread_mutex_unlock(&vd->lock), EPERM);

	pthread_mutex_destroy(&vd->lock);
	vd->lock = saved;
	atomic_store(&vd->isr, 2);
}

static void setup_queue(struct virtio_mmio *t, unsigned q, uint16_t num)
{
	wr(t, 0x030, q);
	wr(t, 0x038, num);
	wr(t, 0x080, (uint32_t)(GPA + 0x1000));
	wr(t, 0x084, (uint32_t)((GPA + 0x1000) >> 32));
	wr(t, 0x090, (uint32_t)(GPA + 0x2000));
	wr(t, 0x094, 0);
	wr(t, 0x0a0, (uint32_t)(GPA + 0x3000));
	wr(t, 0x0a4, 0);
	wr(t, 0x044, 1);
}

void test_mmio(void)
{
	uint8_t *ram = calloc(1, SIZE);
	struct guest_mem mem = {.hva = ram, .gpa = GPA, .size = SIZE};
	uint8_t config[8] = {1, 2, 3, 4, 5, 6, 7, 8}, b[2];
	struct virtio_dev vd;
	struct virtio_mmio t = {.vd = &vd};
	uint16_t half = 0xffff;
	uint32_t gen;

	CHECK(virtio_init(&vd, "dummy", &dummy_ops, NULL, 1ull << 3, 2, 64, config, 8, &mem) == 0);
	vd.tops = &dummy_tops;
	vd.transport = &t;

	CHECK_EQ(rd(&t, 0x000), 0x74726976);
	CHECK_EQ(rd(&t, 0x004), 2);
	CHECK_EQ(rd(&t, 0x008), 42);
	CHECK_EQ(rd(&t, 0x010), 1u << 3 | 1u << 28 | 1u << 29); /* features 0-31 */
	wr(&t, 0x014, 1);
	CHECK_EQ(rd(&t, 0x010), 1); /* VERSION_1 is bit 32 */
	wr(&t, 0x014, 2);
	CHECK_EQ(rd(&t, 0x010), 0);

	/* Registers are 32-bit: a 16-bit read returns zeros and changes nothing. */
	virtio_mmio_access(&t, 0x000, (uint8_t *)&half, 2, false);
	CHECK_EQ(half, 0);

	/* Config space, any width; outside it reads zeros. */
	virtio_mmio_access(&t, 0x102, b, 2, false);
	CHECK(b[0] == 3 && b[1] == 4);
	virtio_mmio_access(&t, 0x107, b, 2, false);
	CHECK(b[0] == 0 && b[1] == 0);

	/* Negotiation: a feature the device never offered makes FEATURES_OK not stick. */
	wr(&t, 0x070, 1);
	wr(&t, 0x070, 1 | 2);
	wr(&t, 0x024, 0);
	wr(&t, 0x020, 1u << 3 | 1u << 5);
	wr(&t, 0x024, 1);
	wr(&t, 0x020, 1);
	wr(&t, 0x070, 1 | 2 | 8);
	CHECK_EQ(rd(&t, 0x070) & 8, 0);
	/* Legacy drivers (no VERSION_1) are refused too. */
	wr(&t, 0x070, 0);
	CHECK_EQ(resets, 1);
	wr(&t, 0x070, 1 | 2);
	wr(&t, 0x024, 0);
	wr(&t, 0x020, 1u << 3);
	wr(&t, 0x070, 1 | 2 | 8);
	CHECK_EQ(rd(&t, 0x070) & 8, 0);
	wr(&t, 0x070, 0);

	/* A proper start: features, queues, DRIVER_OK. */
	wr(&t, 0x070, 1 | 2);
	wr(&t, 0x024, 0);
	wr(&t, 0x020, 1u << 3 | 1u << 29);
	wr(&t, 0x024, 1);
	wr(&t, 0x020, 1);
	wr(&t, 0x070, 1 | 2 | 8);
	CHECK_EQ(rd(&t, 0x070), 1 | 2 | 8);
	wr(&t, 0x030, 0);
	CHECK_EQ(rd(&t, 0x034), 64);
	wr(&t, 0x030, 7); /* no such queue */
	CHECK_EQ(rd(&t, 0x034), 0);
	setup_queue(&t, 0, 16);
	CHECK_EQ(rd(&t, 0x044), 1);
	CHECK(vd.vqs[0].event_idx && !vd.vqs[0].indirect);
	/* Layout registers of a live queue are frozen. */
	wr(&t, 0x038, 32);
	CHECK_EQ(rd(&t, 0x038), 16);
	notified = 0;
	wr(&t, 0x050, 0);
	CHECK_EQ(notified, 0); /* no notification before DRIVER_OK */
	wr(&t, 0x070, 1 | 2 | 4 | 8);
	CHECK_EQ(activated, 1);
	CHECK_EQ(notified, 1); /* queues that were ready are served at DRIVER_OK */
	wr(&t, 0x050, 0);
	CHECK_EQ(notified, 2);
	wr(&t, 0x050, 5); /* no such queue: ignored */
	CHECK_EQ(notified, 2);

	/* Interrupt status and acknowledge. */
	atomic_store(&vd.isr, 3);
	CHECK_EQ(rd(&t, 0x060), 3);
	wr(&t, 0x064, 1);
	CHECK_EQ(rd(&t, 0x060), 2);
	isr_without_lock(&t, &vd);

	/*
	 * From DRIVER_OK the layout is frozen: disabling a queue stops it (a new generation:
	 * what completes later is dropped), and its size and rings stay as they were.
	 */
	gen = vd.vqs[0].gen;
	wr(&t, 0x030, 0);
	wr(&t, 0x044, 0);
	CHECK_EQ(rd(&t, 0x044), 0);
	CHECK(vd.vqs[0].gen != gen);
	wr(&t, 0x038, 0xffff);
	wr(&t, 0x0a0, (uint32_t)(GPA + SIZE - 8));
	CHECK_EQ(rd(&t, 0x038), 16);
	CHECK_EQ(rd(&t, 0x0a0), (uint32_t)(GPA + 0x3000));
	wr(&t, 0x050, 0);
	CHECK_EQ(notified, 2); /* a disabled queue is not served */
	CHECK_EQ(rd(&t, 0x070) & 64, 0);

	/* Enabling a queue after DRIVER_OK needs a reset, which the driver hears about. */
	interrupts = 0;
	setup_queue(&t, 1, 16);
	CHECK_EQ(rd(&t, 0x044), 0);
	CHECK(rd(&t, 0x070) & 64);
	CHECK_EQ(interrupts, 1);
	CHECK(rd(&t, 0x0fc) != 0); /* config generation moved */
	wr(&t, 0x050, 0);
	CHECK_EQ(notified, 2); /* a broken device serves nothing */

	/* Reset tears every queue down. */
	wr(&t, 0x070, 0);
	CHECK_EQ(rd(&t, 0x070), 0);
	wr(&t, 0x030, 0);
	CHECK_EQ(rd(&t, 0x044), 0);
	CHECK_EQ(rd(&t, 0x080), 0);
	CHECK_EQ(rd(&t, 0x060), 0);

	/* A queue with a bad size needs a reset too. */
	wr(&t, 0x070, 1 | 2);
	setup_queue(&t, 1, 12);
	CHECK_EQ(rd(&t, 0x044), 0);
	CHECK(rd(&t, 0x070) & 64);
	wr(&t, 0x070, 0);

	/* Clearing status bits is a protocol error. */
	wr(&t, 0x070, 1 | 2);
	wr(&t, 0x070, 1);
	CHECK(rd(&t, 0x070) & 64);
	virtio_free(&vd);
	free(ram);
}
