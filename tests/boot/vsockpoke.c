/*
 * vsockpoke: a deliberately misbehaving virtio-vsock driver, run as root inside a test guest
 * on a virtio-mmio vsock device whose kernel driver was unbound (see poke.h). Features:
 * VERSION_1 only. In turn it:
 *   - sends a REQUEST to host port NOPORT (nothing listens): an RST comes back, ports right;
 *   - sends a REQUEST to host port HOLDPORT (the test script holds "<uds_path>_HOLDPORT"): a
 *     RESPONSE comes back; then, in one kick, 5 RW packets of 64 KiB: the fifth is beyond the
 *     256 KiB credit the device advertised, and the connection is reset;
 *   - sends a wrong src_cid, a wrong dst_cid, an unknown op, an unknown type, a header whose
 *     len exceeds its descriptors and a chain shorter than a header, then a REQUEST to NOPORT:
 *     only the unknown op and type are answered (RST) before that REQUEST's RST;
 *   - floods 2000 REQUESTs from distinct ports to NOPORT without reading the receive queue
 *     until all were taken, then reads it: the RSTs that were not lost, then the RST of a
 *     REQUEST sent after them (the device still works);
 *   - posts a receive buffer too small for a header and something for it: DEVICE_NEEDS_RESET,
 *     cleared by a reset, after which the device answers again.
 * Prints KEY=VALUE lines for the test script, then VSOCKPOKE-DONE.
 *   vsockpoke MMIO_BASE HOLDPORT NOPORT
 */
#include "poke.h"

#define NUM	    128 /* each queue */
#define RXBUF	    128 /* bytes per receive buffer */
#define FLOOD	    2000
#define HOST	    2
#define OP_REQUEST  1
#define OP_RESPONSE 2
#define OP_RST	    3
#define OP_RW	    5
#define STREAM	    1

struct hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));
_Static_assert(sizeof(struct hdr) == 44, "virtio_vsock_hdr");

/* Page layout of the scratch area. */
#define P_RXQ  0 /* three pages each */
#define P_TXQ  3
#define P_EVQ  6
#define P_RX   9  /* NUM receive buffers of RXBUF bytes: 4 pages */
#define P_TX   13 /* NUM transmit headers of 64 bytes: 2 pages */
#define P_DATA 15 /* 16 pages: 64 KiB of data */
#define PAGES  31

static struct vq rxq, txq, evq;
static uint16_t rx_seen; /* used entries of the receive queue read */
static uint64_t cid;
static unsigned holdport, noport;

static int restart(void)
{
	if (negotiate(0))
		return -1;
	setup_vq(&rxq, 0, NUM, P_RXQ);
	setup_vq(&txq, 1, NUM, P_TXQ);
	setup_vq(&evq, 2, NUM, P_EVQ);
	rx_seen = 0;
	wr(0x070, 1 | 2 | 4 | 8);
	cid = rd(0x100) | (uint64_t)rd(0x104) << 32;
	return 0;
}

static int needs_reset(void)
{
	return !!(rd(0x070) & 64);
}

static struct hdr *rx_buf(unsigned i)
{
	return (struct hdr *)(scratch + P_RX * PAGE + RXBUF * i);
}

/* Give receive buffer i (len bytes) to the device; kick when asked. */
static void rx_post(unsigned i, uint32_t len, int kick)
{
	memset(rx_buf(i), 0xee, RXBUF);
	rxq.desc[i] = (struct desc){pa(P_RX * PAGE + RXBUF * i), len, 2, 0};
	post(&rxq, (uint16_t)i);
	if (kick)
		wr(0x050, 0);
}

/* The next packet in the receive queue, its buffer given back: 0, or -1 if none in ms. */
static int rx_next(struct hdr *h, int ms)
{
	const volatile uint32_t *ring = (const volatile uint32_t *)(rxq.used + 2);

	for (int t = 0; (uint16_t)rxq.used[1] == rx_seen; t++) {
		if (t >= ms)
			return -1;
		usleep(1000);
	}
	__sync_synchronize();
	unsigned id = ring[2 * (rx_seen % NUM)];
	memcpy(h, rx_buf(id % NUM), sizeof(*h));
	rx_seen++;
	rx_post(id % NUM, RXBUF, 1);
	return 0;
}

/* Transmit header slot i, filled. */
static struct hdr *tx_hdr(unsigned i, uint16_t op, uint32_t sport, uint32_t dport)
{
	struct hdr *h = (struct hdr *)(scratch + P_TX * PAGE + 64 * (i % NUM));

	*h = (struct hdr){.src_cid = cid,
			  .dst_cid = HOST,
			  .src_port = sport,
			  .dst_port = dport,
			  .type = STREAM,
			  .op = op,
			  .buf_alloc = 65536};
	return h;
}

/*
 * Queue n packets from header slots first.. (slot first + i takes descriptors from
 * (first + i) * per, the header and data pages after it), datalen bytes of data each,
 * then publish them at once and kick; wait until the device took them (0) or 20 s (-1).
 * hdrlen: the header descriptor's length (a short chain when below 44).
 */
static int tx_send(unsigned first, unsigned n, uint32_t datalen, uint32_t hdrlen)
{
	unsigned per = 1 + (datalen + PAGE - 1) / PAGE;
	uint16_t idx = txq.next_avail;

	for (unsigned i = 0; i < n; i++) {
		unsigned s = (first + i) % NUM, d = (s * per) % NUM;

		txq.desc[d] = (struct desc){pa(P_TX * PAGE + 64 * s), hdrlen, datalen ? 1 : 0,
					    (uint16_t)(d + 1)};
		for (unsigned p = 0; p * PAGE < datalen; p++)
			txq.desc[d + 1 + p] = (struct desc){
				pa((P_DATA + p) * PAGE),
				datalen - p * PAGE < PAGE ? datalen - p * PAGE : PAGE,
				(uint16_t)((p + 1) * PAGE < datalen), (uint16_t)(d + 2 + p)};
		txq.avail[2 + (idx + i) % NUM] = (uint16_t)d;
	}
	__sync_synchronize();
	txq.next_avail = (uint16_t)(idx + n);
	txq.avail[1] = txq.next_avail;
	__sync_synchronize();
	wr(0x050, 1);
	for (int t = 0; t < 20000; t++) {
		if ((uint16_t)txq.used[1] == txq.next_avail)
			return 0;
		usleep(1000);
	}
	return -1;
}

/* Is h a packet from the host's port sport to the guest's port dport with op? */
static int is(const struct hdr *h, uint16_t op, uint32_t sport, uint32_t dport)
{
	return h->op == op && h->src_port == sport && h->dst_port == dport && h->src_cid == HOST &&
	       h->dst_cid == cid && h->type == STREAM && h->len == 0;
}

int main(int argc, char **argv)
{
	struct hdr h;
	char seq[256] = "";
	unsigned flood_rst = 0, flood_bad = 0, sentinel = 0, r;

	if (argc != 4 || open_regs("vsockpoke", strtoull(argv[1], NULL, 0), 19) ||
	    lock_scratch(PAGES) || restart()) {
		fprintf(stderr,
			"usage: vsockpoke MMIO_BASE HOLDPORT NOPORT (as root, driver unbound)\n");
		return 2;
	}
	holdport = strtoul(argv[2], NULL, 0);
	noport = strtoul(argv[3], NULL, 0);
	printf("CID=%llu\n", (unsigned long long)cid);
	for (unsigned i = 0; i < NUM; i++)
		rx_post(i, RXBUF, i == NUM - 1);

	/* Nothing listens: RST. */
	tx_hdr(0, OP_REQUEST, 1000, noport);
	r = tx_send(0, 1, 0, 44) == 0 && rx_next(&h, 10000) == 0;
	(void)wait_used;
	printf("NOLISTEN-RST=%d\n", r && is(&h, OP_RST, noport, 1000));

	/* Something listens: RESPONSE, then more data than the credit: RST. */
	tx_hdr(1, OP_REQUEST, 1001, holdport);
	r = tx_send(1, 1, 0, 44) == 0 && rx_next(&h, 10000) == 0;
	printf("LISTEN-RESPONSE=%d BUF-ALLOC=%u\n", r && is(&h, OP_RESPONSE, holdport, 1001),
	       r ? h.buf_alloc : 0);
	for (unsigned i = 0; i < 5; i++)
		tx_hdr(i, OP_RW, 1001, holdport)->len = 65536;
	r = tx_send(0, 5, 65536, 44) == 0 && rx_next(&h, 10000) == 0;
	printf("CREDIT-RST=%d NEEDS-RESET=%d\n", r && is(&h, OP_RST, holdport, 1001),
	       needs_reset());

	/* Wrong CIDs, unknown op and type, len past the descriptors, a short header. */
	tx_hdr(0, OP_REQUEST, 1100, noport)->src_cid = cid + 1;
	tx_hdr(1, OP_REQUEST, 1101, noport)->dst_cid = 1;
	tx_hdr(2, 99, 1102, noport);
	tx_hdr(3, OP_REQUEST, 1103, noport)->type = 99;
	tx_hdr(4, OP_RW, 1104, noport)->len = 1000;
	r = tx_send(0, 5, 0, 44);
	tx_hdr(5, OP_REQUEST, 1105, noport);
	r |= tx_send(5, 1, 0, 20);
	tx_hdr(6, OP_REQUEST, 1106, noport);
	r |= tx_send(6, 1, 0, 44);
	while (!r && rx_next(&h, 10000) == 0) {
		snprintf(seq + strlen(seq), sizeof(seq) - strlen(seq), "%s%s:%u", seq[0] ? "," : "",
			 h.op == OP_RST ? "RST" : "OTHER", h.dst_port);
		if (h.dst_port == 1106 || strlen(seq) > 200)
			break;
	}
	printf("BAD-REPLIES=%s NEEDS-RESET=%d\n", seq, needs_reset());

	/* The flood: all REQUESTs taken before a receive buffer is given back. */
	r = 0;
	for (unsigned i = 0; i < FLOOD; i += 100) {
		for (unsigned j = 0; j < 100; j++)
			tx_hdr(j, OP_REQUEST, 20000 + i + j, noport);
		r |= tx_send(0, 100, 0, 44);
	}
	printf("FLOOD-SENT=%d\n", r ? -1 : FLOOD);
	for (unsigned got = 0; rx_next(&h, 10000) == 0; got++) {
		if (got == NUM) { /* the device gave NUM back: one more REQUEST after the flood */
			tx_hdr(0, OP_REQUEST, 1200, noport);
			tx_send(0, 1, 0, 44);
		}
		if (is(&h, OP_RST, noport, 1200)) {
			sentinel = 1;
			break;
		}
		if (is(&h, OP_RST, noport, h.dst_port) && h.dst_port >= 20000 &&
		    h.dst_port < 20000 + FLOOD)
			flood_rst++;
		else
			flood_bad++;
	}
	printf("FLOOD-RST=%u FLOOD-OTHER=%u FLOOD-AFTER-RST=%u NEEDS-RESET=%d\n", flood_rst,
	       flood_bad, sentinel, needs_reset());

	/* A receive buffer without room for a header. */
	if (restart())
		return 1;
	rx_post(0, 32, 1);
	tx_hdr(0, OP_REQUEST, 1300, noport);
	tx_send(0, 1, 0, 44);
	r = 0;
	for (int t = 0; t < 10000 && !(r = needs_reset()); t++)
		usleep(1000);
	printf("SMALL-NEEDS-RESET=%u\n", r);
	wr(0x070, 0);
	printf("RESET-STATUS=%u\n", rd(0x070));
	if (restart())
		return 1;
	for (unsigned i = 0; i < NUM; i++)
		rx_post(i, RXBUF, i == NUM - 1);
	tx_hdr(0, OP_REQUEST, 1301, noport);
	r = tx_send(0, 1, 0, 44) == 0 && rx_next(&h, 10000) == 0;
	printf("AFTER-RESET-RST=%d NEEDS-RESET=%d\n", r && is(&h, OP_RST, noport, 1301),
	       needs_reset());
	wr(0x070, 0);
	printf("VSOCKPOKE-DONE\n");
	return 0;
}
