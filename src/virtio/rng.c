/*
 * virtio-rng: the guest's buffers are filled from the host's getrandom(). A rate limit (a
 * token bucket of rate_burst bytes refilled at rate_limit bytes per second) stops serving the
 * queue when the bucket holds less than the next buffer wants and arms a timer for when it
 * holds enough; the buffer waits in the ring meanwhile (given back unserved), so nothing is
 * held across a reset or a snapshot.
 */
#include "virtio/adapter.h"
#include "virtio/rng.h"

#include <errno.h>
#include <linux/virtio_ids.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "loop.h"
#include "machine.h"
#include "virtio/virtio.h"

/* Bytes given per request at most (a larger buffer gets this much: the used length says). */
#define RNG_REQ_MAX (64u << 10)
/* Requests served per wake-up of the queue before it yields to the rest of the event loop. */
#define RNG_BUDGET 64
/* The host's pool is not ready yet (early in its boot): look again after this long. */
#define RNG_RETRY_NS (100 * 1000 * 1000ull)
#define NS	     1000000000ull

struct rng {
	struct virtio_adapter va; /* first: the queue, the core and the transport */
	uint64_t rate;		  /* [DEV] rate_limit: bytes per second, 0 = no limit */
	uint64_t burst;		  /* [DEV] rate_burst: the bucket's size in bytes */
	uint64_t tokens;	  /* bytes the bucket holds */
	uint64_t last_ns;	  /* when tokens was last brought up to date */
	struct iovec *iov;
	unsigned iov_max;
	struct loop *loop; /* set between rng_start and rng_stop */
	int timer_fd;
	bool watched, armed;
	uint64_t bytes, requests, waits; /* for --verbose and the tests */
};
_Static_assert(offsetof(struct rng, va) == 0, "the adapter's part comes first");

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

/* Bring the bucket up to date; the bytes a request may take now (UINT64_MAX: no limit). */
static uint64_t allowance(struct rng *r)
{
	uint64_t now, add;

	if (!r->rate)
		return UINT64_MAX;
	now = now_ns();
	add = (uint64_t)((unsigned __int128)(now - r->last_ns) * r->rate / NS);
	if (r->tokens + add >= r->burst || add >= r->burst) {
		r->tokens = r->burst;
		r->last_ns = now;
	} else if (add) {
		r->tokens += add;
		/* Only the time those bytes stand for: the remainder keeps accruing. */
		r->last_ns += (uint64_t)((unsigned __int128)add * NS / r->rate);
	}
	return r->tokens;
}

/* Wake the queue up in ns nanoseconds from the timer (once: an armed timer stays). */
static void arm(struct rng *r, uint64_t ns)
{
	struct itimerspec its = {.it_value = {(time_t)(ns / NS), (long)(ns % NS)}};

	if (r->armed || r->timer_fd < 0)
		return;
	if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
		its.it_value.tv_nsec = 1;
	if (timerfd_settime(r->timer_fd, 0, &its, NULL) == 0)
		r->armed = true;
	else if (r->va.vd.warnings++ < 10)
		log_warn("%s: cannot arm the rate limiter's timer: %s", r->va.vd.name,
			 strerror(errno));
}

/* How long until the bucket holds want bytes. */
static uint64_t refill_ns(const struct rng *r, uint64_t want)
{
	uint64_t need = want > r->tokens ? want - r->tokens : 1;

	return (uint64_t)(((unsigned __int128)need * NS + r->rate - 1) / r->rate);
}

/* Fill the chain's writable buffers with up to max random bytes: how many (-1: not now). */
static long fill(const struct virtq_chain *c, uint64_t max)
{
	uint64_t done = 0;

	for (unsigned i = c->nout; i < c->nout + c->nin && done < max; i++) {
		uint8_t *p = c->iov[i].iov_base;
		size_t len = c->iov[i].iov_len;

		if (len > max - done)
			len = max - done;
		while (len) {
			ssize_t n = getrandom(p, len, GRND_NONBLOCK);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return done ? (long)done : -1;
			p += n;
			len -= (size_t)n;
			done += (uint64_t)n;
		}
	}
	return (long)done;
}

/*
 * Serve queue q: fill each buffer the driver posted, as far as the bucket allows; an empty
 * bucket leaves the rest in the ring until the timer fires.
 */
static void rng_notify(struct virtio_dev *vd, unsigned q)
{
	struct rng *r = vd->priv;
	struct virtq *vq = &vd->vqs[q];
	unsigned budget = RNG_BUDGET;
	bool pushed = false;

	do {
		for (;;) {
			struct virtq_chain c = {.iov = r->iov, .iov_max = r->iov_max};
			uint64_t allow = allowance(r), want;
			long n;
			int got;

			if (!budget--) {
				virtio_queue_reschedule(vd, q);
				goto out;
			}
			got = virtq_pop(vq, vd->mem, &c);
			if (got < 0) {
				virtio_needs_reset(vd, "queue %u: malformed descriptor chain", q);
				goto out;
			}
			if (!got)
				break;
			if (c.nout) {
				virtio_needs_reset(
					vd, "queue %u: a buffer the device can only read", q);
				goto out;
			}
			/* A buffer is filled whole (up to RNG_REQ_MAX and the bucket's size). */
			want = c.in_len < RNG_REQ_MAX ? c.in_len : RNG_REQ_MAX;
			if (r->rate && want > r->burst)
				want = r->burst;
			if (allow < want) {
				virtq_unpop(vq, 1);
				r->waits++;
				arm(r, refill_ns(r, want));
				goto out;
			}
			n = fill(&c, want);
			if (n < 0) {
				/* The host's pool is not initialised yet: the buffer waits. */
				virtq_unpop(vq, 1);
				arm(r, RNG_RETRY_NS);
				goto out;
			}
			if (r->rate)
				r->tokens -= (uint64_t)n;
			r->bytes += (uint64_t)n;
			r->requests++;
			virtq_push(vq, c.head, (uint32_t)n);
			pushed = true;
		}
	} while (virtq_enable_notify(vq));
out:
	if (pushed && virtio_live(vd))
		virtio_queue_interrupt(vd, q);
}

/* Nothing is in flight between two calls of rng_notify: a reset has nothing to finish. */
static void rng_reset(struct virtio_dev *vd)
{
	(void)vd;
}

static const struct virtio_ops rng_virtio_ops = {
	.device_id = VIRTIO_ID_RNG,
	.notify = rng_notify,
	.reset = rng_reset,
};

/* The bucket may hold enough again: serve the queue if the driver may be served now. */
static void on_timer(void *opaque, uint32_t events)
{
	struct rng *r = opaque;
	struct virtio_dev *vd = &r->va.vd;
	uint64_t expirations;

	(void)events;
	if (read(r->timer_fd, &expirations, sizeof(expirations)) < 0 && errno == EAGAIN)
		return;
	virtio_lock(vd);
	r->armed = false;
	/* Paused: resuming serves every queue. Reset or not ready: nothing to serve. */
	if (!vd->paused && vd->vqs[0].ready && virtio_live(vd))
		rng_notify(vd, 0);
	virtio_unlock(vd);
}

static int rng_configure(struct device *dev, struct machine *m)
{
	struct cfg *c = &m->cfg;
	struct rng *r = dev->priv;
	int err = 0;

	r->timer_fd = -1;
	err |= cfg_u64(c, dev->name, "rate_limit", &r->rate, 0, 0);
	err |= cfg_u64(c, dev->name, "rate_burst", &r->burst, r->rate, 0);
	if (err)
		return -1;
	if (cfg_get(c, dev->name, "rate_burst") && !r->rate) {
		cfg_error(c, cfg_get(c, dev->name, "rate_burst"), NULL,
			  "a burst needs a rate_limit (bytes per second)");
		return -1;
	}
	if (r->rate && !r->burst) {
		cfg_error(c, cfg_get(c, dev->name, "rate_burst"), NULL,
			  "0: the bucket must hold at least one byte");
		return -1;
	}
	if (r->rate)
		m->sandbox.timers = true; /* the bucket's timer, armed where the queue is served */
	return 0;
}

static void rng_describe(const struct device *dev, FILE *out)
{
	const struct rng *r = dev->priv;

	if (r->rate)
		fprintf(out, "virtio-rng (getrandom, %llu bytes/s, bursts of %llu), ",
			(unsigned long long)r->rate, (unsigned long long)r->burst);
	else
		fprintf(out, "virtio-rng (getrandom, no rate limit), ");
}

int rng_start(struct device *dev, const struct guest_mem *mem, struct loop *loop,
	      struct virtio_dev **vd)
{
	struct rng *r = dev->priv;
	int err;

	r->loop = loop;
	r->tokens = r->burst;
	r->last_ns = now_ns();
	r->iov_max = r->va.queue_size;
	r->iov = calloc(r->iov_max, sizeof(*r->iov));
	if (!r->iov)
		return -ENOMEM;
	if (r->rate) {
		r->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (r->timer_fd < 0)
			return -errno;
		err = loop_add(loop, r->timer_fd, EPOLLIN, on_timer, r);
		if (err)
			return err;
		r->watched = true;
	}
	err = virtio_init(&r->va.vd, dev->name, &rng_virtio_ops, r, 0, 1, r->va.queue_size, NULL, 0,
			  mem);
	if (vd)
		*vd = &r->va.vd;
	return err;
}

void rng_stop(struct device *dev)
{
	struct rng *r = dev->priv;

	if (!r->loop)
		return;
	if (r->watched)
		loop_del(r->loop, r->timer_fd);
	r->watched = false;
	if (r->timer_fd >= 0)
		close(r->timer_fd);
	r->timer_fd = -1;
	virtio_free(&r->va.vd);
	free(r->iov);
	r->iov = NULL;
	r->loop = NULL;
}

uint64_t rng_bytes(struct device *dev)
{
	struct rng *r = dev->priv;
	uint64_t n;

	virtio_lock(&r->va.vd);
	n = r->bytes;
	virtio_unlock(&r->va.vd);
	return n;
}

static int rng_start_on(struct device *dev, const struct guest_mem *mem, struct loop *loop)
{
	return rng_start(dev, mem, loop, NULL);
}

static void rng_report(const struct device *dev)
{
	const struct rng *r = dev->priv;

	log_info("%s: %llu bytes in %llu requests, %llu waits for the rate limit, %lu trapped "
		 "register accesses, %lu interrupts",
		 dev->name, (unsigned long long)r->bytes, (unsigned long long)r->requests,
		 (unsigned long long)r->waits, r->va.vd.stats.trapped, r->va.vd.stats.interrupts);
}

static const struct virtio_device_ops rng_device_ops = {
	.size = sizeof(struct rng),
	.pci_class = 0xff0000, /* unclassified device */
	.fixed_queues = 1,
	/* The driver waits for each buffer, and filling one is a getrandom() call: the vCPU
	 * that kicks does it (make bench-devices: /dev/hwrng reads 1.6 times as fast so). */
	.kicks_trap = true,
	.configure = rng_configure,
	.describe = rng_describe,
	.start = rng_start_on,
	.report = rng_report,
	.stop = rng_stop,
};

/* The host side is getrandom(): a restore may change only the rate limit. */
static const char *const rng_restore_keys[] = {"rate_limit", "rate_burst", NULL};

const struct device_ops virtio_rng_ops =
	VIRTIO_DEVICE("virtio-rng", rng_device_ops, rng_restore_keys);
