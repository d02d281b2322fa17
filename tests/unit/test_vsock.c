/*
 * Unit tests: virtio-vsock driven by a fake driver, its host side real Unix sockets: the
 * CONNECT handshake, streams both ways, resets, credit, hostile packets, device and
 * transport resets.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_vsock.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "machine.h"
#include "snapshot/snapfile.h"
#include "test.h"
#include "timeline.h"
#include "vdrv.h"
#include "virtio/virtio.h"
#include "virtio/vsock.h"

#define HDR	    sizeof(struct virtio_vsock_hdr)
#define GUEST_CID   3
#define NRX	    16
#define RXBUF	    (HDR + 4096)
#define GUEST_ALLOC (1u << 20)

struct vs {
	struct machine m;
	struct device *dev;
	struct virtio_dev *vd;
	struct vdrv d;
	char dir[32], path[64];
	uint64_t rx_gpa[VDRV_QUEUES * 64]; /* an RX head's buffer */
	uint16_t rx_seen;		   /* used entries of the RX queue read so far */
	uint64_t tx_buf;
};

/* A packet the device gave the guest. */
struct pkt {
	struct virtio_vsock_hdr h;
	uint8_t data[4096];
	uint32_t len;
};

static void post_rx(struct vs *s, uint64_t gpa)
{
	struct vdrv_buf b = {gpa, RXBUF, true};
	uint16_t head = vdrv_chain(&s->d, VSOCK_RXQ, &b, 1);

	s->rx_gpa[head] = gpa;
	vdrv_post(&s->d, VSOCK_RXQ, head);
}

/* The driver starts the device and gives it nrx receive buffers. */
static bool vs_start(struct vs *s, unsigned nrx)
{
	if (vdrv_start(&s->d, 0, 3, 64) != 15)
		return false;
	s->rx_seen = 0;
	for (unsigned i = 0; i < nrx; i++)
		post_rx(s, vdrv_alloc(&s->d, RXBUF, 16));
	vdrv_kick(&s->d, VSOCK_RXQ);
	return true;
}

/* The device over vdrv, its listener open; the driver has not touched it yet. */
static bool vs_build(struct vs *s)
{
	char cid[32], uds[128];
	char *sets[] = {"vsock0.type=virtio-vsock", cid, uds, "vsock0.queue_size=64"};

	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "/tmp/mvunit-vsock-XXXXXX");
	if (!mkdtemp(s->dir))
		return false;
	snprintf(s->path, sizeof(s->path), "%s/v.sock", s->dir);
	snprintf(cid, sizeof(cid), "vsock0.cid=%d", GUEST_CID);
	snprintf(uds, sizeof(uds), "vsock0.uds_path=%s", s->path);
	if (!test_machine_load(&s->m, "machines/rpi5.ini", sets, 4))
		return false;
	for (size_t i = 0; i < s->m.ndevices; i++)
		if (!strcmp(s->m.devices[i].name, "vsock0"))
			s->dev = &s->m.devices[i];
	vdrv_init(&s->d, 8u << 20);
	if (!s->dev || vsock_listen(s->dev) || vsock_start(s->dev, &s->d.mem, &s->d.loop, &s->vd))
		return false;
	vdrv_attach(&s->d, s->vd);
	return true;
}

/* The device started by the driver, with nrx receive buffers. */
static bool vs_open(struct vs *s, unsigned nrx)
{
	if (!vs_build(s) || !vs_start(s, nrx))
		return false;
	s->tx_buf = vdrv_alloc(&s->d, HDR + 128 * 1024, 16);
	return true;
}

static void vs_close(struct vs *s)
{
	char cmd[128];

	vdrv_detach(&s->d);
	if (s->dev) {
		vsock_stop(s->dev);
		vsock_unlisten(s->dev);
	}
	vdrv_free(&s->d);
	machine_free(&s->m);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", s->dir);
	if (system(cmd))
		printf("cannot remove %s\n", s->dir);
}

/* The next packet the device put in the RX queue (waiting for it); false if none came. */
static bool rx(struct vs *s, struct pkt *p)
{
	uint8_t *used;
	uint32_t id, len;
	uint8_t *buf;

	if (!VDRV_WAIT(&s->d, vdrv_used(&s->d, VSOCK_RXQ) != s->rx_seen))
		return false;
	used = vdrv_ptr(&s->d, s->d.q[VSOCK_RXQ].used);
	memcpy(&id, used + 4 + 8 * (s->rx_seen % 64), 4);
	memcpy(&len, used + 8 + 8 * (s->rx_seen % 64), 4);
	s->rx_seen++;
	buf = vdrv_ptr(&s->d, s->rx_gpa[id]);
	memcpy(&p->h, buf, HDR);
	p->len = len - HDR;
	memcpy(p->data, buf + HDR, p->len < sizeof(p->data) ? p->len : sizeof(p->data));
	post_rx(s, s->rx_gpa[id]);
	vdrv_kick(&s->d, VSOCK_RXQ);
	return len >= HDR;
}

/* No packet for the guest after the loop has run out of work. */
static bool rx_quiet(struct vs *s)
{
	while (loop_poll(&s->d.loop, 50) > 0)
		;
	return vdrv_used(&s->d, VSOCK_RXQ) == s->rx_seen;
}

/* The guest sends a packet (header fields as given, little-endian made here). */
static void tx_raw(struct vs *s, const struct virtio_vsock_hdr *h, const void *data, uint32_t len)
{
	uint16_t want = vdrv_used(&s->d, VSOCK_TXQ) + 1;
	struct vdrv_buf b = {s->tx_buf, HDR + len, false};
	uint16_t head;

	memcpy(vdrv_ptr(&s->d, s->tx_buf), h, HDR);
	if (len)
		memcpy(vdrv_ptr(&s->d, s->tx_buf + HDR), data, len);
	head = vdrv_chain(&s->d, VSOCK_TXQ, &b, 1);
	vdrv_post(&s->d, VSOCK_TXQ, head);
	vdrv_kick(&s->d, VSOCK_TXQ);
	CHECK(vdrv_wait_used(&s->d, VSOCK_TXQ, want));
}

static struct virtio_vsock_hdr hdr(uint32_t gport, uint32_t hport, uint16_t op, uint32_t len,
				   uint32_t fwd)
{
	return (struct virtio_vsock_hdr){
		.src_cid = htole64(GUEST_CID),
		.dst_cid = htole64(VSOCK_HOST_CID),
		.src_port = htole32(gport),
		.dst_port = htole32(hport),
		.len = htole32(len),
		.type = htole16(VIRTIO_VSOCK_TYPE_STREAM),
		.op = htole16(op),
		.buf_alloc = htole32(GUEST_ALLOC),
		.fwd_cnt = htole32(fwd),
	};
}

static void tx(struct vs *s, uint32_t gport, uint32_t hport, uint16_t op, const void *data,
	       uint32_t len)
{
	struct virtio_vsock_hdr h = hdr(gport, hport, op, len, 0);

	tx_raw(s, &h, data, len);
}

static int unix_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int unix_listen(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Host side: wait (running the loop) until fd has something, then read it. */
static ssize_t host_read(struct vs *s, int fd, void *buf, size_t len)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	if (!VDRV_WAIT(&s->d, poll(&p, 1, 0) > 0))
		return -1;
	return read(fd, buf, len);
}

/* The packet has this operation between these ports. */
static bool is(const struct pkt *p, uint16_t op, uint32_t hport, uint32_t gport)
{
	return le16toh(p->h.op) == op && le32toh(p->h.src_port) == hport &&
	       le32toh(p->h.dst_port) == gport && le64toh(p->h.src_cid) == VSOCK_HOST_CID &&
	       le64toh(p->h.dst_cid) == GUEST_CID && le16toh(p->h.type) == VIRTIO_VSOCK_TYPE_STREAM;
}

/* A host program connects to guest port gport, the guest accepts: its fd and host port. */
static int host_connect(struct vs *s, uint32_t gport, uint32_t *hport)
{
	char line[32], ok[32];
	struct pkt p;
	int fd = unix_connect(s->path), n;

	snprintf(line, sizeof(line), "CONNECT %u\n", gport);
	CHECK(fd >= 0 && write(fd, line, strlen(line)) == (ssize_t)strlen(line));
	CHECK(rx(s, &p));
	CHECK_EQ(le16toh(p.h.op), VIRTIO_VSOCK_OP_REQUEST);
	CHECK_EQ(le32toh(p.h.dst_port), gport);
	*hport = le32toh(p.h.src_port);
	CHECK(*hport >= 1u << 30);
	tx(s, gport, *hport, VIRTIO_VSOCK_OP_RESPONSE, NULL, 0);
	n = host_read(s, fd, ok, sizeof(ok) - 1);
	CHECK(n > 0);
	ok[n > 0 ? n : 0] = 0;
	snprintf(line, sizeof(line), "OK %u\n", *hport);
	CHECK_STR(ok, line);
	return fd;
}

static void test_host_to_guest(void)
{
	struct vs s;
	struct pkt p;
	uint32_t hport;
	char buf[64];
	int fd;

	if (!vs_open(&s, NRX))
		goto out;
	fd = host_connect(&s, 1234, &hport);
	CHECK_EQ(vsock_conns(s.dev), 1);
	/* Host to guest. */
	CHECK(write(fd, "hello", 5) == 5);
	CHECK(rx(&s, &p) && is(&p, VIRTIO_VSOCK_OP_RW, hport, 1234));
	CHECK(p.len == 5 && !memcmp(p.data, "hello", 5));
	CHECK_EQ(le32toh(p.h.buf_alloc), VSOCK_BUF);
	/* 20000 bytes at once: read into 5 receive buffers at a time, in order. */
	{
		static uint8_t big[20000];
		uint32_t got = 0;
		bool same = true;

		for (size_t i = 0; i < sizeof(big); i++)
			big[i] = (uint8_t)(i * 7 + i / 251);
		CHECK(write(fd, big, sizeof(big)) == (ssize_t)sizeof(big));
		while (got < sizeof(big) && rx(&s, &p) && is(&p, VIRTIO_VSOCK_OP_RW, hport, 1234)) {
			CHECK(p.len <= RXBUF - HDR && p.len > 0);
			same &= got + p.len <= sizeof(big) && !memcmp(p.data, big + got, p.len);
			got += p.len;
		}
		CHECK_EQ(got, sizeof(big));
		CHECK(same);
	}
	/* Guest to host. */
	tx(&s, 1234, hport, VIRTIO_VSOCK_OP_RW, "world!", 6);
	CHECK(host_read(&s, fd, buf, sizeof(buf)) == 6 && !memcmp(buf, "world!", 6));
	/* A credit request is answered with the bytes forwarded. */
	tx(&s, 1234, hport, VIRTIO_VSOCK_OP_CREDIT_REQUEST, NULL, 0);
	CHECK(rx(&s, &p) && is(&p, VIRTIO_VSOCK_OP_CREDIT_UPDATE, hport, 1234));
	CHECK_EQ(le32toh(p.h.fwd_cnt), 6);
	/* The host half-closes: the guest hears it will get no more. */
	shutdown(fd, SHUT_WR);
	CHECK(rx(&s, &p) && is(&p, VIRTIO_VSOCK_OP_SHUTDOWN, hport, 1234));
	CHECK(le32toh(p.h.flags) & VIRTIO_VSOCK_SHUTDOWN_SEND);
	/* The guest closes both ways: the host sees its end, the guest gets the RST. */
	struct virtio_vsock_hdr h = hdr(1234, hport, VIRTIO_VSOCK_OP_SHUTDOWN, 0, 0);

	h.flags = htole32(VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND);
	tx_raw(&s, &h, NULL, 0);
	CHECK(rx(&s, &p) && is(&p, VIRTIO_VSOCK_OP_RST, hport, 1234));
	CHECK(host_read(&s, fd, buf, sizeof(buf)) == 0);
	CHECK_EQ(vsock_conns(s.dev), 0);
	close(fd);
out:
	vs_close(&s);
}

static void test_guest_to_host(void)
{
	char path[100], buf[64];
	struct vs s;
	struct pkt p;
	int lfd, fd;

	if (!vs_open(&s, NRX))
		goto out;
	snprintf(path, sizeof(path), "%s_5000", s.path);
	lfd = unix_listen(path);
	CHECK(lfd >= 0);
	tx(&s, 777, 5000, VIRTIO_VSOCK_OP_REQUEST, NULL, 0);
	CHECK(rx(&s, &p) && is(&p, VIRTIO_VSOCK_OP_RESPONSE, 5000, 777));
	fd = accept(lfd, NULL, NULL);
	CHECK(fd >= 0);
	tx(&s, 777, 5000, VIRTIO_VSOCK_OP_RW, "ping", 4);
	CHECK(host_read(&s, fd, buf, sizeof(buf)) == 4 && !memcmp(buf, "ping", 4));
	CHECK(write(fd, "pong", 4) == 4);
	CHECK(rx(&s, &p) && is(&p, VIRTIO_VSOCK_OP_RW, 5000, 777));
	CHECK(p.len == 4 && !memcmp(p.data, "pong", 4));
	/* The host program closes: the guest hears both directions are over. */
	close(fd);
	CHECK(rx(&s, &p) && is(&p, VIRTIO_VSOCK_OP_SHUTDOWN, 5000, 777));
	CHECK_EQ(le32toh(p.h.flags), VIRTIO_VSOCK_SHUTDOWN_SEND | VIRTIO_VSOCK_SHUTDOWN_RCV);
	tx(&s, 777, 5000, VIRTIO_VSOCK_OP_RST, NULL, 0);
	CHECK_EQ(vsock_conns(s.dev), 0);
	/* Nothing listens on port 5001: the guest is reset. */
	tx(&s, 778, 5001, VIRTIO_VSOCK_OP_REQUEST, NULL, 0);
	CHECK(rx(&s, &p) && is(&p, VIRTIO_VSOCK_OP_RST, 5001, 778));
	CHECK_EQ(vsock_conns(s.dev), 0);
	close(lfd);
out:
	vs_close(&s);
}

/* Host programs that speak the protocol wrong, or to a guest that does not listen. */
static void test_handshake_refused(void)
{
	static const char *const bad[] = {"CONNECT\n",
					  "CONNECT abc\n",
					  "connect 5\n",
					  "CONNECT 5 6\n",
					  "CONNECT -1\n",
					  "CONNECT 99999999999\n",
					  "CONNECT 123456789012345678901234567\n",
					  "\n"};
	struct vs s;
	struct pkt p;
	char buf[16];
	int fd;

	if (!vs_open(&s, NRX))
		goto out;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fd = unix_connect(s.path);
		CHECK(write(fd, bad[i], strlen(bad[i])) == (ssize_t)strlen(bad[i]));
		/* closed: end of file, or a reset when it left bytes unread */
		if (host_read(&s, fd, buf, sizeof(buf)) > 0)
			printf("FAIL %s: '%s' not refused\n", test_current, bad[i]);
		close(fd);
	}
	/* An overlong line without its end is refused before it ends. */
	fd = unix_connect(s.path);
	CHECK(write(fd, "CONNECT 00000000000000000000000000000000000", 43) == 43);
	CHECK(host_read(&s, fd, buf, sizeof(buf)) <= 0);
	close(fd);
	CHECK(rx_quiet(&s)); /* the guest heard of none of them */
	/* The guest has no listener on the port: the host connection is closed. */
	fd = unix_connect(s.path);
	CHECK(write(fd, "CONNECT 42\n", 11) == 11);
	CHECK(rx(&s, &p) && le16toh(p.h.op) == VIRTIO_VSOCK_OP_REQUEST);
	tx(&s, 42, le32toh(p.h.src_port), VIRTIO_VSOCK_OP_RST, NULL, 0);
	CHECK(host_read(&s, fd, buf, sizeof(buf)) == 0);
	close(fd);
	CHECK_EQ(vsock_conns(s.dev), 0);
	/* A host program that never finishes its line is closed after the deadline. */
	fd = unix_connect(s.path);
	CHECK(write(fd, "CONN", 4) == 4);
	CHECK(host_read(&s, fd, buf, sizeof(buf)) == 0);
	close(fd);
	CHECK_EQ(vsock_conns(s.dev), 0);
out:
	vs_close(&s);
}

/*
 * The guest sends 64 KiB packets on a connection whose host program reads nothing, as long as
 * the credit the device gave allows (fwd: the fwd_cnt it last heard); the bytes sent.
 */
static uint32_t fill(struct vs *s, uint32_t gport, uint32_t hport, uint32_t guest_fwd,
		     uint32_t *fwd)
{
	static uint8_t big[VSOCK_MAX_PKT];
	struct virtio_vsock_hdr h = hdr(gport, hport, VIRTIO_VSOCK_OP_RW, sizeof(big), guest_fwd);
	struct pkt p;
	uint32_t sent = 0;

	for (; sent + sizeof(big) <= VSOCK_BUF + *fwd; sent += sizeof(big)) {
		tx_raw(s, &h, big, sizeof(big));
		while (vdrv_used(&s->d, VSOCK_RXQ) != s->rx_seen && rx(s, &p))
			if (le16toh(p.h.op) == VIRTIO_VSOCK_OP_CREDIT_UPDATE &&
			    le32toh(p.h.src_port) == hport)
				*fwd = le32toh(p.h.fwd_cnt);
	}
	return sent;
}

/* Never more than the guest's credit; the device's own credit is enforced. */
static void test_credit(void)
{
	static uint8_t big[VSOCK_MAX_PKT];
	struct virtio_vsock_hdr h;
	struct vs s;
	struct pkt p;
	uint32_t hport, got = 0, fwd = 0, sent = 0;
	int fd;

	if (!vs_open(&s, NRX))
		goto out;
	fd = host_connect(&s, 99, &hport);
	/* The guest gives 100 bytes of credit: 300 written by the host arrive 100 at a time. */
	h = hdr(99, hport, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, 0);
	h.buf_alloc = htole32(100);
	tx_raw(&s, &h, NULL, 0);
	memset(big, 'x', sizeof(big));
	CHECK(write(fd, big, 300) == 300);
	while (got < 100 && rx(&s, &p))
		got += p.len;
	CHECK_EQ(got, 100);
	CHECK(rx_quiet(&s));
	h.fwd_cnt = htole32(100);
	tx_raw(&s, &h, NULL, 0);
	while (got < 200 && rx(&s, &p))
		got += p.len;
	CHECK_EQ(got, 200);
	CHECK(rx_quiet(&s));
	/*
	 * The host reads nothing: the guest may send VSOCK_BUF bytes beyond what it was told
	 * was forwarded, and a byte more is a credit violation (the connection is reset).
	 */
	sent = fill(&s, 99, hport, 200, &fwd);
	CHECK(sent > VSOCK_BUF); /* the host's socket buffer took some */
	CHECK_EQ(vsock_stats(s.dev)->lies, 0);
	CHECK_EQ(vsock_conns(s.dev), 1);
	h = hdr(99, hport, VIRTIO_VSOCK_OP_RW, VSOCK_BUF + fwd - sent + 1, 200);
	tx_raw(&s, &h, big, le32toh(h.len));
	CHECK_EQ(vsock_stats(s.dev)->lies, 1);
	CHECK(rx(&s, &p) && is(&p, VIRTIO_VSOCK_OP_RST, hport, 99));
	CHECK_EQ(vsock_conns(s.dev), 0);
	close(fd);
out:
	vs_close(&s);
}

/* A host reader that never reads stalls only its own stream. */
static void test_stall(void)
{
	static uint8_t big[VSOCK_MAX_PKT];
	struct vs s;
	struct pkt p;
	uint32_t slow, fast, sent, fwd = 0;
	char buf[16];
	int sfd, ffd;

	if (!vs_open(&s, NRX))
		goto out;
	sfd = host_connect(&s, 10, &slow);
	ffd = host_connect(&s, 11, &fast);
	/* Fill everything the slow one's credit allows (its socket buffer, then ours). */
	sent = fill(&s, 10, slow, 0, &fwd);
	/* The other stream still flows. */
	tx(&s, 11, fast, VIRTIO_VSOCK_OP_RW, "fast", 4);
	CHECK(host_read(&s, ffd, buf, sizeof(buf)) == 4);
	CHECK(write(ffd, "back", 4) == 4);
	CHECK(rx(&s, &p) && is(&p, VIRTIO_VSOCK_OP_RW, fast, 11) && p.len == 4);
	CHECK_EQ(vsock_conns(s.dev), 2);
	CHECK_EQ(vsock_stats(s.dev)->lies, 0);
	/* The slow reader reads: the guest hears of the room (a credit update). */
	for (uint32_t left = sent; left;) {
		ssize_t n = host_read(&s, sfd, big, sizeof(big));

		if (n <= 0)
			break;
		left -= n;
	}
	CHECK(rx(&s, &p) && is(&p, VIRTIO_VSOCK_OP_CREDIT_UPDATE, slow, 10));
	CHECK(le32toh(p.h.fwd_cnt) > 0);
	close(sfd);
	close(ffd);
out:
	vs_close(&s);
}

/* What a hostile guest may send: dropped or reset, never more. */
static void test_hostile(void)
{
	struct virtio_vsock_hdr h;
	struct vs s;
	struct pkt p;
	uint32_t hport;
	int fd;

	if (!vs_open(&s, NRX))
		goto out;
	fd = host_connect(&s, 7, &hport);
	/* A length beyond the buffer, a wrong source or destination CID: dropped. */
	h = hdr(7, hport, VIRTIO_VSOCK_OP_RW, 100, 0);
	tx_raw(&s, &h, "abc", 3);
	h = hdr(7, hport, VIRTIO_VSOCK_OP_RW, 3, 0);
	h.src_cid = htole64(4);
	tx_raw(&s, &h, "abc", 3);
	h = hdr(7, hport, VIRTIO_VSOCK_OP_RW, 3, 0);
	h.dst_cid = htole64(1);
	tx_raw(&s, &h, "abc", 3);
	h = hdr(7, hport, VIRTIO_VSOCK_OP_RW, VSOCK_MAX_PKT + 1, 0);
	tx_raw(&s, &h, "abc", 3);
	CHECK_EQ(vsock_stats(s.dev)->dropped, 4);
	CHECK(rx_quiet(&s));
	CHECK_EQ(vsock_conns(s.dev), 1);
	/* A header cut short: dropped. */
	h = hdr(7, hport, VIRTIO_VSOCK_OP_RW, 0, 0);
	{
		struct vdrv_buf b = {s.tx_buf, HDR - 1, false};
		uint16_t want = vdrv_used(&s.d, VSOCK_TXQ) + 1;

		vdrv_post(&s.d, VSOCK_TXQ, vdrv_chain(&s.d, VSOCK_TXQ, &b, 1));
		vdrv_kick(&s.d, VSOCK_TXQ);
		CHECK(vdrv_wait_used(&s.d, VSOCK_TXQ, want));
	}
	CHECK_EQ(vsock_stats(s.dev)->dropped, 5);
	/* Packets for no connection: reset. */
	tx(&s, 8, 12345, VIRTIO_VSOCK_OP_RW, "x", 1);
	CHECK(rx(&s, &p) && is(&p, VIRTIO_VSOCK_OP_RST, 12345, 8));
	tx(&s, 8, 12345, VIRTIO_VSOCK_OP_RST, NULL, 0);
	CHECK(rx_quiet(&s)); /* an RST is never answered */
	/* A seqpacket type: reset. */
	h = hdr(9, 12345, VIRTIO_VSOCK_OP_REQUEST, 0, 0);
	h.type = htole16(VIRTIO_VSOCK_TYPE_SEQPACKET);
	tx_raw(&s, &h, NULL, 0);
	CHECK(rx(&s, &p) && is(&p, VIRTIO_VSOCK_OP_RST, 12345, 9));
	/* An unknown operation on the connection: it is reset, the host sees it closed. */
	tx(&s, 7, hport, 99, NULL, 0);
	CHECK(rx(&s, &p) && is(&p, VIRTIO_VSOCK_OP_RST, hport, 7));
	CHECK_EQ(vsock_conns(s.dev), 0);
	{
		char buf[8];

		CHECK(host_read(&s, fd, buf, sizeof(buf)) == 0);
	}
	close(fd);
	/* A flood of requests to ports nobody listens on, with no RX buffers: bounded. */
	for (unsigned i = 0; i < 3000; i++) {
		h = hdr(20000 + i, 4000, VIRTIO_VSOCK_OP_REQUEST, 0, 0);
		memcpy(vdrv_ptr(&s.d, s.tx_buf), &h, HDR);
		struct vdrv_buf b = {s.tx_buf, HDR, false};

		vdrv_post(&s.d, VSOCK_TXQ, vdrv_chain(&s.d, VSOCK_TXQ, &b, 1));
		if (i % 32 == 31) {
			uint16_t want = vdrv_used(&s.d, VSOCK_TXQ) + 32;

			vdrv_kick(&s.d, VSOCK_TXQ);
			CHECK(vdrv_wait_used(&s.d, VSOCK_TXQ, want));
		}
	}
	CHECK(vsock_stats(s.dev)->rst_lost > 0 || vsock_stats(s.dev)->resets > 0);
	CHECK_EQ(vsock_conns(s.dev), 0);
	CHECK(virtio_live(s.vd));
out:
	vs_close(&s);
}

static void *reset_thread(void *arg)
{
	vdrv_wr(arg, 0x070, 0);
	return NULL;
}

/* A device reset closes every connection; a transport reset event after a restore. */
static void test_resets(void)
{
	struct vdrv_buf b;
	struct vs s;
	uint32_t hport, id;
	char buf[8];
	int fd;

	if (!vs_open(&s, NRX))
		goto out;
	fd = host_connect(&s, 5, &hport);
	CHECK_EQ(vsock_conns(s.dev), 1);
	vdrv_wr(&s.d, 0x070, 0);
	CHECK_EQ(vsock_conns(s.dev), 0);
	CHECK(host_read(&s, fd, buf, sizeof(buf)) == 0);
	close(fd);
	/* A reset written on another thread (a vCPU): the loop closes the connections. */
	CHECK(vs_start(&s, NRX));
	fd = host_connect(&s, 5, &hport);
	{
		pthread_t t;

		CHECK(pthread_create(&t, NULL, reset_thread, &s.d) == 0);
		pthread_join(t, NULL);
	}
	CHECK(host_read(&s, fd, buf, sizeof(buf)) == 0);
	CHECK_EQ(vsock_conns(s.dev), 0);
	close(fd);
	/* Started again: the event queue gets TRANSPORT_RESET once there is a buffer for it. */
	CHECK(vs_start(&s, NRX));
	fd = host_connect(&s, 6, &hport);
	vsock_transport_reset(s.dev);
	CHECK_EQ(vsock_conns(s.dev), 0);
	CHECK(host_read(&s, fd, buf, sizeof(buf)) == 0);
	close(fd);
	b = (struct vdrv_buf){vdrv_alloc(&s.d, 4, 4), 4, true};
	memset(vdrv_ptr(&s.d, b.gpa), 0xff, 4);
	vdrv_post(&s.d, VSOCK_EVQ, vdrv_chain(&s.d, VSOCK_EVQ, &b, 1));
	vdrv_kick(&s.d, VSOCK_EVQ);
	CHECK(vdrv_wait_used(&s.d, VSOCK_EVQ, 1));
	memcpy(&id, vdrv_ptr(&s.d, b.gpa), 4);
	CHECK_EQ(id, VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
out:
	vs_close(&s);
}

/*
 * A snapshot through the adapter's hooks: the connection is not saved; the restored device
 * tells the guest with TRANSPORT_RESET on the event queue, and serves new connections.
 */
static void test_snapshot(void)
{
	struct vdrv_buf ev;
	struct snap *st = NULL;
	struct snap_sec *sec;
	struct vs a, b;
	uint32_t hport, id;
	int fd;

	if (!vs_open(&a, NRX) || !vs_build(&b))
		goto out;
	fd = host_connect(&a, 5, &hport);
	ev = (struct vdrv_buf){vdrv_alloc(&a.d, 4, 4), 4, true};
	memset(vdrv_ptr(&a.d, ev.gpa), 0xff, 4);
	vdrv_post(&a.d, VSOCK_EVQ, vdrv_chain(&a.d, VSOCK_EVQ, &ev, 1));
	st = snap_new();
	sec = st ? snap_add(st, "vsock0") : NULL;
	CHECK_EQ(a.dev->ops->pause(a.dev), 0);
	CHECK(sec && a.dev->ops->save(a.dev, sec) == 0);
	CHECK_EQ(vdrv_used(&a.d, VSOCK_EVQ), 0); /* the running device had nothing to say */
	/* Another process, the same guest memory and driver. */
	vdrv_copy_guest(&b.d, &a.d);
	memcpy(b.rx_gpa, a.rx_gpa, sizeof(a.rx_gpa));
	b.rx_seen = a.rx_seen;
	b.tx_buf = a.tx_buf;
	CHECK(sec && b.dev->ops->restore(b.dev, sec) == 0);
	CHECK(vdrv_wait_used(&b.d, VSOCK_EVQ, 1));
	memcpy(&id, vdrv_ptr(&b.d, ev.gpa), 4);
	CHECK_EQ(id, VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
	CHECK_EQ(vsock_conns(b.dev), 0);
	close(fd);
	fd = host_connect(&b, 6, &hport);
	CHECK_EQ(vsock_conns(b.dev), 1);
	CHECK(write(fd, "x", 1) == 1);
	{
		struct pkt p;

		CHECK(rx(&b, &p) && is(&p, VIRTIO_VSOCK_OP_RW, hport, 6) && p.len == 1);
	}
	close(fd);
out:
	snap_free(st);
	vs_close(&a);
	vs_close(&b);
}

/* uds_path: a stale socket is replaced, any other file is refused. */
static void test_listen_path(void)
{
	struct vs s;
	int fd;

	if (!vs_open(&s, 0))
		goto out;
	vsock_unlisten(s.dev);
	CHECK(vsock_listen(s.dev) == 0); /* the socket file of the first: replaced */
	vsock_unlisten(s.dev);
	unlink(s.path);
	fd = open(s.path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	close(fd);
	CHECK(vsock_listen(s.dev) == -EEXIST);
	unlink(s.path);
	CHECK(vsock_listen(s.dev) == 0);
out:
	vs_close(&s);
}

void test_vsock(void)
{
	signal(SIGPIPE, SIG_IGN);
	TEST_RUN(test_host_to_guest);
	TEST_RUN(test_guest_to_host);
	TEST_RUN(test_handshake_refused);
	TEST_RUN(test_credit);
	TEST_RUN(test_stall);
	TEST_RUN(test_hostile);
	TEST_RUN(test_resets);
	TEST_RUN(test_snapshot);
	TEST_RUN(test_listen_path);
}
