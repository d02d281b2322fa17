/*
 * virtio-vsock: guest stream sockets bridged to host Unix sockets, with the host-side protocol
 * Firecracker and Cloud Hypervisor share: a host program connects to uds_path and writes
 * "CONNECT <port>\n" (answered "OK <host_port>\n" once the guest accepts); a guest connecting
 * to the host (CID 2) port P reaches the Unix socket "<uds_path>_<P>". Everything runs on the
 * event loop's thread under the device lock; a kick served elsewhere is passed to it.
 */
#include "virtio/adapter.h"
#include "virtio/vsock.h"

#include <endian.h>
#include <errno.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_vsock.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "loop.h"
#include "machine.h"
#include "timeline.h"
#include "virtio/virtio.h"

#define HDR		sizeof(struct virtio_vsock_hdr)
#define BUCKETS		256
#define BUDGET		256 /* packets per queue per wake-up before yielding to the event loop */
#define RST_MAX		(VSOCK_MAX_CONNS + 64)
#define IOV_MAX_V	(VIRTQ_MAX_INDIRECT + 1)
#define RX_BATCH	16 /* receive buffers one read of a host socket fills */
#define FIRST_EPHEMERAL (1u << 30)

/* Control packets a connection owes the guest, sent in this order. */
enum { P_REQUEST = 1, P_RESPONSE = 2, P_CREDIT = 4 };

enum conn_state {
	C_LINE,	   /* a host program connected: waiting for its CONNECT line */
	C_REQUEST, /* REQUEST owed or sent to the guest: waiting for its RESPONSE */
	C_OPEN,	   /* bridged */
};

struct vsock;

struct conn {
	struct vsock *v;
	int fd;
	enum conn_state state;
	uint32_t lport, pport; /* the host's port, the guest's port */
	uint64_t deadline;     /* C_LINE, C_REQUEST: closed when still there at this time (ns) */
	char line[VSOCK_LINE_MAX];
	unsigned line_len;
	unsigned slot; /* index in v->all */
	/* guest to host: bytes taken from the guest and not yet written to fd (a ring) */
	uint8_t *buf;
	uint32_t head, used;
	uint32_t rx_cnt;   /* bytes taken from the guest */
	uint32_t fwd_cnt;  /* of which written to the host */
	uint32_t fwd_sent; /* fwd_cnt as last told to the guest */
	/* host to guest */
	uint32_t tx_cnt; /* bytes sent to the guest */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	unsigned pending;
	bool readable; /* fd may have data: EPOLLIN off until a read says EAGAIN */
	bool host_eof; /* fd read 0 */
	bool hup;      /* the host peer is gone: fd no longer watched */
	bool watched;
	bool guest_shut_send, guest_shut_rcv, shut_wr;
	bool in_list;
	uint32_t events;
	struct conn *hnext, *lnext;
};

struct vsock {
	struct virtio_adapter va; /* first: queues, queue_size, the core and the transport */
	uint64_t cid;
	char *uds_path;
	int listen_fd, timer_fd, wake_fd;
	bool timer_watched, listen_watched, wake_watched;
	bool dropping; /* reset on a vCPU: the loop closes every connection before anything else */
	struct virtio_vsock_config cfg;
	struct loop *loop;
	struct iovec *iov;     /* RX_BATCH chains' segments, IOV_MAX_V each */
	struct iovec *scratch; /* IOV_MAX_V: the data parts of chains, for one readv/writev */
	struct conn *hash[BUCKETS];
	struct conn *all[VSOCK_MAX_CONNS];
	unsigned nconns;
	struct conn *list_head, *list_tail; /* connections with something for the guest */
	struct {
		uint32_t lport, pport;
	} rst[RST_MAX];
	unsigned rst_head, nrst;
	uint32_t next_port;
	bool reset_event; /* TRANSPORT_RESET owed on the event queue */
	struct vsock_stats stats;
};
_Static_assert(offsetof(struct vsock, va) == 0, "the adapter's part comes first");

static unsigned bucket(uint32_t lport, uint32_t pport)
{
	return (lport * 2654435761u ^ pport * 40503u) % BUCKETS;
}

static struct conn *lookup(struct vsock *v, uint32_t lport, uint32_t pport)
{
	struct conn *c = v->hash[bucket(lport, pport)];

	while (c && !(c->lport == lport && c->pport == pport))
		c = c->hnext;
	return c;
}

static void hash_del(struct vsock *v, struct conn *c)
{
	struct conn **p = &v->hash[bucket(c->lport, c->pport)];

	while (*p && *p != c)
		p = &(*p)->hnext;
	if (*p)
		*p = c->hnext;
}

static void hash_add(struct vsock *v, struct conn *c)
{
	unsigned b = bucket(c->lport, c->pport);

	c->hnext = v->hash[b];
	v->hash[b] = c;
}

static void queue_rst(struct vsock *v, uint32_t lport, uint32_t pport)
{
	unsigned at;

	if (v->nrst == RST_MAX) {
		v->stats.rst_lost++;
		return;
	}
	at = (v->rst_head + v->nrst++) % RST_MAX;
	v->rst[at].lport = lport;
	v->rst[at].pport = pport;
}

/* Bytes the guest can take now on c. */
static uint32_t credit(const struct conn *c)
{
	uint32_t inflight = c->tx_cnt - c->peer_fwd_cnt;

	return inflight > c->peer_buf_alloc ? 0 : c->peer_buf_alloc - inflight;
}

static bool has_work(const struct conn *c)
{
	return c->pending || (c->state == C_OPEN && c->readable && !c->host_eof &&
			      !c->guest_shut_rcv && credit(c) > 0);
}

static void enlist(struct vsock *v, struct conn *c)
{
	if (c->in_list || !has_work(c))
		return;
	c->in_list = true;
	c->lnext = NULL;
	if (v->list_tail)
		v->list_tail->lnext = c;
	else
		v->list_head = c;
	v->list_tail = c;
}

static struct conn *list_pop(struct vsock *v)
{
	struct conn *c = v->list_head;

	if (!c)
		return NULL;
	v->list_head = c->lnext;
	if (!v->list_head)
		v->list_tail = NULL;
	c->in_list = false;
	return c;
}

static void list_remove(struct vsock *v, struct conn *c)
{
	struct conn **p = &v->list_head, *prev = NULL;

	if (!c->in_list)
		return;
	while (*p != c) {
		prev = *p;
		p = &(*p)->lnext;
	}
	*p = c->lnext;
	if (v->list_tail == c)
		v->list_tail = prev;
	c->in_list = false;
}

static void on_conn(void *opaque, uint32_t events);

/* Watch what c waits for on its host socket now. */
static void watch(struct vsock *v, struct conn *c)
{
	uint32_t want = 0;

	if (c->hup)
		return;
	if (c->state == C_LINE)
		want = EPOLLIN;
	else if (c->state == C_OPEN)
		want = (c->readable || c->host_eof ? 0 : EPOLLIN) | (c->used ? EPOLLOUT : 0);
	if (!c->watched) {
		if (loop_add(v->loop, c->fd, want, on_conn, c) == 0)
			c->watched = true;
		c->events = want;
		return;
	}
	if (want != c->events && loop_mod(v->loop, c->fd, want) == 0)
		c->events = want;
}

/* Close c's host socket and forget it; the guest is told with an RST if rst. */
static void conn_kill(struct vsock *v, struct conn *c, bool rst)
{
	if (rst && c->state != C_LINE)
		queue_rst(v, c->lport, c->pport);
	if (c->watched)
		loop_del(v->loop, c->fd);
	close(c->fd);
	hash_del(v, c);
	list_remove(v, c);
	v->all[c->slot] = v->all[--v->nconns];
	v->all[c->slot]->slot = c->slot;
	free(c->buf);
	free(c);
}

static struct conn *conn_new(struct vsock *v, int fd, enum conn_state state)
{
	struct conn *c;

	if (v->nconns == VSOCK_MAX_CONNS || !(c = calloc(1, sizeof(*c))))
		return NULL;
	c->v = v;
	c->fd = fd;
	c->state = state;
	c->slot = v->nconns;
	v->all[v->nconns++] = c;
	v->stats.conns++;
	return c;
}

/* Arm the timer for the earliest handshake deadline, or disarm it. */
static void arm_timer(struct vsock *v)
{
	struct itimerspec its = {0};
	uint64_t first = UINT64_MAX;

	for (unsigned i = 0; i < v->nconns; i++)
		if (v->all[i]->state != C_OPEN && v->all[i]->deadline < first)
			first = v->all[i]->deadline;
	if (first != UINT64_MAX) {
		its.it_value.tv_sec = first / 1000000000u;
		its.it_value.tv_nsec = first % 1000000000u;
		if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
			its.it_value.tv_nsec = 1;
	}
	timerfd_settime(v->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void fill_hdr(const struct vsock *v, struct conn *c, struct virtio_vsock_hdr *h, uint16_t op,
		     uint32_t len)
{
	*h = (struct virtio_vsock_hdr){
		.src_cid = htole64(VSOCK_HOST_CID),
		.dst_cid = htole64(v->cid),
		.src_port = htole32(c->lport),
		.dst_port = htole32(c->pport),
		.len = htole32(len),
		.type = htole16(VIRTIO_VSOCK_TYPE_STREAM),
		.op = htole16(op),
		.buf_alloc = htole32(VSOCK_BUF),
		.fwd_cnt = htole32(c->fwd_cnt),
	};
	c->fwd_sent = c->fwd_cnt;
}

/* At most len bytes of iov[0..n): how many entries cover them (the last one shortened). */
static unsigned iov_limit(struct iovec *iov, unsigned n, size_t len)
{
	unsigned i;

	for (i = 0; i < n && len; i++) {
		if (iov[i].iov_len > len)
			iov[i].iov_len = len;
		len -= iov[i].iov_len;
	}
	return i;
}

/*
 * One packet for the guest from c into the writable chain ch: a control packet it owes, or
 * data read from its host socket. Bytes written, or -1 when c had nothing after all.
 */
static int conn_packet(struct vsock *v, struct conn *c, struct virtq_chain *ch)
{
	struct virtio_vsock_hdr h;
	unsigned i, k;
	ssize_t n;

	if (c->pending) {
		static const uint16_t ops[] = {VIRTIO_VSOCK_OP_REQUEST, VIRTIO_VSOCK_OP_RESPONSE,
					       VIRTIO_VSOCK_OP_CREDIT_UPDATE};
		unsigned bit = __builtin_ctz(c->pending);

		c->pending &= ~(1u << bit);
		fill_hdr(v, c, &h, ops[bit], 0);
		iov_from_buf(ch->iov, ch->nin, 0, &h, HDR);
		return HDR;
	}
	if (!has_work(c))
		return -1;
	memcpy(v->scratch, ch->iov, ch->nin * sizeof(*ch->iov));
	i = iov_advance(v->scratch, ch->nin, HDR);
	n = credit(c);
	if (n > VSOCK_MAX_PKT)
		n = VSOCK_MAX_PKT;
	k = iov_limit(v->scratch + i, ch->nin - i, n);
	n = readv(c->fd, v->scratch + i, k);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !c->hup) {
		c->readable = false;
		watch(v, c);
		return -1;
	}
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
		conn_kill(v, c, true);
		return -1;
	}
	if (n <= 0) {
		/* The host closed its side: nothing more comes from it. */
		c->host_eof = true;
		fill_hdr(v, c, &h, VIRTIO_VSOCK_OP_SHUTDOWN, 0);
		h.flags = htole32(VIRTIO_VSOCK_SHUTDOWN_SEND |
				  (c->hup ? VIRTIO_VSOCK_SHUTDOWN_RCV : 0));
		watch(v, c);
		iov_from_buf(ch->iov, ch->nin, 0, &h, HDR);
		return HDR;
	}
	c->tx_cnt += n;
	fill_hdr(v, c, &h, VIRTIO_VSOCK_OP_RW, n);
	iov_from_buf(ch->iov, ch->nin, 0, &h, HDR);
	return HDR + n;
}

/* One packet for the guest into ch: an RST owed, else from the first connection in line. */
static int next_packet(struct vsock *v, struct virtq_chain *ch)
{
	while (v->nrst) {
		struct conn tmp = {.lport = v->rst[v->rst_head].lport,
				   .pport = v->rst[v->rst_head].pport};
		struct virtio_vsock_hdr h;

		v->rst_head = (v->rst_head + 1) % RST_MAX;
		v->nrst--;
		v->stats.resets++;
		fill_hdr(v, &tmp, &h, VIRTIO_VSOCK_OP_RST, 0);
		iov_from_buf(ch->iov, ch->nin, 0, &h, HDR);
		return HDR;
	}
	for (struct conn *c; (c = list_pop(v));) {
		int n = conn_packet(v, c, ch);

		/* c may be closed when it had nothing (n < 0): it is not looked at again. */
		if (n >= 0) {
			enlist(v, c); /* to the back: the others get their turn */
			return n;
		}
		if (v->nrst)
			return next_packet(v, ch);
	}
	return -1;
}

static bool servable(struct vsock *v, unsigned q)
{
	return virtio_live(&v->va.vd) && !v->va.vd.paused && v->va.vd.vqs[q].ready;
}

/*
 * The next chain of queue q into ch, while the budget lasts (then the queue is served again
 * from the event loop): false when there is none (notifications enabled) or the ring is
 * broken (the device then needs a reset).
 */
static bool pop(struct vsock *v, unsigned q, unsigned *budget, struct virtq_chain *ch)
{
	struct virtio_dev *vd = &v->va.vd;
	int r;

	if (!(*budget)--) {
		virtio_queue_reschedule(vd, q);
		return false;
	}
	for (;;) {
		r = virtq_pop(&vd->vqs[q], vd->mem, ch);
		if (r < 0)
			virtio_needs_reset(vd, "queue %u: malformed descriptor chain", q);
		if (r != 0 || !virtq_enable_notify(&vd->vqs[q]))
			return r > 0;
	}
}

/* Can the receive chain ch hold a packet? Else the device needs a reset. */
static bool rx_chain_ok(struct vsock *v, const struct virtq_chain *ch)
{
	if (!ch->nout && ch->in_len > HDR)
		return true;
	virtio_needs_reset(&v->va.vd, "rx queue: a buffer without room for a header and data");
	return false;
}

/*
 * Data for c, which owes nothing else and has credit: up to RX_BATCH receive buffers filled
 * by one read of its host socket, one packet each, published. How many buffers it used; 0
 * when the read gave nothing (the buffers are given back: the one-packet path says why), -1
 * when the queue has no buffer or is broken.
 */
static int rx_batch(struct vsock *v, struct conn *c, unsigned *budget)
{
	struct virtq *vq = &v->va.vd.vqs[VSOCK_RXQ];
	struct virtq_chain ch[RX_BATCH];
	uint32_t cap[RX_BATCH], room = credit(c), total = 0, left;
	unsigned nch = 0, niov = 0, used = 0;
	ssize_t n;

	while (nch < RX_BATCH && total < room) {
		struct virtq_chain *h = &ch[nch];
		unsigned i, k;

		*h = (struct virtq_chain){.iov = v->iov + nch * IOV_MAX_V, .iov_max = IOV_MAX_V};
		if (!pop(v, VSOCK_RXQ, budget, h))
			break;
		if (!rx_chain_ok(v, h))
			return -1;
		if (niov + h->nin >= IOV_MAX_V) {
			virtq_unpop(vq, 1); /* readv takes 1024 segments at most */
			break;
		}
		/* Its data part: after the header, at most a packet, at most the credit left. */
		memcpy(v->scratch + niov, h->iov, h->nin * sizeof(*h->iov));
		i = iov_advance(v->scratch + niov, h->nin, HDR);
		cap[nch] = h->in_len - HDR < VSOCK_MAX_PKT ? h->in_len - HDR : VSOCK_MAX_PKT;
		if (cap[nch] > room - total)
			cap[nch] = room - total;
		k = iov_limit(v->scratch + niov + i, h->nin - i, cap[nch]);
		memmove(v->scratch + niov, v->scratch + niov + i, k * sizeof(*v->scratch));
		niov += k;
		total += cap[nch++];
	}
	if (!nch)
		return -1;
	n = readv(c->fd, v->scratch, niov);
	if (n <= 0) {
		virtq_unpop(vq, nch);
		return 0;
	}
	/* readv filled each buffer's data part in turn: a packet per buffer it reached. */
	for (left = n; used < nch && left; used++) {
		uint32_t take = left < cap[used] ? left : cap[used];
		struct virtio_vsock_hdr h;

		c->tx_cnt += take;
		fill_hdr(v, c, &h, VIRTIO_VSOCK_OP_RW, take);
		iov_from_buf(ch[used].iov, ch[used].nin, 0, &h, HDR);
		virtq_add_used(vq, ch[used].head, HDR + take);
		left -= take;
	}
	virtq_unpop(vq, nch - used);
	virtq_publish(vq);
	return used;
}

/* Give the guest what is owed to it, as long as it has receive buffers. */
static void process_rx(struct vsock *v)
{
	struct virtio_dev *vd = &v->va.vd;
	struct virtq *vq = &vd->vqs[VSOCK_RXQ];
	unsigned budget = BUDGET;
	bool pushed = false;

	if (!servable(v, VSOCK_RXQ))
		return;
	while (v->nrst || v->list_head) {
		struct virtq_chain ch = {.iov = v->iov, .iov_max = IOV_MAX_V};
		struct conn *c = v->list_head;
		int n;

		if (!v->nrst && !c->pending && has_work(c)) {
			n = rx_batch(v, c, &budget);
			if (n < 0)
				break;
			if (n > 0) {
				pushed = true;
				list_pop(v);
				enlist(v, c); /* to the back: the others get their turn */
				continue;
			}
		}
		if (!pop(v, VSOCK_RXQ, &budget, &ch) || !rx_chain_ok(v, &ch))
			break;
		n = next_packet(v, &ch);
		if (n < 0) {
			virtq_unpop(vq, 1);
			continue;
		}
		virtq_push(vq, ch.head, n);
		pushed = true;
	}
	if (pushed)
		virtio_queue_interrupt(vd, VSOCK_RXQ);
}

/* After data went to the host: tell a guest that is running out of credit about the room. */
static void maybe_credit_update(struct vsock *v, struct conn *c)
{
	if (c->state == C_OPEN && c->fwd_cnt != c->fwd_sent &&
	    VSOCK_BUF - (c->rx_cnt - c->fwd_sent) < VSOCK_MAX_PKT) {
		c->pending |= P_CREDIT;
		enlist(v, c);
	}
}

/*
 * Once everything the guest sent reached the host: pass its shutdown on. False when c was
 * closed (the guest closed both ways: the RST ends it on its side too).
 */
static bool finish_shutdown(struct vsock *v, struct conn *c)
{
	if (c->used)
		return true;
	if (c->guest_shut_send && c->guest_shut_rcv) {
		conn_kill(v, c, true);
		return false;
	}
	if (c->guest_shut_send && !c->shut_wr) {
		shutdown(c->fd, SHUT_WR);
		c->shut_wr = true;
	}
	return true;
}

/* Write what c holds to its host socket. False when c was closed. */
static bool flush(struct vsock *v, struct conn *c)
{
	while (c->used) {
		uint32_t first = VSOCK_BUF - c->head < c->used ? VSOCK_BUF - c->head : c->used;
		struct iovec iov[2] = {{c->buf + c->head, first}, {c->buf, c->used - first}};
		ssize_t n = writev(c->fd, iov, c->used > first ? 2 : 1);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			conn_kill(v, c, true);
			return false;
		}
		c->head = (c->head + n) % VSOCK_BUF;
		c->used -= n;
		c->fwd_cnt += n;
	}
	if (!finish_shutdown(v, c))
		return false;
	maybe_credit_update(v, c);
	watch(v, c);
	return true;
}

/* Guest data for c: len bytes in iov[0..n), within the credit it was given. */
static void conn_write(struct vsock *v, struct conn *c, struct iovec *iov, unsigned n, uint32_t len)
{
	ssize_t w = 0;
	uint32_t tail, first;

	if (c->state != C_OPEN || c->guest_shut_send) {
		conn_kill(v, c, true);
		return;
	}
	if ((uint64_t)(c->rx_cnt - c->fwd_sent) + len > VSOCK_BUF) {
		v->stats.lies++;
		conn_kill(v, c, true);
		return;
	}
	if (!len)
		return;
	c->rx_cnt += len;
	if (!c->used) {
		w = writev(c->fd, iov, n);
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			conn_kill(v, c, true);
			return;
		}
		if (w < 0)
			w = 0;
		c->fwd_cnt += w;
	}
	if ((uint32_t)w < len) {
		if (!c->buf && !(c->buf = malloc(VSOCK_BUF))) {
			conn_kill(v, c, true);
			return;
		}
		tail = (c->head + c->used) % VSOCK_BUF;
		first = VSOCK_BUF - tail;
		if (first > len - w)
			first = len - w;
		iov_to_buf(iov, n, w, c->buf + tail, first);
		iov_to_buf(iov, n, w + first, c->buf, len - w - first);
		c->used += len - w;
	}
	maybe_credit_update(v, c);
	watch(v, c);
}

/* The guest connects to host port lport: bridge it to "<uds_path>_<lport>" or reset it. */
static void guest_connect(struct vsock *v, const struct virtio_vsock_hdr *h, uint32_t lport,
			  uint32_t pport)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct conn *c;
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", v->uds_path, lport);
	fd = v->nconns < VSOCK_MAX_CONNS
		     ? socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
		     : -1;
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		fd = -1;
	}
	c = fd >= 0 ? conn_new(v, fd, C_OPEN) : NULL;
	if (!c) {
		if (fd >= 0)
			close(fd);
		queue_rst(v, lport, pport);
		return;
	}
	c->lport = lport;
	c->pport = pport;
	c->peer_buf_alloc = le32toh(h->buf_alloc);
	c->peer_fwd_cnt = le32toh(h->fwd_cnt);
	hash_add(v, c);
	c->pending |= P_RESPONSE;
	enlist(v, c);
	watch(v, c);
}

/* The guest answered our REQUEST: tell the host program which port it got. */
static void host_accepted(struct vsock *v, struct conn *c)
{
	char ok[24];
	int len = snprintf(ok, sizeof(ok), "OK %u\n", c->lport);

	if (write(c->fd, ok, len) != len) {
		conn_kill(v, c, true);
		return;
	}
	c->state = C_OPEN;
	watch(v, c);
	arm_timer(v);
}

/* One packet the guest sent, in the readable chain ch (its header checked here). */
static void handle_tx(struct vsock *v, struct virtq_chain *ch)
{
	struct virtio_vsock_hdr h;
	uint32_t len, lport, pport, flags;
	uint16_t op;
	struct conn *c;
	unsigned i, k;

	if (ch->out_len < HDR) {
		v->stats.dropped++;
		return;
	}
	iov_to_buf(ch->iov, ch->nout, 0, &h, HDR);
	len = le32toh(h.len);
	op = le16toh(h.op);
	lport = le32toh(h.dst_port);
	pport = le32toh(h.src_port);
	if (len > ch->out_len - HDR || len > VSOCK_MAX_PKT || le64toh(h.src_cid) != v->cid ||
	    le64toh(h.dst_cid) != VSOCK_HOST_CID) {
		v->stats.dropped++;
		return;
	}
	c = lookup(v, lport, pport);
	if (le16toh(h.type) != VIRTIO_VSOCK_TYPE_STREAM) {
		v->stats.dropped++;
		if (c)
			conn_kill(v, c, true);
		else if (op != VIRTIO_VSOCK_OP_RST)
			queue_rst(v, lport, pport);
		return;
	}
	if (!c) {
		if (op == VIRTIO_VSOCK_OP_REQUEST)
			guest_connect(v, &h, lport, pport);
		else if (op != VIRTIO_VSOCK_OP_RST)
			queue_rst(v, lport, pport);
		return;
	}
	c->peer_buf_alloc = le32toh(h.buf_alloc);
	c->peer_fwd_cnt = le32toh(h.fwd_cnt);
	switch (op) {
	case VIRTIO_VSOCK_OP_RESPONSE:
		if (c->state != C_REQUEST || (c->pending & P_REQUEST))
			conn_kill(v, c, true);
		else
			host_accepted(v, c);
		return;
	case VIRTIO_VSOCK_OP_RST:
		conn_kill(v, c, false);
		return;
	case VIRTIO_VSOCK_OP_SHUTDOWN:
		flags = le32toh(h.flags);
		c->guest_shut_rcv |= flags & VIRTIO_VSOCK_SHUTDOWN_RCV;
		c->guest_shut_send |= flags & VIRTIO_VSOCK_SHUTDOWN_SEND;
		if (c->state != C_OPEN)
			conn_kill(v, c, true);
		else
			finish_shutdown(v, c);
		return;
	case VIRTIO_VSOCK_OP_RW:
		memcpy(v->scratch, ch->iov, ch->nout * sizeof(*ch->iov));
		i = iov_advance(v->scratch, ch->nout, HDR);
		k = iov_limit(v->scratch + i, ch->nout - i, len);
		conn_write(v, c, v->scratch + i, k, len);
		return;
	case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
		break;
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
		if (c->state == C_OPEN)
			c->pending |= P_CREDIT;
		break;
	default: /* REQUEST on an open connection, unknown operations */
		v->stats.dropped++;
		conn_kill(v, c, true);
		return;
	}
	enlist(v, c);
}

/* Take what the guest sent. */
static void process_tx(struct vsock *v)
{
	struct virtio_dev *vd = &v->va.vd;
	struct virtq *vq = &vd->vqs[VSOCK_TXQ];
	unsigned budget = BUDGET;
	bool pushed = false;

	if (!servable(v, VSOCK_TXQ))
		return;
	for (;;) {
		struct virtq_chain ch = {.iov = v->iov, .iov_max = IOV_MAX_V};

		if (!pop(v, VSOCK_TXQ, &budget, &ch))
			break;
		handle_tx(v, &ch);
		virtq_push(vq, ch.head, 0);
		pushed = true;
	}
	if (pushed)
		virtio_queue_interrupt(vd, VSOCK_TXQ);
}

/* TRANSPORT_RESET on the event queue, if owed and the guest gave a buffer for it. */
static void process_event(struct vsock *v)
{
	struct virtio_dev *vd = &v->va.vd;
	struct virtq_chain ch = {.iov = v->iov, .iov_max = IOV_MAX_V};
	struct virtio_vsock_event ev = {.id = htole32(VIRTIO_VSOCK_EVENT_TRANSPORT_RESET)};
	unsigned budget = 1;

	if (!v->reset_event || !servable(v, VSOCK_EVQ) || !pop(v, VSOCK_EVQ, &budget, &ch))
		return;
	if (ch.nout || ch.in_len < sizeof(ev)) {
		virtio_needs_reset(vd, "event queue: a buffer smaller than an event");
		return;
	}
	iov_from_buf(ch.iov, ch.nin, 0, &ev, sizeof(ev));
	virtq_push(&vd->vqs[VSOCK_EVQ], ch.head, sizeof(ev));
	v->reset_event = false;
	virtio_queue_interrupt(vd, VSOCK_EVQ);
}

static void kill_all(struct vsock *v);

/*
 * On the loop's thread, lock held: a reset made on a vCPU left the connections to close here
 * (only this thread takes a socket out of the loop). True when it did.
 */
static bool drop_if_reset(struct vsock *v)
{
	if (!v->dropping)
		return false;
	v->dropping = false;
	kill_all(v);
	return true;
}

static void vsock_notify(struct virtio_dev *vd, unsigned q)
{
	struct vsock *v = vd->priv;

	/* Host sockets are the event loop's: a kick served on a vCPU is passed to it. */
	if (!loop_on_thread(v->loop)) {
		virtio_queue_reschedule(vd, q);
		return;
	}
	drop_if_reset(v);
	if (q == VSOCK_TXQ)
		process_tx(v);
	else if (q == VSOCK_EVQ)
		process_event(v);
	process_rx(v);
}

/* A CONNECT line: "CONNECT <port>" in decimal, nothing else. */
static bool parse_connect(const char *s, uint32_t *port)
{
	uint64_t p = 0;
	unsigned digits = 0;

	if (strncmp(s, "CONNECT ", 8))
		return false;
	for (s += 8; *s >= '0' && *s <= '9' && digits < 10; s++, digits++)
		p = p * 10 + (*s - '0');
	if (*s == '\r')
		s++;
	if (*s || !digits || p > UINT32_MAX)
		return false;
	*port = p;
	return true;
}

/* A host port for a connection to the guest's port pport that no other one uses. */
static uint32_t ephemeral(struct vsock *v, uint32_t pport)
{
	do {
		v->next_port =
			v->next_port + 1 < FIRST_EPHEMERAL ? FIRST_EPHEMERAL : v->next_port + 1;
	} while (lookup(v, v->next_port, pport));
	return v->next_port;
}

/* Read the CONNECT line a byte at a time (nothing after it is taken before the OK). */
static void read_line(struct vsock *v, struct conn *c)
{
	for (;;) {
		char ch;
		ssize_t n = read(c->fd, &ch, 1);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0 || c->line_len == VSOCK_LINE_MAX - 1) {
			conn_kill(v, c, false);
			return;
		}
		if (ch != '\n') {
			c->line[c->line_len++] = ch;
			continue;
		}
		c->line[c->line_len] = 0;
		if (!parse_connect(c->line, &c->pport)) {
			conn_kill(v, c, false);
			return;
		}
		c->lport = ephemeral(v, c->pport);
		hash_add(v, c);
		c->state = C_REQUEST;
		c->pending |= P_REQUEST;
		c->deadline = timeline_clock_ns() + VSOCK_HANDSHAKE_MS * 1000000ull;
		enlist(v, c);
		watch(v, c);
		arm_timer(v);
		return;
	}
}

/* Something happened on a connection's host socket. */
static void on_conn(void *opaque, uint32_t events)
{
	struct conn *c = opaque;
	struct vsock *v = c->v;

	virtio_lock(&v->va.vd);
	if (drop_if_reset(v)) {
		virtio_unlock(&v->va.vd); /* c was closed with the others */
		return;
	}
	if (c->state == C_LINE) {
		read_line(v, c);
	} else if (c->state == C_REQUEST) {
		conn_kill(v, c, true); /* the host program went away before the guest answered */
	} else if (!(events & EPOLLOUT) || flush(v, c)) {
		if (events & (EPOLLHUP | EPOLLERR)) {
			/* Always reported: never watched again (reads and writes say the rest). */
			loop_del(v->loop, c->fd);
			c->watched = false;
			c->hup = true;
		}
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			c->readable = true;
		watch(v, c);
		enlist(v, c);
	}
	process_rx(v);
	virtio_unlock(&v->va.vd);
}

static void on_listen(void *opaque, uint32_t events)
{
	struct vsock *v = opaque;

	(void)events;
	virtio_lock(&v->va.vd);
	drop_if_reset(v);
	for (unsigned i = 0; i < 16; i++) {
		int fd = accept4(v->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0)
			break;
		c = conn_new(v, fd, C_LINE);
		if (!c) {
			close(fd); /* too many connections: this one is refused */
			continue;
		}
		c->deadline = timeline_clock_ns() + VSOCK_HANDSHAKE_MS * 1000000ull;
		watch(v, c);
	}
	arm_timer(v);
	virtio_unlock(&v->va.vd);
}

/* Handshakes past their deadline are closed. */
static void on_timer(void *opaque, uint32_t events)
{
	struct vsock *v = opaque;
	uint64_t now = timeline_clock_ns(), ticks;

	(void)events;
	if (read(v->timer_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return;
	virtio_lock(&v->va.vd);
	drop_if_reset(v);
	for (unsigned i = v->nconns; i-- > 0;)
		if (i < v->nconns && v->all[i]->state != C_OPEN && v->all[i]->deadline <= now)
			conn_kill(v, v->all[i], true);
	arm_timer(v);
	process_rx(v);
	virtio_unlock(&v->va.vd);
}

static void kill_all(struct vsock *v)
{
	while (v->nconns)
		conn_kill(v, v->all[v->nconns - 1], false);
	v->nrst = 0;
	v->rst_head = 0;
}

/* A reset written on a vCPU: the loop closes the connections. */
static void on_wake(void *opaque, uint32_t events)
{
	struct vsock *v = opaque;
	uint64_t n;

	(void)events;
	if (read(v->wake_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	virtio_lock(&v->va.vd);
	drop_if_reset(v);
	virtio_unlock(&v->va.vd);
}

/*
 * The driver reset the device: every connection is gone. On a vCPU they are only marked so
 * (nothing of them reaches the guest: the device is not live) and the loop closes them next,
 * before it serves anything else of the device.
 */
static void vsock_reset(struct virtio_dev *vd)
{
	struct vsock *v = vd->priv;
	uint64_t one = 1;

	v->reset_event = false;
	if (loop_on_thread(v->loop)) {
		kill_all(v);
		return;
	}
	v->nrst = 0;
	v->dropping = true;
	if (write(v->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("%s: cannot wake the event loop: %s", vd->name, strerror(errno));
}

static const struct virtio_ops vsock_virtio_ops = {
	.device_id = VIRTIO_ID_VSOCK,
	.notify = vsock_notify,
	.reset = vsock_reset,
};

void vsock_transport_reset(struct device *dev)
{
	struct vsock *v = dev->priv;

	virtio_lock(&v->va.vd);
	kill_all(v);
	v->reset_event = true;
	if (loop_on_thread(v->loop))
		process_event(v);
	else
		virtio_queue_reschedule(&v->va.vd, VSOCK_EVQ);
	virtio_unlock(&v->va.vd);
}

int vsock_listen(struct device *dev)
{
	struct vsock *v = dev->priv;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int err;

	if (lstat(v->uds_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_error("%s: uds_path '%s' exists and is not a socket", dev->name,
				  v->uds_path);
			return -EEXIST;
		}
		unlink(v->uds_path); /* a stale socket of an earlier run */
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", v->uds_path);
	v->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (v->listen_fd < 0 || bind(v->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(v->listen_fd, 128) < 0) {
		err = -errno;
		log_error("%s: cannot listen on '%s': %s", dev->name, v->uds_path, strerror(-err));
		vsock_unlisten(dev);
		return err;
	}
	return 0;
}

void vsock_unlisten(struct device *dev)
{
	struct vsock *v = dev->priv;

	if (v->listen_fd >= 0)
		close(v->listen_fd);
	v->listen_fd = -1;
}

int vsock_start(struct device *dev, const struct guest_mem *mem, struct loop *loop,
		struct virtio_dev **vd)
{
	struct vsock *v = dev->priv;
	int err;

	v->loop = loop;
	v->next_port = FIRST_EPHEMERAL - 1;
	v->iov = calloc(RX_BATCH * IOV_MAX_V, sizeof(*v->iov));
	v->scratch = calloc(IOV_MAX_V, sizeof(*v->scratch));
	if (!v->iov || !v->scratch)
		return -ENOMEM;
	v->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	v->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (v->timer_fd < 0 || v->wake_fd < 0)
		return -errno;
	err = loop_add(loop, v->wake_fd, EPOLLIN, on_wake, v);
	if (err)
		return err;
	v->wake_watched = true;
	err = loop_add(loop, v->timer_fd, EPOLLIN, on_timer, v);
	if (err)
		return err;
	v->timer_watched = true;
	if (v->listen_fd >= 0) {
		err = loop_add(loop, v->listen_fd, EPOLLIN, on_listen, v);
		if (err)
			return err;
		v->listen_watched = true;
	}
	v->cfg.guest_cid = htole64(v->cid);
	err = virtio_init(&v->va.vd, dev->name, &vsock_virtio_ops, v, 0, 3, v->va.queue_size,
			  &v->cfg, sizeof(v->cfg), mem);
	if (vd)
		*vd = &v->va.vd;
	return err;
}

void vsock_stop(struct device *dev)
{
	struct vsock *v = dev->priv;

	if (!v->loop)
		return;
	kill_all(v);
	if (v->listen_watched)
		loop_del(v->loop, v->listen_fd);
	if (v->timer_watched)
		loop_del(v->loop, v->timer_fd);
	if (v->wake_watched)
		loop_del(v->loop, v->wake_fd);
	v->listen_watched = v->timer_watched = v->wake_watched = false;
	if (v->timer_fd >= 0)
		close(v->timer_fd);
	if (v->wake_fd >= 0)
		close(v->wake_fd);
	v->timer_fd = v->wake_fd = -1;
	v->dropping = false;
	virtio_free(&v->va.vd);
	free(v->iov);
	free(v->scratch);
	v->iov = v->scratch = NULL;
	v->loop = NULL;
}

const struct vsock_stats *vsock_stats(const struct device *dev)
{
	const struct vsock *v = dev->priv;

	return &v->stats;
}

unsigned vsock_conns(const struct device *dev)
{
	const struct vsock *v = dev->priv;

	return v->nconns;
}

static int vsock_configure(struct device *dev, struct machine *m)
{
	struct cfg *c = &m->cfg;
	struct vsock *v = dev->priv;
	int err = 0;

	v->listen_fd = v->timer_fd = v->wake_fd = -1;
	err |= cfg_u64(c, dev->name, "cid", &v->cid, 0, CFG_REQUIRED);
	err |= cfg_path(c, dev->name, "uds_path", &v->uds_path, CFG_REQUIRED);
	err |= virtio_adapter_queue_keys(dev, m);
	if (err)
		return -1;
	/* 0, 1 and 2 are the hypervisor's, the local and the host's; -1 is "any". */
	if (v->cid < 3 || v->cid >= UINT32_MAX) {
		cfg_error(c, cfg_get(c, dev->name, "cid"), NULL,
			  "%llu is not a guest CID (3 to 4294967294)", (unsigned long long)v->cid);
		err = -1;
	}
	/* Room for "_<port>" after it: the sockets guest connections reach. */
	if (strlen(v->uds_path) + 11 >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		cfg_error(c, cfg_get(c, dev->name, "uds_path"), NULL,
			  "longer than %zu bytes (a Unix socket's path, with \"_<port>\" after it)",
			  sizeof(((struct sockaddr_un *)0)->sun_path) - 12);
		err = -1;
	}
	if (err)
		return -1;
	m->sandbox.vsock = true; /* the event loop accepts and connects Unix sockets */
	m->sandbox.spare_fds += VSOCK_MAX_CONNS; /* their descriptors, opened after set-up */
	return 0;
}

static void vsock_describe(const struct device *dev, FILE *out)
{
	const struct vsock *v = dev->priv;

	fprintf(out, "virtio-vsock cid %llu, %s, ", (unsigned long long)v->cid, v->uds_path);
}

static int vsock_open(struct device *dev)
{
	return vsock_listen(dev);
}

static int vsock_start_on(struct device *dev, const struct guest_mem *mem, struct loop *loop)
{
	return vsock_start(dev, mem, loop, NULL);
}

static void vsock_report(const struct device *dev)
{
	const struct vsock *v = dev->priv;

	log_info("%s: %lu connections, %lu resets sent, %lu lost, %lu packets dropped, %lu "
		 "credit violations, %lu interrupts",
		 dev->name, v->stats.conns, v->stats.resets, v->stats.rst_lost, v->stats.dropped,
		 v->stats.lies, v->va.vd.stats.interrupts);
}

/*
 * A restore: connections are never saved (their host sockets are gone), so the guest is told
 * to drop its own (virtio 1.2 5.10.6.5), as Firecracker does.
 */
static int vsock_restore(struct device *dev, const struct snap_sec *sec)
{
	struct vsock *v = dev->priv;

	(void)sec;
	kill_all(v);
	v->reset_event = true;
	return 0;
}

static void vsock_destroy(struct device *dev)
{
	struct vsock *v = dev->priv;

	free(v->uds_path);
}

static const struct virtio_device_ops vsock_device_ops = {
	.size = sizeof(struct vsock),
	.pci_class = 0x078000, /* communication controller, other */
	.fixed_queues = 3,     /* rx, tx, event: no queues key */
	.configure = vsock_configure,
	.describe = vsock_describe,
	.open = vsock_open,
	.start = vsock_start_on,
	.report = vsock_report,
	.stop = vsock_stop,
	.close = vsock_unlisten,
	.restore = vsock_restore,
	.destroy = vsock_destroy,
};

/* A restore may listen elsewhere; the CID is the guest's and stays. */
static const char *const vsock_restore_keys[] = {"uds_path", NULL};

const struct device_ops virtio_vsock_ops =
	VIRTIO_DEVICE("virtio-vsock", vsock_device_ops, vsock_restore_keys);
