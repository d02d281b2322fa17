/* virtio-net: an Ethernet NIC backed by a host TAP interface, on either transport. */
#include "virtio/net.h"

#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <linux/virtio_ids.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

#include "backends/tap.h"
#include "backends/vhost.h"
#include "config.h"
#include "log.h"
#include "machine.h"
#include "snapshot/devstate.h"
#include "virtio/net_frame.h"
#include "virtio/net_priv.h"
#include "vm.h"

#define RX_BUF_LEN  (NET_HDR_LEN + 65536 + 1024) /* a frame plus room to see truncation */
#define RX_BUDGET   256				 /* frames per wake-up before yielding */
#define TX_BUDGET   256				 /* chains per wake-up before yielding */
#define CTRL_BUDGET 64				 /* control commands per wake-up */
#define TX_IOV_MAX  1000			 /* writev takes at most 1024 */

#define OFFLOAD_FEATURES                                                                           \
	(F(CSUM) | F(GUEST_CSUM) | F(GUEST_TSO4) | F(GUEST_TSO6) | F(GUEST_ECN) | F(HOST_TSO4) |   \
	 F(HOST_TSO6) | F(HOST_ECN))

/* --- the device --------------------------------------------------------------------------- */

/* Count a dropped frame by reason (what, why): true the first time the reason occurs. */
static bool count_drop(struct net *n, const char *what, const char *why)
{
	for (unsigned i = 0; i < n->ndrops; i++) {
		if (n->drops[i].what == what && !strcmp(n->drops[i].why, why)) {
			n->drops[i].count++;
			return false;
		}
	}
	if (n->ndrops == MAX_DROP_KINDS) {
		n->other_drops++;
		return false;
	}
	n->drops[n->ndrops].what = what;
	n->drops[n->ndrops].why = why;
	n->drops[n->ndrops++].count = 1;
	return true;
}

/* Count a dropped frame; warn the first time each reason occurs. */
static void net_drop(struct net *n, const char *what, const char *why)
{
	if (count_drop(n, what, why))
		log_warn("%s: %s dropped: %s (further ones are counted)", n->name, what, why);
}

static unsigned rx_vq(const struct net_queue *nq)
{
	return 2 * nq->idx;
}

static unsigned tx_vq(const struct net_queue *nq)
{
	return 2 * nq->idx + 1;
}

/* The control queue follows the data queues of every pair, or of the first alone without MQ. */
static unsigned ctrl_vq(const struct net *n)
{
	return virtio_has_feature(&n->va.vd, VIRTIO_NET_F_MQ) ? 2 * n->va.queues : 2;
}

/*
 * Is this pair's data moved by microvm now (not by the kernel, not stopped, not paused)? A
 * NIC whose TAP is gone is served by microvm (which drops what the guest sends).
 */
static bool pair_live(const struct net_queue *nq)
{
	return nq->n->running && (!nq->n->vhost || nq->n->tap_gone) && nq->idx < nq->n->active &&
	       virtio_live(&nq->n->va.vd) && !nq->n->va.vd.paused;
}

/* Watch the TAP queue for what this pair is waiting for (nothing while it is idle). */
static void update_events(struct net_queue *nq)
{
	uint32_t want = 0;

	if (!nq->watched)
		return; /* the TAP is gone */
	if (pair_live(nq)) {
		if (!nq->rx_waiting)
			want |= EPOLLIN;
		if (nq->tx_blocked)
			want |= EPOLLOUT;
	}
	if (want != nq->events && loop_mod(nq->n->loop, nq->fd, want) == 0)
		nq->events = want;
}

enum { RX_DONE, RX_NOBUFS, RX_BROKEN, RX_EMPTY };

/*
 * Pop receive buffers onto nq->chains from *nc on (their writable segments follow each other
 * in nq->rxiov from *iov_used), until *room reaches want or, without mergeable buffers, one
 * is taken. RX_DONE, RX_NOBUFS (the ring has no more),
 * RX_BROKEN (a malformed buffer: the device needs a reset), or RX_EMPTY (no room for more).
 */
static int rx_take(struct net_queue *nq, unsigned *nc, unsigned *iov_used, size_t *room,
		   size_t want)
{
	struct virtio_dev *vd = &nq->n->va.vd;
	struct virtq *vq = &vd->vqs[rx_vq(nq)];
	bool mergeable = virtio_has_feature(vd, VIRTIO_NET_F_MRG_RXBUF);

	while (*room < want && (mergeable || !*nc)) {
		struct virtq_chain *c = &nq->chains[*nc];
		int r;

		if (*nc == vq->num || nq->rxiov_max - *iov_used < VIRTQ_MAX_INDIRECT)
			return RX_EMPTY;
		*c = (struct virtq_chain){.iov = nq->rxiov + *iov_used,
					  .iov_max = nq->rxiov_max - *iov_used};
		r = virtq_pop(vq, vd->mem, c);
		if (r < 0 || (r > 0 && (c->nout || !c->in_len))) {
			virtq_unpop(vq, *nc);
			virtio_needs_reset(vd, "receive queue %u: malformed or readable buffer",
					   rx_vq(nq));
			return RX_BROKEN;
		}
		if (r == 0)
			return RX_NOBUFS;
		*iov_used += c->nin;
		*room += c->in_len;
		(*nc)++;
	}
	return RX_DONE;
}

/* Hand the staged frame to the guest (or drop it when it can never fit). */
static int rx_deliver(struct net_queue *nq)
{
	struct net *n = nq->n;
	struct virtio_dev *vd = &n->va.vd;
	struct virtq *vq = &vd->vqs[rx_vq(nq)];
	unsigned nc = 0, iov_used = 0;
	size_t room = 0;
	int r, k;

	r = rx_take(nq, &nc, &iov_used, &room, nq->rxlen);
	if (r == RX_BROKEN)
		return r;
	if (r != RX_DONE) {
		virtq_unpop(vq, nc);
		if (r == RX_NOBUFS)
			return r;
		/* The driver's buffers are too small to ever hold this frame. */
		net_drop(n, "received frame", "larger than the posted receive buffers");
		nq->rx_dropped++;
		return RX_DONE;
	}
	k = net_rx_scatter(nq->chains, nc, nq->rxbuf, nq->rxlen,
			   virtio_has_feature(vd, VIRTIO_NET_F_MRG_RXBUF), nq->used);
	if (k < 0) {
		virtq_unpop(vq, nc);
		net_drop(n, "received frame", "larger than the receive buffer");
		nq->rx_dropped++;
		return RX_DONE;
	}
	for (int i = 0; i < k; i++)
		virtq_add_used(vq, nq->chains[i].head, nq->used[i]);
	virtq_unpop(vq, nc - (unsigned)k);
	virtq_publish(vq);
	nq->rx_frames++;
	nq->rx_bytes += nq->rxlen - NET_HDR_LEN;
	return RX_DONE;
}

/*
 * Read the next frame from the TAP straight into the guest's receive buffers: as many as
 * the last frame filled, and after them the staging buffer, at the frame's own offsets, for
 * what does not fit. What spilled there is copied into more buffers; without them the whole
 * frame is staged (nq->rxlen) and waits for rx_deliver (so is a frame that came while the
 * guest had posted none, as rx_deliver's path always did). RX_DONE (delivered or dropped),
 * RX_NOBUFS, RX_BROKEN or RX_EMPTY (the TAP has nothing).
 */
static int rx_direct(struct net_queue *nq)
{
	struct net *n = nq->n;
	struct virtio_dev *vd = &n->va.vd;
	struct virtq *vq = &vd->vqs[rx_vq(nq)];
	unsigned nc = 0, iov_used = 0, in_guest;
	size_t room = 0, cap, len, done = 0, first;
	struct virtio_net_hdr_v1 h;
	const char *why = NULL;
	unsigned k = 0;
	ssize_t got;
	int r;

	if (rx_take(nq, &nc, &iov_used, &room, nq->rx_hint ? nq->rx_hint : 1) == RX_BROKEN)
		return RX_BROKEN;
	if (iov_used >= IOV_MAX) {
		/* More segments than one readv takes: all through the staging buffer. */
		virtq_unpop(vq, nc);
		nc = iov_used = 0;
		room = 0;
	}
	in_guest = iov_used;
	cap = room;
	if (room < RX_BUF_LEN) {
		nq->rxiov[iov_used] = (struct iovec){nq->rxbuf + room, RX_BUF_LEN - room};
		cap = RX_BUF_LEN;
	}
	got = readv(nq->fd, nq->rxiov, in_guest + (room < RX_BUF_LEN));
	if (got < 0) {
		virtq_unpop(vq, nc);
		if (errno != EAGAIN && errno != EINTR)
			net_drop(n, "received frame", strerror(errno));
		return RX_EMPTY;
	}
	len = (size_t)got;
	/* The header as the TAP wrote it (a copy: the guest can write its buffers any time). */
	if (len < NET_HDR_LEN + NET_ETH_HLEN)
		why = "shorter than an Ethernet header";
	else if (len >= cap)
		why = "larger than 64 KiB";
	else if (iov_to_buf(nq->rxiov, in_guest + (room < RX_BUF_LEN), 0, &h, sizeof(h)) !=
			 sizeof(h) ||
		 net_rx_header(&h, vd->guest_features) < 0)
		why = "offloads the guest did not negotiate";
	if (why) {
		virtq_unpop(vq, nc);
		net_drop(n, "received frame", why);
		nq->rx_dropped++;
		return RX_DONE;
	}
	nq->rx_hint = len;
	first = room;
	if (len > room) {
		/* The rest is in the staging buffer at rxbuf + first: into more buffers. */
		r = rx_take(nq, &nc, &iov_used, &room, len);
		if (r == RX_BROKEN)
			return r;
		if (room < len) {
			virtq_unpop(vq, nc);
			if (r != RX_NOBUFS) {
				net_drop(n, "received frame",
					 "larger than the posted receive buffers");
				nq->rx_dropped++;
				return RX_DONE;
			}
			/* Staged whole until the driver posts more. */
			iov_to_buf(nq->rxiov, in_guest, 0, nq->rxbuf, first);
			memcpy(nq->rxbuf, &h, sizeof(h));
			nq->rxlen = len;
			return RX_NOBUFS;
		}
		iov_from_buf(nq->rxiov + in_guest, iov_used - in_guest, 0, nq->rxbuf + first,
			     len - first);
	}
	/* The chains the frame filled, the header with their count. */
	while (done < len) {
		nq->used[k] = (uint32_t)(len - done < nq->chains[k].in_len ? len - done
									   : nq->chains[k].in_len);
		done += nq->used[k++];
	}
	h.num_buffers = htole16((uint16_t)k);
	iov_from_buf(nq->rxiov, iov_used, 0, &h, sizeof(h));
	for (unsigned i = 0; i < k; i++)
		virtq_add_used(vq, nq->chains[i].head, nq->used[i]);
	virtq_unpop(vq, nc - k);
	virtq_publish(vq);
	nq->rx_frames++;
	nq->rx_bytes += len - NET_HDR_LEN;
	return RX_DONE;
}

/* Move frames from the TAP queue into the guest until either side runs dry. Lock held. */
static void rx_poll(struct net_queue *nq)
{
	struct net *n = nq->n;
	struct virtio_dev *vd = &n->va.vd;
	struct virtq *vq = &vd->vqs[rx_vq(nq)];
	bool pushed = false;

	if (n->tap_gone)
		return; /* nothing comes in */
	for (unsigned budget = RX_BUDGET; pair_live(nq) && vq->ready && budget; budget--) {
		unsigned long frames = nq->rx_frames;
		int r = nq->rxlen ? rx_deliver(nq) : rx_direct(nq);

		if (r == RX_BROKEN)
			return;
		if (r == RX_EMPTY)
			break;
		if (r == RX_NOBUFS) {
			if (virtq_enable_notify(vq))
				continue;
			nq->rx_waiting = true;
			break;
		}
		nq->rxlen = 0;
		pushed |= nq->rx_frames != frames;
	}
	if (pushed)
		virtio_queue_interrupt(vd, rx_vq(nq));
	update_events(nq);
}

/* Send one chain's frame to the TAP. Returns 1 sent or dropped, 0 when the TAP is full. */
static int tx_one(struct net_queue *nq, struct virtq_chain *c)
{
	struct net *n = nq->n;
	struct virtio_net_hdr_v1 h;
	const char *why = "guest buffer is writable or shorter than the header";
	unsigned first;
	ssize_t r;

	if (!c->nin && c->out_len >= (uint32_t)NET_HDR_LEN) {
		iov_to_buf(c->iov, c->nout, 0, &h, sizeof(h));
		if (net_tx_header(&h, n->va.vd.guest_features, c->out_len - NET_HDR_LEN, n->mtu,
				  &why) == 0)
			why = NULL;
	}
	if (why) {
		net_drop(n, "transmitted frame", why);
		nq->tx_dropped++;
		return 1;
	}
	if (n->tap_gone) {
		count_drop(n, "transmitted frame", "the TAP is gone"); /* said once, by tap_gone */
		nq->tx_dropped++;
		return 1;
	}
	first = iov_advance(c->iov, c->nout, NET_HDR_LEN);
	/* The checked copy of the header goes out, never the guest's (it may change it). */
	nq->txiov[0] = (struct iovec){&h, sizeof(h)};
	memmove(nq->txiov + 1, c->iov + first, (c->nout - first) * sizeof(struct iovec));
	r = writev(nq->fd, nq->txiov, (int)(1 + c->nout - first));
	if (r < 0 && errno == EAGAIN)
		return 0;
	if (r < 0) {
		net_drop(n, "transmitted frame", strerror(errno));
		nq->tx_dropped++;
		return 1;
	}
	nq->tx_frames++;
	nq->tx_bytes += c->out_len - NET_HDR_LEN;
	return 1;
}

/*
 * Send what the guest queued until the ring is empty or the TAP is full, or the budget is
 * spent (then the queue is rescheduled). Lock held.
 */
static void tx_poll(struct net_queue *nq)
{
	struct virtio_dev *vd = &nq->n->va.vd;
	struct virtq *vq = &vd->vqs[tx_vq(nq)];
	unsigned budget = TX_BUDGET;
	bool pushed = false;

	if (!pair_live(nq) || nq->tx_blocked)
		return;
	do {
		for (;;) {
			struct virtq_chain c = {.iov = nq->txiov + 1, .iov_max = TX_IOV_MAX};
			int r;

			if (!budget--) {
				virtio_queue_reschedule(vd, tx_vq(nq));
				goto out;
			}
			r = virtq_pop(vq, vd->mem, &c);

			if (r < 0) {
				virtio_needs_reset(vd,
						   "transmit queue %u: malformed descriptor chain",
						   tx_vq(nq));
				return;
			}
			if (r == 0)
				break;
			if (!tx_one(nq, &c)) {
				virtq_unpop(vq, 1);
				nq->tx_blocked = true;
				goto out;
			}
			virtq_push(vq, c.head, 0);
			pushed = true;
		}
	} while (virtq_enable_notify(vq));
out:
	if (pushed)
		virtio_queue_interrupt(vd, tx_vq(nq));
	update_events(nq);
}

/* Use the first count queue pairs: TAP queues of the others are detached. */
static void set_pairs(struct net *n, uint32_t count)
{
	n->active = count;
	for (unsigned i = 0; i < n->va.queues; i++) {
		struct net_queue *nq = &n->qs[i];
		bool want = i < count;

		if (n->va.queues > 1 && want != nq->attached && !n->tap_gone) {
			int err = tap_set_queue_enabled(nq->fd, want);

			if (err)
				log_warn("%s: cannot %s TAP queue %u: %s", n->name,
					 want ? "attach" : "detach", i, strerror(-err));
			else
				nq->attached = want;
		}
		if (!want) {
			nq->rxlen = 0;
			nq->rx_waiting = false;
			nq->tx_blocked = false;
		}
		update_events(nq);
	}
}

/* Serve the control queue: only the number of queue pairs can be set. */
static void ctrl_poll(struct net *n)
{
	struct virtio_dev *vd = &n->va.vd;
	struct virtq *vq = &vd->vqs[ctrl_vq(n)];
	struct iovec iov[16];
	unsigned budget = CTRL_BUDGET;
	bool pushed = false;

	do {
		for (;;) {
			struct virtq_chain c = {.iov = iov, .iov_max = 16};
			struct virtio_net_ctrl_hdr hdr;
			uint8_t ack = VIRTIO_NET_ERR;
			uint16_t pairs;
			int r;

			if (!budget--) {
				virtio_queue_reschedule(vd, ctrl_vq(n));
				goto out;
			}
			r = virtq_pop(vq, vd->mem, &c);
			if (r < 0 || (r > 0 && (c.out_len < sizeof(hdr) || c.in_len < 1))) {
				virtio_needs_reset(vd, "malformed control command");
				return;
			}
			if (r == 0)
				break;
			iov_to_buf(c.iov, c.nout, 0, &hdr, sizeof(hdr));
			/* Without MQ the pair count is fixed (virtio 1.2 5.1.6.5.5). */
			if (hdr.class == VIRTIO_NET_CTRL_MQ &&
			    hdr.cmd == VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET &&
			    virtio_has_feature(vd, VIRTIO_NET_F_MQ) &&
			    c.out_len >= sizeof(hdr) + sizeof(pairs)) {
				iov_to_buf(c.iov, c.nout, sizeof(hdr), &pairs, sizeof(pairs));
				pairs = le16toh(pairs);
				if (pairs >= 1 && pairs <= n->va.queues) {
					set_pairs(n, pairs);
					log_info("%s: %u queue pair%s in use", n->name, pairs,
						 pairs > 1 ? "s" : "");
					ack = VIRTIO_NET_OK;
				}
			}
			iov_from_buf(c.iov + c.nout, c.nin, 0, &ack, 1);
			virtq_push(vq, c.head, 1);
			pushed = true;
		}
	} while (virtq_enable_notify(vq));
out:
	if (pushed)
		virtio_queue_interrupt(vd, ctrl_vq(n));
	for (unsigned i = 0; i < n->active; i++)
		rx_poll(&n->qs[i]);
}

static void net_changed(struct virtio_dev *vd)
{
	net_vhost_sync_or_reset(vd->priv);
}

static void net_notify(struct virtio_dev *vd, unsigned q)
{
	struct net *n = vd->priv;
	struct net_queue *nq;

	if (virtio_has_feature(vd, VIRTIO_NET_F_CTRL_VQ) && q == ctrl_vq(n)) {
		ctrl_poll(n);
		net_vhost_sync_or_reset(n);
		return;
	}
	if (q >= 2 * n->va.queues)
		return; /* the control queue's place, with no control queue negotiated */
	nq = &n->qs[q / 2];
	if (n->vhost && !n->tap_gone) {
		uint64_t one = 1;

		/* A trapped kick (or buffers posted before DRIVER_OK): pass it on. */
		if (nq->ring[q % 2].call_given >= 0 &&
		    write(vd->kicks[q].fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_warn("%s: queue %u: kick: %s", n->name, q, strerror(errno));
		return;
	}
	if (q % 2) {
		tx_poll(nq);
	} else {
		nq->rx_waiting = false;
		rx_poll(nq);
	}
}

static int net_activate(struct virtio_dev *vd)
{
	struct net *n = vd->priv;
	unsigned offloads = net_tap_offloads(vd->guest_features);

	for (unsigned i = 0; i < n->va.queues && !n->tap_gone; i++) {
		int err = tap_set_offload(n->qs[i].fd, offloads);

		if (err) {
			log_warn("%s: TAP '%s' refuses offloads 0x%x: %s", n->name, n->tap.name,
				 offloads, strerror(-err));
			return err;
		}
	}
	n->running = true;
	/* One pair from a reset on (virtio 1.2 5.1.6.5.5); a restored device's own count. */
	set_pairs(n, n->active ? n->active : 1);
	return net_vhost_sync(n);
}

static void net_reset(struct virtio_dev *vd)
{
	struct net *n = vd->priv;

	n->running = false;
	n->active = 0;
	net_vhost_sync(n);
	for (unsigned i = 0; i < n->va.queues; i++)
		n->qs[i].vh_lost = false;
	for (unsigned i = 0; i < n->va.queues; i++) {
		struct net_queue *nq = &n->qs[i];

		nq->rxlen = 0;
		nq->rx_waiting = false;
		nq->tx_blocked = false;
		update_events(nq);
	}
}

/* Feature dependencies (virtio 1.2 5.1.3.1) among those offered. */
static bool net_features_ok(const struct virtio_dev *vd)
{
	uint64_t f = vd->guest_features;
	bool guest_tso = f & (F(GUEST_TSO4) | F(GUEST_TSO6));
	bool host_tso = f & (F(HOST_TSO4) | F(HOST_TSO6));

	return !((f & F(MQ)) && !(f & F(CTRL_VQ))) && !(guest_tso && !(f & F(GUEST_CSUM))) &&
	       !((f & F(GUEST_ECN)) && !guest_tso) && !(host_tso && !(f & F(CSUM))) &&
	       !((f & F(HOST_ECN)) && !host_tso);
}

/* A restored NIC's configuration space may differ from the saved one in the MAC alone. */
static bool net_config_restorable(const struct virtio_dev *vd, const uint8_t *saved)
{
	struct virtio_net_config c;

	memcpy(&c, saved, sizeof(c));
	memcpy(c.mac, vd->config + offsetof(struct virtio_net_config, mac), sizeof(c.mac));
	return !memcmp(&c, vd->config, sizeof(c));
}

static const struct virtio_ops net_virtio_ops = {
	.device_id = VIRTIO_ID_NET,
	.activate = net_activate,
	.notify = net_notify,
	.reset = net_reset,
	.features_ok = net_features_ok,
	.changed = net_changed,
	.config_restorable = net_config_restorable,
};

static const char *tap_name(const struct net *n)
{
	return n->tap.name[0] ? n->tap.name : n->ifname;
}

/*
 * The TAP is gone (a queue reported EPOLLERR: the interface was deleted on the host; from then
 * on it reports it for ever, once the loop is woken for it): stop watching every queue and say
 * so once. The VM goes on; microvm serves the data queues from now on (the kernel's rings taken
 * back), dropping and counting what the guest sends, receiving nothing.
 */
void net_tap_gone(struct net *n, const char *why)
{
	if (n->tap_gone)
		return;
	n->tap_gone = true;
	log_warn("%s: TAP %s gone (%s): receive stopped, transmitted frames dropped", n->name,
		 tap_name(n), why);
	for (unsigned i = 0; i < n->va.queues; i++) {
		struct net_queue *nq = &n->qs[i];

		if (nq->watched)
			loop_del(n->loop, nq->fd);
		nq->watched = false;
		nq->rxlen = 0;
		nq->rx_waiting = false;
		nq->tx_blocked = false;
	}
	net_vhost_sync(n);
	/* What the guest queued meanwhile (a full ring waits for no more kicks). */
	for (unsigned i = 0; i < n->va.queues; i++)
		tx_poll(&n->qs[i]);
}

static void on_tap(void *opaque, uint32_t events)
{
	struct net_queue *nq = opaque;

	virtio_lock(&nq->n->va.vd);
	if (events & (EPOLLERR | EPOLLHUP)) {
		net_tap_gone(nq->n, events & EPOLLERR ? "EPOLLERR" : "EPOLLHUP");
	} else {
		if (events & EPOLLOUT) {
			nq->tx_blocked = false;
			tx_poll(nq);
		}
		if (events & EPOLLIN)
			rx_poll(nq);
		update_events(nq);
	}
	virtio_unlock(&nq->n->va.vd);
}

/* --- configuration and life cycle ---------------------------------------------------------- */

static int net_configure(struct device *dev, struct machine *m)
{
	struct cfg *c = &m->cfg;
	struct net *n = dev->priv;
	int err = 0;

	n->name = dev->name;
	err |= cfg_str(c, dev->name, "tap", &n->ifname, "tap%d", 0);
	err |= cfg_str(c, dev->name, "mac", &n->mac_key, NULL, 0);
	err |= cfg_u32(c, dev->name, "mtu", &n->mtu, 1500, 68, 65535, 0);
	err |= virtio_adapter_queue_keys(dev, m);
	err |= cfg_bool(c, dev->name, "offload", &n->offload, true);
	err |= cfg_bool(c, dev->name, "vhost", &n->vhost, false);
	return err ? -1 : 0;
}

static int net_configure_late(struct device *dev, struct machine *m)
{
	struct cfg *c = &m->cfg;
	struct net *n = dev->priv;
	struct cfg_entry *e = cfg_get(c, dev->name, "tap");
	const char *mac = n->mac_key, *why;
	int err = 0;

	why = tap_check_name(n->ifname);
	if (why) {
		cfg_error(c, e, dev->name, "%s", why);
		err = -1;
	}
	if (mac && net_parse_mac(mac, n->mac) < 0) {
		cfg_error(c, cfg_get(c, dev->name, "mac"), NULL,
			  "'%s' is not a unicast MAC address like 02:00:00:00:00:01", mac);
		err = -1;
	}
	if (!mac)
		net_default_mac(m->name, dev->name, n->mac);
	m->sandbox.tap = true; /* offloads and queues set as the driver asks */
	m->sandbox.vhost |= n->vhost;
	return err;
}

static void net_describe(const struct device *dev, FILE *out)
{
	const struct net *n = dev->priv;
	const uint8_t *a = n->mac;

	fprintf(out,
		"virtio-net TAP %s, MAC %02x:%02x:%02x:%02x:%02x:%02x, MTU %u, %u queue "
		"pair%s of %u, offloads %s, data path %s, ",
		n->ifname, a[0], a[1], a[2], a[3], a[4], a[5], n->mtu, n->va.queues,
		n->va.queues > 1 ? "s" : "", n->va.queue_size, n->offload ? "on" : "off",
		n->vhost ? "vhost" : "microvm");
}

static int alloc_queue(struct net *n, struct net_queue *nq, unsigned i, int fd)
{
	int err;

	nq->n = n;
	nq->idx = i;
	nq->fd = fd;
	nq->attached = true;
	nq->vh.fd = -1;
	for (unsigned k = 0; k < 2; k++)
		nq->ring[k] = (struct vhost_ring){
			.nq = nq, .idx = k, .call = -1, .err = -1, .call_given = -1};
	nq->rxiov_max = 2 * n->va.queue_size + VIRTQ_MAX_INDIRECT;
	nq->rxbuf = malloc(RX_BUF_LEN);
	nq->chains = calloc(n->va.queue_size, sizeof(*nq->chains));
	nq->used = calloc(n->va.queue_size, sizeof(*nq->used));
	nq->rxiov = calloc(nq->rxiov_max + 1, sizeof(*nq->rxiov));
	nq->txiov = calloc(TX_IOV_MAX + 1, sizeof(*nq->txiov));
	if (!nq->rxbuf || !nq->chains || !nq->used || !nq->rxiov || !nq->txiov)
		return -ENOMEM;
	err = loop_add(n->loop, nq->fd, 0, on_tap, nq);
	nq->watched = !err;
	return err;
}

int net_start(struct device *dev, const int *fds, const struct guest_mem *mem, struct loop *loop,
	      struct virtio_dev **vd)
{
	struct net *n = dev->priv;
	uint64_t features = F(MAC) | F(MTU) | F(STATUS) | F(MRG_RXBUF);
	int err;

	n->loop = loop;
	n->tap_gone = false; /* a new start, on descriptors of its own */
	n->qs = calloc(n->va.queues, sizeof(*n->qs));
	if (!n->qs)
		return -ENOMEM;
	for (unsigned i = 0; i < n->va.queues; i++) {
		err = alloc_queue(n, &n->qs[i], i, fds[i]);
		if (err)
			return err;
	}
	if (n->offload)
		features |= OFFLOAD_FEATURES;
	if (n->va.queues > 1)
		features |= F(CTRL_VQ) | F(MQ);
	memcpy(n->cfg.mac, n->mac, sizeof(n->mac));
	n->cfg.status = htole16(VIRTIO_NET_S_LINK_UP);
	n->cfg.max_virtqueue_pairs = htole16(n->va.queues);
	n->cfg.mtu = htole16(n->mtu);
	err = virtio_init(&n->va.vd, dev->name, &net_virtio_ops, n, features,
			  2 * n->va.queues + (n->va.queues > 1), n->va.queue_size, &n->cfg,
			  sizeof(n->cfg), mem);
	if (vd)
		*vd = &n->va.vd;
	return err ?: n->vhost ? net_vhost_open(n, mem) : 0;
}

void net_stop(struct device *dev)
{
	struct net *n = dev->priv;

	if (!n->loop)
		return;
	for (unsigned i = 0; n->qs && i < n->va.queues; i++) {
		struct net_queue *nq = &n->qs[i];

		if (nq->n && n->vhost) {
			log_info("%s: queue pair %u: data in the kernel (vhost), %lu interrupts "
				 "relayed, %lu switches of their path",
				 dev->name, i, nq->relayed, nq->call_switches);
		} else if (nq->n) {
			log_info("%s: queue pair %u: rx %lu frames %lu bytes %lu dropped, tx %lu "
				 "frames %lu bytes %lu dropped",
				 dev->name, i, nq->rx_frames, nq->rx_bytes, nq->rx_dropped,
				 nq->tx_frames, nq->tx_bytes, nq->tx_dropped);
		}
		if (nq->n && nq->watched)
			loop_del(n->loop, nq->fd);
		if (nq->n)
			vhost_net_close(&nq->vh);
		for (unsigned k = 0; nq->n && k < 2; k++) {
			struct vhost_ring *r = &nq->ring[k];

			if (r->watched) {
				loop_del(n->loop, r->call);
				loop_del(n->loop, r->err);
			}
			if (r->call >= 0)
				close(r->call);
			if (r->err >= 0)
				close(r->err);
		}
		free(nq->rxbuf);
		free(nq->chains);
		free(nq->used);
		free(nq->rxiov);
		free(nq->txiov);
	}
	for (unsigned i = 0; i < n->ndrops; i++)
		log_info("%s: %lu %ss dropped: %s", dev->name, n->drops[i].count, n->drops[i].what,
			 n->drops[i].why);
	if (n->other_drops)
		log_info("%s: %lu frames dropped for other reasons", dev->name, n->other_drops);
	log_info("%s: %lu trapped register accesses", dev->name, n->va.vd.stats.trapped);
	free(n->qs);
	n->qs = NULL;
	virtio_free(&n->va.vd);
	n->loop = NULL;
}

/* The TAP device: one file descriptor per queue pair. */
static int net_open(struct device *dev)
{
	struct net *n = dev->priv;
	int err = tap_open(&n->tap, dev->name, n->ifname, n->va.queues, NET_HDR_LEN, n->mtu);

	if (err)
		return err;
	log_info("%s: TAP '%s'%s, %u queue pair%s", dev->name, n->tap.name,
		 n->tap.created ? " (created)" : "", n->va.queues, n->va.queues > 1 ? "s" : "");
	return 0;
}

static int net_start_on(struct device *dev, const struct guest_mem *mem, struct loop *loop)
{
	struct net *n = dev->priv;

	return net_start(dev, n->tap.fds, mem, loop, NULL);
}

/*
 * The VM pauses (lock held, kicks already dropped): the TAP queues are not watched any more
 * (pair_live is false while paused; a frame that arrives waits in the TAP), and the kernel
 * lets go of the rings (vhost: taking a ring back waits for its worker). Nothing microvm
 * does on the data path is in flight between two events, so nothing else is left to finish.
 */
static int net_pause(struct device *dev)
{
	struct net *n = dev->priv;

	for (unsigned i = 0; i < n->va.queues; i++)
		update_events(&n->qs[i]);
	return net_vhost_sync(n);
}

/* Watch the TAP queues again, hand the rings back to the kernel (the adapter then serves
 * every queue: TX what was queued meanwhile, RX what the TAP holds). Lock held. */
static void net_resume(struct device *dev)
{
	struct net *n = dev->priv;

	for (unsigned i = 0; i < n->va.queues; i++)
		update_events(&n->qs[i]);
	net_vhost_sync_or_reset(n);
}

/*
 * A snapshot of a paused NIC: the header size (fixed by VERSION_1), the queue pairs in use,
 * per pair a frame read from the TAP that waits for guest buffers, and whether the kernel
 * lost track of a ring (its place unknown: not handed over again until a reset).
 */
static int net_save(struct device *dev, struct snap_sec *sec)
{
	struct net *n = dev->priv;
	char field[DEVSTATE_NAME_LEN];
	int err = 0;

	err = err ?: snap_put_u64(sec, "net.hdr_len", NET_HDR_LEN);
	err = err ?: snap_put_u64(sec, "net.pairs", n->active);
	for (unsigned i = 0; !err && i < n->va.queues; i++) {
		const struct net_queue *nq = &n->qs[i];

		err = devstate_put_at(sec, "net.p%u.vhost_lost", i, nq->vh_lost);
		if (!err && nq->rxlen)
			err = snap_put_bytes(sec, devstate_name(field, "net.p%u.rx_frame", i),
					     nq->rxbuf, nq->rxlen);
	}
	return err;
}

/* What a restore sets in one pair. */
struct pair_state {
	const uint8_t *frame; /* staged frame, len bytes (0: none) */
	size_t len;
	struct virtio_net_hdr_v1 hdr; /* its header, checked */
	bool lost;
};

/* Pair i's fields: a staged frame must be one rx_poll would have taken from the TAP. */
static int saved_pair(const struct net *n, const struct snap_sec *sec, unsigned i,
		      struct pair_state *p)
{
	char field[DEVSTATE_NAME_LEN];
	int err = devstate_need_bool(sec, devstate_name(field, "net.p%u.vhost_lost", i), &p->lost);

	if (err)
		return err;
	err = snap_get_bytes(sec, devstate_name(field, "net.p%u.rx_frame", i),
			     (const void **)&p->frame, &p->len);
	if (err == -ENOENT) {
		p->len = 0;
		return 0;
	}
	if (err)
		return devstate_bad(sec, field, "of another type");
	if (p->len < NET_HDR_LEN + NET_ETH_HLEN || p->len >= RX_BUF_LEN)
		return devstate_bad(sec, field, "%zu bytes: no frame the TAP gives is", p->len);
	memcpy(&p->hdr, p->frame, sizeof(p->hdr));
	if (net_rx_header(&p->hdr, n->va.vd.guest_features))
		return devstate_bad(sec, field, "offloads the guest did not negotiate");
	return 0;
}

static int net_restore(struct device *dev, const struct snap_sec *sec)
{
	struct net *n = dev->priv;
	struct pair_state *ps = calloc(n->va.queues, sizeof(*ps));
	uint64_t hdr, pairs;
	int err = ps ? 0 : -ENOMEM;

	err = err ?: snap_need_u64(sec, "net.hdr_len", UINT32_MAX, &hdr);
	if (!err && hdr != NET_HDR_LEN)
		err = devstate_bad(sec, "net.hdr_len", "%llu-byte headers, this NIC has %d",
				   (unsigned long long)hdr, NET_HDR_LEN);
	err = err ?: snap_need_u64(sec, "net.pairs", n->va.queues, &pairs);
	if (!err && pairs > 1 && !virtio_has_feature(&n->va.vd, VIRTIO_NET_F_MQ))
		err = devstate_bad(sec, "net.pairs", "%llu pairs without VIRTIO_NET_F_MQ",
				   (unsigned long long)pairs);
	for (unsigned i = 0; !err && i < n->va.queues; i++)
		err = saved_pair(n, sec, i, &ps[i]);
	for (unsigned i = 0; !err && i < n->va.queues; i++) {
		struct net_queue *nq = &n->qs[i];

		nq->vh_lost = ps[i].lost;
		nq->rxlen = ps[i].len;
		if (nq->rxlen) {
			memcpy(nq->rxbuf, ps[i].frame, nq->rxlen);
			memcpy(nq->rxbuf, &ps[i].hdr, sizeof(ps[i].hdr));
		}
	}
	if (!err)
		n->active = pairs;
	free(ps);
	return err;
}

/* The kernel lets go of the rings and the transport's eventfds first. */
static void net_quiesce(struct device *dev)
{
	struct net *n = dev->priv;

	for (unsigned i = 0; n->qs && i < n->va.queues; i++)
		if (n->qs[i].n)
			vhost_net_close(&n->qs[i].vh);
}

static void net_close(struct device *dev)
{
	struct net *n = dev->priv;

	tap_close(&n->tap);
}

static const struct virtio_device_ops net_device_ops = {
	.size = sizeof(struct net),
	.pci_class = 0x020000, /* Ethernet controller */
	.configure = net_configure,
	.configure_late = net_configure_late,
	.describe = net_describe,
	.open = net_open,
	.start = net_start_on,
	.quiesce = net_quiesce,
	.stop = net_stop,
	.close = net_close,
	.pause = net_pause,
	.resume = net_resume,
	.save = net_save,
	.restore = net_restore,
};

/*
 * A restore may attach the NIC to another TAP, through the kernel or not, and give it another
 * MAC address (clones of one snapshot each need their own): the configuration space then
 * shows the new one (net_config_restorable), which the guest reads when its driver next
 * probes the device.
 */
static const char *const net_restore_keys[] = {"tap", "vhost", "mac", NULL};

const struct device_ops virtio_net_ops =
	VIRTIO_DEVICE("virtio-net", net_device_ops, net_restore_keys);
