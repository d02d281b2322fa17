/* virtio-net: an Ethernet NIC backed by a host TAP interface, on either transport. */
#include "virtio/net.h"

#include <endian.h>
#include <errno.h>
#include <linux/if_tun.h>
#include <linux/virtio_ids.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "backends/tap.h"
#include "backends/vhost.h"
#include "config.h"
#include "log.h"
#include "machine.h"
#include "virtio/transport.h"
#include "virtio/virtio.h"
#include "vm.h"

#define RX_BUF_LEN     (NET_HDR_LEN + 65536 + 1024) /* a frame plus room to see truncation */
#define RX_BUDGET      256			    /* frames per wake-up before yielding */
#define TX_BUDGET      256			    /* chains per wake-up before yielding */
#define CTRL_BUDGET    64			    /* control commands per wake-up */
#define TX_IOV_MAX     1000			    /* writev takes at most 1024 */
#define MAX_DROP_KINDS 16

#define F(bit) (1ull << VIRTIO_NET_F_##bit)
#define OFFLOAD_FEATURES                                                                           \
	(F(CSUM) | F(GUEST_CSUM) | F(GUEST_TSO4) | F(GUEST_TSO6) | F(GUEST_ECN) | F(HOST_TSO4) |   \
	 F(HOST_TSO6) | F(HOST_ECN))

struct net;
struct net_queue;

/* A ring of a pair served by the kernel (vhost): the eventfds it signals. */
struct vhost_ring {
	struct net_queue *nq;
	unsigned idx;	/* 0 receive, 1 transmit */
	int call;	/* interrupt requests, relayed by the event loop */
	int err;	/* the kernel could not use the ring */
	int call_given; /* the fd the kernel signals now (call, or the transport's irqfd), or
			 * -1 while the ring is not the kernel's */
	bool watched;	/* call and err are on the event loop */
};

/* One queue pair: its TAP queue, RX staging and TX scratch. */
struct net_queue {
	struct net *n;
	unsigned idx;
	int fd;
	bool attached;	 /* the TAP queue delivers frames to this fd */
	bool watched;	 /* fd is on the event loop */
	uint32_t events; /* what the loop watches on fd */
	/* RX: one frame read from the TAP waits here until the guest has room for it. */
	uint8_t *rxbuf;
	size_t rxlen;
	bool rx_waiting; /* no guest buffers: EPOLLIN off until the driver adds some */
	struct virtq_chain *chains;
	struct iovec *rxiov;
	uint32_t *used;
	unsigned rxiov_max;
	/* TX: the TAP refused a frame (EAGAIN); wait for EPOLLOUT before taking more. */
	bool tx_blocked;
	struct iovec *txiov;
	unsigned long rx_frames, rx_bytes, rx_dropped, tx_frames, tx_bytes, tx_dropped;
	/* vhost = on: the kernel moves this pair's frames while vh_on. */
	struct vhost_net vh;
	struct vhost_ring ring[2];
	bool vh_on;
	bool vh_lost; /* the kernel did not say where a ring stopped: not again until a reset */
	unsigned long relayed, call_switches;
};

struct net {
	struct virtio_dev vd;
	struct virtio_transport tr;
	const char *name;
	const char *ifname;
	uint8_t mac[6];
	uint32_t pairs, qsize, mtu;
	bool offload;
	bool vhost; /* the data queues are served by the kernel (/dev/vhost-net) */
	struct tap tap;
	bool tap_open;
	struct net_queue *qs;
	uint32_t active; /* queue pairs the driver uses */
	bool running;	 /* between activate and reset */
	struct virtio_net_config cfg;
	struct loop *loop; /* set between net_start and net_stop */
	/* Dropped frames by reason: the first of each kind is reported, all are counted. */
	struct {
		const char *what, *why;
		unsigned long count;
	} drops[MAX_DROP_KINDS];
	unsigned ndrops;
	unsigned long other_drops;
};

/* --- header checks and RX placement (no device state; unit-tested) -------------------- */

int net_tx_header(struct virtio_net_hdr_v1 *h, uint64_t features, size_t frame_len, uint32_t mtu,
		  const char **why)
{
	uint8_t gso = h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
	uint16_t start = le16toh(h->csum_start), off = le16toh(h->csum_offset);

	*why = NULL;
	if (frame_len < NET_ETH_HLEN)
		*why = "frame shorter than an Ethernet header";
	else if (h->flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM)
		*why = "unknown header flags";
	else if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !(features & F(CSUM)))
		*why = "checksum offload was not negotiated";
	else if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && (size_t)start + off + 2 > frame_len)
		*why = "checksum position outside the frame";
	else if ((h->gso_type & VIRTIO_NET_HDR_GSO_ECN) && !(features & F(HOST_ECN)))
		*why = "ECN segmentation was not negotiated";
	else if (gso == VIRTIO_NET_HDR_GSO_NONE && (h->gso_type & VIRTIO_NET_HDR_GSO_ECN))
		*why = "ECN flag without segmentation";
	else if (gso == VIRTIO_NET_HDR_GSO_NONE &&
		 frame_len > (size_t)mtu + NET_ETH_HLEN + NET_VLAN_HLEN)
		*why = "frame larger than the MTU";
	else if (gso != VIRTIO_NET_HDR_GSO_NONE && gso != VIRTIO_NET_HDR_GSO_TCPV4 &&
		 gso != VIRTIO_NET_HDR_GSO_TCPV6)
		*why = "unsupported segmentation type";
	else if ((gso == VIRTIO_NET_HDR_GSO_TCPV4 && !(features & F(HOST_TSO4))) ||
		 (gso == VIRTIO_NET_HDR_GSO_TCPV6 && !(features & F(HOST_TSO6))))
		*why = "segmentation offload was not negotiated";
	else if (gso != VIRTIO_NET_HDR_GSO_NONE && !(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
		*why = "segmentation without a partial checksum";
	else if (gso != VIRTIO_NET_HDR_GSO_NONE && !h->gso_size)
		*why = "segmentation with segment size 0";
	else if (gso != VIRTIO_NET_HDR_GSO_NONE && frame_len > NET_MAX_GSO_FRAME)
		*why = "segmentation frame larger than 64 KiB";
	if (*why)
		return -EINVAL;
	h->num_buffers = 0;
	return 0;
}

int net_rx_header(struct virtio_net_hdr_v1 *h, uint64_t features)
{
	uint8_t gso = h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;

	if (!(features & F(GUEST_CSUM))) {
		if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
			return -EINVAL;
		h->flags &= ~VIRTIO_NET_HDR_F_DATA_VALID;
	}
	if (h->flags & ~(VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID))
		return -EINVAL;
	if ((gso == VIRTIO_NET_HDR_GSO_TCPV4 && !(features & F(GUEST_TSO4))) ||
	    (gso == VIRTIO_NET_HDR_GSO_TCPV6 && !(features & F(GUEST_TSO6))) ||
	    (gso != VIRTIO_NET_HDR_GSO_NONE && gso != VIRTIO_NET_HDR_GSO_TCPV4 &&
	     gso != VIRTIO_NET_HDR_GSO_TCPV6) ||
	    ((h->gso_type & VIRTIO_NET_HDR_GSO_ECN) && !(features & F(GUEST_ECN))))
		return -EINVAL;
	h->num_buffers = htole16(1);
	return 0;
}

unsigned net_tap_offloads(uint64_t features)
{
	unsigned fl = 0;

	if (!(features & F(GUEST_CSUM)))
		return 0;
	fl |= TUN_F_CSUM;
	if (features & F(GUEST_TSO4))
		fl |= TUN_F_TSO4;
	if (features & F(GUEST_TSO6))
		fl |= TUN_F_TSO6;
	if ((fl & (TUN_F_TSO4 | TUN_F_TSO6)) && (features & F(GUEST_ECN)))
		fl |= TUN_F_TSO_ECN;
	return fl;
}

int net_rx_scatter(const struct virtq_chain *chains, unsigned n, uint8_t *frame, size_t len,
		   bool mergeable, uint32_t *used)
{
	struct virtio_net_hdr_v1 *h = (struct virtio_net_hdr_v1 *)frame;
	size_t room = 0, done = 0;
	unsigned k = 0;

	if (!n)
		return -ENOBUFS;
	if (!mergeable) {
		if (chains[0].in_len < len)
			return -EMSGSIZE;
		k = 1;
	} else {
		while (k < n && room < len)
			room += chains[k++].in_len;
		if (room < len)
			return -ENOBUFS;
	}
	h->num_buffers = htole16(k);
	for (unsigned i = 0; i < k; i++) {
		const struct virtq_chain *c = &chains[i];

		used[i] = iov_from_buf(c->iov + c->nout, c->nin, 0, frame + done, len - done);
		done += used[i];
	}
	return (int)k;
}

int net_parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char end;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
		   &end) != 6 ||
	    strlen(s) != 17)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	if (mac[0] & 1)
		return -1; /* multicast */
	return (mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]) ? 0 : -1;
}

void net_default_mac(const char *machine, const char *nic, uint8_t mac[6])
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */

	for (const char *p = machine;; p++) {
		h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
		if (!*p)
			break;
	}
	for (const char *p = nic; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)(h >> (8 * i));
	mac[0] = (mac[0] & 0xfc) | 0x02; /* locally administered, unicast */
}

/* --- the device --------------------------------------------------------------------------- */

/* Count a dropped frame; warn the first time each reason occurs. */
static void net_drop(struct net *n, const char *what, const char *why)
{
	for (unsigned i = 0; i < n->ndrops; i++) {
		if (n->drops[i].what == what && !strcmp(n->drops[i].why, why)) {
			n->drops[i].count++;
			return;
		}
	}
	if (n->ndrops == MAX_DROP_KINDS) {
		n->other_drops++;
		return;
	}
	n->drops[n->ndrops].what = what;
	n->drops[n->ndrops].why = why;
	n->drops[n->ndrops++].count = 1;
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
	return virtio_has_feature(&n->vd, VIRTIO_NET_F_MQ) ? 2 * n->pairs : 2;
}

/* Is this pair's data moved by microvm now (not by the kernel, not stopped)? */
static bool pair_live(const struct net_queue *nq)
{
	return nq->n->running && !nq->n->vhost && nq->idx < nq->n->active &&
	       virtio_live(&nq->n->vd);
}

/* Watch the TAP queue for what this pair is waiting for (nothing while it is idle). */
static void update_events(struct net_queue *nq)
{
	uint32_t want = 0;

	if (pair_live(nq)) {
		if (!nq->rx_waiting)
			want |= EPOLLIN;
		if (nq->tx_blocked)
			want |= EPOLLOUT;
	}
	if (want != nq->events && loop_mod(nq->n->loop, nq->fd, want) == 0)
		nq->events = want;
}

enum { RX_DONE, RX_NOBUFS, RX_BROKEN };

/* Hand the staged frame to the guest (or drop it when it can never fit). */
static int rx_deliver(struct net_queue *nq)
{
	struct net *n = nq->n;
	struct virtio_dev *vd = &n->vd;
	struct virtq *vq = &vd->vqs[rx_vq(nq)];
	bool mergeable = virtio_has_feature(vd, VIRTIO_NET_F_MRG_RXBUF);
	unsigned nc = 0, iov_used = 0;
	size_t room = 0;
	int k;

	while (room < nq->rxlen) {
		struct virtq_chain *c = &nq->chains[nc];
		int r;

		if (nc == vq->num || nq->rxiov_max - iov_used < VIRTQ_MAX_INDIRECT) {
			/* The driver's buffers are too small to ever hold this frame. */
			virtq_unpop(vq, nc);
			net_drop(n, "received frame", "larger than the posted receive buffers");
			nq->rx_dropped++;
			return RX_DONE;
		}
		*c = (struct virtq_chain){.iov = nq->rxiov + iov_used,
					  .iov_max = nq->rxiov_max - iov_used};
		r = virtq_pop(vq, vd->mem, c);
		if (r < 0 || (r > 0 && (c->nout || !c->in_len))) {
			virtio_needs_reset(vd, "receive queue %u: malformed or readable buffer",
					   rx_vq(nq));
			return RX_BROKEN;
		}
		if (r == 0) {
			virtq_unpop(vq, nc);
			return RX_NOBUFS;
		}
		iov_used += c->nin;
		room += c->in_len;
		nc++;
		if (!mergeable)
			break;
	}
	k = net_rx_scatter(nq->chains, nc, nq->rxbuf, nq->rxlen, mergeable, nq->used);
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

/* Move frames from the TAP queue into the guest until either side runs dry. Lock held. */
static void rx_poll(struct net_queue *nq)
{
	struct net *n = nq->n;
	struct virtio_dev *vd = &n->vd;
	struct virtq *vq = &vd->vqs[rx_vq(nq)];
	bool pushed = false;

	for (unsigned budget = RX_BUDGET; pair_live(nq) && vq->ready && budget; budget--) {
		int r;

		if (!nq->rxlen) {
			ssize_t got = read(nq->fd, nq->rxbuf, RX_BUF_LEN);

			if (got < 0) {
				if (errno != EAGAIN && errno != EINTR)
					net_drop(n, "received frame", strerror(errno));
				break;
			}
			if (got < NET_HDR_LEN + NET_ETH_HLEN || got == RX_BUF_LEN ||
			    net_rx_header((struct virtio_net_hdr_v1 *)nq->rxbuf,
					  vd->guest_features) < 0) {
				net_drop(n, "received frame",
					 got == RX_BUF_LEN ? "larger than 64 KiB"
					 : got < NET_HDR_LEN + NET_ETH_HLEN
						 ? "shorter than an Ethernet header"
						 : "offloads the guest did not negotiate");
				nq->rx_dropped++;
				continue;
			}
			nq->rxlen = (size_t)got;
		}
		r = rx_deliver(nq);
		if (r == RX_BROKEN)
			return;
		if (r == RX_NOBUFS) {
			if (virtq_enable_notify(vq))
				continue;
			nq->rx_waiting = true;
			break;
		}
		nq->rxlen = 0;
		pushed = true;
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
		if (net_tx_header(&h, n->vd.guest_features, c->out_len - NET_HDR_LEN, n->mtu,
				  &why) == 0)
			why = NULL;
	}
	if (why) {
		net_drop(n, "transmitted frame", why);
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
	struct virtio_dev *vd = &nq->n->vd;
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
	for (unsigned i = 0; i < n->pairs; i++) {
		struct net_queue *nq = &n->qs[i];
		bool want = i < count;

		if (n->pairs > 1 && want != nq->attached) {
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
	struct virtio_dev *vd = &n->vd;
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
				if (pairs >= 1 && pairs <= n->pairs) {
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

/* --- vhost = on: the kernel moves the frames, microvm keeps the protocol ----------------- */

static unsigned ring_vq(const struct vhost_ring *r)
{
	return 2 * r->nq->idx + r->idx;
}

/* What the kernel should signal for ring r: the transport's irqfd if it has one now. */
static int ring_call(struct net *n, const struct vhost_ring *r)
{
	int fd = n->vd.queue_irqfd ? n->vd.queue_irqfd(&n->vd, ring_vq(r)) : -1;

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
	struct virtio_dev *vd = &nq->n->vd;

	for (unsigned i = 0; i < 2; i++) {
		struct vhost_ring *r = &nq->ring[i];
		int base;

		if (r->call_given < 0)
			continue;
		base = vhost_net_stop(&nq->vh, i);
		/* Where the kernel stopped: a pause (DMA off) resumes there. */
		if (base >= 0)
			vd->vqs[ring_vq(r)].last_avail = (uint16_t)base;
		else
			nq->vh_lost = true;
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
	struct virtio_dev *vd = &n->vd;
	int err = vhost_net_set_features(&nq->vh, vd->guest_features & nq->vh.features);

	for (unsigned i = 0; !err && i < 2; i++) {
		struct vhost_ring *r = &nq->ring[i];
		int call = ring_call(n, r);

		err = vhost_net_start(&nq->vh, i, &vd->vqs[ring_vq(r)], vd->kicks[ring_vq(r)].fd,
				      call, r->err, nq->fd);
		r->call_given = call; /* also when it failed: the stop below undoes it */
		if (!err)
			loop_mod(n->loop, vd->kicks[ring_vq(r)].fd, 0); /* the kernel's now */
	}
	nq->vh_on = true;
	if (err)
		vhost_pair_stop(nq);
	return err;
}

/*
 * Make the kernel's rings follow the device: handed over while the device runs (and may use
 * DMA) with both queues of a pair ready, taken back otherwise; interrupts straight to the
 * transport's irqfd while it has one, else relayed through the event loop. Lock held.
 */
static int vhost_sync(struct net *n)
{
	struct virtio_dev *vd = &n->vd;

	for (unsigned i = 0; n->vhost && i < n->pairs; i++) {
		struct net_queue *nq = &n->qs[i];
		bool want = n->running && virtio_live(vd) && i < n->active && !nq->vh_lost &&
			    vd->vqs[2 * i].ready && vd->vqs[2 * i + 1].ready;
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
				for (unsigned k = 0; k < n->pairs; k++)
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

/* A data path nobody serves is no use: the driver must start over. */
static void vhost_sync_or_reset(struct net *n)
{
	if (vhost_sync(n))
		virtio_needs_reset(&n->vd, "the kernel's data path refused the rings");
}

static void net_changed(struct virtio_dev *vd)
{
	vhost_sync_or_reset(vd->priv);
}

/*
 * The kernel signalled ring r: an interrupt it could not send itself (no irqfd for it), or
 * (err) a ring it cannot use because the driver broke it (e.g. a buffer outside RAM).
 */
static void vhost_signalled(struct vhost_ring *r, bool err)
{
	struct net *n = r->nq->n;
	uint64_t v;

	if (read(err ? r->err : r->call, &v, sizeof(v)) != sizeof(v))
		return;
	virtio_lock(&n->vd);
	if (r->call_given >= 0 && !err) {
		r->nq->relayed++;
		virtio_queue_interrupt_now(&n->vd, ring_vq(r));
	} else if (r->call_given >= 0) {
		virtio_needs_reset(&n->vd,
				   "queue %u: the kernel's data path (vhost) cannot use the ring: "
				   "a malformed chain or a buffer outside RAM",
				   ring_vq(r));
		vhost_sync(n);
	}
	virtio_unlock(&n->vd);
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

/* Open the kernel's data path for every pair and offer only what it supports. -errno. */
static int vhost_open(struct net *n, const struct guest_mem *mem)
{
	const uint64_t ring_bits =
		1ull << VIRTIO_F_INDIRECT_DESC | 1ull << VIRTIO_F_EVENT_IDX | F(MRG_RXBUF);

	for (unsigned i = 0; i < n->pairs; i++) {
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
		n->vd.host_features &= ~(ring_bits & ~nq->vh.features);
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

static void net_notify(struct virtio_dev *vd, unsigned q)
{
	struct net *n = vd->priv;
	struct net_queue *nq;

	if (virtio_has_feature(vd, VIRTIO_NET_F_CTRL_VQ) && q == ctrl_vq(n)) {
		ctrl_poll(n);
		vhost_sync_or_reset(n);
		return;
	}
	if (q >= 2 * n->pairs)
		return; /* the control queue's place, with no control queue negotiated */
	nq = &n->qs[q / 2];
	if (n->vhost) {
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

	for (unsigned i = 0; i < n->pairs; i++) {
		int err = tap_set_offload(n->qs[i].fd, offloads);

		if (err) {
			log_warn("%s: TAP '%s' refuses offloads 0x%x: %s", n->name, n->tap.name,
				 offloads, strerror(-err));
			return err;
		}
	}
	n->running = true;
	set_pairs(n, 1);
	return vhost_sync(n);
}

static void net_reset(struct virtio_dev *vd)
{
	struct net *n = vd->priv;

	n->running = false;
	vhost_sync(n);
	for (unsigned i = 0; i < n->pairs; i++)
		n->qs[i].vh_lost = false;
	for (unsigned i = 0; i < n->pairs; i++) {
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

static const struct virtio_ops net_virtio_ops = {
	.device_id = VIRTIO_ID_NET,
	.activate = net_activate,
	.notify = net_notify,
	.reset = net_reset,
	.features_ok = net_features_ok,
	.changed = net_changed,
};

static void on_tap(void *opaque, uint32_t events)
{
	struct net_queue *nq = opaque;

	virtio_lock(&nq->n->vd);
	if (events & (EPOLLOUT | EPOLLERR)) {
		nq->tx_blocked = false;
		tx_poll(nq);
	}
	if (events & (EPOLLIN | EPOLLERR))
		rx_poll(nq);
	update_events(nq);
	virtio_unlock(&nq->n->vd);
}

/* --- configuration and life cycle ---------------------------------------------------------- */

static int net_configure(struct device *dev, struct machine *m)
{
	struct cfg *c = &m->cfg;
	struct net *n = calloc(1, sizeof(*n));
	struct cfg_entry *e;
	const char *mac, *why;
	int err = 0;

	if (!n)
		return -1;
	dev->priv = n;
	n->name = dev->name;
	err |= cfg_str(c, dev->name, "tap", &n->ifname, "tap%d", 0);
	err |= cfg_str(c, dev->name, "mac", &mac, NULL, 0);
	err |= cfg_u32(c, dev->name, "mtu", &n->mtu, 1500, 68, 65535, 0);
	err |= cfg_u32(c, dev->name, "queues", &n->pairs, 1, 1, m->vcpus, 0);
	err |= cfg_u32(c, dev->name, "queue_size", &n->qsize, 256, 2, VIRTQ_MAX_SIZE, 0);
	err |= cfg_bool(c, dev->name, "offload", &n->offload, true);
	err |= cfg_bool(c, dev->name, "vhost", &n->vhost, false);
	err |= virtio_transport_configure(&n->tr, dev, m, 0x020000 /* Ethernet controller */);
	if (err)
		return -1;
	if (n->qsize & (n->qsize - 1)) {
		cfg_error(c, cfg_get(c, dev->name, "queue_size"), NULL, "%u is not a power of two",
			  n->qsize);
		return -1;
	}
	e = cfg_get(c, dev->name, "tap");
	why = tap_check_name(n->ifname);
	if (why) {
		cfg_error(c, e, dev->name, "%s", why);
		return -1;
	}
	if (mac && net_parse_mac(mac, n->mac) < 0) {
		cfg_error(c, cfg_get(c, dev->name, "mac"), NULL,
			  "'%s' is not a unicast MAC address like 02:00:00:00:00:01", mac);
		return -1;
	}
	if (!mac)
		net_default_mac(m->name, dev->name, n->mac);
	return 0;
}

static void net_describe(const struct device *dev, FILE *out)
{
	const struct net *n = dev->priv;
	const uint8_t *a = n->mac;

	fprintf(out,
		"  %s: virtio-net TAP %s, MAC %02x:%02x:%02x:%02x:%02x:%02x, MTU %u, %u queue "
		"pair%s of %u, offloads %s, data path %s, ",
		dev->name, n->ifname, a[0], a[1], a[2], a[3], a[4], a[5], n->mtu, n->pairs,
		n->pairs > 1 ? "s" : "", n->qsize, n->offload ? "on" : "off",
		n->vhost ? "vhost" : "microvm");
	virtio_transport_describe(&n->tr, out);
	fputc('\n', out);
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
	nq->rxiov_max = 2 * n->qsize + VIRTQ_MAX_INDIRECT;
	nq->rxbuf = malloc(RX_BUF_LEN);
	nq->chains = calloc(n->qsize, sizeof(*nq->chains));
	nq->used = calloc(n->qsize, sizeof(*nq->used));
	nq->rxiov = calloc(nq->rxiov_max, sizeof(*nq->rxiov));
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
	n->qs = calloc(n->pairs, sizeof(*n->qs));
	if (!n->qs)
		return -ENOMEM;
	for (unsigned i = 0; i < n->pairs; i++) {
		err = alloc_queue(n, &n->qs[i], i, fds[i]);
		if (err)
			return err;
	}
	if (n->offload)
		features |= OFFLOAD_FEATURES;
	if (n->pairs > 1)
		features |= F(CTRL_VQ) | F(MQ);
	memcpy(n->cfg.mac, n->mac, sizeof(n->mac));
	n->cfg.status = htole16(VIRTIO_NET_S_LINK_UP);
	n->cfg.max_virtqueue_pairs = htole16(n->pairs);
	n->cfg.mtu = htole16(n->mtu);
	err = virtio_init(&n->vd, dev->name, &net_virtio_ops, n, features,
			  2 * n->pairs + (n->pairs > 1), n->qsize, &n->cfg, sizeof(n->cfg), mem);
	if (vd)
		*vd = &n->vd;
	return err ?: n->vhost ? vhost_open(n, mem) : 0;
}

void net_stop(struct device *dev)
{
	struct net *n = dev->priv;

	if (!n->loop)
		return;
	for (unsigned i = 0; n->qs && i < n->pairs; i++) {
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
	log_info("%s: %lu trapped register accesses", dev->name, n->vd.trapped);
	free(n->qs);
	n->qs = NULL;
	virtio_free(&n->vd);
	n->loop = NULL;
}

static int net_realize(struct device *dev, struct vm *vm)
{
	struct net *n = dev->priv;
	int err;

	err = tap_open(&n->tap, dev->name, n->ifname, n->pairs, NET_HDR_LEN, n->mtu);
	if (err)
		return err;
	n->tap_open = true;
	log_info("%s: TAP '%s'%s, %u queue pair%s", dev->name, n->tap.name,
		 n->tap.created ? " (created)" : "", n->pairs, n->pairs > 1 ? "s" : "");
	err = net_start(dev, n->tap.fds, &vm->mem, &vm->loop, NULL);
	return err ?: virtio_transport_realize(&n->tr, vm, &n->vd, dev->name);
}

static void net_unrealize(struct device *dev)
{
	struct net *n = dev->priv;

	if (!n->tap_open)
		return;
	/* The kernel lets go of the rings and the transport's eventfds first. */
	for (unsigned i = 0; n->qs && i < n->pairs; i++)
		if (n->qs[i].n)
			vhost_net_close(&n->qs[i].vh);
	virtio_transport_unrealize(&n->tr);
	net_stop(dev);
	tap_close(&n->tap);
	n->tap_open = false;
}

static void net_hw(const struct device *dev, struct hw_desc *d)
{
	const struct net *n = dev->priv;

	virtio_transport_hw(&n->tr, d);
}

const struct device_ops virtio_net_ops = {
	.type = "virtio-net",
	.configure = net_configure,
	.describe = net_describe,
	.realize = net_realize,
	.unrealize = net_unrealize,
	.hw = net_hw,
	.destroy = device_free_priv,
};
