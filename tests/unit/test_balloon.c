/* Unit tests: virtio-balloon driven over virtio-mmio (inflate, deflate, reporting, statistics). */
#include <endian.h>
#include <errno.h>
#include <linux/virtio_balloon.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "machine.h"
#include "snapshot/snapfile.h"
#include "test.h"
#include "vdrv.h"
#include "virtio/balloon.h"
#include "virtio/virtio.h"

#define RAM   (8u << 20)
#define QSIZE 64
#define BF(f) (1ull << VIRTIO_BALLOON_F_##f)
#define PG    4096u

struct bal {
	struct machine m;
	struct device *dev;
	struct virtio_dev *vd;
	struct vdrv d;
	bool started;
};

/* rpi5 with [balloon] and the keys sets (NULL-ended "key=value" words after "balloon."). */
static bool bal_open(struct bal *k, const char *const *keys)
{
	char words[8][64];
	char *sets[9];
	size_t n = 0;

	memset(k, 0, sizeof(*k));
	snprintf(words[n], sizeof(words[n]), "balloon.type=virtio-balloon");
	sets[n] = words[n], n++;
	for (; keys && *keys && n < 8; keys++, n++) {
		snprintf(words[n], sizeof(words[n]), "balloon.%s", *keys);
		sets[n] = words[n];
	}
	if (machine_load(&k->m, "machines/rpi5.ini", sets, n, true))
		return false;
	for (size_t i = 0; i < k->m.ndevices; i++)
		if (!strcmp(k->m.devices[i].name, "balloon"))
			k->dev = &k->m.devices[i];
	vdrv_init(&k->d, RAM);
	if (!k->dev || balloon_start(k->dev, &k->d.mem, &k->d.loop, &k->vd))
		return false;
	k->started = true;
	vdrv_attach(&k->d, k->vd);
	return true;
}

static void bal_close(struct bal *k)
{
	vdrv_detach(&k->d);
	if (k->started)
		balloon_stop(k->dev);
	vdrv_free(&k->d);
	machine_free(&k->m);
}

static struct balloon_info info(struct bal *k)
{
	struct balloon_info i;

	balloon_get_info(k->dev, &i);
	return i;
}

/* Host pages of [gpa, gpa + len) resident in memory (mincore). */
static size_t resident(struct bal *k, uint64_t gpa, size_t len)
{
	size_t ps = sysconf(_SC_PAGESIZE), n = len / ps, r = 0;
	unsigned char *v = calloc(n ? n : 1, 1);

	if (v && mincore(vdrv_ptr(&k->d, gpa), len, v) == 0)
		for (size_t i = 0; i < n; i++)
			r += v[i] & 1;
	free(v);
	return r;
}

/* A readable buffer of page numbers (n le32 values, plus extra stray bytes) on queue q. */
static void post_pfns(struct bal *k, unsigned q, const uint32_t *pfn, size_t n, size_t extra)
{
	uint64_t at = vdrv_alloc(&k->d, n * 4 + extra, 8);
	uint32_t *p = vdrv_ptr(&k->d, at);
	struct vdrv_buf b = {at, (uint32_t)(n * 4 + extra), false};

	for (size_t i = 0; i < n; i++)
		p[i] = htole32(pfn[i]);
	vdrv_post(&k->d, q, vdrv_chain(&k->d, q, &b, 1));
	vdrv_kick(&k->d, q);
}

/* The RAM at the top 2 MiB, host-page aligned, filled with data. */
static uint64_t filled(struct bal *k, size_t len)
{
	uint64_t at = VDRV_GPA + RAM - len;

	memset(vdrv_ptr(&k->d, at), 0x5a, len);
	return at;
}

static void inflate_deflate(void)
{
	const char *keys[] = {"amount_mib=4", NULL};
	size_t ps = sysconf(_SC_PAGESIZE), len = 2u << 20;
	uint32_t pfn[512 + 4];
	struct balloon_info i;
	struct bal k;
	uint64_t at;
	size_t n = 0;

	if (!bal_open(&k, keys)) {
		CHECK(!"opened");
		return bal_close(&k);
	}
	CHECK_EQ(vdrv_rd(&k.d, 0x100), 1024); /* num_pages: 4 MiB in 4 KiB pages */
	CHECK_EQ(vdrv_start(&k.d, 0, 2, QSIZE) & 0xf, 0xf);
	at = filled(&k, len);
	CHECK_EQ(resident(&k, at, len), len / ps);
	/* Highest first: the device gives back whole host pages whatever the order. */
	for (uint64_t g = at + len; g > at; g -= PG)
		pfn[n++] = (uint32_t)((g - PG) / PG);
	/* Outside RAM: below it, just past it, the largest page number. */
	pfn[n++] = (uint32_t)(VDRV_GPA / PG) - 1;
	pfn[n++] = (uint32_t)((VDRV_GPA + RAM) / PG);
	pfn[n++] = UINT32_MAX;
	pfn[n++] = 0;
	post_pfns(&k, 0, pfn, n, 3); /* and 3 stray bytes: one more refused */
	CHECK(vdrv_wait_used(&k.d, 0, 1));
	i = info(&k);
	CHECK_EQ(i.inflated, 512);
	CHECK_EQ(i.refused, 5);
	CHECK_EQ(i.discarded, len);
	CHECK_EQ(resident(&k, at, len), 0);
	CHECK_EQ(*(uint8_t *)vdrv_ptr(&k.d, at + len - 1), 0); /* refaults as zero */
	CHECK(k.d.interrupts >= 1);
	/* The page before the range (the driver's own rings and buffers) is untouched. */
	CHECK_EQ(resident(&k, at - ps, ps), 1);

	/* A lone 4 KiB page on a host with larger pages stays (only whole host pages go). */
	if (ps > PG) {
		memset(vdrv_ptr(&k.d, at), 1, ps);
		pfn[0] = (uint32_t)(at / PG);
		post_pfns(&k, 0, pfn, 1, 0);
		CHECK(vdrv_wait_used(&k.d, 0, 2));
		CHECK_EQ(resident(&k, at, ps), 1);
	}

	/* Deflate: counted; the pages outside RAM refused again. */
	post_pfns(&k, 1, pfn + 256, 256 + 4, 0);
	CHECK(vdrv_wait_used(&k.d, 1, 1));
	i = info(&k);
	CHECK_EQ(i.deflated, 256);
	CHECK_EQ(i.refused, 9);

	/* The driver writes actual; num_pages is the device's. */
	vdrv_wr(&k.d, 0x104, 300);
	vdrv_wr(&k.d, 0x100, 7);
	i = info(&k);
	CHECK_EQ(i.actual_pages, 300);
	CHECK_EQ(i.target_pages, 1024);
	bal_close(&k);
}

/* A reported range with a misaligned start: its partial host pages stay. */
static void reporting(bool stats_offered)
{
	const char *keys[] = {"free_page_reporting=on",
			      stats_offered ? "stats_polling_interval_s=5" : NULL, NULL};
	size_t ps = sysconf(_SC_PAGESIZE), len = 2u << 20;
	unsigned q = 2; /* the driver does not take the statistics queue: reporting is 2 */
	struct vdrv_buf b[2];
	struct balloon_info i;
	struct bal k;
	uint64_t at;

	test_case("reporting%s", stats_offered ? " (statistics offered, not taken)" : "");
	if (!bal_open(&k, keys)) {
		CHECK(!"opened");
		return bal_close(&k);
	}
	CHECK(k.vd->host_features & BF(REPORTING));
	CHECK_EQ(!!(k.vd->host_features & BF(STATS_VQ)), stats_offered);
	CHECK_EQ(vdrv_start(&k.d, BF(REPORTING), 3, QSIZE) & 0xf, 0xf);
	at = filled(&k, len);
	b[0] = (struct vdrv_buf){at + 1024, (uint32_t)(len / 2 - 1024), true};
	b[1] = (struct vdrv_buf){at + len / 2, (uint32_t)(len / 2), true};
	vdrv_post(&k.d, q, vdrv_chain(&k.d, q, b, 2));
	vdrv_kick(&k.d, q);
	CHECK(vdrv_wait_used(&k.d, q, 1));
	i = info(&k);
	CHECK_EQ(i.reported, len - 1024);
	CHECK_EQ(i.discarded, len - ps);
	CHECK_EQ(resident(&k, at, len), 1); /* the first host page, partly reported */
	CHECK_EQ(*(uint8_t *)vdrv_ptr(&k.d, at), 0x5a);
	bal_close(&k);
}

/* A statistics buffer of n entries (tag, value) on queue 2. */
static void post_stats(struct bal *k, const uint16_t *tag, const uint64_t *val, size_t n,
		       uint32_t len)
{
	uint64_t at = vdrv_alloc(&k->d, n * 10 + 16, 8);
	uint8_t *p = vdrv_ptr(&k->d, at);
	struct vdrv_buf b = {at, len, false};

	for (size_t i = 0; i < n; i++) {
		uint16_t t = htole16(tag[i]);
		uint64_t v = htole64(val[i]);

		memcpy(p + 10 * i, &t, 2);
		memcpy(p + 10 * i + 2, &v, 8);
	}
	vdrv_post(&k->d, 2, vdrv_chain(&k->d, 2, &b, 1));
	vdrv_kick(&k->d, 2);
}

static void statistics(void)
{
	const char *keys[] = {"stats_polling_interval_s=1", "deflate_on_oom=on", NULL};
	uint16_t tag[3] = {VIRTIO_BALLOON_S_MEMFREE, 77, VIRTIO_BALLOON_S_MEMTOT};
	uint64_t val[3] = {123 << 20, 5, 1 << 30};
	struct balloon_info i;
	struct bal k;

	if (!bal_open(&k, keys)) {
		CHECK(!"opened");
		return bal_close(&k);
	}
	CHECK(k.vd->host_features & BF(DEFLATE_ON_OOM));
	CHECK_EQ(balloon_set_interval(k.dev, 0), -EINVAL); /* cannot turn it off */
	CHECK_EQ(vdrv_start(&k.d, BF(STATS_VQ) | BF(DEFLATE_ON_OOM), 3, QSIZE) & 0xf, 0xf);
	post_stats(&k, tag, val, 3, 30);
	CHECK(VDRV_WAIT(&k.d, info(&k).stats_valid));
	i = info(&k);
	CHECK_EQ(i.stats[VIRTIO_BALLOON_S_MEMFREE], 123 << 20);
	CHECK_EQ(i.stats[VIRTIO_BALLOON_S_MEMTOT], 1 << 30);
	CHECK_EQ(i.stats_seen, 1u << 4 | 1u << 5);
	CHECK_EQ(vdrv_used(&k.d, 2), 0); /* held until the device asks again */
	/* The timer (1 s) returns it, from the event loop. */
	CHECK(vdrv_wait_used(&k.d, 2, 1));
	/* A bad length is refused: the values stay. */
	val[0] = 1;
	post_stats(&k, tag, val, 3, 29);
	CHECK(VDRV_WAIT(&k.d, info(&k).bad_stats == 1));
	CHECK_EQ(info(&k).stats[VIRTIO_BALLOON_S_MEMFREE], 123 << 20);
	balloon_stats_tick(k.dev);
	CHECK_EQ(vdrv_used(&k.d, 2), 2);
	/* A second buffer while one is held: the older one goes back at once. */
	post_stats(&k, tag, val, 1, 10);
	CHECK(VDRV_WAIT(&k.d, info(&k).stats[VIRTIO_BALLOON_S_MEMFREE] == 1));
	post_stats(&k, tag, val, 1, 10);
	CHECK(vdrv_wait_used(&k.d, 2, 3));
	CHECK_EQ(balloon_set_interval(k.dev, 2), 0);
	CHECK_EQ(info(&k).stats_interval_s, 2);
	/* A reset drops the held buffer: nothing is returned to a queue that is gone. */
	vdrv_wr(&k.d, 0x070, 0);
	balloon_stats_tick(k.dev);
	CHECK_EQ(vdrv_used(&k.d, 2), 3);
	bal_close(&k);
}

static void target(void)
{
	struct bal k;
	unsigned irqs, gen;

	if (!bal_open(&k, NULL)) {
		CHECK(!"opened");
		return bal_close(&k);
	}
	CHECK_EQ(k.vd->host_features & (BF(STATS_VQ) | BF(REPORTING) | BF(DEFLATE_ON_OOM)), 0);
	CHECK_EQ(k.vd->nvqs, 2);
	CHECK_EQ(vdrv_start(&k.d, 0, 2, QSIZE) & 0xf, 0xf);
	irqs = k.d.interrupts;
	gen = vdrv_rd(&k.d, 0x0fc);
	CHECK_EQ(balloon_set_target(k.dev, 256), 0);
	CHECK_EQ(vdrv_rd(&k.d, 0x100), 65536);
	CHECK_EQ(k.d.interrupts, irqs + 1);
	CHECK(vdrv_rd(&k.d, 0x060) & VIRTIO_ISR_CONFIG);
	CHECK(vdrv_rd(&k.d, 0x0fc) != gen);
	CHECK_EQ(balloon_set_target(k.dev, 4096), -EINVAL); /* more than the 1 GiB of RAM */
	CHECK_EQ(info(&k).amount_mib, 256);
	bal_close(&k);
}

/* Restore from saved with field set to v: refused. */
static void refused(struct bal *k, const struct snap *saved, const char *field, uint64_t v)
{
	struct snap *c = test_snap_with(saved, "balloon", field, v);
	FILE *devnull = fopen("/dev/null", "w");

	log_capture(devnull);
	CHECK(c && k->dev->ops->restore(k->dev, snap_find(c, "balloon")) == -EINVAL);
	log_capture(NULL);
	if (devnull)
		fclose(devnull);
	snap_free(c);
}

/* Save a paused balloon (a statistics buffer held, target changed) and restore it anew. */
static void snapshot(void)
{
	const char *keys[] = {"stats_polling_interval_s=60", "amount_mib=8", NULL};
	uint16_t tag = VIRTIO_BALLOON_S_AVAIL;
	uint64_t val = 4242;
	struct bal a, b;
	struct snap *st = snap_new();
	struct snap_sec *sec = st ? snap_add(st, "balloon") : NULL;
	struct balloon_info i;

	if (!bal_open(&a, keys) || !bal_open(&b, keys) || !sec) {
		CHECK(!"opened");
		goto out;
	}
	CHECK_EQ(vdrv_start(&a.d, BF(STATS_VQ), 3, QSIZE) & 0xf, 0xf);
	post_stats(&a, &tag, &val, 1, 10);
	CHECK(VDRV_WAIT(&a.d, info(&a).stats_valid));
	CHECK_EQ(balloon_set_target(a.dev, 32), 0);
	vdrv_wr(&a.d, 0x104, 2048);
	CHECK_EQ(a.dev->ops->pause(a.dev), 0);
	balloon_stats_tick(a.dev); /* paused: nothing returned */
	CHECK_EQ(vdrv_used(&a.d, 2), 0);
	CHECK_EQ(a.dev->ops->save(a.dev, sec), 0);
	vdrv_copy_guest(&b.d, &a.d);
	CHECK_EQ(b.dev->ops->restore(b.dev, snap_find(st, "balloon")), 0);
	i = info(&b);
	CHECK_EQ(i.amount_mib, 32);
	CHECK_EQ(i.target_pages, 8192);
	CHECK_EQ(i.actual_pages, 2048);
	CHECK(i.stats_valid);
	CHECK_EQ(i.stats[VIRTIO_BALLOON_S_AVAIL], 4242);
	CHECK_EQ(vdrv_rd(&b.d, 0x100), 8192);
	/* The held buffer goes back to the driver after the restore. */
	balloon_stats_tick(b.dev);
	CHECK_EQ(vdrv_used(&b.d, 2), 1);

	/* A file that claims a held buffer the queue cannot have is refused. */
	refused(&b, st, "balloon.stats_head", QSIZE + 1);
	refused(&b, st, "balloon.num_pages", 8193);	/* not whole MiB */
	refused(&b, st, "balloon.stats_interval_s", 0); /* statistics on here */
out:
	snap_free(st);
	bal_close(&a);
	bal_close(&b);
}

void test_balloon(void)
{
	TEST_RUN(inflate_deflate);
	reporting(false);
	reporting(true);
	TEST_RUN(statistics);
	TEST_RUN(target);
	TEST_RUN(snapshot);
}
