/* Unit tests: virtio-net header checks, TAP offload flags, RX placement, MAC addresses. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "machine.h"
#include "tapwrap.h"
#include "test.h"
#include "vdrv.h"
#include "virtio/net.h"
#include "virtio/net_frame.h"
#include "virtio/net_priv.h"
#include "virtio/virtio.h"

#define NF(bit) (1ull << VIRTIO_NET_F_##bit)

static int tx(uint8_t flags, uint8_t gso, uint16_t gso_size, uint16_t start, uint16_t off,
	      uint64_t features, size_t len, const char **why)
{
	struct virtio_net_hdr_v1 h = {
		.flags = flags,
		.gso_type = gso,
		.gso_size = htole16(gso_size),
		.csum_start = htole16(start),
		.csum_offset = htole16(off),
		.num_buffers = htole16(7),
	};
	int r = net_tx_header(&h, features, len, 1500, why);

	if (r == 0 && h.num_buffers != 0)
		return -1000; /* the device must clear it before the TAP sees it */
	return r;
}

static void test_tx_headers(void)
{
	uint64_t all = NF(CSUM) | NF(HOST_TSO4) | NF(HOST_TSO6) | NF(HOST_ECN);
	const char *why;

	/* Plain frames: Ethernet minimum and MTU (+ VLAN tag) maximum. */
	CHECK(tx(0, 0, 0, 0, 0, 0, 60, &why) == 0 && why == NULL);
	CHECK(tx(0, 0, 0, 0, 0, 0, 1518, &why) == 0);
	CHECK(tx(0, 0, 0, 0, 0, 0, 1519, &why) == -EINVAL);
	CHECK_STR(why, "frame larger than the MTU");
	CHECK(tx(0, 0, 0, 0, 0, 0, 13, &why) == -EINVAL);
	CHECK_STR(why, "frame shorter than an Ethernet header");
	/* Partial checksums need CSUM and must lie inside the frame. */
	CHECK(tx(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 34, 16, NF(CSUM), 100, &why) == 0);
	CHECK(tx(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 34, 16, 0, 100, &why) == -EINVAL);
	CHECK_STR(why, "checksum offload was not negotiated");
	CHECK(tx(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 90, 16, NF(CSUM), 100, &why) == -EINVAL);
	CHECK_STR(why, "checksum position outside the frame");
	CHECK(tx(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0xffff, 0xffff, NF(CSUM), 100, &why) ==
	      -EINVAL);
	CHECK(tx(VIRTIO_NET_HDR_F_DATA_VALID, 0, 0, 0, 0, all, 100, &why) == -EINVAL);
	CHECK_STR(why, "unknown header flags");
	/* Segmentation: only what was negotiated, with a checksum and a segment size. */
	CHECK(tx(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 1448, 34, 16, all, 65000,
		 &why) == 0);
	CHECK(tx(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV6, 1428, 54, 16, all,
		 NET_MAX_GSO_FRAME, &why) == 0);
	CHECK(tx(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 1448, 34, 16, all,
		 NET_MAX_GSO_FRAME + 1, &why) == -EINVAL);
	CHECK_STR(why, "segmentation frame larger than 64 KiB");
	CHECK(tx(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 1448, 34, 16, NF(CSUM),
		 9000, &why) == -EINVAL);
	CHECK_STR(why, "segmentation offload was not negotiated");
	CHECK(tx(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV6, 1448, 34, 16,
		 NF(CSUM) | NF(HOST_TSO4), 9000, &why) == -EINVAL);
	CHECK(tx(0, VIRTIO_NET_HDR_GSO_TCPV4, 1448, 0, 0, all, 9000, &why) == -EINVAL);
	CHECK_STR(why, "segmentation without a partial checksum");
	CHECK(tx(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 0, 34, 16, all, 9000,
		 &why) == -EINVAL);
	CHECK_STR(why, "segmentation with segment size 0");
	CHECK(tx(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_UDP, 1448, 34, 6, all, 9000,
		 &why) == -EINVAL);
	CHECK_STR(why, "unsupported segmentation type");
	CHECK(tx(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0x7f, 1448, 34, 6, all, 9000, &why) == -EINVAL);
	/* ECN only on a segmented frame, and only when negotiated. */
	CHECK(tx(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN,
		 1448, 34, 16, all, 9000, &why) == 0);
	CHECK(tx(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN,
		 1448, 34, 16, all & ~NF(HOST_ECN), 9000, &why) == -EINVAL);
	CHECK_STR(why, "ECN segmentation was not negotiated");
	CHECK(tx(0, VIRTIO_NET_HDR_GSO_ECN, 0, 0, 0, all, 100, &why) == -EINVAL);
	CHECK_STR(why, "ECN flag without segmentation");
}

static void test_rx_headers(void)
{
	uint64_t all = NF(GUEST_CSUM) | NF(GUEST_TSO4) | NF(GUEST_TSO6) | NF(GUEST_ECN);
	struct virtio_net_hdr_v1 h = {0};

	CHECK(net_rx_header(&h, 0) == 0 && le16toh(h.num_buffers) == 1);
	/* A checksum hint the guest did not ask for is dropped; a partial checksum cannot be. */
	h = (struct virtio_net_hdr_v1){.flags = VIRTIO_NET_HDR_F_DATA_VALID};
	CHECK(net_rx_header(&h, 0) == 0 && h.flags == 0);
	h = (struct virtio_net_hdr_v1){.flags = VIRTIO_NET_HDR_F_DATA_VALID};
	CHECK(net_rx_header(&h, all) == 0 && h.flags == VIRTIO_NET_HDR_F_DATA_VALID);
	h = (struct virtio_net_hdr_v1){.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM};
	CHECK(net_rx_header(&h, 0) == -EINVAL);
	h = (struct virtio_net_hdr_v1){.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
				       .gso_type = VIRTIO_NET_HDR_GSO_TCPV4};
	CHECK(net_rx_header(&h, all) == 0);
	h = (struct virtio_net_hdr_v1){.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
				       .gso_type = VIRTIO_NET_HDR_GSO_TCPV6};
	CHECK(net_rx_header(&h, NF(GUEST_CSUM) | NF(GUEST_TSO4)) == -EINVAL);
	h = (struct virtio_net_hdr_v1){.gso_type =
					       VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN};
	CHECK(net_rx_header(&h, all & ~NF(GUEST_ECN)) == -EINVAL);
	h = (struct virtio_net_hdr_v1){.gso_type = VIRTIO_NET_HDR_GSO_UDP};
	CHECK(net_rx_header(&h, all) == -EINVAL);

	/* What the TAP may hand us follows the guest's receive offloads. */
	CHECK_EQ(net_tap_offloads(0), 0);
	CHECK_EQ(net_tap_offloads(NF(GUEST_TSO4)), 0); /* TSO without checksum offload: none */
	CHECK_EQ(net_tap_offloads(NF(GUEST_CSUM)), TUN_F_CSUM);
	CHECK_EQ(net_tap_offloads(all), TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN);
	CHECK_EQ(net_tap_offloads(NF(GUEST_CSUM) | NF(GUEST_ECN)), TUN_F_CSUM);
}

static void test_rx_scatter(void)
{
	uint8_t frame[3000], b0[1000], b1[1500], b2[2000], b3[64];
	struct iovec iov[5] = {
		{b0, sizeof(b0)}, {b1, sizeof(b1)}, {b2, 500}, {b2 + 500, 1500}, {b3, sizeof(b3)}};
	struct virtq_chain c[4] = {
		{.head = 3, .nin = 1, .in_len = 1000, .iov = &iov[0]},
		{.head = 9, .nin = 1, .in_len = 1500, .iov = &iov[1]},
		{.head = 1, .nin = 2, .in_len = 2000, .iov = &iov[2]},
		{.head = 5, .nin = 1, .in_len = 64, .iov = &iov[4]},
	};
	uint32_t used[4] = {0};
	bool ok = true;

	memset(b3, 0, sizeof(b3));
	for (size_t i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i * 7 + 1);
	/* Mergeable: 3000 bytes take the first three chains (1000 + 1500 + 500). */
	CHECK(net_rx_scatter(c, 4, frame, 3000, true, used) == 3);
	CHECK_EQ(le16toh(((struct virtio_net_hdr_v1 *)frame)->num_buffers), 3);
	CHECK(used[0] == 1000 && used[1] == 1500 && used[2] == 500);
	CHECK(memcmp(b0, frame, 1000) == 0 && memcmp(b1, frame + 1000, 1500) == 0 &&
	      memcmp(b2, frame + 2500, 500) == 0);
	/* An exact fit uses no extra chain; a short frame one chain. */
	CHECK(net_rx_scatter(c, 4, frame, 2500, true, used) == 2);
	CHECK(net_rx_scatter(c, 4, frame, 60, true, used) == 1 && used[0] == 60);
	CHECK_EQ(le16toh(((struct virtio_net_hdr_v1 *)frame)->num_buffers), 1);
	/* Too little room: the caller must find more buffers. */
	CHECK(net_rx_scatter(c, 2, frame, 3000, true, used) == -ENOBUFS);
	CHECK(net_rx_scatter(c, 0, frame, 60, true, used) == -ENOBUFS);
	/* Without mergeable buffers one chain (here split over two iovecs) holds the frame. */
	CHECK(net_rx_scatter(c + 2, 1, frame, 1800, false, used) == 1 && used[0] == 1800);
	CHECK(memcmp(b2, frame, 1800) == 0);
	CHECK(net_rx_scatter(c, 4, frame, 1200, false, used) == -EMSGSIZE);
	for (size_t i = 0; i < sizeof(b3); i++)
		ok &= b3[i] == 0; /* never written: not needed */
	CHECK(ok);
}

static void test_mac(void)
{
	/* Multicast, zero, short, long, other separators; hex digits only (no spaces, signs or
	 * 0x: what sscanf's %x would take). */
	static const char *const bad[] = {
		"01:00:5e:10:00:01",	"00:00:00:00:00:00", "02:00:5e:10:00",
		"02:00:5e:10:00:01:02", "02:00:5e:10:00:1",  "02-00-5e-10-00-01",
		"g2:00:5e:10:00:01",	" 2:00:5e:10:00:01", "+2:00:5e:10:00:01",
		"0x:00:5e:10:00:01",	"02:00:5e:10: 0:01", "02:00:5e:10:00:-1",
		"02:00:5e:10:00:01 ",	"02.00.5e.10.00.01", ""};
	uint8_t mac[6], other[6];

	CHECK(net_parse_mac("02:00:5e:10:00:01", mac) == 0);
	CHECK(mac[0] == 2 && mac[2] == 0x5e && mac[5] == 1);
	CHECK(net_parse_mac("02:00:5E:10:00:FF", mac) == 0 && mac[5] == 0xff);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (net_parse_mac(bad[i], mac) == 0) {
			printf("FAIL %s: '%s' taken for a MAC address\n", test_current, bad[i]);
			CHECK(!"a bad MAC address refused");
		}
	/* Generated: locally administered unicast, stable, different per NIC and machine. */
	net_default_mac("rpi5", "net0", mac);
	CHECK((mac[0] & 3) == 2);
	net_default_mac("rpi5", "net0", other);
	CHECK(memcmp(mac, other, 6) == 0);
	net_default_mac("rpi5", "net1", other);
	CHECK(memcmp(mac, other, 6) != 0 && (other[0] & 3) == 2);
	net_default_mac("rpi5n", "et0", other);
	CHECK(memcmp(mac, other, 6) != 0);
}

/* --- the device over virtio-mmio, its TAP queues socket pairs ------------------------------ */

struct nic {
	struct machine m;
	struct device *dev;
	struct virtio_dev *vd;
	struct vdrv d;
	int fds[2], peer[2];
};

/*
 * A NIC of pairs queue pairs, with one more setting (extra) if given; its TAP queues are
 * datagram socket pairs, or with pipe_peer the write ends of pipes (peer: the read ends).
 */
static bool nic_open_as(struct nic *k, unsigned pairs, const char *extra, bool pipe_peer)
{
	char queues[32];
	char *sets[] = {"machine.vcpus=2",
			"net0.type=virtio-net",
			"net0.tap=mvunit%d",
			"net0.queue_size=512",
			queues,
			(char *)extra};

	memset(k, 0, sizeof(*k));
	snprintf(queues, sizeof(queues), "net0.queues=%u", pairs);
	if (machine_load(&k->m, "machines/rpi5.ini", sets, extra ? 6 : 5, true))
		return false;
	for (size_t i = 0; i < k->m.ndevices; i++)
		if (!strcmp(k->m.devices[i].name, "net0"))
			k->dev = &k->m.devices[i];
	for (unsigned i = 0; i < pairs; i++) {
		int sv[2];

		if (pipe_peer
			    ? pipe2(sv, O_NONBLOCK | O_CLOEXEC)
			    : socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
			return false;
		k->fds[i] = sv[pipe_peer];
		k->peer[i] = sv[!pipe_peer];
	}
	vdrv_init(&k->d, 4u << 20);
	if (!k->dev || net_start(k->dev, k->fds, &k->d.mem, &k->d.loop, &k->vd))
		return false;
	vdrv_attach(&k->d, k->vd);
	return true;
}

static bool nic_open_with(struct nic *k, unsigned pairs, const char *extra)
{
	return nic_open_as(k, pairs, extra, false);
}

static void nic_close(struct nic *k, unsigned pairs)
{
	vdrv_detach(&k->d);
	if (k->dev)
		net_stop(k->dev);
	vdrv_free(&k->d);
	machine_free(&k->m);
	for (unsigned i = 0; i < pairs; i++) {
		close(k->fds[i]);
		if (k->peer[i] >= 0)
			close(k->peer[i]);
	}
}

static bool nic_open(struct nic *k, unsigned pairs)
{
	return nic_open_with(k, pairs, NULL);
}

/* FEATURES_OK only sticks when the features' dependencies (virtio 1.2 5.1.3.1) hold. */
static bool features_accepted(struct nic *k, uint64_t f)
{
	f |= 1ull << VIRTIO_F_VERSION_1;
	vdrv_wr(&k->d, 0x070, 0);
	vdrv_wr(&k->d, 0x070, 1 | 2);
	for (unsigned sel = 0; sel < 2; sel++) {
		vdrv_wr(&k->d, 0x024, sel);
		vdrv_wr(&k->d, 0x020, (uint32_t)(f >> (32 * sel)));
	}
	vdrv_wr(&k->d, 0x070, 1 | 2 | 8);
	return vdrv_rd(&k->d, 0x070) & 8;
}

static void test_dependencies(void)
{
	struct nic k;

	CHECK(nic_open(&k, 2));
	CHECK(features_accepted(&k, NF(CTRL_VQ) | NF(MQ)));
	CHECK(!features_accepted(&k, NF(MQ)));
	CHECK(features_accepted(&k, NF(GUEST_CSUM) | NF(GUEST_TSO4) | NF(GUEST_ECN)));
	CHECK(!features_accepted(&k, NF(GUEST_TSO4)));
	CHECK(!features_accepted(&k, NF(GUEST_CSUM) | NF(GUEST_ECN)));
	CHECK(features_accepted(&k, NF(CSUM) | NF(HOST_TSO6) | NF(HOST_ECN)));
	CHECK(!features_accepted(&k, NF(HOST_TSO6)));
	CHECK(!features_accepted(&k, NF(CSUM) | NF(HOST_ECN)));
	nic_close(&k, 2);
}

/* Post a control command (class, cmd, a 16-bit argument) on queue q; *ack gets its answer. */
static void ctrl_cmd(struct nic *k, unsigned q, uint8_t class, uint8_t cmd, uint16_t arg,
		     uint64_t *ack)
{
	struct virtio_net_ctrl_hdr hdr = {class, cmd};
	uint64_t at = vdrv_alloc(&k->d, sizeof(hdr) + sizeof(arg), 8);
	struct vdrv_buf b[2];

	arg = htole16(arg);
	*ack = vdrv_alloc(&k->d, 1, 1);
	memcpy(vdrv_ptr(&k->d, at), &hdr, sizeof(hdr));
	memcpy((uint8_t *)vdrv_ptr(&k->d, at) + sizeof(hdr), &arg, sizeof(arg));
	*(uint8_t *)vdrv_ptr(&k->d, *ack) = 0xee;
	b[0] = (struct vdrv_buf){at, sizeof(hdr) + sizeof(arg), false};
	b[1] = (struct vdrv_buf){*ack, 1, true};
	vdrv_post(&k->d, q, vdrv_chain(&k->d, q, b, 2));
}

/* Without MQ the control queue is queue 2, whatever the number of pairs (virtio 1.2 5.1.2). */
static void test_ctrl_without_mq(void)
{
	struct virtio_net_ctrl_hdr hdr = {VIRTIO_NET_CTRL_RX, 0};
	struct vdrv_buf b[2];
	uint64_t cmd, ack;
	struct nic k;

	CHECK(nic_open(&k, 2));
	CHECK_EQ(vdrv_start(&k.d, NF(CTRL_VQ), 3, 16), 15);
	cmd = vdrv_alloc(&k.d, sizeof(hdr) + 1, 8);
	ack = vdrv_alloc(&k.d, 1, 1);
	memcpy(vdrv_ptr(&k.d, cmd), &hdr, sizeof(hdr));
	*(uint8_t *)vdrv_ptr(&k.d, ack) = 0xee;
	b[0] = (struct vdrv_buf){cmd, sizeof(hdr) + 1, false};
	b[1] = (struct vdrv_buf){ack, 1, true};
	vdrv_post(&k.d, 2, vdrv_chain(&k.d, 2, b, 2));
	vdrv_kick(&k.d, 2);
	CHECK_EQ(vdrv_used(&k.d, 2), 1);
	CHECK_EQ(*(uint8_t *)vdrv_ptr(&k.d, ack), VIRTIO_NET_ERR); /* answered: not supported */
	/* Without MQ the number of pairs cannot be set, even when the device has several. */
	ctrl_cmd(&k, 2, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 2, &ack);
	vdrv_kick(&k.d, 2);
	CHECK_EQ(vdrv_used(&k.d, 2), 2);
	CHECK_EQ(*(uint8_t *)vdrv_ptr(&k.d, ack), VIRTIO_NET_ERR);
	nic_close(&k, 2);
}

/* A flood of control commands in one kick is answered in rounds, not in one go. */
static void test_ctrl_budget(void)
{
	enum { CMDS = 200 };
	uint64_t ack[CMDS];
	unsigned ok = 0;
	struct nic k;

	CHECK(nic_open(&k, 2));
	CHECK_EQ(vdrv_start(&k.d, NF(CTRL_VQ) | NF(MQ) | 1ull << VIRTIO_F_INDIRECT_DESC, 5, 256),
		 15);
	for (unsigned i = 0; i < CMDS; i++)
		ctrl_cmd(&k, 4, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 1 + i % 2,
			 &ack[i]);
	vdrv_kick(&k.d, 4);
	CHECK(vdrv_used(&k.d, 4) < CMDS); /* it yielded */
	CHECK(vdrv_wait_used(&k.d, 4, CMDS));
	for (unsigned i = 0; i < CMDS; i++)
		ok += *(uint8_t *)vdrv_ptr(&k.d, ack[i]) == VIRTIO_NET_OK;
	CHECK_EQ(ok, CMDS);
	nic_close(&k, 2);
}

/* Take every frame waiting on fd; *seq counts those that came in order. Returns *seq. */
static unsigned recv_in_order(int fd, unsigned *seq)
{
	uint8_t got[NET_HDR_LEN + 60 + 8];
	unsigned n;

	while (recv(fd, got, sizeof(got), 0) == NET_HDR_LEN + 60) {
		memcpy(&n, got + NET_HDR_LEN + 14, sizeof(n));
		*seq += n == *seq;
	}
	return *seq;
}

/* More frames than the budget per wake-up in one kick: all go out, through rescheduling. */
static void test_tx_budget(void)
{
	enum { FRAMES = 300 };
	struct nic k;
	uint8_t frame[NET_HDR_LEN + 60];
	unsigned sent = 0;

	CHECK(nic_open(&k, 1));
	CHECK_EQ(vdrv_start(&k.d, 0, 2, 512), 15);
	for (unsigned i = 0; i < FRAMES; i++) {
		uint64_t at = vdrv_alloc(&k.d, sizeof(frame), 8);
		struct vdrv_buf b = {at, sizeof(frame), false};

		memset(frame, 0, sizeof(frame));
		memcpy(frame + NET_HDR_LEN + 14, &i, sizeof(i));
		memcpy(vdrv_ptr(&k.d, at), frame, sizeof(frame));
		vdrv_post(&k.d, 1, vdrv_chain(&k.d, 1, &b, 1));
	}
	vdrv_kick(&k.d, 1);
	CHECK(vdrv_used(&k.d, 1) < FRAMES); /* it yielded once the budget was spent */
	/* The host side reads while the device sends (a full socket makes it wait for room). */
	CHECK(VDRV_WAIT(&k.d, recv_in_order(k.peer[0], &sent) == FRAMES));
	CHECK_EQ(sent, FRAMES); /* every frame, in order */
	CHECK_EQ(vdrv_used(&k.d, 1), FRAMES);
	nic_close(&k, 1);
}

/*
 * vhost = on (tests/unit/tapwrap.c's model of the kernel): the rings are handed over at
 * DRIVER_OK with the queues' kick eventfds, interrupts the kernel asks for are relayed, a ring
 * the kernel cannot use makes the device need a reset and comes back, as on a reset.
 */
static void test_vhost(void)
{
	const uint64_t ring =
		1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_EVENT_IDX | NF(MRG_RXBUF);
	uint8_t frame[NET_HDR_LEN + 60] = {0};
	struct vhostwrap *f = &vhostwrap[0];
	uint64_t v = 1;
	unsigned irqs;
	struct nic k;

	CHECK(nic_open_with(&k, 1, "net0.vhost=on"));
	CHECK(f->open && !f->ring[0].on && !f->ring[1].on);
	CHECK_EQ(vdrv_start(&k.d, ring | NF(MAC) | NF(CSUM), 2, 256), 15);
	CHECK(f->ring[0].on && f->ring[1].on);
	CHECK_EQ(f->features, ring); /* the ring and header features, not the device's */
	CHECK(f->ring[0].kick == k.vd->kicks[0].fd && f->ring[1].kick == k.vd->kicks[1].fd);
	/* A kick is the kernel's: the event loop leaves the eventfd alone (DRIVER_OK sent one). */
	CHECK(read(k.vd->kicks[1].fd, &v, sizeof(v)) == sizeof(v) && v == 1);
	CHECK(write(k.vd->kicks[1].fd, &v, sizeof(v)) == sizeof(v));
	loop_poll(&k.d.loop, 0);
	CHECK(read(k.vd->kicks[1].fd, &v, sizeof(v)) == sizeof(v) && v == 1);
	/* Nor does microvm read the TAP: the frame waits for the kernel. */
	CHECK(send(k.peer[0], frame, sizeof(frame), 0) == (ssize_t)sizeof(frame));
	loop_poll(&k.d.loop, 0);
	CHECK(recv(k.fds[0], frame, sizeof(frame), 0) == (ssize_t)sizeof(frame));
	/* An interrupt the kernel asks for reaches the driver, with the ISR bit. */
	irqs = k.d.interrupts;
	CHECK(vhostwrap_signal(0, 0, false));
	loop_poll(&k.d.loop, 0);
	CHECK_EQ(k.d.interrupts, irqs + 1);
	CHECK(vdrv_rd(&k.d, 0x060) & 1);
	/* A ring the kernel reports broken: DEVICE_NEEDS_RESET, both rings taken back. */
	CHECK(vhostwrap_signal(0, 1, true));
	loop_poll(&k.d.loop, 0);
	CHECK(vdrv_rd(&k.d, 0x070) & VIRTIO_STATUS_NEEDS_RESET);
	CHECK(!f->ring[0].on && !f->ring[1].on);
	CHECK(!vhostwrap_signal(0, 0, false));
	/* The driver starts over: handed over again; a reset takes them back. */
	CHECK_EQ(vdrv_start(&k.d, ring, 2, 64), 15);
	CHECK(f->ring[0].on && f->ring[1].on && f->starts == 4);
	vdrv_wr(&k.d, 0x070, 0);
	CHECK(!f->ring[0].on && !f->ring[1].on);
	/* A queue disabled after DRIVER_OK: the kernel lets go of its pair at once. */
	CHECK_EQ(vdrv_start(&k.d, ring, 2, 64), 15);
	CHECK(f->ring[0].on && f->ring[1].on);
	vdrv_wr(&k.d, 0x030, 1);
	vdrv_wr(&k.d, 0x044, 0);
	CHECK(!f->ring[0].on && !f->ring[1].on);
	nic_close(&k, 1);
	CHECK(!f->open);

	/*
	 * Two pairs, a control queue but no MQ: only pair 0 is in use, and queue 2 is the
	 * control queue (pair 1's receive queue otherwise); the kernel never gets pair 1.
	 */
	CHECK(nic_open_with(&k, 2, "net0.vhost=on"));
	CHECK_EQ(vdrv_start(&k.d, ring | NF(CTRL_VQ), 4, 64), 15);
	CHECK(vhostwrap[0].ring[0].on && vhostwrap[0].ring[1].on);
	CHECK(!vhostwrap[1].ring[0].on && !vhostwrap[1].ring[1].on);
	nic_close(&k, 2);
}

/* What a vCPU does while the event loop's handler waits for the device lock. */
static void restart_driver(void *arg)
{
	struct nic *k = arg;

	vdrv_wr(&k->d, 0x070, 0); /* reset: the kernel's rings taken back */
	vdrv_start(&k->d, 1ull << VIRTIO_F_VERSION_1 | NF(MRG_RXBUF), 2, 64);
}

/*
 * The kernel reports a broken ring, and before the event loop's handler has the device
 * lock the driver resets the device and starts it again: the signal belonged to the
 * session that ended, and the new one must not be marked DEVICE_NEEDS_RESET for it.
 */
static void test_vhost_stale_error(void)
{
	struct vhostwrap *f = &vhostwrap[0];
	struct nic k;

	CHECK(nic_open_with(&k, 1, "net0.vhost=on"));
	CHECK_EQ(vdrv_start(&k.d, 1ull << VIRTIO_F_VERSION_1 | NF(MRG_RXBUF), 2, 64), 15);
	CHECK(vhostwrap_signal(0, 1, true));
	lockwrap_before = restart_driver;
	lockwrap_arg = &k;
	CHECK_EQ(loop_poll(&k.d.loop, 0), 1); /* the error eventfd's handler ran */
	CHECK(lockwrap_before == NULL);	      /* and the restart came while it waited */
	CHECK_EQ(f->starts, 4);
	CHECK_EQ(vdrv_rd(&k.d, 0x070), 15); /* DRIVER_OK, not NEEDS_RESET */
	CHECK(f->ring[0].on && f->ring[1].on);
	/* The new session's own error still counts. */
	CHECK(vhostwrap_signal(0, 0, true));
	loop_poll(&k.d.loop, 0);
	CHECK(vdrv_rd(&k.d, 0x070) & VIRTIO_STATUS_NEEDS_RESET);
	lockwrap_before = NULL;
	nic_close(&k, 1);
}

/* Poll the event loop a few times (10 ms each): what it would serve, it serves now. */
static void spin(struct nic *k)
{
	for (int i = 0; i < 3; i++)
		loop_poll(&k->d.loop, 10);
}

/*
 * vm_pause's part of a NIC on a TAP: a frame that arrives while paused stays in the TAP, a
 * TX kick (trapped or through its eventfd) sends nothing, guest RAM does not change; the
 * resume delivers the frame and sends what was queued.
 */
static void test_pause(void)
{
	uint8_t frame[NET_HDR_LEN + 60] = {0}, got[sizeof(frame) + 8];
	uint64_t rx, tx, one = 1;
	uint8_t *ram;
	struct nic k;

	CHECK(nic_open(&k, 1));
	CHECK_EQ(vdrv_start(&k.d, 0, 2, 256), 15);
	rx = vdrv_alloc(&k.d, 2048, 8);
	vdrv_post(&k.d, 0, vdrv_chain(&k.d, 0, &(struct vdrv_buf){rx, 2048, true}, 1));
	vdrv_kick(&k.d, 0);
	CHECK_EQ(k.dev->ops->pause(k.dev), 0);
	frame[NET_HDR_LEN + 14] = 0x5a;
	CHECK(send(k.peer[0], frame, sizeof(frame), 0) == (ssize_t)sizeof(frame));
	tx = vdrv_alloc(&k.d, sizeof(frame), 8);
	memcpy(vdrv_ptr(&k.d, tx), frame, sizeof(frame));
	vdrv_post(&k.d, 1, vdrv_chain(&k.d, 1, &(struct vdrv_buf){tx, sizeof(frame), false}, 1));
	ram = malloc(k.d.mem.size);
	memcpy(ram, k.d.ram, k.d.mem.size);
	vdrv_kick(&k.d, 1);
	CHECK(write(k.vd->kicks[1].fd, &one, sizeof(one)) == sizeof(one));
	CHECK(write(k.vd->kicks[0].fd, &one, sizeof(one)) == sizeof(one));
	spin(&k);
	CHECK_EQ(vdrv_used(&k.d, 0), 0);
	CHECK_EQ(vdrv_used(&k.d, 1), 0);
	CHECK(recv(k.peer[0], got, sizeof(got), 0) < 0); /* nothing went out */
	CHECK(!memcmp(ram, k.d.ram, k.d.mem.size));
	free(ram);
	/* Resumed: the frame that waited in the TAP comes in, the queued one goes out. */
	k.dev->ops->resume(k.dev);
	CHECK(vdrv_wait_used(&k.d, 0, 1));
	CHECK(vdrv_wait_used(&k.d, 1, 1));
	CHECK(recv(k.peer[0], got, sizeof(got), 0) == (ssize_t)sizeof(frame));
	CHECK_EQ(((uint8_t *)vdrv_ptr(&k.d, rx))[NET_HDR_LEN + 14], 0x5a);
	/* And the TAP is watched again: the next frame arrives with no kick. */
	vdrv_post(&k.d, 0, vdrv_chain(&k.d, 0, &(struct vdrv_buf){rx, 2048, true}, 1));
	CHECK(send(k.peer[0], frame, sizeof(frame), 0) == (ssize_t)sizeof(frame));
	CHECK(vdrv_wait_used(&k.d, 0, 2));
	nic_close(&k, 1);
}

/* Entry i of queue q's used ring: the chain's head and the bytes written. */
static void used_entry(struct vdrv *d, unsigned q, unsigned i, uint32_t *id, uint32_t *len)
{
	const uint8_t *e = vdrv_ptr(d, d->q[q].used + 4 + 8 * (i % d->q[q].num));

	memcpy(id, e, 4);
	memcpy(len, e + 4, 4);
}

/* rx_send: send a frame of len bytes (header zeroed, then a pattern from seed). */
static void rx_send(struct nic *k, uint8_t *frame, size_t len, unsigned seed)
{
	memset(frame, 0, NET_HDR_LEN);
	for (size_t i = NET_HDR_LEN; i < len; i++)
		frame[i] = (uint8_t)(i * 7 + seed);
	CHECK(send(k->peer[0], frame, len, 0) == (ssize_t)len);
}

/*
 * Check the frame of len bytes that used entries first.. of queue 0 hold (chains of bufs, each
 * buf_len bytes at bufs[head]): the pattern of seed, the header's num_buffers the count.
 */
static void rx_check(struct nic *k, unsigned first, unsigned count, const uint64_t *bufs,
		     uint32_t buf_len, size_t len, unsigned seed)
{
	size_t done = 0;
	bool same = true;

	for (unsigned i = 0; i < count; i++) {
		uint32_t id, n;
		const uint8_t *p;

		used_entry(&k->d, 0, first + i, &id, &n);
		CHECK(n <= buf_len);
		p = vdrv_ptr(&k->d, bufs[id]);
		if (i == 0) {
			struct virtio_net_hdr_v1 h;

			memcpy(&h, p, sizeof(h));
			CHECK_EQ(le16toh(h.num_buffers), count);
		}
		for (uint32_t j = 0; j < n; j++, done++)
			if (done >= NET_HDR_LEN && p[j] != (uint8_t)(done * 7 + seed))
				same = false;
	}
	CHECK_EQ(done, len);
	CHECK(same);
}

/* Post n receive buffers of 1500 bytes on queue 0 and kick; bufs[head] is each one's address. */
static void rx_post(struct nic *k, uint64_t *bufs, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t b = vdrv_alloc(&k->d, 1500, 8);
		uint16_t head = vdrv_chain(&k->d, 0, &(struct vdrv_buf){b, 1500, true}, 1);

		bufs[head] = b;
		vdrv_post(&k->d, 0, head);
	}
	vdrv_kick(&k->d, 0);
}

/*
 * Receive straight into the guest's buffers: a frame larger than the buffers the last one
 * took spills into the staging buffer and on into more; one the ring cannot hold yet is
 * staged whole (the part already in guest buffers too) and arrives when buffers do; buffers
 * taken for a frame and not filled are the next frame's; without mergeable buffers a frame
 * larger than the buffer is dropped and the buffer used by the next.
 */
static void test_rx_direct(void)
{
	static uint8_t frame[40000];
	uint64_t bufs[512];
	struct nic k;

	CHECK(nic_open(&k, 1));
	CHECK_EQ(vdrv_start(&k.d, NF(MRG_RXBUF), 2, 256), 15);
	rx_post(&k, bufs, 40);
	spin(&k);
	/* The first: one buffer taken before the read, the rest of 20000 bytes spilled. */
	rx_send(&k, frame, 20000, 1);
	CHECK(vdrv_wait_used(&k.d, 0, 14));
	rx_check(&k, 0, 14, bufs, 1500, 20000, 1);
	/* The second: read straight into 14 buffers; then a small one in the next buffer. */
	rx_send(&k, frame, 20000, 2);
	CHECK(vdrv_wait_used(&k.d, 0, 28));
	rx_check(&k, 14, 14, bufs, 1500, 20000, 2);
	rx_send(&k, frame, 100, 3);
	CHECK(vdrv_wait_used(&k.d, 0, 29));
	rx_check(&k, 28, 1, bufs, 1500, 100, 3);
	/* 11 buffers left: a frame of 20000 bytes waits, staged, then comes whole. */
	rx_send(&k, frame, 20000, 4);
	spin(&k);
	CHECK_EQ(vdrv_used(&k.d, 0), 29);
	rx_post(&k, bufs, 4);
	CHECK(vdrv_wait_used(&k.d, 0, 43));
	rx_check(&k, 29, 14, bufs, 1500, 20000, 4);
	nic_close(&k, 1);

	/* Without mergeable buffers: too large for the buffer is dropped, the next one fits. */
	CHECK(nic_open(&k, 1));
	CHECK_EQ(vdrv_start(&k.d, 0, 2, 256), 15);
	rx_post(&k, bufs, 1);
	rx_send(&k, frame, 3000, 5);
	spin(&k);
	CHECK_EQ(vdrv_used(&k.d, 0), 0);
	rx_send(&k, frame, 1000, 6);
	CHECK(vdrv_wait_used(&k.d, 0, 1));
	rx_check(&k, 0, 1, bufs, 1500, 1000, 6);
	nic_close(&k, 1);
}

/* vhost = on: a pause takes the rings back from the kernel, the resume hands them over. */
static void test_pause_vhost(void)
{
	const uint64_t ring = 1ull << VIRTIO_F_VERSION_1 | NF(MRG_RXBUF);
	struct vhostwrap *f = &vhostwrap[0];
	struct nic k;

	CHECK(nic_open_with(&k, 1, "net0.vhost=on"));
	CHECK_EQ(vdrv_start(&k.d, ring, 2, 64), 15);
	CHECK(f->ring[0].on && f->ring[1].on);
	CHECK_EQ(k.dev->ops->pause(k.dev), 0);
	CHECK(!f->ring[0].on && !f->ring[1].on);
	CHECK(!vhostwrap_signal(0, 0, false));
	k.dev->ops->resume(k.dev);
	CHECK(f->ring[0].on && f->ring[1].on);
	CHECK_EQ(vdrv_rd(&k.d, 0x070), 15);
	nic_close(&k, 1);
}

/* stderr, from capture_begin on, goes into a memory file; capture_end reads it back. */
struct capture {
	int saved, mem;
};

static struct capture capture_begin(void)
{
	struct capture c = {dup(STDERR_FILENO), memfd_create("stderr", MFD_CLOEXEC)};

	fflush(stderr);
	if (c.saved >= 0 && c.mem >= 0)
		dup2(c.mem, STDERR_FILENO);
	return c;
}

static void capture_end(struct capture c, char *buf, size_t size)
{
	ssize_t n = c.mem >= 0 ? pread(c.mem, buf, size - 1, 0) : -1;

	buf[n > 0 ? n : 0] = 0;
	fflush(stderr);
	if (c.saved >= 0)
		dup2(c.saved, STDERR_FILENO);
	close(c.saved);
	close(c.mem);
}

/* How many times needle occurs in hay. */
static unsigned occurrences(const char *hay, const char *needle)
{
	unsigned n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/*
 * The TAP is deleted on the host (here: the reader of a pipe that stands in for it goes, and
 * the queue's descriptor reports EPOLLERR for ever, as a deleted TAP's does): one warning,
 * the queue is not watched any more (the loop is not woken again), the device goes on; the
 * guest's frames are dropped and counted, and its RX buffers wait. With vhost = on the kernel
 * gives the rings back and microvm does the same.
 */
static void test_tap_gone(void)
{
	const char *extras[] = {NULL, "net0.vhost=on"};
	uint8_t frame[NET_HDR_LEN + 60] = {0};

	for (size_t v = 0; v < 2; v++) {
		struct capture cap;
		char out[1024];
		struct nic k;
		struct net *n;
		uint64_t tx, rx;
		int first, second, sv[2];

		test_case("test_tap_gone%s", v ? " (vhost)" : "");
		CHECK(nic_open_as(&k, 1, extras[v], true));
		n = k.dev->priv;
		CHECK_EQ(vdrv_start(&k.d, 0, 2, 64), 15);
		CHECK_EQ(loop_poll(&k.d.loop, 0), 0); /* idle */
		close(k.peer[0]);
		k.peer[0] = -1;
		cap = capture_begin();
		first = loop_poll(&k.d.loop, 0);
		/* (with vhost, the kicks DRIVER_OK left are the loop's again: served once) */
		for (int i = 0; i < 4 && loop_poll(&k.d.loop, 0) > 0; i++)
			;
		second = loop_poll(&k.d.loop, 0);
		capture_end(cap, out, sizeof(out));
		CHECK_EQ(first, 1);
		CHECK_EQ(second, 0); /* the loop is not woken again */
		CHECK_EQ(occurrences(out, "net0: TAP mvunit%d gone (EPOLLERR): receive stopped"),
			 1);
		if (occurrences(out, "gone") != 1)
			printf("    stderr: %s\n", out);
		CHECK(n->tap_gone);
		CHECK(!v || (!vhostwrap[0].ring[0].on && !vhostwrap[0].ring[1].on));
		/* A transmit is dropped, counted and completed; a receive buffer waits. */
		tx = vdrv_alloc(&k.d, sizeof(frame), 8);
		memcpy(vdrv_ptr(&k.d, tx), frame, sizeof(frame));
		vdrv_post(&k.d, 1,
			  vdrv_chain(&k.d, 1, &(struct vdrv_buf){tx, sizeof(frame), false}, 1));
		rx = vdrv_alloc(&k.d, 2048, 8);
		vdrv_post(&k.d, 0, vdrv_chain(&k.d, 0, &(struct vdrv_buf){rx, 2048, true}, 1));
		cap = capture_begin();
		vdrv_kick(&k.d, 1);
		vdrv_kick(&k.d, 0);
		CHECK(VDRV_WAIT(&k.d, vdrv_used(&k.d, 1) == 1));
		CHECK_EQ(loop_poll(&k.d.loop, 10), 0);
		capture_end(cap, out, sizeof(out));
		CHECK_EQ(out[0], 0); /* nothing more said */
		CHECK_EQ(n->qs[0].tx_dropped, 1);
		CHECK_EQ(vdrv_used(&k.d, 0), 0);
		CHECK_EQ(vdrv_rd(&k.d, 0x070), 15); /* running, no reset needed */
		/* A driver that starts over gets a device as before (no TAP calls, no warning). */
		cap = capture_begin();
		CHECK_EQ(vdrv_start(&k.d, 0, 2, 64), 15);
		capture_end(cap, out, sizeof(out));
		CHECK_EQ(out[0], 0);
		CHECK(!v || !vhostwrap[0].ring[0].on);
		/* The same device started again on a new TAP is watched as any. */
		vdrv_detach(&k.d);
		net_stop(k.dev);
		close(k.fds[0]);
		CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
		k.fds[0] = sv[0];
		k.peer[0] = sv[1];
		CHECK(net_start(k.dev, k.fds, &k.d.mem, &k.d.loop, &k.vd) == 0);
		vdrv_attach(&k.d, k.vd);
		CHECK(!n->tap_gone);
		nic_close(&k, 1);
	}
}

/*
 * vhost = on: the loop watches nothing on the TAP, and a deleted TAP wakes no one who
 * watches nothing (here the loop does not see the descriptor at all): the kernel's ring
 * error is where it shows. That error is then the TAP's, not the driver's: the TAP is let
 * go with one warning, no DEVICE_NEEDS_RESET, and microvm drops what the guest sends.
 */
static void test_vhost_tap_deleted(void)
{
	struct capture cap;
	char out[1024];
	struct nic k;

	CHECK(nic_open_as(&k, 1, "net0.vhost=on", true));
	CHECK_EQ(vdrv_start(&k.d, 0, 2, 64), 15);
	loop_del(&k.d.loop, k.fds[0]);
	close(k.peer[0]);
	k.peer[0] = -1;
	CHECK(vhostwrap_signal(0, 1, true));
	cap = capture_begin();
	loop_poll(&k.d.loop, 0);
	capture_end(cap, out, sizeof(out));
	CHECK_EQ(occurrences(out, "net0: TAP mvunit%d gone (the kernel's data path lost it): "
				  "receive stopped"),
		 1);
	CHECK(!strstr(out, "cannot use the ring"));
	CHECK_EQ(vdrv_rd(&k.d, 0x070), 15); /* not DEVICE_NEEDS_RESET */
	CHECK(!vhostwrap[0].ring[0].on && !vhostwrap[0].ring[1].on);
	nic_close(&k, 1);
}

void test_net(void)
{
	TEST_RUN(test_tx_headers);
	TEST_RUN(test_rx_headers);
	TEST_RUN(test_rx_scatter);
	TEST_RUN(test_mac);
	TEST_RUN(test_dependencies);
	TEST_RUN(test_ctrl_without_mq);
	TEST_RUN(test_ctrl_budget);
	TEST_RUN(test_tx_budget);
	TEST_RUN(test_vhost);
	TEST_RUN(test_vhost_stale_error);
	TEST_RUN(test_pause);
	TEST_RUN(test_rx_direct);
	TEST_RUN(test_pause_vhost);
	test_tap_gone();
	TEST_RUN(test_vhost_tap_deleted);
}
