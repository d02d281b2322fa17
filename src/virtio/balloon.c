/* virtio-balloon: inflate/deflate to a target, statistics, free-page reporting, any transport. */
#include "virtio/adapter.h"
#include "virtio/balloon.h"

#include <endian.h>
#include <errno.h>
#include <linux/virtio_balloon.h>
#include <linux/virtio_ids.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "loop.h"
#include "machine.h"
#include "snapshot/devstate.h"
#include "virtio/virtio.h"

#define BALLOON_PAGE   4096u /* the unit of page numbers and of num_pages/actual */
#define STAT_BYTES     10    /* le16 tag, le64 value, packed */
#define STATS_MAX      64    /* entries a statistics buffer may hold (Linux sends 10-16) */
#define BALLOON_BUDGET 64    /* buffers served per wake-up of a queue before it yields */
#define PFN_BATCH      256   /* page numbers read from a buffer at a time */

/* What each queue index serves: it depends on the negotiated features (virtio 1.2 5.5.2). */
enum role { Q_INFLATE, Q_DEFLATE, Q_STATS, Q_REPORT, Q_NONE };

struct balloon {
	struct virtio_adapter va; /* first: queue_size, the core and the transport */
	uint32_t amount_mib;
	uint32_t interval_s; /* stats_polling_interval_s: 0 = no statistics queue */
	bool deflate_on_oom, reporting;
	uint64_t ram_mib; /* the machine's RAM: the largest target */
	struct virtio_balloon_config cfg;
	struct loop *loop;
	int tfd;	  /* the statistics timer (-1: none) */
	size_t host_page; /* only whole host pages are given back */
	struct iovec *iov;
	/* the statistics buffer the device holds until it asks for fresh values */
	bool stats_held;
	uint16_t stats_head;
	uint32_t stats_gen;
	struct balloon_info info; /* counters and the latest statistics */
};
_Static_assert(offsetof(struct balloon, va) == 0, "the adapter's part comes first");

static enum role role(const struct virtio_dev *vd, unsigned q)
{
	unsigned n = 2;

	if (q < n)
		return q == 0 ? Q_INFLATE : Q_DEFLATE;
	if (virtio_has_feature(vd, VIRTIO_BALLOON_F_STATS_VQ) && q == n++)
		return Q_STATS;
	/* VIRTIO_BALLOON_F_FREE_PAGE_HINT is never offered: its queue never comes between. */
	if (virtio_has_feature(vd, VIRTIO_BALLOON_F_REPORTING) && q == n)
		return Q_REPORT;
	return Q_NONE;
}

/*
 * Give back the whole host pages inside [p, p + len), which must lie in guest RAM's host
 * mapping (checked again here: nothing outside it is ever discarded). A host page only
 * partly inside stays: on a 16 KiB-page host a lone 4 KiB balloon page frees nothing.
 * Returns the bytes given back.
 */
static uint64_t discard(struct balloon *b, uint8_t *p, uint64_t len)
{
	const struct guest_mem *m = b->va.vd.mem;
	uintptr_t lo = (uintptr_t)m->hva, hi = lo + m->size + m->hi_size;
	uintptr_t s = (uintptr_t)p, e = s + len;
	uintptr_t mask = b->host_page - 1;

	if (!len || s < lo || e > hi || e < s)
		return 0;
	s = (s + mask) & ~mask;
	e &= ~mask;
	if (e <= s)
		return 0;
	if (madvise((void *)s, e - s, MADV_DONTNEED) < 0) {
		if (b->va.vd.warnings++ < 10)
			log_warn("%s: madvise: %s", b->va.vd.name, strerror(errno));
		return 0;
	}
	return e - s;
}

/* Give back the whole host pages that the n pages at p[] (sorted here) cover together. */
static void discard_pages(struct balloon *b, uint8_t **p, size_t n)
{
	uint8_t *run = NULL;
	uint64_t run_len = 0;

	/* Insertion sort (no allocation; a batch is a driver's buffer, 256 pages in Linux). */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && p[j - 1] > p[j]; j--) {
			uint8_t *t = p[j];

			p[j] = p[j - 1];
			p[j - 1] = t;
		}
	for (size_t i = 0; i < n; i++) {
		if (run && p[i] <= run + run_len) {
			if (p[i] + BALLOON_PAGE > run + run_len)
				run_len = p[i] + BALLOON_PAGE - run;
			continue;
		}
		b->info.discarded += discard(b, run, run_len);
		run = p[i];
		run_len = BALLOON_PAGE;
	}
	b->info.discarded += discard(b, run, run_len);
}

/*
 * Inflate or deflate: each page number checked against guest RAM; an inflate's pages are
 * given back in runs of neighbours, so that on a host with larger pages the host pages they
 * fill together go too.
 */
static void pages(struct balloon *b, const struct virtq_chain *c, bool inflate)
{
	uint32_t pfns[PFN_BATCH];
	uint8_t *ok[PFN_BATCH];
	size_t n = c->out_len / 4;

	b->info.refused += c->out_len % 4 ? 1 : 0; /* a partial page number is one refused */
	for (size_t at = 0; at < n;) {
		size_t k = n - at < PFN_BATCH ? n - at : PFN_BATCH, nok = 0;

		iov_to_buf(c->iov, c->nout, at * 4, pfns, k * 4);
		for (size_t i = 0; i < k; i++) {
			uint64_t gpa = (uint64_t)le32toh(pfns[i]) << VIRTIO_BALLOON_PFN_SHIFT;
			uint8_t *p = gm_ptr(b->va.vd.mem, gpa, BALLOON_PAGE);

			if (p)
				ok[nok++] = p;
			else
				b->info.refused++;
		}
		/* A deflated page needs nothing: it refaults as a zero page when touched. */
		if (inflate)
			discard_pages(b, ok, nok);
		*(inflate ? &b->info.inflated : &b->info.deflated) += nok;
		at += k;
	}
}

/* Free-page reporting: every segment is a free range of guest RAM (virtq_pop checked it). */
static void report(struct balloon *b, const struct virtq_chain *c)
{
	for (unsigned i = 0; i < c->nout + c->nin; i++) {
		b->info.reported += c->iov[i].iov_len;
		b->info.discarded += discard(b, c->iov[i].iov_base, c->iov[i].iov_len);
	}
}

/* A statistics buffer: (le16 tag, le64 value) entries; unknown tags ignored. */
static void stats(struct balloon *b, const struct virtq_chain *c)
{
	uint8_t e[STAT_BYTES];
	uint32_t seen = 0;

	if (!c->out_len || c->out_len % STAT_BYTES || c->out_len > STATS_MAX * STAT_BYTES) {
		b->info.bad_stats++;
		return;
	}
	for (uint32_t off = 0; off < c->out_len; off += STAT_BYTES) {
		uint16_t tag;
		uint64_t val;

		iov_to_buf(c->iov, c->nout, off, e, sizeof(e));
		memcpy(&tag, e, 2);
		memcpy(&val, e + 2, 8);
		tag = le16toh(tag);
		if (tag >= BALLOON_STATS)
			continue;
		b->info.stats[tag] = le64toh(val);
		seen |= 1u << tag;
	}
	b->info.stats_seen = seen;
	b->info.stats_valid = true;
}

/* Return the held statistics buffer: the driver answers with fresh values. Lock held. */
static void stats_return(struct balloon *b)
{
	struct virtio_dev *vd = &b->va.vd;
	unsigned q = 2;

	if (!b->stats_held || !virtio_live(vd) || vd->paused)
		return;
	b->stats_held = false;
	if (vd->vqs[q].gen != b->stats_gen || !vd->vqs[q].ready)
		return;
	virtq_push(&vd->vqs[q], b->stats_head, 0);
	virtio_queue_interrupt(vd, q);
}

static void balloon_notify(struct virtio_dev *vd, unsigned q)
{
	struct balloon *b = vd->priv;
	struct virtq *vq = &vd->vqs[q];
	enum role r = role(vd, q);
	unsigned budget = BALLOON_BUDGET;
	bool pushed = false;

	if (r == Q_NONE)
		return; /* a queue the negotiated features do not give a use */
	do {
		for (;;) {
			struct virtq_chain c = {.iov = b->iov, .iov_max = VIRTQ_MAX_INDIRECT};
			int n;

			if (!budget--) {
				virtio_queue_reschedule(vd, q);
				goto out;
			}
			n = virtq_pop(vq, vd->mem, &c);
			if (n < 0) {
				virtio_needs_reset(vd, "queue %u: malformed descriptor chain", q);
				goto out;
			}
			if (n == 0)
				break;
			if (r == Q_STATS) {
				stats(b, &c);
				/* One buffer is held; an older one goes back (a driver's mistake).
				 */
				if (b->stats_held && b->stats_gen == vq->gen) {
					virtq_push(vq, b->stats_head, 0);
					pushed = true;
				}
				b->stats_held = true;
				b->stats_head = c.head;
				b->stats_gen = vq->gen;
				continue;
			}
			if (r == Q_REPORT)
				report(b, &c);
			else
				pages(b, &c, r == Q_INFLATE);
			virtq_push(vq, c.head, 0);
			pushed = true;
		}
	} while (virtq_enable_notify(vq));
out:
	if (pushed)
		virtio_queue_interrupt(vd, q);
}

static void balloon_reset(struct virtio_dev *vd)
{
	struct balloon *b = vd->priv;

	b->stats_held = false; /* its queue is gone: nothing to return */
	b->cfg.actual = 0;
}

static void balloon_config_write(struct virtio_dev *vd, uint32_t off, const uint8_t *data,
				 uint32_t len)
{
	struct balloon *b = vd->priv;
	const uint32_t at = offsetof(struct virtio_balloon_config, actual);

	/* Only actual is the driver's to write (any part of it); the rest is ignored. */
	if (off >= at && len <= sizeof(b->cfg.actual) && off - at <= sizeof(b->cfg.actual) - len)
		memcpy((uint8_t *)&b->cfg + off, data, len);
}

/* The saved configuration space may differ: the target and actual come from our own fields. */
static bool balloon_config_restorable(const struct virtio_dev *vd, const uint8_t *saved)
{
	(void)vd;
	(void)saved;
	return true;
}

static const struct virtio_ops balloon_virtio_ops = {
	.device_id = VIRTIO_ID_BALLOON,
	.notify = balloon_notify,
	.reset = balloon_reset,
	.config_write = balloon_config_write,
	.config_restorable = balloon_config_restorable,
};

void balloon_stats_tick(struct device *dev)
{
	struct balloon *b = dev->priv;

	virtio_lock(&b->va.vd);
	stats_return(b);
	virtio_unlock(&b->va.vd);
}

static void on_timer(void *opaque, uint32_t events)
{
	struct device *dev = opaque;
	struct balloon *b = dev->priv;
	uint64_t ticks;

	(void)events;
	if (read(b->tfd, &ticks, sizeof(ticks)) < 0)
		return;
	balloon_stats_tick(dev);
}

static int arm_timer(struct balloon *b, uint32_t s)
{
	struct itimerspec its = {.it_value.tv_sec = s, .it_interval.tv_sec = s};

	return timerfd_settime(b->tfd, 0, &its, NULL) < 0 ? -errno : 0;
}

static uint32_t mib_pages(uint32_t mib)
{
	return mib * (1024 * 1024 / BALLOON_PAGE);
}

int balloon_set_target(struct device *dev, uint32_t mib)
{
	struct balloon *b = dev->priv;
	struct virtio_dev *vd = &b->va.vd;

	if (!vd->vqs)
		return -ENODEV;
	if (mib > b->ram_mib)
		return -EINVAL;
	virtio_lock(vd);
	b->amount_mib = mib;
	b->cfg.num_pages = htole32(mib_pages(mib));
	vd->config_gen++;
	if (vd->status & VIRTIO_STATUS_DRIVER_OK) {
		atomic_fetch_or(&vd->isr, VIRTIO_ISR_CONFIG);
		vd->tops->interrupt(vd, -1);
	}
	virtio_unlock(vd);
	return 0;
}

int balloon_set_interval(struct device *dev, uint32_t s)
{
	struct balloon *b = dev->priv;
	int err;

	if (!b->va.vd.vqs)
		return -ENODEV;
	if (!s != !b->interval_s || b->tfd < 0)
		return -EINVAL;
	virtio_lock(&b->va.vd);
	err = arm_timer(b, s);
	if (!err)
		b->interval_s = s;
	virtio_unlock(&b->va.vd);
	return err;
}

int balloon_get_info(struct device *dev, struct balloon_info *out)
{
	struct balloon *b = dev->priv;

	if (!b->va.vd.vqs)
		return -ENODEV;
	virtio_lock(&b->va.vd);
	*out = b->info;
	out->amount_mib = b->amount_mib;
	out->target_pages = le32toh(b->cfg.num_pages);
	out->actual_pages = le32toh(b->cfg.actual);
	out->stats_interval_s = b->interval_s;
	out->deflate_on_oom = b->deflate_on_oom;
	out->free_page_reporting = b->reporting;
	virtio_unlock(&b->va.vd);
	return 0;
}

static int balloon_configure(struct device *dev, struct machine *m)
{
	struct balloon *b = dev->priv;
	struct cfg *c = &m->cfg;
	int err = 0;

	b->tfd = -1;
	b->ram_mib = m->ram_size >> 20;
	b->va.queue_keys = true; /* the queues are the spec's: only their size is a key */
	b->va.queues = 1;
	err |= cfg_u32(c, dev->name, "queue_size", &b->va.queue_size, 256, 2, VIRTQ_MAX_SIZE, 0);
	err |= cfg_u32(c, dev->name, "amount_mib", &b->amount_mib, 0, 0, UINT32_MAX, 0);
	err |= cfg_bool(c, dev->name, "deflate_on_oom", &b->deflate_on_oom, false);
	err |= cfg_u32(c, dev->name, "stats_polling_interval_s", &b->interval_s, 0, 0, 86400, 0);
	err |= cfg_bool(c, dev->name, "free_page_reporting", &b->reporting, false);
	/* (Not against a [memory] size in error: that is said there.) */
	if (!err && !(m->bad & MACHINE_BAD_MEMORY) && b->amount_mib > b->ram_mib) {
		cfg_error(c, cfg_get(c, dev->name, "amount_mib"), NULL,
			  "%u MiB is more than the guest's RAM (%llu MiB)", b->amount_mib,
			  (unsigned long long)b->ram_mib);
		err = -1;
	}
	return err ? -1 : 0;
}

static void balloon_describe(const struct device *dev, FILE *out)
{
	const struct balloon *b = dev->priv;

	fprintf(out, "virtio-balloon, target %u MiB, statistics %s", b->amount_mib,
		b->interval_s ? "every " : "off");
	if (b->interval_s)
		fprintf(out, "%u s", b->interval_s);
	fprintf(out, "%s%s, ", b->deflate_on_oom ? ", deflate on OOM" : "",
		b->reporting ? ", free-page reporting" : "");
}

int balloon_start(struct device *dev, const struct guest_mem *mem, struct loop *loop,
		  struct virtio_dev **vd)
{
	struct balloon *b = dev->priv;
	uint64_t features = 0;
	unsigned nvqs = 2;
	long ps = sysconf(_SC_PAGESIZE);
	int err;

	b->host_page = ps > 0 ? (size_t)ps : BALLOON_PAGE;
	b->iov = calloc(VIRTQ_MAX_INDIRECT, sizeof(*b->iov));
	if (!b->iov)
		return -ENOMEM;
	/* Nothing of an earlier start (the fuzz target starts one device many times) stays. */
	b->stats_held = false;
	memset(&b->info, 0, sizeof(b->info));
	memset(&b->cfg, 0, sizeof(b->cfg));
	b->cfg.num_pages = htole32(mib_pages(b->amount_mib));
	if (b->deflate_on_oom)
		features |= 1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
	if (b->interval_s) {
		features |= 1ull << VIRTIO_BALLOON_F_STATS_VQ;
		nvqs++;
		/* Created and armed now, before the sandbox: the loop only reads it. */
		b->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (b->tfd < 0)
			return -errno;
		err = arm_timer(b, b->interval_s);
		err = err ?: loop_add(loop, b->tfd, EPOLLIN, on_timer, dev);
		if (err)
			return err;
		b->loop = loop;
	}
	if (b->reporting) {
		features |= 1ull << VIRTIO_BALLOON_F_REPORTING;
		nvqs++;
	}
	err = virtio_init(&b->va.vd, dev->name, &balloon_virtio_ops, b, features, nvqs,
			  b->va.queue_size, &b->cfg, sizeof(b->cfg), mem);
	if (vd)
		*vd = &b->va.vd;
	return err;
}

void balloon_stop(struct device *dev)
{
	struct balloon *b = dev->priv;

	if (b->loop)
		loop_del(b->loop, b->tfd);
	b->loop = NULL;
	if (b->tfd >= 0)
		close(b->tfd);
	b->tfd = -1;
	virtio_free(&b->va.vd);
	free(b->iov);
	b->iov = NULL;
}

static int balloon_start_on(struct device *dev, const struct guest_mem *mem, struct loop *loop)
{
	return balloon_start(dev, mem, loop, NULL);
}

static void balloon_report(const struct device *dev)
{
	const struct balloon *b = dev->priv;

	log_info("%s: %llu pages inflated, %llu deflated, %llu refused, %llu MiB reported free, "
		 "%llu MiB given back, %llu bad statistics buffers",
		 dev->name, (unsigned long long)b->info.inflated,
		 (unsigned long long)b->info.deflated, (unsigned long long)b->info.refused,
		 (unsigned long long)(b->info.reported >> 20),
		 (unsigned long long)(b->info.discarded >> 20),
		 (unsigned long long)b->info.bad_stats);
}

/*
 * A snapshot: the target (it may have changed since the start), actual, the statistics
 * buffer held (its head, to return it after a restore) and the latest statistics. The
 * pages the balloon holds need nothing: they were discarded, so the memory file has zeros
 * there, and a restore maps that file (a page discarded after the restore refaults from
 * it, which the guest cannot tell from any other content of a page it gave away).
 */
static int balloon_save(struct device *dev, struct snap_sec *sec)
{
	struct balloon *b = dev->priv;
	int err = 0;

	err = err ?: snap_put_u64(sec, "balloon.num_pages", le32toh(b->cfg.num_pages));
	err = err ?: snap_put_u64(sec, "balloon.actual", le32toh(b->cfg.actual));
	err = err ?: snap_put_u64(sec, "balloon.stats_interval_s", b->interval_s);
	/* A buffer of a queue that stopped since is not the driver's to get back. */
	err = err
		      ?: snap_put_u64(sec, "balloon.stats_held",
				      b->stats_held && b->stats_gen == b->va.vd.vqs[2].gen);
	err = err ?: snap_put_u64(sec, "balloon.stats_head", b->stats_head);
	err = err
		      ?: snap_put_u64(sec, "balloon.stats_seen",
				      b->info.stats_valid ? b->info.stats_seen | 1u << 31 : 0);
	for (unsigned i = 0; !err && i < BALLOON_STATS; i++)
		err = devstate_put_at(sec, "balloon.stat%u", i, b->info.stats[i]);
	return err;
}

static int balloon_restore(struct device *dev, const struct snap_sec *sec)
{
	struct balloon *b = dev->priv;
	struct virtio_dev *vd = &b->va.vd;
	uint64_t num, actual, interval, head, seen, v[BALLOON_STATS];
	bool held;
	int err = 0;

	err = err ?: snap_need_u64(sec, "balloon.num_pages", mib_pages(b->ram_mib), &num);
	if (!err && num % mib_pages(1))
		err = devstate_bad(sec, "balloon.num_pages", "not a whole number of MiB");
	err = err ?: snap_need_u64(sec, "balloon.actual", UINT32_MAX, &actual);
	err = err ?: snap_need_u64(sec, "balloon.stats_interval_s", 86400, &interval);
	if (!err && !interval != !b->interval_s)
		err = devstate_bad(sec, "balloon.stats_interval_s",
				   "statistics %s here (stats_polling_interval_s)",
				   b->interval_s ? "on" : "off");
	err = err ?: devstate_need_bool(sec, "balloon.stats_held", &held);
	err = err ?: snap_need_u64(sec, "balloon.stats_head", UINT16_MAX, &head);
	if (!err && held &&
	    (!virtio_has_feature(vd, VIRTIO_BALLOON_F_STATS_VQ) || head >= vd->vqs[2].num))
		err = devstate_bad(sec, "balloon.stats_head",
				   "no such buffer of the statistics queue");
	err = err ?: snap_need_u64(sec, "balloon.stats_seen", UINT32_MAX, &seen);
	for (unsigned i = 0; !err && i < BALLOON_STATS; i++)
		err = devstate_need_at(sec, "balloon.stat%u", i, UINT64_MAX, &v[i]);
	if (err)
		return err;
	b->cfg.num_pages = htole32((uint32_t)num);
	b->amount_mib = (uint32_t)(num / mib_pages(1));
	b->cfg.actual = htole32((uint32_t)actual);
	if (interval != b->interval_s && arm_timer(b, (uint32_t)interval) == 0)
		b->interval_s = (uint32_t)interval;
	b->stats_held = held;
	b->stats_head = (uint16_t)head;
	b->stats_gen = held ? vd->vqs[2].gen : 0;
	b->info.stats_valid = seen >> 31;
	b->info.stats_seen = (uint32_t)seen & ((1u << BALLOON_STATS) - 1);
	memcpy(b->info.stats, v, sizeof(v));
	return 0;
}

static const struct virtio_device_ops balloon_device_ops = {
	.size = sizeof(struct balloon),
	.pci_class = 0x058000, /* memory controller, other */
	.configure = balloon_configure,
	.describe = balloon_describe,
	.start = balloon_start_on,
	.report = balloon_report,
	.stop = balloon_stop,
	.save = balloon_save,
	.restore = balloon_restore,
};

const struct device_ops virtio_balloon_ops =
	VIRTIO_DEVICE("virtio-balloon", balloon_device_ops, NULL);
