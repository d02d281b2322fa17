/* Unit tests: virtio-rng driven over virtio-mmio: buffers filled, bad buffers, the rate limit. */
#include <endian.h>
#include <linux/pci_regs.h>
#include <linux/virtio_pci.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "machine.h"
#include "test.h"
#include "vdrv.h"
#include "virtio/adapter.h"
#include "virtio/rng.h"
#include "virtio/virtio.h"

struct ent {
	struct machine m;
	struct device *dev;
	struct virtio_dev *vd;
	struct vdrv d;
};

/* An entropy device from machines/rpi5.ini plus sets, driven over virtio-mmio (or PCI). */
static bool ent_open_on(struct ent *e, const char *rate, const char *burst, bool pci)
{
	char sets[3][64];
	char *setp[3];
	int n = 0;

	memset(e, 0, sizeof(*e));
	snprintf(sets[n++], sizeof(sets[0]), "rng0.type=virtio-rng");
	if (rate)
		snprintf(sets[n++], sizeof(sets[0]), "rng0.rate_limit=%s", rate);
	if (burst)
		snprintf(sets[n++], sizeof(sets[0]), "rng0.rate_burst=%s", burst);
	for (int i = 0; i < n; i++)
		setp[i] = sets[i];
	if (machine_load(&e->m, "machines/rpi5.ini", setp, (size_t)n, true))
		return false;
	for (size_t i = 0; i < e->m.ndevices; i++)
		if (!strcmp(e->m.devices[i].name, "rng0"))
			e->dev = &e->m.devices[i];
	vdrv_init(&e->d, 4u << 20);
	if (!e->dev || rng_start(e->dev, &e->d.mem, &e->d.loop, &e->vd))
		return false;
	if (pci)
		vdrv_attach_pci(&e->d, e->vd, &((struct virtio_adapter *)e->dev->priv)->tr.pci,
				&e->m);
	else
		vdrv_attach(&e->d, e->vd);
	return true;
}

static bool ent_open(struct ent *e, const char *rate, const char *burst)
{
	return ent_open_on(e, rate, burst, false);
}

static void ent_close(struct ent *e)
{
	vdrv_detach(&e->d);
	if (e->dev)
		rng_stop(e->dev);
	vdrv_free(&e->d);
	machine_free(&e->m);
}

/* The length the device wrote into used entry i of queue 0. */
static uint32_t used_len(struct ent *e, unsigned i)
{
	const uint32_t *len = vdrv_ptr(&e->d, e->d.q[0].used + 4 + 8 * (i % e->d.q[0].num) + 4);

	return le32toh(*len);
}

static uint64_t post(struct ent *e, uint32_t len)
{
	uint64_t gpa = vdrv_alloc(&e->d, len, 64);
	struct vdrv_buf b = {gpa, len, true};

	vdrv_post(&e->d, 0, vdrv_chain(&e->d, 0, &b, 1));
	return gpa;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Each buffer is filled: its used length is its size, up to the device's 64 KiB per request;
 * a buffer split over two descriptors is filled across both; no two buffers are alike.
 */
static void fills(void)
{
	struct ent e;
	uint64_t a, b, big, split;
	struct vdrv_buf two[2];

	CHECK(ent_open(&e, NULL, NULL));
	CHECK_EQ(vdrv_start(&e.d, 0, 1, 16), 15);
	a = post(&e, 16);
	b = post(&e, 64);
	big = post(&e, 100 << 10);
	split = vdrv_alloc(&e.d, 2048, 64);
	two[0] = (struct vdrv_buf){split, 1024, true};
	two[1] = (struct vdrv_buf){split + 1024, 1024, true};
	vdrv_post(&e.d, 0, vdrv_chain(&e.d, 0, two, 2));
	vdrv_kick(&e.d, 0);
	CHECK(vdrv_wait_used(&e.d, 0, 4));
	CHECK_EQ(used_len(&e, 0), 16);
	CHECK_EQ(used_len(&e, 1), 64);
	CHECK_EQ(used_len(&e, 2), 64u << 10);
	CHECK_EQ(used_len(&e, 3), 2048);
	CHECK(!all_zero(vdrv_ptr(&e.d, b), 64));
	CHECK(memcmp(vdrv_ptr(&e.d, a), vdrv_ptr(&e.d, b), 16) != 0);
	CHECK(!all_zero(vdrv_ptr(&e.d, big + (64 << 10) - 64), 64));
	/* past the 64 KiB given: untouched */
	CHECK(all_zero(vdrv_ptr(&e.d, big + (64 << 10)), 36 << 10));
	CHECK(!all_zero(vdrv_ptr(&e.d, split + 1024 + 960), 64));
	CHECK_EQ(rng_bytes(e.dev), 16 + 64 + (64 << 10) + 2048);
	CHECK_EQ(vdrv_rd(&e.d, 0x070), 15);
	ent_close(&e);
}

/* A buffer the device may only read is a broken driver: DEVICE_NEEDS_RESET, nothing written. */
static void readable(void)
{
	struct ent e;
	uint64_t gpa;
	struct vdrv_buf b;

	CHECK(ent_open(&e, NULL, NULL));
	CHECK_EQ(vdrv_start(&e.d, 0, 1, 16), 15);
	gpa = vdrv_alloc(&e.d, 64, 64);
	b = (struct vdrv_buf){gpa, 64, false};
	vdrv_post(&e.d, 0, vdrv_chain(&e.d, 0, &b, 1));
	vdrv_kick(&e.d, 0);
	CHECK(TEST_WAIT(vdrv_rd(&e.d, 0x070) & VIRTIO_STATUS_NEEDS_RESET,
			loop_poll(&e.d.loop, 100)));
	CHECK_EQ(vdrv_used(&e.d, 0), 0);
	CHECK(all_zero(vdrv_ptr(&e.d, gpa), 64));
	CHECK_EQ(rng_bytes(e.dev), 0);
	ent_close(&e);
}

/*
 * 64 KiB/s with a 4 KiB bucket: eight 4 KiB buffers are all filled, in whole, but no faster
 * than the limit lets them (28 KiB beyond the bucket take at least 0.4375 s), and at no time
 * has the guest been given more than the bucket plus what the rate added since the start.
 */
static void rate_limit(void)
{
	struct ent e;
	double t0, t;
	uint32_t total = 0;
	bool within = true;

	CHECK(ent_open(&e, "64K", "4K"));
	CHECK_EQ(vdrv_start(&e.d, 0, 1, 16), 15);
	for (int i = 0; i < 8; i++)
		post(&e, 4096);
	t0 = now_s();
	vdrv_kick(&e.d, 0);
	while (vdrv_used(&e.d, 0) < 8 && now_s() - t0 < 10) {
		loop_poll(&e.d.loop, 100);
		t = now_s();
		within &= rng_bytes(e.dev) <= 4096 + (uint64_t)((t - t0) * 65536) + 1;
	}
	t = now_s();
	CHECK_EQ(vdrv_used(&e.d, 0), 8);
	for (unsigned i = 0; i < vdrv_used(&e.d, 0); i++)
		total += used_len(&e, i);
	CHECK_EQ(total, 8 * 4096);
	CHECK(within);
	CHECK(t - t0 >= 28672.0 / 65536);
	CHECK_EQ(vdrv_rd(&e.d, 0x070), 15);
	ent_close(&e);
}

/*
 * A reset while the device waits for its bucket: the timer that fires later serves nothing
 * (the queue is gone); the driver set up again is served.
 */
static void reset_waiting(void)
{
	struct ent e;
	uint64_t given;
	double t0;

	CHECK(ent_open(&e, "8K", "1K"));
	CHECK_EQ(vdrv_start(&e.d, 0, 1, 16), 15);
	for (int i = 0; i < 4; i++)
		post(&e, 1024);
	vdrv_kick(&e.d, 0);
	CHECK(vdrv_wait_used(&e.d, 0, 1));
	vdrv_wr(&e.d, 0x070, 0);
	given = rng_bytes(e.dev);
	CHECK(given < 4096);
	t0 = now_s();
	while (now_s() - t0 < 0.3) /* the refill timer fires in this time (8 ms for 64 bytes) */
		loop_poll(&e.d.loop, 50);
	CHECK_EQ(rng_bytes(e.dev), given);
	CHECK_EQ(vdrv_start(&e.d, 0, 1, 16), 15);
	post(&e, 512);
	vdrv_kick(&e.d, 0);
	CHECK(vdrv_wait_used(&e.d, 0, 1));
	CHECK_EQ(used_len(&e, 0), 512);
	ent_close(&e);
}

/*
 * On PCI: no device-specific configuration capability (the device has no configuration
 * space, and Linux refuses a 0-byte one), the others there; the device is served.
 */
static void pci_caps(void)
{
	struct ent e;
	unsigned seen = 0, device_cfg = 0, guard = 0;

	CHECK(ent_open_on(&e, NULL, NULL, true));
	for (uint32_t at = vdrv_cfg_rd(&e.d, PCI_CAPABILITY_LIST, 1); at && guard++ < 48;
	     at = vdrv_cfg_rd(&e.d, at + 1, 1)) {
		if (vdrv_cfg_rd(&e.d, at, 1) != PCI_CAP_ID_VNDR)
			continue;
		seen |= 1u << vdrv_cfg_rd(&e.d, at + 3, 1);
		device_cfg += vdrv_cfg_rd(&e.d, at + 3, 1) == VIRTIO_PCI_CAP_DEVICE_CFG;
	}
	CHECK_EQ(device_cfg, 0);
	CHECK_EQ(seen & (1u << VIRTIO_PCI_CAP_COMMON_CFG | 1u << VIRTIO_PCI_CAP_NOTIFY_CFG |
			 1u << VIRTIO_PCI_CAP_ISR_CFG),
		 1u << VIRTIO_PCI_CAP_COMMON_CFG | 1u << VIRTIO_PCI_CAP_NOTIFY_CFG |
			 1u << VIRTIO_PCI_CAP_ISR_CFG);
	CHECK_EQ(vdrv_start(&e.d, 0, 1, 16), 15);
	post(&e, 32);
	vdrv_kick(&e.d, 0);
	CHECK(vdrv_wait_used(&e.d, 0, 1));
	CHECK_EQ(used_len(&e, 0), 32);
	ent_close(&e);
}

void test_rng(void)
{
	test_case("fills");
	fills();
	test_case("readable");
	readable();
	test_case("rate_limit");
	rate_limit();
	test_case("reset_waiting");
	reset_waiting();
	test_case("pci_caps");
	pci_caps();
}
