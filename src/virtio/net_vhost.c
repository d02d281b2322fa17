/* virtio-net, vhost = on: the kernel moves the frames, microvm keeps the protocol. */
#include "virtio/net_priv.h"

#include <endian.h>
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "backends/vhost.h"
#include "log.h"
#include "loop.h"
#include "virtio/virtio.h"

static unsigned ring_vq(const struct vhost_ring *r)
{
	return 2 * r->nq->idx + r->idx;
}

/* What the kernel should signal for ring r: the transport's irqfd if it has one now. */
static int ring_call(struct net *n, const struct vhost_ring *r)
{
	const struct virtio_transport_ops *t = n->va.vd.tops;
	int fd = t && t->queue_irqfd ? t->queue_irqfd(&n->va.vd, ring_vq(r)) : -1;

	return fd >= 0 ? fd : r->call;
}

/* Read an eventfd's count away (non-blocking). */
static void drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("eventfd read: %s", strerror(errno));
}

/* Take pair nq's rings back from the kernel; its kicks wake the event loop again. */
static void vhost_pair_stop(struct net_queue *nq)
{
	struct virtio_dev *vd = &nq->n->va.vd;

	for (unsigned i = 0; i < 2; i++) {
		struct vhost_ring *r = &nq->ring[i];
		int base;

		if (r->call_given < 0)
			continue;
		base = vhost_net_stop(&nq->vh, i);
		/*
		 * Where the kernel stopped: a pause (DMA off) resumes there, a snapshot saves it.
		 * What it published last is the used index now (no interrupt of ours stands).
		 */
		if (base >= 0)
			vd->vqs[ring_vq(r)].last_avail = (uint16_t)base;
		else
			nq->vh_lost = true;
		vd->vqs[ring_vq(r)].used_idx =
			le16toh(((volatile uint16_t *)vd->vqs[ring_vq(r)].used)[1]);
		vd->vqs[ring_vq(r)].signalled_valid = false;
		r->call_given = -1;
		/* What it signalled before it stopped belongs to the session that ended. */
		drain(r->call);
		drain(r->err);
		loop_mod(nq->n->loop, vd->kicks[ring_vq(r)].fd, EPOLLIN);
	}
	nq->vh_on = false;
}

static int vhost_pair_start(struct net_queue *nq)
{
	struct net *n = nq->n;
	struct virtio_dev *vd = &n->va.vd;
	int err = vhost_net_set_features(&nq->vh, vd->guest_features & nq->vh.features);

	for (unsigned i = 0; !err && i < 2; i++) {
		struct vhost_ring *r = &nq->ring[i];
		const struct virtq *vq = &vd->vqs[ring_vq(r)];
		struct vhost_vring ring = {.num = vq->num,
					   .next_avail = vq->last_avail,
					   .desc = vq->desc,
					   .avail = vq->avail,
					   .used = vq->used};
		int call = ring_call(n, r);

		err = vq->ready ? vhost_net_start(&nq->vh, i, &ring, vd->kicks[ring_vq(r)].fd, call,
						  r->err, nq->fd)
				: -EINVAL;
		r->call_given = call; /* also when it failed: the stop below undoes it */
		if (!err)
			loop_mod(n->loop, vd->kicks[ring_vq(r)].fd, 0); /* the kernel's now */
	}
	nq->vh_on = true;
	if (err)
		vhost_pair_stop(nq);
	return err;
}

int net_vhost_sync(struct net *n)
{
	struct virtio_dev *vd = &n->va.vd;

	for (unsigned i = 0; n->vhost && i < n->va.queues; i++) {
		struct net_queue *nq = &n->qs[i];
		bool want = n->running && virtio_live(vd) && !vd->paused && i < n->active &&
			    !nq->vh_lost && !n->tap_gone && vd->vqs[2 * i].ready &&
			    vd->vqs[2 * i + 1].ready;
		int err;

		if (!want) {
			vhost_pair_stop(nq);
			continue;
		}
		if (!nq->vh_on) {
			err = vhost_pair_start(nq);
			if (err) {
				log_warn("%s: queue pair %u: vhost refused the rings: %s", n->name,
					 i, strerror(-err));
				for (unsigned k = 0; k < n->va.queues; k++)
					vhost_pair_stop(&n->qs[k]);
				return err;
			}
			continue;
		}
		for (unsigned k = 0; k < 2; k++) {
			struct vhost_ring *r = &nq->ring[k];
			int call = ring_call(n, r);

			if (call != r->call_given && vhost_net_set_call(&nq->vh, k, call) == 0) {
				r->call_given = call;
				nq->call_switches++;
			}
		}
	}
	return 0;
}

void net_vhost_sync_or_reset(struct net *n)
{
	if (net_vhost_sync(n))
		virtio_needs_reset(&n->va.vd, "the kernel's data path refused the rings");
}

/*
 * The kernel signalled ring r: an interrupt it could not send itself (no irqfd for it), or
 * (err) a ring it cannot use: the driver broke it (e.g. a buffer outside RAM), or the TAP
 * was deleted on the host. (The loop watches nothing on a vhost NIC's TAP, so a deleted one
 * never wakes it: this is where it shows.)
 *
 * The count is read under the device lock. Taking a ring back (vhost_pair_stop) takes the
 * eventfds away from the kernel and drains them, also under it: a count read here was
 * signalled in the session that runs now. Read before the lock, a signal of a session that
 * a reset and a new DRIVER_OK ended while this handler waited for the lock would be blamed
 * on the new one.
 */
static void vhost_signalled(struct vhost_ring *r, bool err)
{
	struct net *n = r->nq->n;
	uint64_t v;
	bool live;

	virtio_lock(&n->va.vd);
	live = read(err ? r->err : r->call, &v, sizeof(v)) == sizeof(v) && r->call_given >= 0;
	if (live && !err) {
		r->nq->relayed++;
		virtio_queue_interrupt_now(&n->va.vd, ring_vq(r));
	} else if (live && tap_deleted(r->nq->fd)) {
		net_tap_gone(n, "the kernel's data path lost it");
	} else if (live) {
		virtio_needs_reset(&n->va.vd,
				   "queue %u: the kernel's data path (vhost) cannot use the ring: "
				   "a malformed chain or a buffer outside RAM",
				   ring_vq(r));
		net_vhost_sync(n);
	}
	virtio_unlock(&n->va.vd);
}

static void on_vhost_call(void *opaque, uint32_t events)
{
	(void)events;
	vhost_signalled(opaque, false);
}

static void on_vhost_err(void *opaque, uint32_t events)
{
	(void)events;
	vhost_signalled(opaque, true);
}

int net_vhost_open(struct net *n, const struct guest_mem *mem)
{
	const uint64_t ring_bits =
		1ull << VIRTIO_F_INDIRECT_DESC | 1ull << VIRTIO_F_EVENT_IDX | F(MRG_RXBUF);

	for (unsigned i = 0; i < n->va.queues; i++) {
		struct net_queue *nq = &n->qs[i];
		int err = vhost_net_open(&nq->vh, mem);

		if (err) {
			log_error("%s: vhost = on but /dev/vhost-net cannot be used: %s%s", n->name,
				  strerror(-err),
				  err == -ENOENT ? " (load the vhost_net module)" : "");
			return err;
		}
		if (!(nq->vh.features & (1ull << VIRTIO_F_VERSION_1))) {
			log_error("%s: the kernel's vhost-net lacks VIRTIO_F_VERSION_1", n->name);
			return -EOPNOTSUPP;
		}
		n->va.vd.host_features &= ~(ring_bits & ~nq->vh.features);
		for (unsigned k = 0; k < 2; k++) {
			struct vhost_ring *r = &nq->ring[k];

			r->call = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
			r->err = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
			if (r->call < 0 || r->err < 0)
				return -errno;
			err = loop_add(n->loop, r->call, EPOLLIN, on_vhost_call, r);
			if (err)
				return err;
			err = loop_add(n->loop, r->err, EPOLLIN, on_vhost_err, r);
			if (err) {
				loop_del(n->loop, r->call);
				return err;
			}
			r->watched = true;
		}
	}
	return 0;
}
