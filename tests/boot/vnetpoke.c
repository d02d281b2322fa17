/*
 * vnetpoke: a deliberately misbehaving virtio-net driver, run as root inside a test guest.
 * It drives a virtio-mmio network device directly (registers through /dev/mem, rings and
 * buffers in locked pages whose guest-physical addresses come from /proc/self/pagemap; the
 * kernel's driver unbound first) and feeds it malformed transmit headers, oversized frames,
 * receive buffers too small for any frame and finally a descriptor outside guest RAM. The
 * monitor must drop each bad frame, flag the broken ring with DEVICE_NEEDS_RESET, and keep
 * running. With "vhost" the kernel moves the frames and checks them itself; a header it
 * refuses can hold that transmit ring until a reset (vhost-net's choice), so only valid
 * frames go out before the descriptor outside RAM.
 *   vnetpoke MMIO_BASE [vhost]
 */
#include <stdbool.h>

#include "poke.h"

#define QSIZE 64
#define PAGES 64

/*
 * TX chain i at descriptors 4i..: a 12-byte header, then a frame of len bytes (at most
 * three pages, one descriptor per page) with data_flags on its descriptors.
 */
static void tx_frame(struct vq *q, unsigned i, uint8_t flags, uint8_t gso, uint16_t gso_size,
		     uint16_t csum_start, uint32_t len, uint16_t data_flags)
{
	unsigned hdr = 6 * PAGE + i * 0x100, data = (8 + 3 * i) * PAGE, d = 4 * i;
	uint8_t *h = scratch + hdr, *f = scratch + data;

	memset(h, 0, 12);
	h[0] = flags;
	h[1] = gso;
	memcpy(h + 4, &gso_size, 2);
	memcpy(h + 6, &csum_start, 2);
	h[8] = 6; /* csum_offset */
	q->desc[d] = (struct desc){pa(hdr), 12, 1, (uint16_t)(d + 1)};
	for (uint32_t off = 0; off < len; off += PAGE) {
		uint32_t n = len - off < PAGE ? len - off : PAGE;

		memset(f + off, 0x5a, n);
		d++;
		q->desc[d] = (struct desc){pa(data + off), n,
					   (uint16_t)(data_flags | (off + n < len ? 1 : 0)),
					   (uint16_t)(d + 1)};
	}
	memset(f, 0xff, 6); /* broadcast, from a local MAC, local experimental ethertype */
	memcpy(f + 6, "\x02\x00\x00\x00\x66\x01\x88\xb5", 8);
	post(q, (uint16_t)(4 * i));
}

int main(int argc, char **argv)
{
	uint64_t base;
	struct vq rx = {0}, tx = {0};
	bool vhost = argc == 3 && !strcmp(argv[2], "vhost");

	if (argc != 2 && !vhost) {
		fprintf(stderr, "usage: vnetpoke MMIO_BASE [vhost]\n");
		return 2;
	}
	base = strtoull(argv[1], NULL, 0);
	if (lock_scratch(PAGES) < 0) {
		perror("vnetpoke: locked pages with known addresses");
		return 1;
	}
	if (open_regs("vnetpoke", base, 1) < 0)
		return 1;
	/* Negotiate VERSION_1, CSUM and HOST_TSO4 only (no mergeable buffers). */
	if (negotiate(1u << 0 | 1u << 11) < 0) {
		fprintf(stderr, "vnetpoke: FEATURES_OK refused\n");
		return 1;
	}
	setup_vq(&rx, 0, QSIZE, 0);
	setup_vq(&tx, 1, QSIZE, 3);
	wr(0x070, 1 | 2 | 4 | 8);

	/* Receive buffers of 32 bytes: smaller than any frame with its header. */
	for (unsigned i = 0; i < 8; i++) {
		rx.desc[i] = (struct desc){pa(7 * PAGE + i * 64), 32, 2, 0};
		post(&rx, (uint16_t)i);
	}
	wr(0x050, 0);
	printf("RX-POSTED\n");
	fflush(stdout);
	sleep(3); /* the host sends frames meanwhile: each is dropped, no buffer is used */
	printf("RX-USED=%u\n", (unsigned)rx.used[1]);

	if (vhost) {
		/* Valid frames only: the kernel's path may hold a ring on a bad header. */
		for (unsigned i = 0; i < 8; i++)
			tx_frame(&tx, i, 0, 0, 0, 0, 60 + 100 * i, 0);
	} else {
		tx_frame(&tx, 0, 0, 0, 0, 0, 60, 0);	   /* valid */
		tx_frame(&tx, 1, 4, 0, 0, 0, 60, 0);	   /* unknown flag */
		tx_frame(&tx, 2, 1, 0, 0, 200, 60, 0);	   /* checksum beyond the frame */
		tx_frame(&tx, 3, 1, 4, 1400, 34, 3000, 0); /* TSO6: not negotiated */
		tx_frame(&tx, 4, 0, 0, 0, 0, 9000, 0);	   /* larger than the MTU */
		tx_frame(&tx, 5, 1, 1, 0, 34, 3000, 0);	   /* TSO4 with segment size 0 */
		tx_frame(&tx, 6, 0, 0, 0, 0, 60, 2);	   /* writable buffer in a TX chain */
		tx_frame(&tx, 7, 0, 0x80, 0, 0, 60, 0);	   /* ECN (not negotiated) */
	}
	wr(0x050, 1);
	printf("TX-USED=%s\n", wait_used(&tx, 8) == 0 ? "8" : "timeout");

	/* A descriptor pointing outside guest RAM: the device must need a reset. */
	tx.desc[0] = (struct desc){0x1000, 64, 0, 0};
	post(&tx, 0);
	wr(0x050, 1);
	for (int i = 0; i < 300 && !(rd(0x070) & 0x40); i++)
		usleep(10000);
	printf("NEEDS-RESET=%u\n", (rd(0x070) & 0x40) ? 1 : 0);
	wr(0x070, 0);
	printf("RESET-STATUS=%u\n", rd(0x070));
	return 0;
}
