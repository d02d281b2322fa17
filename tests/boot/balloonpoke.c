/*
 * balloonpoke: a deliberately misbehaving virtio-balloon driver, run as root inside a test
 * guest on a virtio-mmio balloon whose kernel driver was unbound (see poke.h), with the
 * statistics queue (stats_polling_interval_s = 1). In turn it:
 *   - inflates page numbers outside guest RAM (0, 1, the largest, one past 1 TiB) with three
 *     stray bytes: refused and counted by the monitor, the buffer returned, no reset;
 *   - deflates the same: returned, no reset;
 *   - posts a statistics buffer of a bad length (7 bytes): refused, but returned at the next
 *     tick of the device's timer like any other;
 *   - posts an inflate buffer outside guest RAM: the device needs a reset; then resets it.
 * Prints KEY=VALUE lines for the test script.
 *   balloonpoke MMIO_BASE
 */
#include "poke.h"

#define FEAT_STATS  (1u << 1)
#define NEEDS_RESET 64

static struct vq inflate, deflate, stats;

static void kick(struct vq *q)
{
	wr(0x050, q->sel);
}

/* Post one readable buffer of len bytes at scratch offset off on q, kick, wait for it. */
static int one(struct vq *q, uint64_t gpa, uint32_t len)
{
	uint16_t head = (uint16_t)(q->next_avail % q->num);

	q->desc[head] = (struct desc){gpa, len, 0, 0};
	post(q, head);
	kick(q);
	return wait_used(q, q->next_avail) == 0;
}

int main(int argc, char **argv)
{
	uint32_t pfns[4] = {0, 1, 0xffffffffu, 0x10000000u};
	uint8_t *buf;

	if (argc != 2 || open_regs("balloonpoke", strtoull(argv[1], NULL, 0), 5) ||
	    lock_scratch(3 * 3 + 1))
		return 2;
	setvbuf(stdout, NULL, _IONBF, 0);
	if (negotiate(FEAT_STATS)) {
		printf("BALLOONPOKE-REFUSED features\n");
		return 1;
	}
	setup_vq(&inflate, 0, 16, 0);
	setup_vq(&deflate, 1, 16, 3);
	setup_vq(&stats, 2, 16, 6);
	wr(0x070, 1 | 2 | 4 | 8);
	buf = scratch + 9 * PAGE;
	memcpy(buf, pfns, sizeof(pfns));
	printf("INFLATE-OUTSIDE-USED=%d NEEDS-RESET=%d\n",
	       one(&inflate, pa(9 * PAGE), sizeof(pfns) + 3), !!(rd(0x070) & NEEDS_RESET));
	printf("DEFLATE-OUTSIDE-USED=%d NEEDS-RESET=%d\n",
	       one(&deflate, pa(9 * PAGE), sizeof(pfns)), !!(rd(0x070) & NEEDS_RESET));
	/* Held until the device's next tick (every second): wait_used waits up to 3 s. */
	printf("STATS-BAD-USED=%d NEEDS-RESET=%d\n", one(&stats, pa(9 * PAGE), 7),
	       !!(rd(0x070) & NEEDS_RESET));
	one(&inflate, 0xfffffffff000ull, 4);
	printf("OUTSIDE-NEEDS-RESET=%d\n", !!(rd(0x070) & NEEDS_RESET));
	wr(0x070, 0);
	printf("RESET-STATUS=%u\n", rd(0x070));
	printf("BALLOONPOKE-DONE\n");
	return 0;
}
