/* virtio: the transport-independent virtio 1.x device core (features, status, queues, config). */
#include "virtio/virtio.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "snapshot/devstate.h"
#include "timeline.h"

int virtio_init(struct virtio_dev *vd, const char *name, const struct virtio_ops *ops, void *priv,
		uint64_t features, unsigned nvqs, uint16_t queue_max, void *config,
		uint32_t config_len, const struct guest_mem *mem)
{
	memset(vd, 0, sizeof(*vd));
	vd->name = name;
	vd->ops = ops;
	vd->priv = priv;
	vd->host_features = features | 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_EVENT_IDX |
			    1ull << VIRTIO_F_INDIRECT_DESC;
	vd->config = config;
	vd->config_len = config_len;
	vd->mem = mem;
	vd->nvqs = nvqs;
	vd->vqs = calloc(nvqs, sizeof(*vd->vqs));
	if (!vd->vqs)
		return -ENOMEM;
	for (unsigned i = 0; i < nvqs; i++) {
		vd->vqs[i].num_max = queue_max;
		virtq_reset(&vd->vqs[i]);
	}
	pthread_mutex_init(&vd->lock, NULL);
	return 0;
}

void virtio_free(struct virtio_dev *vd)
{
	if (!vd->vqs)
		return;
	pthread_mutex_destroy(&vd->lock);
	free(vd->vqs);
	vd->vqs = NULL;
}

void virtio_lock(struct virtio_dev *vd)
{
	pthread_mutex_lock(&vd->lock);
}

void virtio_unlock(struct virtio_dev *vd)
{
	pthread_mutex_unlock(&vd->lock);
}

uint32_t virtio_host_features(const struct virtio_dev *vd, uint32_t sel)
{
	return sel < 2 ? (uint32_t)(vd->host_features >> (32 * sel)) : 0;
}

void virtio_set_guest_features(struct virtio_dev *vd, uint32_t sel, uint32_t val)
{
	if (sel >= 2 || (vd->status & VIRTIO_STATUS_FEATURES_OK) || vd->resetting)
		return;
	vd->guest_features &= ~(0xffffffffull << (32 * sel));
	vd->guest_features |= (uint64_t)val << (32 * sel);
}

bool virtio_has_feature(const struct virtio_dev *vd, unsigned bit)
{
	return vd->guest_features & (1ull << bit);
}

bool virtio_live(const struct virtio_dev *vd)
{
	return (vd->status & VIRTIO_STATUS_DRIVER_OK) &&
	       !(vd->status & VIRTIO_STATUS_NEEDS_RESET) && !vd->dma_off && !vd->resetting;
}

void virtio_needs_reset(struct virtio_dev *vd, const char *fmt, ...)
{
	va_list ap;

	if (vd->warnings++ < 10) {
		fprintf(stderr, "microvm: warning: %s: ", vd->name);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputs("; device needs a reset\n", stderr);
	}
	if (vd->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	vd->status |= VIRTIO_STATUS_NEEDS_RESET;
	if (vd->status & VIRTIO_STATUS_DRIVER_OK) {
		vd->config_gen++;
		atomic_fetch_or(&vd->isr, VIRTIO_ISR_CONFIG);
		vd->tops->interrupt(vd, -1);
	}
	virtio_changed(vd);
}

void virtio_changed(struct virtio_dev *vd)
{
	if (vd->ops->changed)
		vd->ops->changed(vd);
}

void virtio_reset(struct virtio_dev *vd)
{
	/* A new generation first: whatever completes from here on is dropped. */
	for (unsigned i = 0; i < vd->nvqs; i++)
		virtq_stop(&vd->vqs[i]);
	vd->resetting = true;
	if (vd->ops->reset)
		vd->ops->reset(vd);
	vd->resetting = false;
	for (unsigned i = 0; i < vd->nvqs; i++)
		virtq_reset(&vd->vqs[i]);
	vd->status = 0;
	vd->guest_features = 0;
	atomic_store(&vd->isr, 0);
	vd->config_gen++;
}

void virtio_serve_queues(struct virtio_dev *vd)
{
	for (unsigned i = 0; i < vd->nvqs && virtio_live(vd) && !vd->paused; i++)
		if (vd->vqs[i].ready)
			vd->ops->notify(vd, i);
}

void virtio_set_paused(struct virtio_dev *vd, bool paused)
{
	vd->paused = paused;
}

/* DRIVER_OK: the device starts (or needs a reset), and serves what was queued before. */
static void activate(struct virtio_dev *vd)
{
	int err = vd->ops->activate ? vd->ops->activate(vd) : 0;

	if (err) {
		virtio_needs_reset(vd, "cannot start: %s", strerror(-err));
		return;
	}
	/* Buffers queued before DRIVER_OK are served now. */
	virtio_serve_queues(vd);
}

void virtio_set_status(struct virtio_dev *vd, uint8_t status)
{
	uint8_t old = vd->status;

	if (vd->resetting)
		return; /* another vCPU is resetting the device */
	if (status == 0) {
		virtio_reset(vd);
		return;
	}
	/* Bits are only ever added; NEEDS_RESET belongs to the device. */
	status = (status & ~VIRTIO_STATUS_NEEDS_RESET) | (old & VIRTIO_STATUS_NEEDS_RESET);
	if ((old & ~status) & ~VIRTIO_STATUS_NEEDS_RESET) {
		virtio_needs_reset(vd, "driver cleared status bits (0x%x -> 0x%x)", old, status);
		return;
	}
	if ((status & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
		/* Refuse features we never offered, and legacy (pre-1.0) drivers. */
		if ((vd->guest_features & ~vd->host_features) ||
		    !virtio_has_feature(vd, VIRTIO_F_VERSION_1) ||
		    (vd->ops->features_ok && !vd->ops->features_ok(vd)))
			status &= ~VIRTIO_STATUS_FEATURES_OK;
		for (unsigned i = 0; i < vd->nvqs; i++) {
			vd->vqs[i].event_idx = virtio_has_feature(vd, VIRTIO_F_EVENT_IDX);
			vd->vqs[i].indirect = virtio_has_feature(vd, VIRTIO_F_INDIRECT_DESC);
		}
	}
	vd->status = status;
	if ((status & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)) {
		if (!(status & VIRTIO_STATUS_FEATURES_OK)) {
			virtio_needs_reset(vd, "DRIVER_OK without FEATURES_OK");
			return;
		}
		activate(vd);
	}
}

struct virtq *virtio_queue_layout(struct virtio_dev *vd, unsigned q)
{
	if (q >= vd->nvqs || vd->vqs[q].ready || (vd->status & VIRTIO_STATUS_DRIVER_OK) ||
	    vd->resetting)
		return NULL;
	return &vd->vqs[q];
}

void virtio_queue_enable(struct virtio_dev *vd, unsigned q)
{
	struct virtq *vq;

	if (q >= vd->nvqs || vd->vqs[q].ready || vd->resetting)
		return;
	vq = &vd->vqs[q];
	if (vd->status & VIRTIO_STATUS_DRIVER_OK) {
		/* Without VIRTIO_F_RING_RESET queues are set up before DRIVER_OK only. */
		virtio_needs_reset(vd, "queue %u enabled after DRIVER_OK", q);
		return;
	}
	if (virtq_start(vq, vd->mem))
		virtio_needs_reset(
			vd,
			"queue %u: size %u or ring addresses (desc 0x%llx, avail 0x%llx, "
			"used 0x%llx) invalid",
			q, vq->num, (unsigned long long)vq->desc_gpa,
			(unsigned long long)vq->avail_gpa, (unsigned long long)vq->used_gpa);
}

void virtio_queue_disable(struct virtio_dev *vd, unsigned q)
{
	if (q < vd->nvqs && vd->vqs[q].ready) {
		virtq_stop(&vd->vqs[q]);
		virtio_changed(vd);
	}
}

void virtio_set_dma(struct virtio_dev *vd, bool enabled)
{
	bool was = !vd->dma_off;

	vd->dma_off = !enabled;
	if (enabled != was)
		virtio_changed(vd);
	/* Kicks that arrived while DMA was off were not served. */
	if (enabled && !was && virtio_live(vd))
		virtio_serve_queues(vd);
}

void virtio_config_access(struct virtio_dev *vd, uint32_t off, uint8_t *data, uint32_t len,
			  bool is_write)
{
	if (off >= vd->config_len || len > vd->config_len - off) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	if (!is_write)
		memcpy(data, vd->config + off, len);
	else if (vd->ops->config_write && !vd->resetting)
		vd->ops->config_write(vd, off, data, len);
	/* Without config_write, no field is writable (blk writeback is not offered). */
}

void virtio_kicks_adapt(struct virtio_dev *vd)
{
	if (!vd->tops || !vd->tops->set_trap_kicks)
		return;
	vd->kick.adaptive = true;
	kickctl_init(&vd->kick.ctl, vd->kick.trap ? KICK_VCPU : KICK_LOOP, timeline_clock_ns());
}

/* ioeventfd = auto: at a kick, serve the next ones where the controller says. Lock held. */
static void kick_adapt(struct virtio_dev *vd)
{
	uint64_t done = 0;
	bool trap;
	int err;

	if (!vd->kick.adaptive)
		return;
	for (unsigned i = 0; i < vd->nvqs; i++)
		done += vd->vqs[i].used_total;
	trap = kickctl_tick(&vd->kick.ctl, timeline_clock_ns(), done) == KICK_VCPU;
	if (trap == vd->kick.trap)
		return;
	err = vd->tops->set_trap_kicks(vd, trap);
	if (err) {
		log_warn("%s: cannot move queue kicks to the %s: %s; they stay where they are",
			 vd->name, trap ? "vCPUs" : "event loop", strerror(-err));
		vd->kick.adaptive = false;
		return;
	}
	vd->kick.trap = trap;
	vd->kick.moves++;
}

void virtio_queue_notify(struct virtio_dev *vd, unsigned q)
{
	virtio_lock(vd);
	/* Paused: the kick is dropped; resuming serves every queue. */
	if (!vd->paused) {
		kick_adapt(vd);
		if (q < vd->nvqs && vd->vqs[q].ready && virtio_live(vd))
			vd->ops->notify(vd, q);
	}
	virtio_unlock(vd);
}

void virtio_queue_reschedule(struct virtio_dev *vd, unsigned q)
{
	uint64_t one = 1;

	if (vd->kicks && q < vd->nvqs && write(vd->kicks[q].fd, &one, sizeof(one)) < 0 &&
	    errno != EAGAIN && vd->warnings++ < 10)
		log_warn("%s: queue %u: cannot reschedule: %s", vd->name, q, strerror(errno));
}

void virtio_queue_interrupt(struct virtio_dev *vd, unsigned q)
{
	if (virtq_should_notify(&vd->vqs[q]))
		virtio_queue_interrupt_now(vd, q);
}

void virtio_queue_interrupt_now(struct virtio_dev *vd, unsigned q)
{
	atomic_fetch_or(&vd->isr, VIRTIO_ISR_QUEUE);
	vd->stats.interrupts++;
	vd->tops->interrupt(vd, (int)q);
}

static void on_kick(void *opaque, uint32_t events)
{
	struct virtio_kick *k = opaque;
	uint64_t v;

	(void)events;
	if (read(k->fd, &v, sizeof(v)) == sizeof(v)) {
		k->vd->stats.kick_wakeups++;
		virtio_queue_notify(k->vd, k->q);
	}
}

int virtio_kicks_open(struct virtio_dev *vd, struct loop *loop)
{
	struct virtio_kick *k = calloc(vd->nvqs, sizeof(*k));

	vd->kicks = k;
	if (!k)
		return -ENOMEM;
	for (unsigned q = 0; q < vd->nvqs; q++)
		k[q] = (struct virtio_kick){vd, q, -1};
	for (unsigned q = 0; q < vd->nvqs; q++) {
		int err;

		k[q].fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (k[q].fd < 0)
			return -errno;
		err = loop_add(loop, k[q].fd, EPOLLIN, on_kick, &k[q]);
		if (err) {
			close(k[q].fd);
			k[q].fd = -1;
			return err;
		}
	}
	return 0;
}

void virtio_kicks_close(struct virtio_dev *vd, struct loop *loop)
{
	struct virtio_kick *k = vd->kicks;

	for (unsigned q = 0; k && q < vd->nvqs; q++) {
		if (k[q].fd < 0)
			continue;
		loop_del(loop, k[q].fd);
		close(k[q].fd);
	}
	free(k);
	vd->kicks = NULL;
}

/* --- snapshots ---------------------------------------------------------------------------- */

/* A queue's fields (its index in the %u) and the largest value of each, in enum order. */
enum {
	Q_NUM,
	Q_READY,
	Q_DESC,
	Q_AVAIL,
	Q_USED,
	Q_LAST_AVAIL,
	Q_AVAIL_SEEN,
	Q_USED_IDX,
	Q_SIGNALLED_USED,
	Q_SIGNALLED_VALID,
	Q_NFIELDS
};

static const struct {
	const char *name;
	uint64_t max;
} qfields[Q_NFIELDS] = {
	{"q%u.num", 0xffff},	    {"q%u.ready", 1},	      {"q%u.desc", UINT64_MAX},
	{"q%u.avail", UINT64_MAX},  {"q%u.used", UINT64_MAX}, {"q%u.last_avail", 0xffff},
	{"q%u.avail_seen", 0xffff}, {"q%u.used_idx", 0xffff}, {"q%u.signalled_used", 0xffff},
	{"q%u.signalled_valid", 1},
};

static int queue_save(const struct virtq *q, unsigned i, struct snap_sec *sec)
{
	const uint64_t v[Q_NFIELDS] = {
		q->num,	       q->ready,      q->desc_gpa, q->avail_gpa,      q->used_gpa,
		q->last_avail, q->avail_seen, q->used_idx, q->signalled_used, q->signalled_valid};
	int err = 0;

	for (unsigned k = 0; !err && k < Q_NFIELDS; k++)
		err = devstate_put_at(sec, qfields[k].name, i, v[k]);
	return err;
}

int virtio_save(const struct virtio_dev *vd, struct snap_sec *sec)
{
	int err = 0;

	err = err ?: snap_put_u64(sec, "device_id", vd->ops->device_id);
	err = err ?: snap_put_u64(sec, "queues", vd->nvqs);
	err = err ?: snap_put_u64(sec, "features", vd->guest_features);
	err = err ?: snap_put_u64(sec, "status", vd->status);
	err = err ?: snap_put_u64(sec, "config_gen", vd->config_gen);
	err = err ?: snap_put_u64(sec, "isr", atomic_load(&vd->isr));
	/* A device without configuration space has none: zero bytes. */
	err = err
		      ?: snap_put_bytes(sec, "config", vd->config ? (const void *)vd->config : vd,
					vd->config_len);
	for (unsigned i = 0; !err && i < vd->nvqs; i++)
		err = queue_save(&vd->vqs[i], i, sec);
	return err;
}

/*
 * The section describes a device of this type with as many queues, and a configuration space
 * that is this one's or one the type lets the host change (*changed then set).
 */
static int check_shape(const struct virtio_dev *vd, const struct snap_sec *sec, bool *changed)
{
	const void *cfg;
	uint64_t id, nq;
	int err = 0;

	err = err ?: snap_need_u64(sec, "device_id", UINT32_MAX, &id);
	if (!err && id != vd->ops->device_id)
		return devstate_bad(
			sec, "device_id",
			"virtio device %llu, this one is %u (a section of another type)",
			(unsigned long long)id, vd->ops->device_id);
	err = err ?: snap_need_u64(sec, "queues", UINT32_MAX, &nq);
	if (!err && nq != vd->nvqs)
		return devstate_bad(sec, "queues", "%llu queues, this device has %u",
				    (unsigned long long)nq, vd->nvqs);
	err = err ?: devstate_need_blob(sec, "config", vd->config_len, &cfg);
	if (err)
		return err;
	*changed = vd->config_len && memcmp(cfg, vd->config, vd->config_len);
	if (*changed && !(vd->ops->config_restorable && vd->ops->config_restorable(vd, cfg)))
		return devstate_bad(sec, "config",
				    "the device's configuration space differs from this one's (a "
				    "resized disk image, another MTU?)");
	return 0;
}

/*
 * Features and status as the driver could have set them (virtio_set_status's rules): until
 * FEATURES_OK its feature bits are only words it wrote (checked when it sets FEATURES_OK,
 * as here once it has), and DRIVER_OK came after FEATURES_OK or broke the device.
 */
static int check_status(struct virtio_dev *vd, const struct snap_sec *sec, uint64_t features,
			uint64_t status)
{
	uint64_t was = vd->guest_features;
	bool ok;

	if ((status & VIRTIO_STATUS_DRIVER_OK) && !(status & VIRTIO_STATUS_FEATURES_OK) &&
	    !(status & VIRTIO_STATUS_NEEDS_RESET))
		return devstate_bad(sec, "status", "0x%llx: DRIVER_OK without FEATURES_OK",
				    (unsigned long long)status);
	if (!(status & VIRTIO_STATUS_FEATURES_OK))
		return 0;
	if (features & ~vd->host_features)
		return devstate_bad(sec, "features", "0x%llx: bits 0x%llx were never offered",
				    (unsigned long long)features,
				    (unsigned long long)(features & ~vd->host_features));
	if (!(features & (1ull << VIRTIO_F_VERSION_1)))
		return devstate_bad(sec, "features", "FEATURES_OK without VERSION_1");
	vd->guest_features = features; /* what features_ok looks at (lock held) */
	ok = !vd->ops->features_ok || vd->ops->features_ok(vd);
	vd->guest_features = was;
	return ok ? 0
		  : devstate_bad(sec, "features", "0x%llx: inconsistent (dependencies)",
				 (unsigned long long)features);
}

/*
 * Queue i's fields into q, a copy of the device's queue: a ready queue's size and rings are
 * checked, and started, as when the driver enables it; then its place in the rings is set.
 */
static int queue_restore(const struct virtio_dev *vd, const struct snap_sec *sec, unsigned i,
			 struct virtq *q, bool event_idx, bool indirect)
{
	uint64_t v[Q_NFIELDS];
	char field[DEVSTATE_NAME_LEN];
	const char *bad;
	int err = 0;

	for (unsigned k = 0; !err && k < Q_NFIELDS; k++)
		err = devstate_need_at(sec, qfields[k].name, i, qfields[k].max, &v[k]);
	if (err)
		return err;
	q->num = v[Q_NUM];
	q->desc_gpa = v[Q_DESC];
	q->avail_gpa = v[Q_AVAIL];
	q->used_gpa = v[Q_USED];
	bad = v[Q_READY] ? virtq_layout_error(q, vd->mem) : NULL;
	if (bad) {
		snprintf(field, sizeof(field), "q%u.%s", i, bad);
		return devstate_bad(sec, field,
				    "queue of %u entries (at most %u): size not a power of two, or "
				    "a ring misaligned or outside guest RAM",
				    q->num, q->num_max);
	}
	if (v[Q_READY] && virtq_start(q, vd->mem))
		return -EINVAL; /* what virtq_layout_error passed, it takes */
	q->last_avail = v[Q_LAST_AVAIL];
	q->avail_seen = v[Q_AVAIL_SEEN];
	q->used_idx = v[Q_USED_IDX];
	q->signalled_used = v[Q_SIGNALLED_USED];
	q->signalled_valid = v[Q_SIGNALLED_VALID];
	q->event_idx = event_idx;
	q->indirect = indirect;
	return 0;
}

int virtio_restore(struct virtio_dev *vd, const struct snap_sec *sec)
{
	uint64_t features, status, gen, isr;
	struct virtq *vqs;
	bool negotiated, changed = false;
	int err = check_shape(vd, sec, &changed);

	err = err ?: snap_need_u64(sec, "features", UINT64_MAX, &features);
	err = err ?: snap_need_u64(sec, "status", 0xff, &status);
	err = err ?: snap_need_u64(sec, "config_gen", UINT32_MAX, &gen);
	err = err ?: snap_need_u64(sec, "isr", VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG, &isr);
	err = err ?: check_status(vd, sec, features, status);
	if (err)
		return err;
	vqs = malloc(vd->nvqs * sizeof(*vqs));
	if (!vqs)
		return -ENOMEM;
	memcpy(vqs, vd->vqs, vd->nvqs * sizeof(*vqs));
	/* virtio_set_status takes these from the features at FEATURES_OK. */
	negotiated = status & VIRTIO_STATUS_FEATURES_OK;
	for (unsigned i = 0; !err && i < vd->nvqs; i++)
		err = queue_restore(vd, sec, i, &vqs[i],
				    negotiated && (features & (1ull << VIRTIO_F_EVENT_IDX)),
				    negotiated && (features & (1ull << VIRTIO_F_INDIRECT_DESC)));
	if (!err) {
		memcpy(vd->vqs, vqs, vd->nvqs * sizeof(*vqs));
		vd->guest_features = features;
		vd->status = status;
		/*
		 * The configuration space is the device's own (a restore may give a NIC a new
		 * MAC address): a new generation then, so that a driver caught between two
		 * reads of it reads it again (virtio 1.2 4.1.4.3.1, 4.2.2.1). No configuration
		 * change interrupt: none is required, and the driver could do nothing with
		 * one (Linux's virtio-net reads the MAC address only when it probes).
		 */
		vd->config_gen = (uint32_t)gen + changed;
		atomic_store(&vd->isr, isr);
	}
	free(vqs);
	return err;
}

void virtio_restart(struct virtio_dev *vd)
{
	if ((vd->status & VIRTIO_STATUS_DRIVER_OK) && !(vd->status & VIRTIO_STATUS_NEEDS_RESET))
		activate(vd);
}
