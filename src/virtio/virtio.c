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
		int err;

		if (!(status & VIRTIO_STATUS_FEATURES_OK)) {
			virtio_needs_reset(vd, "DRIVER_OK without FEATURES_OK");
			return;
		}
		err = vd->ops->activate ? vd->ops->activate(vd) : 0;
		if (err) {
			virtio_needs_reset(vd, "cannot start: %s", strerror(-err));
			return;
		}
		/* Buffers queued before DRIVER_OK are served now. */
		virtio_serve_queues(vd);
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
	/* Writable fields (e.g. blk writeback) are not offered: writes are ignored. */
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
