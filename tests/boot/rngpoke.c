/*
 * rngpoke: a deliberately misbehaving virtio-rng driver, run as root inside a test guest on
 * a virtio-mmio entropy device whose kernel driver was unbound (see poke.h). In turn it:
 *   - posts a full ring of 64 buffers with one kick: all are filled, none needs a reset;
 *   - posts one 128 KiB buffer in 32 pieces: the device gives 64 KiB (its limit per buffer)
 *     and says so in the used length;
 *   - posts a buffer the device could only read, one outside guest RAM, and a chain that
 *     loops on itself: each must set DEVICE_NEEDS_RESET, and a reset must clear it.
 * Prints KEY=VALUE lines for the test script.
 *   rngpoke MMIO_BASE
 */
#include "poke.h"

#define NUM   64
#define PAGES (3 + 1 + 32)

/* Page layout of the scratch area. */
#define P_RING	0 /* the queue's three pages */
#define P_SMALL 3 /* NUM buffers of 64 bytes */
#define P_BIG	4 /* 32 pages: one 128 KiB buffer */

static struct vq q;

static uint32_t used_len(uint16_t i)
{
	const volatile uint32_t *ring = (const volatile uint32_t *)(q.used + 2);

	return ring[2 * (i % q.num) + 1];
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* Start again after a broken case: reset, negotiate, the queue laid out anew. */
static int restart(void)
{
	if (negotiate(0))
		return -1;
	setup_vq(&q, 0, NUM, P_RING);
	wr(0x070, 1 | 2 | 4 | 8);
	return 0;
}

/* Post head alone, kick, and wait for DEVICE_NEEDS_RESET: 1 if it came, else 0. */
static int needs_reset_after(uint16_t head)
{
	post(&q, head);
	wr(0x050, 0);
	for (int i = 0; i < 300; i++) {
		if (rd(0x070) & 64)
			return 1;
		usleep(10000);
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned bad = 0;
	uint16_t head;

	if (argc != 2 || open_regs("rngpoke", strtoull(argv[1], NULL, 0), 4) ||
	    lock_scratch(PAGES) || restart()) {
		fprintf(stderr, "usage: rngpoke MMIO_BASE (as root, driver unbound)\n");
		return 2;
	}

	/* A full ring, one kick. */
	for (unsigned i = 0; i < NUM; i++) {
		q.desc[i] = (struct desc){pa(P_SMALL * PAGE + 64 * i), 64, 2, 0};
		post(&q, (uint16_t)i);
	}
	wr(0x050, 0);
	if (wait_used(&q, NUM) == 0)
		for (unsigned i = 0; i < NUM; i++)
			bad += used_len((uint16_t)i) != 64 ||
			       all_zero(scratch + P_SMALL * PAGE + 64 * i, 64);
	printf("FULL=%u BAD=%u NEEDS-RESET=%u\n", (unsigned)(uint16_t)q.used[1], bad,
	       !!(rd(0x070) & 64));

	/* 128 KiB in 32 page-sized pieces: 64 KiB given. */
	for (unsigned i = 0; i < 32; i++)
		q.desc[i] = (struct desc){pa((P_BIG + i) * PAGE), PAGE, (uint16_t)(2 | (i < 31)),
					  (uint16_t)(i + 1)};
	post(&q, 0);
	wr(0x050, 0);
	wait_used(&q, NUM + 1);
	printf("BIG-LEN=%u NEEDS-RESET=%u PAST-64K-ZERO=%d\n", used_len(NUM), !!(rd(0x070) & 64),
	       all_zero(scratch + (P_BIG + 16) * PAGE, 16 * PAGE));

	/* A buffer the device can only read. */
	q.desc[1] = (struct desc){pa(P_SMALL * PAGE), 64, 0, 0};
	printf("READABLE-NEEDS-RESET=%d\n", needs_reset_after(1));
	if (restart())
		return 1;
	printf("RESET-STATUS=%u\n", rd(0x070) & 64);

	/* A buffer beyond guest RAM (1 TiB up). */
	q.desc[0] = (struct desc){1ull << 40, 64, 2, 0};
	printf("OUTSIDE-NEEDS-RESET=%d\n", needs_reset_after(0));
	if (restart())
		return 1;

	/* A chain that loops on itself. */
	head = 5;
	q.desc[head] = (struct desc){pa(P_SMALL * PAGE), 64, 1 | 2, head};
	printf("LOOP-NEEDS-RESET=%d\n", needs_reset_after(head));
	wr(0x070, 0);
	printf("LAST-RESET-STATUS=%u\n", rd(0x070));
	printf("RNGPOKE-DONE\n");
	return 0;
}
